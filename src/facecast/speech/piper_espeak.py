"""piper's espeak-ng phonemiser, shared by every caller in the process: one at a time,
and a voice set only when it changes.

piper's ``EspeakPhonemizer.phonemize`` sets espeak-ng's voice on every call, and
``espeak_SetVoiceByName`` keeps about 1.3 KiB of C heap each time it runs, never freed
(measured: 1360 bytes a call, with ``get_phonemes`` itself at 0). facecast phonemises every
word of every sentence on its own to time words (:mod:`facecast.speech.piper_tts`) and to
pronounce unknown words for alignment (:mod:`facecast.motion.align`): a live session
speaking without pause grew by about 0.2 MiB a minute from this alone (bench/README.md,
"Live streaming: the slow drift, traced"). :func:`patch_piper` wraps the voice setting
so that a call naming the voice already set is skipped.

espeak-ng's state is process-global (the voice, the initialisation), so every use goes
under :data:`LOCK`.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

LOCK = threading.Lock()
_voice: str | None = None  # the voice espeak-ng has now, as far as the wrapper knows


@functools.lru_cache(maxsize=1)
def patch_piper() -> None:
    """Wrap piper's ``espeakbridge`` (once; call before a ``PiperVoice`` or
    ``EspeakPhonemizer`` is made): ``set_voice`` calls espeak-ng only for a voice
    other than the one it has, and ``initialize`` forgets that voice. espeak_Initialize
    (each new ``EspeakPhonemizer``: piper keeps one, :func:`phonemizer` another) frees the
    voice it had: phonemising after it without setting the voice again read freed memory,
    which looked right alone and crashed (a segfault) with synthesis in another thread."""
    from piper import espeakbridge

    set_voice, initialize = espeakbridge.set_voice, espeakbridge.initialize

    def set_voice_once(voice: str) -> None:
        global _voice
        if voice != _voice:
            _voice = None  # unknown if it raises
            set_voice(voice)
            _voice = voice

    def initialize_afresh(data_dir: str) -> None:
        global _voice
        _voice = None
        initialize(data_dir)

    espeakbridge.set_voice = set_voice_once
    espeakbridge.initialize = initialize_afresh


@functools.lru_cache(maxsize=1)
def phonemizer() -> Any:
    """piper's ``EspeakPhonemizer`` on its bundled data (call under :data:`LOCK`)."""
    patch_piper()
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer()
