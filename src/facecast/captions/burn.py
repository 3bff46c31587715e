"""Captions drawn into video frames (burned in), before they are encoded.

Text is drawn with DejaVu Sans Bold, which ships in the package
(``facecast/assets/fonts``, Bitstream Vera licence: free to redistribute), white with
a dark outline so it reads on any picture, centred, inside the title-safe area at the
bottom or top. Each cue's text is drawn once and blended into the frames it covers;
a cue wider than the safe area is drawn smaller until it fits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from facecast.captions.cues import Cue
from facecast.errors import InputError
from facecast.rules import (
    CAPTION_POSITIONS,
    CAPTION_SAFE_AREA_RANGE,
    CAPTION_SIZE_RANGE,
    DEFAULT_CAPTION_SAFE_AREA,
    DEFAULT_CAPTION_SIZE,
)

FONT = "fonts/DejaVuSans-Bold.ttf"
_LINE_SPACING = 1.2  # line pitch, in font sizes
_MIN_FONT_PX = 8


def _rgb(value: str | tuple[int, int, int]) -> tuple[int, int, int]:
    if isinstance(value, tuple):
        return value
    text = value.strip().lstrip("#")
    if len(text) == 3:
        text = "".join(c * 2 for c in text)
    try:
        if len(text) != 6:
            raise ValueError(text)
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    except ValueError:
        raise InputError(f"caption colours are #rrggbb, not {value!r}",
                         code="bad_captions") from None


@dataclass(frozen=True)
class CaptionStyle:
    """How burned captions look. ``size``: the text's height as a fraction of the
    frame's; ``outline``: the outline's width as a fraction of the text's size;
    ``safe_area``: the margin kept clear at each edge, as a fraction of that side."""

    size: float = DEFAULT_CAPTION_SIZE
    colour: str = "#ffffff"
    outline_colour: str = "#000000"
    outline: float = 0.12
    position: str = "bottom"  # or "top"
    safe_area: float = DEFAULT_CAPTION_SAFE_AREA

    def check(self) -> None:
        """Each option in its range; else InputError ``bad_captions``."""
        lo, hi = CAPTION_SIZE_RANGE
        if not lo <= self.size <= hi:
            raise InputError(f"caption size must be {lo:g} to {hi:g} of the frame height",
                             code="bad_captions")
        lo, hi = CAPTION_SAFE_AREA_RANGE
        if not lo <= self.safe_area <= hi:
            raise InputError(f"caption safe area must be {lo:g} to {hi:g}", code="bad_captions")
        if not 0 <= self.outline <= 0.3:
            raise InputError("caption outline must be 0 to 0.3 of the text size",
                             code="bad_captions")
        if self.position not in CAPTION_POSITIONS:
            raise InputError(f"caption position must be {' or '.join(CAPTION_POSITIONS)}",
                             code="bad_captions")
        _rgb(self.colour)
        _rgb(self.outline_colour)


@lru_cache(maxsize=8)
def _font(px: int) -> Any:
    from PIL import ImageFont

    from facecast.assets import asset_path

    return ImageFont.truetype(str(asset_path(FONT)), px)


@dataclass(frozen=True)
class _Patch:
    """A cue drawn once: premultiplied colour and opacity, and where it goes."""

    x: int
    y: int
    colour: np.ndarray  # (h, w, 3) float32, already times alpha
    alpha: np.ndarray  # (h, w, 1) float32


def _draw(lines: Sequence[str], width: int, height: int, style: CaptionStyle) -> _Patch:
    from PIL import Image, ImageDraw

    usable_w = width * (1 - 2 * style.safe_area)
    px = max(_MIN_FONT_PX, round(style.size * height))
    while True:
        font = _font(px)
        stroke = round(style.outline * px)
        widths = [font.getlength(line) + 2 * stroke for line in lines]
        if max(widths) <= usable_w or px <= _MIN_FONT_PX:
            break
        px = max(_MIN_FONT_PX, int(px * usable_w / max(widths)))
    pitch = round(px * _LINE_SPACING)
    ascent, descent = font.getmetrics()
    w = int(np.ceil(max(widths))) + 2
    h = pitch * (len(lines) - 1) + ascent + descent + 2 * stroke + 2
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for k, line in enumerate(lines):
        draw.text((w / 2, stroke + 1 + k * pitch), line, font=font, anchor="ma",
                  fill=(*_rgb(style.colour), 255), stroke_width=stroke,
                  stroke_fill=(*_rgb(style.outline_colour), 255))
    rgba = np.asarray(image, np.float32) / 255.0
    alpha = rgba[..., 3:4]
    x = (width - w) // 2
    margin = round(style.safe_area * height)
    y = height - margin - h if style.position == "bottom" else margin
    return _Patch(x, max(0, y), rgba[..., :3] * alpha * 255.0, alpha)


class CaptionBurner:
    """Draws the cue showing at each frame's time into that frame."""

    def __init__(self, cues: Sequence[Cue], width: int, height: int, fps: float,
                 style: CaptionStyle | None = None) -> None:
        self.style = style or CaptionStyle()
        self.style.check()
        self.cues = list(cues)
        self.fps = fps
        self._patches: dict[int, _Patch] = {}
        self._size = (width, height)

    def cue_at(self, t: float) -> int | None:
        """Index of the cue showing at ``t`` seconds, if any."""
        for k, cue in enumerate(self.cues):
            if cue.start <= t < cue.end:
                return k
            if cue.start > t:
                break
        return None

    def burn(self, frame: np.ndarray, index: int) -> np.ndarray:
        """``frame`` (the ``index``-th, RGB uint8) with its caption; unchanged without one."""
        k = self.cue_at(index / self.fps)
        if k is None:
            return frame
        patch = self._patches.get(k)
        if patch is None:
            patch = self._patches[k] = _draw(self.cues[k].lines, *self._size, self.style)
        h, w = patch.alpha.shape[:2]
        fh, fw = frame.shape[:2]
        x0, y0 = max(patch.x, 0), max(patch.y, 0)
        x1, y1 = min(patch.x + w, fw), min(patch.y + h, fh)
        if x1 <= x0 or y1 <= y0:
            return frame
        # a copy: a renderer may hand out the same buffer again (a still background)
        out = frame.copy()
        sx, sy = x0 - patch.x, y0 - patch.y
        a = patch.alpha[sy:sy + y1 - y0, sx:sx + x1 - x0]
        c = patch.colour[sy:sy + y1 - y0, sx:sx + x1 - x0]
        region = out[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(region * (1 - a) + c + 0.5, 0, 255).astype(np.uint8)
        return out

    def frames(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """``frames`` with their captions (closing ``frames`` when done or stopped)."""
        try:
            for i, frame in enumerate(frames):
                yield self.burn(frame, i)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
