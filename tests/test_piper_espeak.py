"""piper's espeak-ng phonemiser as facecast uses it (facecast.speech.piper_espeak):
phonemising word by word keeps no memory, and a change of voice still reaches espeak-ng."""

from __future__ import annotations

import ctypes
import gc

import pytest

from facecast.motion import align
from facecast.speech import piper_espeak, piper_tts

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while",
         "seven", "wizards", "quietly", "hex", "the", "bad", "jam", "pudding", "zebra"]


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _malloc_in_use() -> int:
    """Bytes the C heap has handed out and not had back (glibc's mallinfo2)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        pytest.skip("not glibc 2.33 or later: no mallinfo2 to read the C heap with")
    gc.collect()
    return int(libc.mallinfo2().uordblks)


def test_phonemising_word_by_word_keeps_no_memory() -> None:
    voice = piper_tts._load_voice(*piper_tts.voice_files(None))
    for word in WORDS:  # first calls fill espeak-ng's and the allocator's caches
        voice.phonemize(word)
        align._pronounce(word)
    before = _malloc_in_use()
    calls = 0
    for _ in range(100):
        for word in WORDS:
            voice.phonemize(word)  # word timings (piper_tts._word_timings)
            align._pronounce(word)  # pronunciations of unknown words
            calls += 2
    grown = _malloc_in_use() - before
    # espeak_SetVoiceByName on every call kept 1360 bytes each time (5.4 MB here)
    assert grown < 20 * calls, f"{grown / calls:.0f} bytes kept per call"


def test_a_change_of_voice_still_reaches_espeak() -> None:
    with piper_espeak.LOCK:
        phonemizer = piper_espeak.phonemizer()
        english = phonemizer.phonemize("en-us", "water")
        german = phonemizer.phonemize("de", "water")
        assert german != english
        assert phonemizer.phonemize("en-us", "water") == english
        # a new phonemiser initialises espeak-ng again, which frees the voice it had: the
        # next phonemise sets it again (reading the freed one crashed beside synthesis)
        from piper.phonemize_espeak import EspeakPhonemizer

        EspeakPhonemizer()
        assert piper_espeak._voice is None
        assert phonemizer.phonemize("en-us", "water") == english
        assert piper_espeak._voice == "en-us"


def test_timing_words_again_keeps_no_python_memory() -> None:
    """Each call into piper's espeak bridge keeps 140-220 bytes of Python objects
    (upstream): the words of speech, which repeat, are phonemised once per voice."""
    import tracemalloc

    speech = piper_tts.synthesize("The quick brown fox jumps over the lazy dog, twice.")
    model, config = piper_tts.voice_files(None)
    words = piper_tts._word_timings(model, config, speech.text, speech.phonemes)
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(300):
            assert piper_tts._word_timings(model, config, speech.text, speech.phonemes) == words
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # every word phonemised again kept about 50 KB here (300 x 9 words x ~180 bytes)
    assert grown < 20_000, f"{grown} bytes kept"
