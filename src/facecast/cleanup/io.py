"""Video in and out for cleanup: YUV frames streamed in, H.264 out with the audio copied.

Cleanup changes a few pixels of each frame, so it works on the decoded YUV
planes directly (no full-frame RGB round trip) and only the regions it cleans
are converted. Frames keep their source timestamps and the source's audio
packets are copied bit for bit, so frame rate, duration and sound are kept
exactly, variable frame rate included. Odd-sized frames cannot be 4:2:0
H.264; they are written as 4:4:4 rather than resized. The planes keep the
source's colour tags (matrix, range, primaries, transfer), and cleaned regions
are converted with that matrix and range.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import cast

import av
import numpy as np

from facecast.errors import InputError
from facecast.media.colour import Colour, video_colour

PathLike = str | os.PathLike[str]


@dataclass
class YuvFrame:
    """One frame as planes: ``y`` HxW, ``u`` and ``v`` subsampled by ``sub`` (2 or 1)."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    sub: int
    pts: int | None
    time: float
    index: int
    # The source's matrix and range: regions are converted as a player shows them.
    colour: Colour = field(default_factory=Colour)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape[0], self.y.shape[1]

    def crop_rgb(self, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
        """RGB uint8 of ``[y1:y2, x1:x2]`` (even corners when ``sub`` is 2)."""
        s = self.sub
        return self.colour.yuv_to_rgb(self.y[y1:y2, x1:x2],
                                      self.u[y1 // s:y2 // s, x1 // s:x2 // s],
                                      self.v[y1 // s:y2 // s, x1 // s:x2 // s])

    def paste_rgb(self, x1: int, y1: int, rgb: np.ndarray, changed: np.ndarray) -> None:
        """Write ``rgb`` back at ``(x1, y1)``, touching only pixels where ``changed``."""
        h, w = rgb.shape[:2]
        s = self.sub
        y, u, v = self.colour.rgb_to_yuv(rgb, s)
        # A chroma sample is rewritten when any of its four luma pixels changed.
        cmask = changed.reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3)) if s == 2 else changed
        np.copyto(self.y[y1:y1 + h, x1:x1 + w], y, where=changed)
        cy, cx = y1 // s, x1 // s
        np.copyto(self.u[cy:cy + cmask.shape[0], cx:cx + cmask.shape[1]], u, where=cmask)
        np.copyto(self.v[cy:cy + cmask.shape[0], cx:cx + cmask.shape[1]], v, where=cmask)


def pixel_format(width: int, height: int) -> str:
    """4:2:0 where H.264 allows it (even sides), else 4:4:4."""
    return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


def _planes(frame: av.VideoFrame, fmt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if frame.format.name != fmt:
        frame = frame.reformat(format=fmt)
    arr = frame.to_ndarray()
    if fmt == "yuv420p":
        h, w = frame.height, frame.width
        flat = arr.ravel()
        q = (h // 2) * (w // 2)
        y = flat[:h * w].reshape(h, w)
        u = flat[h * w:h * w + q].reshape(h // 2, w // 2)
        v = flat[h * w + q:].reshape(h // 2, w // 2)
        return y.copy(), u.copy(), v.copy()
    return arr[0].copy(), arr[1].copy(), arr[2].copy()


@dataclass
class SourcePacket:
    """An audio packet to copy into the output as it is."""

    packet: av.Packet


def read_source(path: PathLike, *, with_audio: bool = True
                ) -> Iterator[YuvFrame | SourcePacket]:
    """Frames of the first video stream (as :class:`YuvFrame`) and, interleaved in file
    order, packets of the first audio stream."""
    name = Path(path).name
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"cannot read video {name!r}: {exc}", code="unreadable_video") from exc
    with container:
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"  # frame threads: decoding keeps up with the cleanup
        astream = container.streams.audio[0] if with_audio and container.streams.audio else None
        fmt = pixel_format(vstream.codec_context.width, vstream.codec_context.height)
        start = vstream.start_time or 0
        time_base = cast(Fraction, vstream.time_base)  # typed Optional; a demuxed stream has one
        index = 0
        streams = [vstream] + ([astream] if astream is not None else [])
        try:
            for packet in container.demux(*streams):
                if packet.stream is astream:
                    if packet.dts is not None and packet.size:
                        yield SourcePacket(packet)
                    continue
                for frame in cast("list[av.VideoFrame]", packet.decode()):  # a video packet
                    t = float((frame.pts - start) * time_base) \
                        if frame.pts is not None else index / float(vstream.average_rate or 25)
                    y, u, v = _planes(frame, fmt)
                    yield YuvFrame(y, u, v, 2 if fmt == "yuv420p" else 1, frame.pts, t, index,
                                   Colour.of(frame))
                    index += 1
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot decode video {name!r}: {exc}",
                             code="unreadable_video") from exc


def iter_frames(path: PathLike) -> Iterator[YuvFrame]:
    """Just the frames of :func:`read_source`."""
    for item in read_source(path, with_audio=False):
        if isinstance(item, YuvFrame):
            yield item


def sample_frames(path: PathLike, count: int, total_frames: int, fps: float,
                  full_seconds: float = 10.0) -> Iterator[YuvFrame]:
    """About ``count`` frames spread over the video, cheaply.

    The first ``full_seconds`` are decoded in full and sampled evenly; after
    that only keyframes are decoded (a fraction of the cost), thinned to stay
    near ``count``. A long video is thus sampled across its whole length for
    little more than the price of its first seconds.
    """
    name = Path(path).name
    head = min(total_frames, max(1, round(full_seconds * fps)))
    rest = total_frames > head
    head_count = max(1, count // 2 if rest else count)
    stride = max(1, head // head_count)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"cannot read video {name!r}: {exc}", code="unreadable_video") from exc
    with container:
        vstream = container.streams.video[0]
        vstream.thread_type = "AUTO"
        fmt = pixel_format(vstream.codec_context.width, vstream.codec_context.height)
        start = vstream.start_time or 0
        time_base = cast(Fraction, vstream.time_base)  # typed Optional; a demuxed stream has one
        index = 0
        keep_every, seen_keys, kept_keys = 1, 0, 0
        try:
            for frame in container.decode(vstream):
                i = index
                index += 1
                if i < head:
                    if i % stride != stride // 2:
                        continue
                else:
                    if vstream.codec_context.skip_frame != "NONKEY":
                        vstream.codec_context.skip_frame = "NONKEY"
                    if not frame.key_frame:
                        continue  # frames the decoder had in flight when skipping began
                    seen_keys += 1
                    if (seen_keys - 1) % keep_every:
                        continue
                    kept_keys += 1
                    if kept_keys >= count:  # too many keyframes: keep every other from now
                        keep_every *= 2
                        kept_keys //= 2
                t = float((frame.pts - start) * time_base) \
                    if frame.pts is not None else i / fps
                y, u, v = _planes(frame, fmt)
                yield YuvFrame(y, u, v, 2 if fmt == "yuv420p" else 1, frame.pts, t, i,
                               Colour.of(frame))
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot decode video {name!r}: {exc}",
                             code="unreadable_video") from exc


class CleanWriter:
    """H.264 at the source's size, rate and timestamps, with its audio stream copied.

    Written to a temporary name and renamed on success, like :class:`facecast.media.Mp4Writer`.
    """

    def __init__(self, path: PathLike, source: PathLike, *, crf: int = 18,
                 preset: str = "veryfast") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self.frames_written = 0
        with av.open(str(source)) as src:
            vs = src.streams.video[0]
            width, height = vs.codec_context.width, vs.codec_context.height
            rate = vs.average_rate or vs.guessed_rate or Fraction(25)
            self._time_base = vs.time_base or Fraction(1, 90_000)
            self._rate = rate
            fmt = pixel_format(width, height)
            self._container = av.open(str(self._tmp), "w", format="mp4",
                                      options={"movflags": "+faststart"})
            try:
                options = {"crf": str(crf), "preset": preset}
                if fmt == "yuv420p":
                    options["profile"] = "high"
                self._video = self._container.add_stream("libx264", rate=rate, options=options)
                self._video.width, self._video.height = width, height
                self._video.pix_fmt = fmt
                self._video.time_base = self._time_base
                # The planes are the source's, unconverted: they mean what its tags say.
                self._colour = video_colour(source)
                self._colour.tag(self._video.codec_context)
                self._audio = None
                if src.streams.audio:
                    a = src.streams.audio[0]
                    try:
                        self._audio = self._container.add_stream_from_template(a)
                    except (av.error.FFmpegError, ValueError) as exc:
                        raise InputError(f"the audio of {Path(source).name!r} "
                                         f"({a.codec_context.name}) cannot go into an MP4: {exc}",
                                         code="unsupported_audio") from exc
            except BaseException:
                self.abort()
                raise
        self._fmt = fmt
        self._last_pts = -1

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def write(self, frame: YuvFrame) -> None:
        if frame.sub == 2:
            arr = np.concatenate([frame.y.ravel(), frame.u.ravel(), frame.v.ravel()])
            arr = arr.reshape(-1, frame.y.shape[1])
        else:
            arr = np.stack([frame.y, frame.u, frame.v])
        out = av.VideoFrame.from_ndarray(arr, format=self._fmt)
        self._colour.tag(out)
        if frame.pts is not None:
            # Source timestamps as they are: the audio packets keep theirs, so the two stay
            # aligned however the source's streams start.
            pts = int(frame.pts)
        else:
            pts = round(frame.index / float(self._rate) / float(self._time_base))
        pts = max(pts, self._last_pts + 1)  # the encoder refuses repeated timestamps
        self._last_pts = pts
        out.pts = pts
        out.time_base = self._time_base
        for packet in self._video.encode(out):
            self._container.mux(packet)
        self.frames_written += 1

    def copy(self, item: SourcePacket) -> None:
        if self._audio is None:
            return
        packet = item.packet
        packet.stream = self._audio
        self._container.mux(packet)

    def close(self) -> Path:
        for packet in self._video.encode(None):
            self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        with contextlib.suppress(Exception):  # the partial file is thrown away anyway
            self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> CleanWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
