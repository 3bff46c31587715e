"""Small media files written on the fly for tests: H.264 (or another codec) clips."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = 25,
                codec: str = "libx264", fmt: str | None = None,
                pix_fmt: str = "yuv420p", options: dict[str, str] | None = None,
                rotation: int = 0) -> Path:
    """RGB frames (all of the first one's size) as a video at ``fps``; no sound.
    ``rotation``: the clockwise turn a player applies to show them (a phone's display
    matrix on a portrait recording stored as landscape frames)."""
    it = iter(frames)
    first = next(it)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps, options=options or {})
        s.width, s.height, s.pix_fmt = first.shape[1], first.shape[0], pix_fmt
        if rotation:
            s.set_display_rotation(-rotation)  # FFmpeg's matrix angle is counterclockwise
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


def write_vfr_video(path: Path, frames: Iterable[tuple[float, np.ndarray]], *,
                    rate: int = 30, time_base: Fraction = Fraction(1, 600),
                    audio: np.ndarray | None = None, sample_rate: int = 44100,
                    codec: str = "libx264") -> Path:
    """A variable-frame-rate clip as phones write them: each RGB frame at its own time
    (seconds, increasing) on a fine time base, the stream declaring ``rate``; with
    ``audio`` (mono float32) as AAC beside it."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.time_base = s.codec_context.time_base = time_base
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=sample_rate, layout="mono")
        it = iter(frames)
        first = next(it)
        s.width, s.height, s.pix_fmt = first[1].shape[1], first[1].shape[0], "yuv420p"
        for t, img in itertools.chain([first], it):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = round(t / time_base), time_base
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
        if a is not None and audio is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1024
            for i in range(0, len(pcm), step):
                block = pcm[i: i + step].reshape(1, -1)
                f = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
                f.sample_rate, f.pts = sample_rate, i
                for p in a.encode(f):
                    c.mux(p)
            for p in a.encode(None):
                c.mux(p)
    return path
