"""Audio decoding to mono float32 at a chosen rate, and writing WAV/MP3 files.

Any container PyAV (FFmpeg) can read works: wav, mp3, m4a/aac, ogg/opus, flac,
or the audio track of a video.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facecast.errors import InputError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Audio:
    """Mono audio: ``samples`` float32 in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    def resampled(self, sample_rate: int) -> Audio:
        """The same sound at another rate (polyphase filter, no aliasing)."""
        if sample_rate == self.sample_rate:
            return self
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sample_rate, self.sample_rate)
        out = resample_poly(self.samples, sample_rate // g, self.sample_rate // g)
        return Audio(out.astype(np.float32), sample_rate)


def load_audio(
    path: PathLike,
    sample_rate: int | None = None,
    *,
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> Audio:
    """Decode the first audio stream of ``path`` to mono float32.

    ``sample_rate`` None keeps the file's rate. Raises :class:`InputError` with
    code ``unreadable_audio``, ``no_audio_stream``, ``audio_too_short`` or
    ``audio_too_long``; decoding stops early once ``max_duration`` is exceeded,
    so an hour-long upload is refused without decoding all of it.
    """
    name = Path(path).name
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(
            f"cannot read audio file {name!r}: {exc}", code="unreadable_audio", file=name
        ) from exc
    with container:
        if not container.streams.audio:
            raise InputError(f"{name!r} has no audio stream", code="no_audio_stream", file=name)
        stream = container.streams.audio[0]
        rate = sample_rate or stream.rate or stream.codec_context.sample_rate
        if not rate:
            raise InputError(f"cannot tell the sample rate of {name!r}", code="unreadable_audio")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        total = 0
        limit = None if max_duration is None else int((max_duration + 1.0) * rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    total += len(arr)
                if limit is not None and total > limit:
                    break
            else:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(
                f"cannot decode audio in {name!r}: {exc}", code="unreadable_audio", file=name
            ) from exc
    # One concatenated copy, clipped in place: long tracks are held once, not four times.
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    del chunks
    samples = samples.astype(np.float32, copy=False)
    np.clip(samples, -1.0, 1.0, out=samples)
    audio = Audio(samples, int(rate))
    if not len(samples):
        raise InputError(f"{name!r} contains no audio samples", code="unreadable_audio")
    if max_duration is not None and audio.duration > max_duration:
        raise InputError(
            f"audio {name!r} is longer than the {max_duration:g} s limit",
            code="audio_too_long",
            max_seconds=max_duration,
        )
    if min_duration is not None and audio.duration < min_duration:
        raise InputError(
            f"audio {name!r} lasts {audio.duration:.2f} s, shorter than the "
            f"{min_duration:g} s minimum",
            code="audio_too_short",
            seconds=round(audio.duration, 3),
            min_seconds=min_duration,
        )
    return audio


def write_audio(path: PathLike, audio: Audio) -> Path:
    """Write ``audio`` as WAV (16-bit PCM) or MP3, chosen by the file's extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    codecs = {".wav": ("pcm_s16le", "s16"), ".mp3": ("libmp3lame", "fltp")}
    if suffix not in codecs:
        raise InputError(f"cannot write audio as {suffix!r}: use .wav or .mp3", code="bad_format")
    codec, fmt = codecs[suffix]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=audio.sample_rate, layout="mono")
        assert isinstance(stream, av.AudioStream)  # PyAV 17's stubs type it as any stream
        _encode_samples(out, stream, audio.samples, audio.sample_rate, fmt)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _encode_samples(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    samples: np.ndarray,
    rate: int,
    fmt: str,
    chunk: int = 4096,
    first_pts: int | None = None,
) -> None:
    data = np.clip(samples, -1.0, 1.0)
    data = (data * 32767.0).astype(np.int16) if fmt == "s16" else data.astype(np.float32)
    for start in range(0, len(data), chunk):
        part = np.ascontiguousarray(data[start : start + chunk].reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(part, format=fmt, layout="mono")
        frame.sample_rate = rate
        if first_pts is not None:
            frame.pts = first_pts + start
            frame.time_base = Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
