"""Text preparation for speech: English normalisation and sentence splitting.

Normalisation makes English read the way a person reads it aloud: numbers,
ordinals, years, dates, times, money, percentages and common abbreviations
become words (``num2words`` does the number words). Splitting cuts long text
into sentences, and over-long sentences at clause or word boundaries, so that
synthesis can stream: the first sentence plays while the rest is made.
"""

from __future__ import annotations

import re

from num2words import num2words

from facecast.characters import check_characters  # noqa: F401 (its old home)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

ABBREVIATIONS = {
    "Dr.": "Doctor", "Mr.": "Mister", "Mrs.": "Missus", "Ms.": "Miz", "Prof.": "Professor",
    "St.": "Saint", "Jr.": "Junior", "Sr.": "Senior", "Mt.": "Mount", "Ave.": "Avenue",
    "etc.": "et cetera", "e.g.": "for example", "i.e.": "that is", "vs.": "versus",
    "approx.": "approximately", "No.": "number", "Inc.": "Incorporated", "Ltd.": "Limited",
    "Co.": "Company", "Jan.": "January", "Feb.": "February", "Mar.": "March", "Apr.": "April",
    "Aug.": "August", "Sep.": "September", "Sept.": "September", "Oct.": "October",
    "Nov.": "November", "Dec.": "December", "min.": "minutes", "hr.": "hour",
}
UNITS = {"km": "kilometres", "kg": "kilograms", "cm": "centimetres", "mm": "millimetres",
         "m": "metres", "g": "grams", "mph": "miles per hour", "km/h": "kilometres per hour",
         "GB": "gigabytes", "MB": "megabytes", "kB": "kilobytes", "Hz": "hertz",
         "kHz": "kilohertz", "ms": "milliseconds", "s": "seconds", "h": "hours"}
CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
              "£": ("pound", "pounds", "penny", "pence")}


# Digits with optional thousands commas (never a trailing comma) and decimals.
NUM = r"\d(?:[\d,]*\d)?(?:\.\d+)?"


def _int_words(value: int) -> str:
    return num2words(value).replace(",", "")


def _year_words(value: int) -> str:
    return num2words(value, to="year")


def _money(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = CURRENCIES[match.group(1)]
    whole = int(match.group(2).replace(",", ""))
    cents = int((match.group(3) or "0").ljust(2, "0")[:2])
    scale = match.group(4)
    words = f"{_int_words(whole)} {one if whole == 1 else many}"
    if scale:
        return f"{_int_words(whole)} {scale} {many}"
    if cents:
        words += f" and {_int_words(cents)} {sub_one if cents == 1 else sub_many}"
    return words


def _date(day: int, month: int, year: int | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    out = f"{MONTHS[month - 1]} {num2words(day, to='ordinal')}"
    return f"{out}, {_year_words(year)}" if year is not None else out


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match.group(1)), int(match.group(2))
    suffix = (match.group(3) or "").replace(".", "").lower()
    if minute == 0:
        words = f"{_int_words(hour)} o'clock" if not suffix else _int_words(hour)
    elif minute < 10:
        words = f"{_int_words(hour)} oh {_int_words(minute)}"
    else:
        words = f"{_int_words(hour)} {_int_words(minute)}"
    # "3 p.m." at a sentence's end: the suffix's dot also ends the sentence.
    end = "." if (match.group(3) or "").endswith(".") else ""
    return (f"{words} {' '.join(suffix.upper())}" if suffix else words) + end


def _number(token: str) -> str:
    if "." in token:
        whole, frac = token.split(".", 1)
        head = _int_words(int(whole.replace(",", "") or "0"))
        return f"{head} point {' '.join(_int_words(int(d)) for d in frac)}"
    value = int(token.replace(",", ""))
    # A bare four-digit number from 1100 to 2099 is almost always a year.
    if "," not in token and 1100 <= value <= 2099 and len(token) == 4:
        return _year_words(value)
    return _int_words(value)


def normalize_english(text: str) -> str:
    """``text`` with numbers, dates, money and abbreviations written as words."""
    out = text
    for abbr, full in ABBREVIATIONS.items():
        out = re.sub(rf"(?<![\w.]){re.escape(abbr)}(?=\s|$|[,;:])", full, out)
    # ISO dates 2024-12-25 and US dates 12/25/2024.
    out = re.sub(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b",
                 lambda m: _date(int(m[3]), int(m[2]), int(m[1])) or m[0], out)
    out = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b",
                 lambda m: _date(int(m[2]), int(m[1]), int(m[3])) or m[0], out)
    out = re.sub(r"\b(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?(?![\w])", _time, out,
                 flags=re.IGNORECASE)
    out = re.sub(r"([$€£])(\d(?:[\d,]*\d)?)(?:\.(\d{1,2}))?(?:\s*(million|billion|thousand))?",
                 _money, out)
    out = re.sub(rf"({NUM})\s*%", lambda m: f"{_number(m[1])} percent", out)
    out = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: num2words(int(m[1]), to="ordinal"), out)
    unit_alt = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
    out = re.sub(rf"\b({NUM})\s?({unit_alt})\b",
                 lambda m: f"{_number(m[1])} {UNITS[m[2]]}", out)
    out = re.sub(rf"(?<![\w.]){NUM}(?![\w])", lambda m: _number(m[0]), out)
    out = out.replace("&", " and ")
    return re.sub(r"[ \t]+", " ", out).strip()


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])[\"')\]]*\s+|(?<=[。！？])")


def split_sentences(text: str, max_chars: int = 300, first_max_chars: int | None = None
                    ) -> list[str]:
    """Sentences of ``text``; any longer than ``max_chars`` are cut at clauses or words.

    ``first_max_chars`` cuts the first piece shorter, so that streamed speech
    starts sooner (the first clause plays while the rest is made).
    """
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        for sentence in _SENTENCE_END.split(para.strip()):
            sentence = " ".join(sentence.split())
            if sentence:
                limit = first_max_chars if (first_max_chars and not out) else max_chars
                out.extend(_cut(sentence, limit, max_chars))
    return out


def _cut(sentence: str, max_chars: int, rest_max: int | None = None) -> list[str]:
    """``sentence`` in pieces: the first up to ``max_chars``, the others up to ``rest_max``."""
    rest_max = rest_max or max_chars
    if len(sentence) <= max_chars:
        return [sentence]
    for sep in ("; ", ", ", " "):
        cut = sentence.rfind(sep, 0, max_chars)
        if cut > max_chars // 3:
            head = sentence[: cut + len(sep)].strip()
            return [head, *_cut(sentence[cut + len(sep):].strip(), rest_max)]
    return [sentence[:max_chars], *_cut(sentence[max_chars:], rest_max)]
