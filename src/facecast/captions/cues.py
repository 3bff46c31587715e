"""Word timings -> subtitle cues that follow common subtitle rules.

A cue shows at most :data:`~facecast.rules.CAPTION_MAX_LINES` lines of
:data:`~facecast.rules.CAPTION_LINE_CHARS` characters for 1 to 7 seconds. Where the
text breaks into cues and lines is chosen for the whole text at once (a shortest path
over the words): breaks after a sentence or clause end cost least, before a conjunction
or preposition a little more, after an article or other word that leads into the next
most; a pause in the speech makes any break cheap; one-word cues and lines (orphans)
cost a lot. The shown words are the caller's text (its casing, punctuation and
numbers), timed by the speech's words, which may be spelled otherwise ("3" is spoken
"three", "Mr." "Mister").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from facecast.rules import (
    CAPTION_GAP_S,
    CAPTION_LINE_CHARS,
    CAPTION_MAX_LINES,
    CAPTION_MAX_S,
    CAPTION_MIN_S,
)
from facecast.timing import WordTiming

# Break costs (lower is a better place to end a cue or a line).
_SENTENCE, _CLAUSE, _BEFORE_LINK, _PLAIN, _AFTER_LEAD = 0.0, 0.5, 2.0, 4.0, 7.0
_CUE = 1.0  # each cue: fewer, fuller cues unless a break is worth it
# A cue break inside a sentence weighs more than a line break: the reader sees a cue's
# lines together, but loses the first half of a phrase broken across cues.
_CUE_BREAK = 1.5
_ORPHAN = 6.0  # a one-word cue or line
_INNER_SENTENCE = 1.5  # a sentence ending inside a cue (its own cue reads better)
_SHORT = 1.0  # speech shorter than the minimum cue time (it is held longer)
_PAUSE_S = 0.4  # a silence this long makes a break cheap ...
_LONG_PAUSE_S = 1.0  # ... and one this long inside a cue is costly
_LONG_PAUSE = 4.0
_MAX_WORDS = 40  # a cue never holds more (84 characters is ~15 words)

_LINK_WORDS = """
and but or nor so yet because that which who whom whose when where while if whether
to in on at for with from by as than after before until although though unless since
about into over under between through during without like
"""  # a break before these is a phrase boundary
_LINKS = frozenset(_LINK_WORDS.split())
_LEAD_WORDS = """
a an the my your his her its our their this these those mr mrs ms dr st no not very
some many most each every both
"""  # these lead into the next word: never end a line with them
_LEADS = frozenset(_LEAD_WORDS.split())
_SENTENCE_END = re.compile(r"[.!?…]['\"”’»)\]]*$")
_CLAUSE_END = re.compile(r"[,;:–—-]['\"”’»)\]]*$")


@dataclass(frozen=True)
class Cue:
    """One caption: its lines, shown from ``start`` to ``end`` seconds, and its words."""

    start: float
    end: float
    lines: tuple[str, ...]
    words: tuple[WordTiming, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _key(token: str) -> str:
    """How a word compares with a spoken one: lower case, letters, digits and inner
    apostrophes only."""
    return re.sub(r"[^\w']+", "", token.lower().replace("’", "'")).strip("'_")


def shown_words(words: Sequence[WordTiming], text: str | None) -> list[WordTiming]:
    """``words`` as the caller wrote them: each whitespace-separated token of ``text``
    timed by the spoken word(s) it matches; tokens the speech spelled otherwise share
    the span of those spoken words, tokens with no spoken word sit at the previous
    word's end. Without ``text``, the spoken words as they are."""
    spoken = [w for w in words if _key(w.word)]
    if not text or not text.strip():
        return list(spoken)
    tokens: list[str] = []
    for raw in text.split():
        if not _key(raw) and tokens:  # a lone dash or quote joins the word before it
            tokens[-1] += " " + raw
        else:
            tokens.append(raw)
    if not spoken:
        return []
    keys = [_key(t) for t in tokens]
    matcher = difflib.SequenceMatcher(None, keys, [_key(w.word) for w in spoken],
                                      autojunk=False)
    out: list[WordTiming] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += [WordTiming(tokens[i1 + k], spoken[j1 + k].start, spoken[j1 + k].end)
                    for k in range(i2 - i1)]
        elif op == "replace":
            # the tokens share the spoken words' span, in proportion to their length
            start, end = spoken[j1].start, spoken[j2 - 1].end
            sizes = [max(len(k), 1) for k in keys[i1:i2]]
            at = start
            for token, size in zip(tokens[i1:i2], sizes, strict=True):
                step = (end - start) * size / sum(sizes)
                out.append(WordTiming(token, at, at + step))
                at += step
        elif op == "delete":
            at = out[-1].end if out else spoken[0].start
            out += [WordTiming(t, at, at) for t in tokens[i1:i2]]
        # "insert": spoken words the text does not have (a filler) show nothing
    return out


def _break_cost(words: Sequence[WordTiming], k: int, *, timed: bool = True) -> float:
    """The cost of breaking between ``words[k - 1]`` and ``words[k]``."""
    before, after = words[k - 1].word, words[k].word
    if _SENTENCE_END.search(before):
        cost = _SENTENCE
    elif _CLAUSE_END.search(before):
        cost = _CLAUSE
    elif _key(before) in _LEADS:
        cost = _AFTER_LEAD
    elif _key(after) in _LINKS:
        cost = _BEFORE_LINK
    else:
        cost = _PLAIN
    if timed and words[k].start - words[k - 1].end >= _PAUSE_S:
        cost = min(cost, _CLAUSE)
    return cost


def split_lines(words: Sequence[WordTiming], line_chars: int = CAPTION_LINE_CHARS
                ) -> tuple[float, tuple[str, ...]] | None:
    """The best way to show ``words`` in at most :data:`CAPTION_MAX_LINES` lines of
    ``line_chars`` (cost, lines), or None when they do not fit. One line when it fits;
    else two, broken at the best phrase boundary, rather balanced, no one-word line."""
    texts = [w.word for w in words]
    whole = " ".join(texts)
    if len(whole) <= line_chars or len(texts) == 1:
        return 0.0, (whole,)
    if CAPTION_MAX_LINES < 2 or len(whole) > CAPTION_MAX_LINES * line_chars + 1:
        return None
    best: tuple[float, tuple[str, ...]] | None = None
    for k in range(1, len(texts)):
        top, bottom = " ".join(texts[:k]), " ".join(texts[k:])
        if len(top) > line_chars or len(bottom) > line_chars:
            continue
        cost = _break_cost(words, k, timed=False) + 0.05 * abs(len(top) - len(bottom))
        if k == 1 or k == len(texts) - 1:
            cost += _ORPHAN
        if best is None or cost < best[0]:
            best = (cost, (top, bottom))
    return best


def build_cues(words: Sequence[WordTiming], *, duration: float | None = None,
               line_chars: int = CAPTION_LINE_CHARS, min_s: float = CAPTION_MIN_S,
               max_s: float = CAPTION_MAX_S, gap_s: float = CAPTION_GAP_S) -> list[Cue]:
    """Cues for timed ``words`` (as :func:`shown_words` gives them), ending by
    ``duration`` when given.

    Each cue starts at its first word's start and stays up until its last word ends,
    held to at least ``min_s`` where the next cue leaves room (``gap_s`` before it),
    never over ``max_s``.
    """
    words = [w for w in words if w.word.strip()]
    n = len(words)
    if n == 0:
        return []
    inf = float("inf")
    best = [inf] * (n + 1)
    back: list[tuple[int, tuple[str, ...]]] = [(0, ())] * (n + 1)
    best[0] = 0.0
    for j in range(1, n + 1):
        for i in range(j - 1, max(-1, j - 1 - _MAX_WORDS), -1):
            if best[i] == inf:
                continue
            span = words[j - 1].end - words[i].start
            if span > max_s and j - i > 1:
                break  # longer cues starting earlier are longer still
            fitted = split_lines(words[i:j], line_chars)
            if fitted is None:
                break
            cost = best[i] + _CUE + fitted[0]
            if j < n:
                cost += _CUE_BREAK * _break_cost(words, j)
            if j - i == 1 and n > 1:
                cost += _ORPHAN
            if span < min_s:
                cost += _SHORT
            for k in range(i + 1, j):
                if _SENTENCE_END.search(words[k - 1].word):
                    cost += _INNER_SENTENCE
                if words[k].start - words[k - 1].end >= _LONG_PAUSE_S:
                    cost += _LONG_PAUSE
            if cost < best[j]:
                best[j] = cost
                back[j] = (i, fitted[1])
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    j = n
    while j > 0:
        i, lines = back[j]
        spans.append((i, j, lines))
        j = i
    spans.reverse()
    cues: list[Cue] = []
    for c, (i, j, lines) in enumerate(spans):
        start, spoken_end = words[i].start, words[j - 1].end
        end = max(spoken_end, start + min_s)
        if c + 1 < len(spans):
            end = min(end, words[spans[c + 1][0]].start - gap_s)
        if duration is not None:
            end = min(end, duration)
        end = max(min(end, start + max_s), start + 0.001)
        cues.append(Cue(start, end, lines, tuple(words[i:j])))
    return cues
