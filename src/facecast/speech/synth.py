"""Text-to-speech for every voice: one front for rate, pitch, volume, streaming and timings.

``synthesize`` and ``stream`` take any voice id from the catalog
(:mod:`facecast.speech.voices`). Text is normalised (English), split into
sentences and spoken one sentence at a time, so long text streams: the first
sentence is ready long before the last. Every chunk carries exact phoneme and
word timings from the engine itself, offset to the whole utterance, and the
phoneme durations add up to the audio's length. Loudness is normalised per
sentence, then ``volume`` applied.

Ranges: ``rate`` 0.5..2.0 (speed multiplier), ``pitch`` -12..+12 semitones,
``volume`` 0..2 (1 = normalised level, about -20 dBFS RMS).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facecast.errors import InputError
from facecast.media.audio import Audio, write_audio
from facecast.rules import PITCH_RANGE, RATE_RANGE, TTS_FORMATS, VOLUME_RANGE
from facecast.speech.piper_tts import Speech, checked_text
from facecast.speech.text import normalize_english, split_sentences
from facecast.speech.voices import Voice, get_voice
from facecast.timing import PhonemeTiming, WordTiming

if TYPE_CHECKING:
    from facecast.speech.clone import VoiceStats

TARGET_RMS_DB = -20.0
# The first streamed piece is cut at a clause near this length: first audio sooner.
FIRST_CHUNK_CHARS = 60
TTS_WORKERS = 2


def _check(name: str, value: float, lo: float, hi: float, unit: str = "") -> None:
    if not (lo <= value <= hi) or np.isnan(value):
        raise InputError(f"{name} {value:g} is out of range: use {lo:g} to {hi:g}{unit}",
                         code=f"bad_{name}", **{name: value, "min": lo, "max": hi})


def check_ranges(rate: float, pitch: float, volume: float) -> None:
    """Refuse rate / pitch / volume outside their documented ranges."""
    _check("rate", rate, *RATE_RANGE)
    _check("pitch", pitch, *PITCH_RANGE, " semitones")
    _check("volume", volume, *VOLUME_RANGE)


def _normalise_loudness(samples: np.ndarray, volume: float) -> np.ndarray:
    """Scale to the target RMS over the louder (speech) frames, apply volume, avoid clipping."""
    if not len(samples):
        return samples
    frame = 512
    n = len(samples) // frame * frame
    if n:
        rms = np.sqrt(np.mean(samples[:n].reshape(-1, frame) ** 2, axis=1))
        speech = rms[rms > 0.1 * rms.max()] if rms.max() > 0 else rms
        level = float(np.sqrt(np.mean(speech**2))) if len(speech) else 0.0
    else:
        level = float(np.sqrt(np.mean(samples**2)))
    if level < 1e-6:
        return samples * 0.0
    gain = 10 ** (TARGET_RMS_DB / 20) / level * volume
    out = samples * gain
    peak = float(np.abs(out).max())
    return (out / peak * 0.98 if peak > 0.98 else out).astype(np.float32)


def _shift_pitch(audio: Audio, semitones: float) -> Audio:
    """The same speech ``semitones`` higher or lower, same length (WORLD vocoder).

    Analysed as voice cloning does (:func:`facecast.speech.clone.world_envelopes`):
    Praat's F0 rather than DIO's, which reads the piper voice an octave high, and
    unvoiced frames with a 15 ms window, which keeps fricatives and bursts crisp.
    """
    import pyworld

    from facecast.speech.clone import FRAME_PERIOD_MS, world_envelopes, world_f0

    fs = audio.sample_rate
    x = audio.samples.astype(np.float64)
    times, f0 = world_f0(x, fs)
    new_f0 = f0 * 2 ** (semitones / 12)
    sp, ap = world_envelopes(x, fs, times, f0, new_f0)
    y = pyworld.synthesize(np.ascontiguousarray(new_f0), sp, ap, fs, FRAME_PERIOD_MS)
    y = np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]
    return Audio(y.astype(np.float32), fs)


def _engine_speak(text: str, voice: Voice, rate: float, pitch: float) -> Speech:
    """One sentence from the voice's engine, at ``rate``; pitch applied where native."""
    if voice.engine == "espeak":
        from facecast.speech import espeak_engine

        return espeak_engine.synthesize(text, voice.id.split(":", 1)[1], rate=rate, pitch=pitch)
    if voice.engine == "clone":
        from facecast.speech.clone import convert, default_store, rate_factor

        profile = default_store().get(voice.id.split(":", 1)[1])
        base_voice = get_voice(voice.base)
        base = _engine_speak(text, base_voice, 1.0, 0.0)
        base_stats = _base_profile(base_voice.id)
        factor = rate_factor(profile, base_stats) if base_stats is not None else 1.0
        if abs(factor - 1.0) > 0.02 or rate != 1.0:
            base = _engine_speak(text, base_voice, rate / factor, 0.0)
        audio = convert(base.audio, profile, source=base_stats)
        if pitch:
            audio = _shift_pitch(audio, pitch)
        return Speech(audio, base.phonemes, base.words, voice.id, text)
    from facecast.speech.piper_tts import synthesize as piper_synthesize

    speech = piper_synthesize(text, voice.model, length_scale=1.0 / rate)
    if pitch:
        speech.audio = _shift_pitch(speech.audio, pitch)
    speech.voice = voice.id
    return speech


_BASE_PROFILES: dict[str, VoiceStats] = {}


def _base_profile(voice_id: str) -> VoiceStats:
    """The base voice's own measured stats (once per process): what a clone converts from."""
    if voice_id not in _BASE_PROFILES:
        from facecast.speech.clone import measure

        sample = (
            "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea "
            "shore. How much wood would a woodchuck chuck, if a woodchuck could chuck wood? "
            "Peter Piper picked a peck of pickled peppers, and we all went home happy."
        )
        _BASE_PROFILES[voice_id] = measure(_engine_speak(sample, get_voice(voice_id), 1, 0).audio)
    return _BASE_PROFILES[voice_id]


def spoken_text(text: str, voice: str | None = None) -> str:
    """``text`` as ``voice`` will say it: for English voices numbers, dates, money and
    abbreviations written out ("123456789012" is over a hundred characters spoken).
    What is priced before synthesis is this, not what was typed."""
    return _spoken(text, get_voice(voice))


def _spoken(text: str, voice: Voice) -> str:
    return normalize_english(text) if voice.base_language == "en" else text


def stream(text: str, voice: str | None = None, *, rate: float = 1.0, pitch: float = 0.0,
           volume: float = 1.0) -> Iterator[Speech]:
    """Speech one sentence at a time; timings are relative to the start of the whole text."""
    text = checked_text(text)
    check_ranges(rate, pitch, volume)
    v = get_voice(voice)
    text = _spoken(text, v)
    sentences = split_sentences(text, first_max_chars=FIRST_CHUNK_CHARS)
    # Two sentences at a time (one engine thread each): the next is being made while
    # this one is handed out, in order.
    pool = ThreadPoolExecutor(max_workers=TTS_WORKERS, thread_name_prefix="facecast-tts")
    try:
        parts = pool.map(lambda s: _engine_speak(s, v, rate, pitch), sentences)
        yield from _offset_parts(parts, sentences, v, volume)
    finally:
        # A caller that stops listening early does not wait for the rest of the text.
        pool.shutdown(wait=False, cancel_futures=True)


def _offset_parts(parts: Iterator[Speech], sentences: list[str], v: Voice, volume: float
                  ) -> Iterator[Speech]:
    offset = 0.0
    for sentence, part in zip(sentences, parts, strict=True):
        part.audio = Audio(_normalise_loudness(part.audio.samples, volume),
                           part.audio.sample_rate)
        yield Speech(
            part.audio,
            [PhonemeTiming(p.phoneme, p.start + offset, p.end + offset) for p in part.phonemes],
            [WordTiming(w.word, w.start + offset, w.end + offset) for w in part.words],
            v.id, sentence,
        )
        offset += part.audio.duration


def synthesize(text: str, voice: str | None = None, *, rate: float = 1.0, pitch: float = 0.0,
               volume: float = 1.0) -> Speech:
    """The whole text spoken by ``voice`` (see :func:`stream` for the ranges and errors)."""
    parts = list(stream(text, voice, rate=rate, pitch=pitch, volume=volume))
    rates = {p.audio.sample_rate for p in parts}
    sample_rate = rates.pop()
    samples = np.concatenate([p.audio.samples for p in parts])
    return Speech(Audio(samples, sample_rate),
                  [ph for p in parts for ph in p.phonemes],
                  [w for p in parts for w in p.words], parts[0].voice, text)


def timings_path(audio_path: str | os.PathLike[str]) -> Path:
    p = Path(audio_path)
    return p.with_name(p.stem + ".timings.json")


def save_speech(speech: Speech, path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write the audio (``rules.TTS_FORMATS``: .mp3 or .wav) and a timing file beside it;
    both or neither."""
    path = Path(path)
    if path.suffix.lower().lstrip(".") not in TTS_FORMATS:
        use = " or ".join(f".{f}" for f in TTS_FORMATS)
        raise InputError(f"cannot write speech as {path.suffix!r}: use {use}", code="bad_format")
    tpath = timings_path(path)
    tmp_audio = path.with_name(f".{path.stem}.part{path.suffix}")
    tmp_json = tpath.with_name(f".{tpath.name}.part")
    try:
        write_audio(tmp_audio, speech.audio)
        tmp_json.write_text(json.dumps({
            "voice": speech.voice, "duration": round(speech.audio.duration, 4),
            "sample_rate": speech.audio.sample_rate,
            "words": [w.to_dict() for w in speech.words],
            "phonemes": [p.to_dict() for p in speech.phonemes],
        }, ensure_ascii=False, indent=1))
        os.replace(tmp_audio, path)
        os.replace(tmp_json, tpath)
    finally:
        tmp_audio.unlink(missing_ok=True)
        tmp_json.unlink(missing_ok=True)
    return path, tpath
