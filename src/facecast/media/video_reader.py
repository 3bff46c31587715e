"""Reading videos the caller gives: probe, check against limits, stream frames.

Frames come one at a time as RGB arrays with their presentation time in
seconds, so a ten-minute video never sits in memory. Variable-frame-rate
input is handled by :func:`constant_rate_frames`, which resamples the stream
onto a fixed grid (repeating or dropping frames by timestamp, as players do).
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

from facecast.errors import InputError
from facecast.media.colour import Colour

PathLike = str | os.PathLike[str]

MP4_MOV = "mov,mp4,m4a,3gp,3g2,mj2"  # how FFmpeg names the MP4/MOV demuxer
# What people have: phones' MP4/MOV, the web's WebM (FFmpeg's Matroska demuxer), MKV, AVI.
CONTAINERS = frozenset({MP4_MOV, "matroska,webm", "avi"})
CONTAINER_NAMES = {MP4_MOV: "MP4/MOV", "matroska,webm": "MKV/WebM", "avi": "AVI"}


@dataclass(frozen=True)
class VideoLimits:
    """What a video input must be. The defaults are the native API's and the CLI's: any
    codec PyAV decodes (H.264, HEVC, VP8/9, AV1, MPEG-4, ProRes, ...) in MP4, MOV, MKV,
    WebM or AVI; limits on duration, size and resolution. Vendor APIs narrow them where
    their documents do (:data:`MP4_H264_LIMITS`)."""

    min_seconds: float = 5.0
    max_seconds: float = 600.0
    max_bytes: int = 300 * 1024 * 1024
    containers: frozenset[str] = CONTAINERS
    codecs: frozenset[str] | None = None  # None: any decodable codec
    max_side: int = 3840


DUB_LIMITS = VideoLimits()
CLEAN_LIMITS = VideoLimits(max_bytes=200 * 1024 * 1024)
# KreadoAI's documents: lip-sync videos "MP4 or MOV format, encoded with H.264"; clone and
# removal videos "mp4, mov" (no codec named).
MP4_H264_LIMITS = VideoLimits(containers=frozenset({MP4_MOV}), codecs=frozenset({"h264"}))
MP4_MOV_LIMITS = VideoLimits(containers=frozenset({MP4_MOV}))


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int
    height: int
    fps: float  # average rate (frames / duration)
    duration: float
    frames: int  # counted from the stream's metadata when given, else estimated
    codec: str
    container: str
    has_audio: bool
    variable_rate: bool  # the stream's timestamps are not evenly spaced
    rotation: int = 0
    nominal_fps: float = 0.0  # the rate the stream declares (a VFR phone clip's 30), or 0


def probe_video(path: PathLike, limits: VideoLimits | None = None) -> VideoInfo:
    """Facts about a video; with ``limits``, refuse one that breaks them (InputError)."""
    path = Path(path)
    name = path.name
    if limits is not None:
        size = path.stat().st_size if path.exists() else 0
        if size > limits.max_bytes:
            raise InputError(f"video {name!r} is {size / 2**20:.0f} MB, over the "
                             f"{limits.max_bytes / 2**20:.0f} MB limit", code="file_too_large",
                             max_bytes=limits.max_bytes)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"cannot read video {name!r}: {exc}", code="unreadable_video") from exc
    with container:
        if not container.streams.video:
            raise InputError(f"{name!r} has no video stream", code="no_video_stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        duration = _duration(container, stream)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = int(stream.frames) or round(duration * float(rate))
        variable = bool(stream.guessed_rate and stream.average_rate
                        and abs(float(stream.guessed_rate) - float(stream.average_rate))
                        > 0.01 * float(stream.guessed_rate))
        info = VideoInfo(path=path, width=int(ctx.width), height=int(ctx.height),
                         fps=float(rate), duration=duration, frames=frames,
                         codec=ctx.name, container=container.format.name,
                         has_audio=bool(container.streams.audio), variable_rate=variable,
                         rotation=_rotation(stream) or _display_rotation(container, stream),
                         nominal_fps=float(stream.guessed_rate or 0.0))
    if limits is not None:
        _check(info, limits)
    return info


def _duration(container: av.container.InputContainer, stream: av.video.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1e6
    return 0.0


def _rotation(stream: av.video.VideoStream) -> int:
    try:
        value = stream.metadata.get("rotate")
        return int(value) % 360 if value else 0
    except (ValueError, AttributeError):
        return 0


_CODEC_NAMES = {"h264": "H.264", "hevc": "HEVC"}


def _display_rotation(container: av.container.InputContainer,
                      stream: av.video.VideoStream) -> int:
    """The clockwise turn (0, 90, 180, 270) that shows the frames upright, from the
    display matrix: phones store a portrait recording as landscape frames plus that
    matrix, which FFmpeg hands over on each decoded frame (no "rotate" tag any more)."""
    try:
        for frame in container.decode(stream):
            # PyAV gives the matrix's counterclockwise angle; the rotation here is clockwise
            return round(-float(frame.rotation) / 90.0) * 90 % 360
    except (av.error.FFmpegError, ValueError, AttributeError):
        return 0
    return 0


def _check(info: VideoInfo, limits: VideoLimits) -> None:
    name = info.path.name
    if info.container not in limits.containers:
        allowed = " or ".join(sorted(CONTAINER_NAMES.get(c, c) for c in limits.containers))
        raise InputError(f"{name!r} is a {info.container} file; use {allowed}",
                         code="unsupported_container", container=info.container)
    if limits.codecs is not None and info.codec not in limits.codecs:
        allowed = " or ".join(sorted(_CODEC_NAMES.get(c, c) for c in limits.codecs))
        raise InputError(f"{name!r} is encoded as {info.codec}; use {allowed}",
                         code="unsupported_codec", codec=info.codec)
    if info.duration < limits.min_seconds:
        raise InputError(f"video {name!r} lasts {info.duration:.1f} s; it must be longer than "
                         f"{limits.min_seconds:g} s", code="video_too_short")
    if info.duration > limits.max_seconds:
        raise InputError(f"video {name!r} lasts {info.duration:.0f} s, over the "
                         f"{limits.max_seconds:g} s limit", code="video_too_long")
    if max(info.width, info.height) > limits.max_side:
        raise InputError(f"video {name!r} is {info.width}x{info.height}; the largest side may "
                         f"be {limits.max_side} px", code="video_too_large")


def read_frames(path: PathLike) -> Generator[tuple[float, np.ndarray], None, None]:
    """Every decoded frame as ``(time in seconds, HxWx3 uint8 RGB)``, in order."""
    name = Path(path).name
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"cannot read video {name!r}: {exc}", code="unreadable_video") from exc
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: decoding keeps up with rendering
        start = stream.start_time or 0
        time_base = cast(Fraction, stream.time_base)  # typed Optional; a demuxed stream has one
        try:
            for frame in container.decode(stream):
                t = float((frame.pts - start) * time_base) if frame.pts is not None \
                    else float(frame.time or 0.0)
                yield t, Colour.of(frame).frame_to_rgb(frame)
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot decode video {name!r}: {exc}",
                             code="unreadable_video") from exc


def constant_rate_frames(path: PathLike, fps: float) -> Iterator[tuple[int, np.ndarray]]:
    """Frames on a constant ``fps`` grid: index ``i`` shows what plays at ``i / fps``.

    A variable-rate stream gets frames repeated or dropped by timestamp; a
    constant-rate stream at ``fps`` passes through one to one.
    """
    index = 0
    previous: np.ndarray | None = None
    for t, rgb in read_frames(path):
        # emit the previous frame for every grid point before this frame's time
        while previous is not None and index / fps < t - 0.5 / fps:
            yield index, previous
            index += 1
        previous = rgb
    if previous is not None:
        yield index, previous
