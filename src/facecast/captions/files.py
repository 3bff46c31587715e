"""SubRip (.srt) and WebVTT (.vtt) caption files: written from cues, read back.

Both are small text formats, written here by hand: UTF-8, a blank line after each
cue, times to the millisecond (SRT ``00:00:01,250``, WebVTT ``00:00:01.250``).
WebVTT cue text escapes ``&``, ``<`` and ``>``; neither format may hold ``-->`` in a
cue's text, so it is written as an arrow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from facecast.captions.cues import Cue
from facecast.errors import InputError
from facecast.rules import CAPTION_FORMATS

_TIME = r"(\d{2,}):(\d{2}):(\d{2})[,.](\d{3})"
_TIMING = re.compile(rf"^{_TIME} --> {_TIME}(?: .*)?$")


def caption_format(path: str | os.PathLike[str]) -> str:
    """``"srt"`` or ``"vtt"`` from a file name; else InputError ``bad_captions``."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in CAPTION_FORMATS:
        raise InputError(f"captions are written as {' or '.join('.' + f for f in CAPTION_FORMATS)}"
                         f" files, not {Path(path).name!r}", code="bad_captions")
    return fmt


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _clean(line: str) -> str:
    return line.replace("-->", "→")


def to_srt(cues: Sequence[Cue]) -> str:
    """The cues as a SubRip file's text."""
    blocks = [f"{n}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n"
              + "\n".join(_clean(line) for line in c.lines) + "\n"
              for n, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def _vtt_text(line: str) -> str:
    return _clean(line).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue]) -> str:
    """The cues as a WebVTT file's text."""
    blocks = ["WEBVTT\n"] + [
        f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n"
        + "\n".join(_vtt_text(line) for line in c.lines) + "\n" for c in cues]
    return "\n".join(blocks)


def write_captions(cues: Sequence[Cue], path: str | os.PathLike[str]) -> Path:
    """Write ``cues`` to ``path`` in the format its suffix names (.srt or .vtt)."""
    fmt = caption_format(path)
    text = to_srt(cues) if fmt == "srt" else to_vtt(cues)
    out = Path(path)
    out.write_text(text, encoding="utf-8", newline="\n")
    return out


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_captions(text: str, fmt: str) -> list[Cue]:
    """Cues of an SRT or WebVTT text; ValueError where it breaks the format (a check
    that what :func:`write_captions` writes is well formed)."""
    if fmt == "vtt":
        if not re.match(r"^WEBVTT(?:[ \t].*)?$", text.split("\n", 1)[0]):
            raise ValueError("a WebVTT file starts with the line WEBVTT")
        blocks = re.split(r"\n{2,}", text.strip("\n"))[1:]
    elif fmt == "srt":
        blocks = re.split(r"\n{2,}", text.strip("\n"))
    else:
        raise ValueError(f"unknown caption format {fmt!r}")
    cues: list[Cue] = []
    for n, block in enumerate(blocks, 1):
        lines = block.split("\n")
        if fmt == "srt":
            if lines[0] != str(n):
                raise ValueError(f"cue {n}: numbered {lines[0]!r}")
            lines = lines[1:]
        elif not _TIMING.match(lines[0]):
            lines = lines[1:]  # a WebVTT cue may have an id line
        match = _TIMING.match(lines[0]) if lines else None
        if match is None:
            raise ValueError(f"cue {n}: no timing line")
        sep = "," if fmt == "srt" else "."
        if (sep not in lines[0].split(" --> ")[0]) or len(lines) < 2:
            raise ValueError(f"cue {n}: bad timing separator or no text")
        g = match.groups()
        start, end = _seconds(*g[:4]), _seconds(*g[4:])
        if end <= start:
            raise ValueError(f"cue {n}: ends before it starts")
        if fmt == "vtt" and any("-->" in t or re.search(r"&(?!amp;|lt;|gt;)", t)
                                for t in lines[1:]):
            raise ValueError(f"cue {n}: unescaped text")
        cues.append(Cue(start, end, tuple(lines[1:])))
    return cues
