"""Rectangles the caller names for subtitles and watermarks: parse, check, group.

An area is ``x1,y1,x2,y2`` in pixels of the video frame, left-top and
right-bottom corners (KreadoAI's ``lt_x, lt_y, rb_x, rb_y``; fractional values
are accepted and rounded outwards). Areas that break the frame are refused
with the reason rather than clipped, so a caller never gets a silently
different cleanup from the one asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from facecast.errors import InputError

AreaKind = Literal["subtitle", "watermark"]
MIN_SIDE = 2  # pixels; anything thinner cannot hold text or a logo


@dataclass(frozen=True)
class Area:
    """A rectangle ``[x1, x2) x [y1, y2)`` in frame pixels and what it holds."""

    x1: int
    y1: int
    x2: int
    y2: int
    kind: AreaKind = "subtitle"

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x1, self.y1, self.x2, self.y2

    def to_dict(self) -> dict[str, int | str]:
        return {"x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2, "kind": self.kind}

    def __str__(self) -> str:
        return f"{self.x1},{self.y1},{self.x2},{self.y2}"


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"area {spec!r}: {text!r} is not a number", code="invalid_area",
                         area=spec) from None
    if not math.isfinite(value):
        raise InputError(f"area {spec!r}: {text!r} is not a finite number", code="invalid_area",
                         area=spec)
    return value


def parse_area(spec: str | Sequence[float] | Mapping[str, float],
               kind: AreaKind = "subtitle") -> tuple[float, float, float, float]:
    """Corner numbers from ``"x1,y1,x2,y2"``, a 4-sequence, or a Kreado ``lt_x..rb_y`` dict."""
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.replace(";", ",").split(",")]
        if len(parts) != 4:
            raise InputError(f"{kind} area {spec!r} must be four numbers x1,y1,x2,y2",
                             code="invalid_area", area=spec)
        x1, y1, x2, y2 = (_number(p, spec) for p in parts)
        return x1, y1, x2, y2
    if isinstance(spec, Mapping):
        keys = ("lt_x", "lt_y", "rb_x", "rb_y")
        missing = [k for k in keys if k not in spec]
        if missing:
            raise InputError(f"{kind} area {dict(spec)!r} lacks {', '.join(missing)}",
                             code="invalid_area", area=str(dict(spec)))
        x1, y1, x2, y2 = (_number(str(spec[k]), str(dict(spec))) for k in keys)
        return x1, y1, x2, y2
    values = list(spec)
    if len(values) != 4:
        raise InputError(f"{kind} area {values!r} must be four numbers x1,y1,x2,y2",
                         code="invalid_area", area=str(values))
    x1, y1, x2, y2 = (_number(str(v), str(values)) for v in values)
    return x1, y1, x2, y2


def check_area(corners: tuple[float, float, float, float], width: int, height: int,
               kind: AreaKind = "subtitle") -> Area:
    """The area in whole pixels, or InputError saying how it breaks a ``width x height`` frame."""
    x1, y1, x2, y2 = corners
    text = f"{kind} area {x1:g},{y1:g},{x2:g},{y2:g}"
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"{text}: the right-bottom corner must be right of and below the "
                         "left-top corner", code="invalid_area", area=text)
    problems = []
    if x1 < 0 or y1 < 0:
        problems.append("the left-top corner is above or left of the frame")
    if x2 > width:
        problems.append(f"x2={x2:g} is beyond the frame's width of {width} px")
    if y2 > height:
        problems.append(f"y2={y2:g} is beyond the frame's height of {height} px")
    if problems:
        raise InputError(f"{text} lies outside the {width}x{height} frame: "
                         + "; ".join(problems), code="area_outside_frame", area=text,
                         width=width, height=height)
    ix1, iy1 = math.floor(x1), math.floor(y1)
    ix2, iy2 = min(width, math.ceil(x2)), min(height, math.ceil(y2))
    if ix2 - ix1 < MIN_SIDE or iy2 - iy1 < MIN_SIDE:
        raise InputError(f"{text} is thinner than {MIN_SIDE} px", code="invalid_area", area=text)
    return Area(ix1, iy1, ix2, iy2, kind)


def check_areas(specs: Iterable[str | Sequence[float] | Mapping[str, float]], kind: AreaKind,
                width: int, height: int) -> list[Area]:
    return [check_area(parse_area(s, kind), width, height, kind) for s in specs]


@dataclass
class Region:
    """A rectangle of the frame processed as one piece: areas plus some context around them.

    Coordinates are even so the chroma planes of 4:2:0 video line up with it.
    """

    x1: int
    y1: int
    x2: int
    y2: int
    areas: list[Area]

    @property
    def shape(self) -> tuple[int, int]:
        return self.y2 - self.y1, self.x2 - self.x1

    def local(self, area: Area) -> tuple[int, int, int, int]:
        """``area`` in this region's own coordinates."""
        return area.x1 - self.x1, area.y1 - self.y1, area.x2 - self.x1, area.y2 - self.y1


def group_regions(areas: Sequence[Area], width: int, height: int, margin: int) -> list[Region]:
    """Regions of areas grown by ``margin``: areas whose grown boxes touch share one."""

    def grown(a: Area) -> list[int]:
        # Even corners (rounded outwards) keep 4:2:0 chroma samples whole inside a region.
        x1 = max(0, a.x1 - margin) // 2 * 2
        y1 = max(0, a.y1 - margin) // 2 * 2
        x2 = min(width, (a.x2 + margin + 1) // 2 * 2)
        y2 = min(height, (a.y2 + margin + 1) // 2 * 2)
        return [x1, y1, x2, y2]

    groups: list[tuple[list[int], list[Area]]] = [(grown(a), [a]) for a in areas]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                bi, bj = groups[i][0], groups[j][0]
                if bi[0] < bj[2] and bj[0] < bi[2] and bi[1] < bj[3] and bj[1] < bi[3]:
                    box = [min(bi[0], bj[0]), min(bi[1], bj[1]),
                           max(bi[2], bj[2]), max(bi[3], bj[3])]
                    groups[i] = (box, groups[i][1] + groups[j][1])
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return [Region(b[0], b[1], b[2], b[3], list(members)) for b, members in groups]
