"""Output frame geometry: parse size/aspect options and fit the portrait onto the canvas.

A portrait whose shape differs from the canvas is fitted whole ("contain") on
a blurred, darkened fill made from the portrait itself, as social-video tools
do; the returned transform maps the photo's pixel coordinates onto the canvas.
Composed frames (:mod:`facecast.render.compose`) reuse the fill and the
cover-scaling of background images and videos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.rules import ASPECTS

MAX_SIDE = 3840
NAMED_HEIGHTS = {"480p": 480, "720p": 720, "1080p": 1080, "1440p": 1440, "2160p": 2160, "4k": 2160}


@dataclass(frozen=True)
class CanvasFit:
    """The canvas image plus the photo -> canvas mapping ``canvas = photo * scale + offset``."""

    image: np.ndarray
    scale: float
    offset: tuple[float, float]

    def map_points(self, pts: np.ndarray) -> np.ndarray:
        out = pts.astype(np.float32).copy()
        out[:, :2] = out[:, :2] * self.scale + np.asarray(self.offset, np.float32)
        if out.shape[1] > 2:
            out[:, 2:] *= self.scale
        return out


def _even(x: float) -> int:
    return max(2, int(round(x / 2.0)) * 2)


def canvas_size(photo_w: int, photo_h: int, size: str = "source", aspect: str | None = None
                ) -> tuple[int, int]:
    """Output (width, height) for a size option and an optional canvas aspect.

    ``size``: "source" (the photo's own size), a named height ("720p",
    "1080p", ...), or "WxH". ``aspect`` ("16:9", "9:16", ...) fixes the canvas
    shape; without it a named height keeps the photo's shape.
    """
    size = (size or "source").strip().lower()
    if aspect is not None and aspect not in ASPECTS:
        raise InputError(f"unknown aspect {aspect!r}: use one of {', '.join(ASPECTS)}",
                         code="bad_aspect")
    w: float  # fractional until rounded to even pixels below
    h: float
    m = re.fullmatch(r"(\d+)x(\d+)", size)
    if m:
        w, h = int(m.group(1)), int(m.group(2))
        if aspect is not None:
            raise InputError("give either WxH or an aspect, not both", code="bad_size")
    elif size == "source" or size in NAMED_HEIGHTS:
        if aspect is not None:
            aw, ah = ASPECTS[aspect]
            short = NAMED_HEIGHTS.get(size, min(photo_w, photo_h))
            w, h = (short * aw / ah, short) if aw >= ah else (short, short * ah / aw)
        elif size == "source":
            w, h = photo_w, photo_h
        else:
            h = NAMED_HEIGHTS[size]
            w = photo_w * h / photo_h
    else:
        raise InputError(f"unknown size {size!r}: use source, 720p, 1080p, 4k or WxH",
                         code="bad_size")
    w, h = _even(w), _even(h)
    if w < 64 or h < 64 or max(w, h) > MAX_SIDE:
        raise InputError(f"output size {w}x{h} is out of range (64 to {MAX_SIDE} px per side)",
                         code="bad_size")
    return w, h


def fit_photo(photo: np.ndarray, width: int, height: int) -> CanvasFit:
    """Place ``photo`` on a ``width`` x ``height`` canvas, whole and centred."""
    ph, pw = photo.shape[:2]
    scale = min(width / pw, height / ph)
    nw, nh = max(1, round(pw * scale)), max(1, round(ph * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    placed = cv2.resize(photo, (nw, nh), interpolation=interp) if (nw, nh) != (pw, ph) else photo
    if (nw, nh) == (width, height):
        return CanvasFit(np.ascontiguousarray(placed), scale, (0.0, 0.0))
    canvas = blurred_fill(photo, width, height)
    ox, oy = (width - nw) // 2, (height - nh) // 2
    canvas[oy : oy + nh, ox : ox + nw] = placed
    return CanvasFit(canvas, scale, (float(ox), float(oy)))


def blurred_fill(photo: np.ndarray, width: int, height: int) -> np.ndarray:
    """A ``width`` x ``height`` fill made from the photo: covering, heavily blurred, dimmed."""
    ph, pw = photo.shape[:2]
    cover = max(width / pw, height / ph)
    # Blurring at 1/8 scale costs little and reads the same as a wide blur at full size.
    small = cv2.resize(photo, (max(1, round(pw * cover / 8)), max(1, round(ph * cover / 8))),
                       interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 6)
    bg = cv2.resize(small, (round(pw * cover), round(ph * cover)), interpolation=cv2.INTER_LINEAR)
    by, bx = (bg.shape[0] - height) // 2, (bg.shape[1] - width) // 2
    return (bg[by : by + height, bx : bx + width].astype(np.float32) * 0.6).astype(np.uint8)


def cover_resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled to cover ``width`` x ``height`` and centre-cropped to it."""
    ih, iw = image.shape[:2]
    scale = max(width / iw, height / ih)
    # Crop first, in source pixels, so the resize only touches what is shown.
    cw, ch = min(iw, max(1, round(width / scale))), min(ih, max(1, round(height / scale)))
    x0, y0 = (iw - cw) // 2, (ih - ch) // 2
    crop = image[y0 : y0 + ch, x0 : x0 + cw]
    if (cw, ch) == (width, height):
        return np.ascontiguousarray(crop)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(crop, (width, height), interpolation=interp)
