"""Small media files written on the fly for tests: H.264 (or another codec) clips."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = 25,
                codec: str = "libx264", fmt: str | None = None) -> Path:
    """RGB frames (all of the first one's size) as a video at ``fps``; no sound."""
    it = iter(frames)
    first = next(it)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        for i, img in enumerate(itertools.chain([first], it)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def write_still_video(path: Path, seconds: float, codec: str = "libx264",
                      fmt: str | None = None, frame: np.ndarray | None = None) -> Path:
    """``seconds`` of one picture (a grey 128x128 square unless ``frame``) at 25 fps."""
    img = frame if frame is not None else np.full((128, 128, 3), 120, np.uint8)
    return write_video(path, itertools.repeat(img, round(seconds * 25)), codec=codec, fmt=fmt)
