"""Speech: a catalog of voices (piper neural, espeak-ng, cloned), text-to-speech with
exact phoneme and word timings, rate / pitch / volume, streaming, and voice cloning.

``synthesize`` / ``stream`` / ``save_speech`` are the front door; the engines
(``piper_tts``, ``espeak_engine``) and ``clone`` sit behind it.
"""

from facecast.speech.piper_tts import DEFAULT_VOICE, Speech
from facecast.speech.synth import (
    PITCH_RANGE,
    RATE_RANGE,
    VOLUME_RANGE,
    save_speech,
    stream,
    synthesize,
)
from facecast.speech.voices import DEFAULT_VOICE_ID, Voice, get_voice, languages, search_voices

__all__ = [
    "DEFAULT_VOICE",
    "DEFAULT_VOICE_ID",
    "PITCH_RANGE",
    "RATE_RANGE",
    "VOLUME_RANGE",
    "Speech",
    "Voice",
    "get_voice",
    "languages",
    "save_speech",
    "search_voices",
    "stream",
    "synthesize",
]
