"""Writing a video avatar's stored pictures: the idle stretch re-encoded at the stored size
(seeking near its start, checked against the tracked frames), and the thumbnail (eyes
open, mouth shut).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from facecast.media import Mp4Writer
from facecast.media.colour import Colour, video_colour
from facecast.media.video_reader import VideoInfo
from facecast.pipeline.frames import (
    prefetched,
    rotate_upright,
    source_frames,
)
from facecast.pipeline.idle_loop import _loop_thumb
from facecast.render.lip_geometry import _EYE_L, _EYE_R, mouth_gap

STORE_CRF = 14  # the idle clip is re-encoded once more at render: keep it close
STORE_PRESET = "veryfast"
THUMB_MAX_SIDE = 640
JPEG_QUALITY = 90
SEEK_BACK_S = 1.5  # writing the idle clip, the reader seeks this far before its start
_EYE_LIDS = ((159, 145), (386, 374))  # upper / lower lid midpoints, right and left eye


def _stored_size(width: int, height: int, max_height: int) -> tuple[int, int, float]:
    """The idle clip's (even) size and the scale from the recording to it."""
    if height <= max_height:
        return width, height, 1.0
    scale = max_height / height
    w = max(2, int(round(width * scale / 2)) * 2)
    h = min(max_height - max_height % 2, max(2, int(round(height * scale / 2)) * 2))
    return w, h, scale


class _SeekFailed(Exception):
    """The seeking reader could not be trusted: read from the start instead."""


def _frames_from(
    info: VideoInfo,
    fps: Fraction,
    first: int,
    check: np.ndarray,
    thumb: Callable[[np.ndarray], np.ndarray],
    transform: Callable[[np.ndarray], np.ndarray] | None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Source frames ``first``, ``first + 1``, ... by seeking near ``first`` instead of
    decoding everything before it (a ten-minute recording would be decoded twice).

    Only for constant-rate input at a standard rate, where frame ``k`` plays at
    ``k / fps`` and the constant-rate grid of :func:`source_frames` maps it to ``k``.
    The first frame is checked against the tracking pass's thumbnail of that frame;
    any doubt (a mismatch, a timestamp off the grid, a skipped index) raises
    :class:`_SeekFailed` (the caller then reads from the start).
    """
    if info.variable_rate or abs(info.fps - float(fps)) > 1e-3 * float(fps):
        raise _SeekFailed("not constant-rate at the output rate")
    container = av.open(str(info.path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base, start = stream.time_base, stream.start_time or 0
        if base is None:
            raise _SeekFailed("no time base")
        target = max(0.0, first / float(fps) - SEEK_BACK_S)
        container.seek(start + int(target / base), stream=stream, backward=True)
        expected = first
        for frame in container.decode(stream):
            if frame.pts is None:
                raise _SeekFailed("a frame without a timestamp")
            exact = float((frame.pts - start) * base) * float(fps)
            index = round(exact)
            if abs(exact - index) > 0.1:
                raise _SeekFailed("a timestamp off the frame grid")
            if index < first:
                continue
            if index != expected:
                raise _SeekFailed(f"frame {index} came where {expected} was expected")
            rgb = rotate_upright(Colour.of(frame).frame_to_rgb(frame), info.rotation)
            h, w = rgb.shape[:2]
            if h % 2 or w % 2:
                rgb = rgb[: h - h % 2, : w - w % 2]
            if transform is not None:
                rgb = transform(rgb)
            if (
                index == first
                and np.abs(thumb(rgb).astype(np.float32) - check.astype(np.float32)).mean() > 1.5
            ):
                raise _SeekFailed("the frame found is not the frame tracked")
            yield index, rgb
            expected += 1
    finally:
        container.close()


def _write_idle(
    info: VideoInfo,
    fps: Fraction,
    transform: Any,
    first: int,
    last: int,
    path: Path,
    width: int,
    height: int,
    thumb_at: int,
    progress: Any,
    check: np.ndarray | None = None,
) -> tuple[int, np.ndarray]:
    """Re-encode source frames ``first..last`` (scaled) as the idle clip; also returns the
    frame ``thumb_at`` frames into it (for the thumbnail). With ``check`` (the tracking
    pass's thumbnail of frame ``first``) the reader seeks instead of decoding from the
    start, when it can be trusted to land on the same frames."""
    if check is not None and first / float(fps) > 2 * SEEK_BACK_S:
        try:
            frames = prefetched(_frames_from(info, fps, first, check, _loop_thumb, transform))
            return _encode_idle(
                frames,
                first,
                last,
                path,
                width,
                height,
                fps,
                thumb_at,
                progress,
                video_colour(info.path),
            )
        except _SeekFailed:
            pass  # the partial clip was dropped by the writer; read from the start
    frames = prefetched(
        (i, transform(rgb) if transform is not None and i >= first else rgb)
        for i, rgb in source_frames(info, fps)
    )
    return _encode_idle(
        frames, first, last, path, width, height, fps, thumb_at, progress, video_colour(info.path)
    )


def _encode_idle(
    frames: Iterator[tuple[int, np.ndarray]],
    first: int,
    last: int,
    path: Path,
    width: int,
    height: int,
    fps: Fraction,
    thumb_at: int,
    progress: Any,
    colour: Colour,
) -> tuple[int, np.ndarray]:
    rate: int | Fraction = int(fps) if fps.denominator == 1 else fps
    still: np.ndarray | None = None
    # The recording's colour tags go with the idle clip, and from there into every render.
    with Mp4Writer(
        path,
        width,
        height,
        rate,
        None,
        crf=STORE_CRF,
        preset=STORE_PRESET,
        colour=colour,
    ) as writer:
        for i, frame in frames:
            if i < first:
                if i % 25 == 0:
                    progress(i)
                continue
            if frame.shape[:2] != (height, width):  # a stray odd size: fit it
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            writer.write(frame)
            if i - first == thumb_at or still is None:
                still = frame.copy()
            if writer.frames_written % 25 == 0:
                progress(i)
            if i >= last:
                break
        written = writer.frames_written
    if still is None:
        still = np.zeros((height, width, 3), np.uint8)
    return written, still


def _eye_openness(points: np.ndarray) -> np.ndarray:
    """Per frame: the mean lid gap over the eye distance."""
    eye_r = points[:, _EYE_R].mean(axis=1)
    eye_l = points[:, _EYE_L].mean(axis=1)
    iod = np.maximum(np.linalg.norm(eye_l - eye_r, axis=1), 1e-3)
    lids = [np.linalg.norm(points[:, a] - points[:, b], axis=1) for a, b in _EYE_LIDS]
    return np.mean(lids, axis=0) / iod


def _thumbnail_frame(points: np.ndarray, presence: np.ndarray) -> int:
    """The idle-clip frame for the thumbnail: eyes open, mouth shut, face fully there."""
    eyes = _eye_openness(points)
    gaps = np.array([mouth_gap(p) for p in points])
    score = eyes / max(float(np.median(eyes)), 1e-3) - 4.0 * np.maximum(gaps, 0.0)
    score[presence < 1.0] = -np.inf
    return int(np.argmax(score)) if np.isfinite(score).any() else 0


def _save_thumbnail(rgb: np.ndarray, path: Path) -> None:
    h, w = rgb.shape[:2]
    scale = min(1.0, THUMB_MAX_SIDE / max(h, w))
    if scale < 1.0:
        rgb = cv2.resize(
            rgb, (max(2, round(w * scale)), max(2, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise RuntimeError("the thumbnail could not be encoded")
    path.write_bytes(data.tobytes())
