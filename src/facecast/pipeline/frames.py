"""A source video's frames for re-rendering: the constant rate it is re-encoded at, its
frames upright on that grid, and decoding them in a thread ahead of the consumer.

Dubbing, video avatars and composed talking photos all read frames this way.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np

from facecast.media.video_reader import VideoInfo, constant_rate_frames

_DONE = object()  # end of a queue of frames
# Common frame rates: a measured average within 0.5 % of one of these is taken as it.
STANDARD_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)


def output_rate(fps: float) -> Fraction:
    """The frame rate to encode constant-rate input at: a standard rate when the
    source's average is one, else the average itself."""
    # the nearest one: 30 and 30000/1001 are both within the tolerance of 30.0
    nearest = min(STANDARD_RATES, key=lambda rate: abs(fps / float(rate) - 1.0))
    if abs(fps / float(nearest) - 1.0) < 0.005:
        return nearest
    return Fraction(fps).limit_denominator(1001)


def source_output_rate(info: VideoInfo) -> Fraction:
    """The constant frame rate a source is re-encoded at.

    Constant-rate input keeps its rate (:func:`output_rate`). Variable-rate input (phones
    drop frames in low light: a "30 fps" clip averages 22.13) gets a standard constant
    rate, never its average: the rate it declares when that is a standard one no higher
    than twice the average, else the lowest whole standard rate at or above the average,
    so each source frame is shown at least about once.
    """
    if not info.variable_rate:
        return output_rate(info.fps)
    whole = [r for r in STANDARD_RATES if r.denominator == 1]
    nominal = output_rate(info.nominal_fps) if info.nominal_fps > 0 else None
    if nominal in STANDARD_RATES and info.fps * 0.99 <= nominal <= 2 * info.fps:
        return nominal
    return next((r for r in whole if r >= info.fps * 0.99), whole[-1])


def rotate_upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    code = {
        90: cv2.ROTATE_90_CLOCKWISE,
        180: cv2.ROTATE_180,
        270: cv2.ROTATE_90_COUNTERCLOCKWISE,
    }.get(rotation)
    return rgb if code is None else cv2.rotate(rgb, code)


def source_frames(info: VideoInfo, fps: Fraction) -> Iterator[tuple[int, np.ndarray]]:
    """The source's frames on a constant ``fps`` grid, upright, with even sides (H.264
    4:2:0 needs them: an odd last row or column is dropped)."""
    for i, rgb in constant_rate_frames(info.path, float(fps)):
        rgb = rotate_upright(rgb, info.rotation)
        h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            rgb = rgb[: h - h % 2, : w - w % 2]
        yield i, rgb


def prefetched(
    frames: Iterator[tuple[int, np.ndarray]], depth: int = 4
) -> Iterator[tuple[int, np.ndarray]]:
    """``frames`` decoded in a thread of their own, a few ahead of the consumer: FFmpeg
    decodes without the GIL, so decoding overlaps the face mesh or the rendering."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for item in frames:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # re-raised in the consuming thread
            failure.append(exc)
        finally:
            with contextlib.suppress(queue.Full):
                items.put(_DONE, timeout=1.0)

    worker = threading.Thread(target=run, name="facecast-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                if failure:
                    raise failure[0]
                return
            yield item
    finally:
        stop.set()
        # The decoder may be blocked handing over a frame: let it see the stop flag.
        with contextlib.suppress(queue.Empty):
            while True:
                items.get_nowait()
        worker.join(timeout=5)
        close = getattr(frames, "close", None)
        if close is not None and not worker.is_alive():
            close()
