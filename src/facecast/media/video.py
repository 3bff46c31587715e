"""Streaming MP4 encoding: H.264 yuv420p + AAC, faststart, frames written one at a time.

Frames are converted with the matrix and range of their :class:`~facecast.media.colour.Colour`
(BT.709 unless the caller passes a source video's), which is written into the stream.
Frames are encoded as they arrive and the audio is muxed alongside them in
step, so memory stays flat however long the video is.
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from facecast.media.audio import Audio, _encode_samples
from facecast.media.colour import BT709, Colour

PathLike = str | os.PathLike[str]

# AAC's standard rates: audio at one of these is encoded as it is, anything else resampled.
AAC_RATES = (16_000, 22_050, 24_000, 32_000, 44_100, 48_000)

# x264 presets of fresh renders by frame size. Up to 1080p "veryfast"; above it the encoder
# was the slowest stage of a render (4K: veryfast about 200 CPU ms a frame, ultrafast 47, at
# a higher PSNR against the unencoded frames for about twice the bitrate; bench/README.md).
RENDER_PRESET = "veryfast"
LARGE_RENDER_PRESET = "ultrafast"
LARGE_FRAME_PIXELS = 1920 * 1088


def render_preset(width: int, height: int) -> str:
    """The x264 preset for a render of ``width`` x ``height`` when none is asked for."""
    return LARGE_RENDER_PRESET if width * height > LARGE_FRAME_PIXELS else RENDER_PRESET


class Mp4Writer:
    """Write RGB frames and one mono audio track to an MP4 that plays everywhere.

    The file is written to a temporary name and renamed on success, so a failed
    render never leaves a half-written MP4 at ``path``.
    """

    def __init__(
        self,
        path: PathLike,
        width: int,
        height: int,
        fps: int | Fraction = 25,
        audio: Audio | None = None,
        *,
        crf: int = 20,
        preset: str = RENDER_PRESET,
        colour: Colour = BT709,
    ) -> None:
        if width % 2 or height % 2:
            raise ValueError(f"H.264 yuv420p needs even dimensions, got {width}x{height}")
        self.path = Path(path)
        self.width, self.height, self.fps = width, height, fps
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._container = av.open(
            str(self._tmp), "w", format="mp4", options={"movflags": "+faststart"}
        )
        self._video = self._container.add_stream(
            "libx264",
            rate=fps,
            options={"crf": str(crf), "preset": preset, "profile": "high"},
        )
        self._video.width, self._video.height = width, height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, fps)
        # The tags go into the stream's VUI: players then decode with the matrix and range
        # the frames were converted with (untagged, they guess, often wrongly).
        self.colour = colour
        colour.tag(self._video.codec_context)
        self._audio_samples: np.ndarray | None = None
        self._audio_pos = 0
        if audio is not None:
            if audio.sample_rate not in AAC_RATES:
                audio = audio.resampled(48_000)
            self._rate = audio.sample_rate
            self._audio_samples = audio.samples
            self._astream = self._container.add_stream("aac", rate=self._rate, layout="mono")
            self._astream.bit_rate = 128_000
            self._astream.time_base = Fraction(1, self._rate)

    def write(self, frame_rgb: np.ndarray) -> None:
        """Encode one HxWx3 RGB uint8 frame, and the audio that plays during it."""
        if frame_rgb.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"frame is {frame_rgb.shape[1]}x{frame_rgb.shape[0]}, "
                f"writer expects {self.width}x{self.height}"
            )
        yuv = self.colour.rgb_to_i420(frame_rgb)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        self.colour.tag(frame)
        frame.pts = self.frames_written
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1
        self._write_audio_until(self.frames_written / float(self.fps))

    def _write_audio_until(self, seconds: float | None) -> None:
        if self._audio_samples is None:
            return
        # Audio never runs past the video: at close, up to the last frame's end.
        limit = round(self.frames_written / self.fps * self._rate)
        end = limit if seconds is None else round(seconds * self._rate)
        end = min(end, len(self._audio_samples), limit)
        if end > self._audio_pos:
            chunk = self._audio_samples[self._audio_pos : end]
            # Timestamps from sample 0 let the encoder mark its priming samples, and the
            # muxer then writes an edit list: without it AAC plays ~21 ms late.
            _encode_samples(self._container, self._astream, chunk, self._rate, "fltp", 1024,
                            first_pts=self._audio_pos)
            self._audio_pos = end

    def close(self) -> Path:
        """Flush the encoders, finish the file and move it to its final name."""
        for packet in self._video.encode(None):
            self._container.mux(packet)
        if self._audio_samples is not None:
            self._write_audio_until(None)
            for packet in self._astream.encode(None):
                self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the partial output."""
        with contextlib.suppress(Exception):  # the file is being thrown away anyway
            self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
