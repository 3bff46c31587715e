"""Text detection and reading with RapidOCR (PP-OCR models that ship in its wheel).

Detection alone finds where subtitles and text logos are; reading is for
checking that a cleaned video has no text left. RapidOCR's default upsamples
small images (a 1280x200 strip takes over a second), so the longest side is
capped instead (``Det.limit_type=max``), which keeps a 720p frame near 0.1 s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from facecast.errors import FacecastError


@dataclass(frozen=True)
class TextBox:
    """An axis-aligned text box in the image's pixels, with what was read (if asked)."""

    x1: int
    y1: int
    x2: int
    y2: int
    score: float
    text: str = ""

    @property
    def height(self) -> int:
        return self.y2 - self.y1

    @property
    def width(self) -> int:
        return self.x2 - self.x1

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.x1, self.y1, self.x2, self.y2


@lru_cache(maxsize=4)
def _engine(side: int) -> Any:
    try:
        from rapidocr import RapidOCR
    except ImportError as exc:  # a packaging problem, not the caller's input
        raise FacecastError("text detection needs the rapidocr package",
                            code="missing_dependency") from exc
    logging.getLogger("RapidOCR").setLevel(logging.ERROR)
    return RapidOCR(params={"Det.limit_type": "max", "Det.limit_side_len": side,
                            "Global.log_level": "error"})


def detect_text(rgb: np.ndarray, *, side: int = 640, read: bool = False,
                min_score: float = 0.5) -> list[TextBox]:
    """Text boxes in an RGB image; with ``read``, the text of each (slower)."""
    engine = _engine(side)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    if read:
        result = engine(bgr, use_det=True, use_cls=False, use_rec=True)
        texts = result.txts or ()
    else:
        result = engine(bgr, use_det=True, use_cls=False, use_rec=False)
        texts = ()
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return []
    scores = result.scores if result.scores is not None else [1.0] * len(boxes)
    h, w = rgb.shape[:2]
    out = []
    for i, quad in enumerate(np.asarray(boxes, dtype=np.float32)):
        score = float(scores[i]) if i < len(scores) else 1.0
        if score < min_score:
            continue
        x1, y1 = np.floor(quad.min(axis=0)).astype(int)
        x2, y2 = np.ceil(quad.max(axis=0)).astype(int)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        text = str(texts[i]) if i < len(texts) else ""
        out.append(TextBox(int(x1), int(y1), int(x2), int(y2), score, text))
    return out
