"""Audio decoding to mono float32 at a chosen rate, and writing WAV/MP3 files.

Any container PyAV (FFmpeg) can read works: wav, mp3, m4a/aac, ogg/opus, flac,
or the audio track of a video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


class AudioStream:
    """The first audio stream of a file, decoded to mono float32 piece by piece.

    Opening checks what can be checked before any sample (the file opens, has an audio
    stream, its rate is known), so a bad file fails before anything is spoken or kept;
    iterating yields arrays of about ``chunk_s`` seconds at :attr:`sample_rate` as they
    are decoded. Raises :class:`InputError` with code ``unreadable_audio`` or
    ``no_audio_stream`` (opening or decoding) and ``audio_too_long`` once more than
    ``max_duration`` has been decoded (the rest is not decoded).
    """

    def __init__(self, path: PathLike, sample_rate: int | None = None, *,
                 max_duration: float | None = None, chunk_s: float = 0.5) -> None:
        self.name = Path(path).name
        try:
            self._container = av.open(str(path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot read audio file {self.name!r}: {exc}",
                             code="unreadable_audio", file=self.name) from exc
        if not self._container.streams.audio:
            self._container.close()
            raise InputError(f"{self.name!r} has no audio stream", code="no_audio_stream",
                             file=self.name)
        self._stream = self._container.streams.audio[0]
        rate = sample_rate or self._stream.rate or self._stream.codec_context.sample_rate
        if not rate:
            self._container.close()
            raise InputError(f"cannot tell the sample rate of {self.name!r}",
                             code="unreadable_audio")
        self.sample_rate = int(rate)
        self.max_duration = max_duration
        # A file whose header already says it is too long is refused before any sample
        # (the count while decoding still holds for headers that say less than the truth).
        declared = self._container.duration  # microseconds, None when not in the header
        if max_duration is not None and declared is not None \
                and declared / 1e6 > max_duration + 1.0:
            self._container.close()
            raise InputError(f"audio {self.name!r} is longer than the {max_duration:g} s "
                             "limit", code="audio_too_long", max_seconds=max_duration)
        self._chunk = max(1, int(chunk_s * self.sample_rate))

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        limit = None if self.max_duration is None else int(self.max_duration * self.sample_rate)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
        pending: list[np.ndarray] = []
        held = total = 0
        try:
            for frame in self._decoded(resampler):
                pending.append(frame)
                held += len(frame)
                total += len(frame)
                if limit is not None and total > limit:
                    raise InputError(
                        f"audio {self.name!r} is longer than the {self.max_duration:g} s "
                        "limit", code="audio_too_long", max_seconds=self.max_duration)
                if held >= self._chunk:
                    yield _clipped(pending)
                    pending, held = [], 0
            if pending:
                yield _clipped(pending)
        finally:
            self.close()

    def _decoded(self, resampler: av.AudioResampler) -> Iterator[np.ndarray]:
        try:
            for frame in self._container.decode(self._stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except (av.error.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot decode audio in {self.name!r}: {exc}",
                             code="unreadable_audio", file=self.name) from exc


def _clipped(parts: list[np.ndarray]) -> np.ndarray:
    samples = (np.concatenate(parts) if len(parts) > 1 else parts[0]).astype(
        np.float32, copy=False)
    return np.clip(samples, -1.0, 1.0, out=samples)


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
    # Decoded in large pieces, then one concatenated copy: long tracks are held once,
    # not four times.
    with AudioStream(path, sample_rate, max_duration=max_duration, chunk_s=60.0) as stream:
        chunks = list(stream)
        rate = stream.sample_rate
        name = stream.name
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    del chunks
    audio = Audio(samples, rate)
    if not len(samples):
        raise InputError(f"{name!r} contains no audio samples", code="unreadable_audio")
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
