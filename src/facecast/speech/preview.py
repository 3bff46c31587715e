"""A short spoken sample of each voice, made on first request and cached in the facecast home.

It sits above both the catalog (:mod:`facecast.speech.voices`) and the TTS front
(:mod:`facecast.speech.synth`), which needs the catalog: the preview needs both.
"""

from __future__ import annotations

import os
from pathlib import Path

from facecast.home import facecast_home
from facecast.media.audio import write_audio
from facecast.speech.synth import synthesize
from facecast.speech.voices import get_voice

PREVIEW_TEXT = {
    "en": "Hello! This is how I sound.",
    "de": "Hallo! So klinge ich.",
    "fr": "Bonjour ! Voici ma voix.",
    "es": "¡Hola! Así suena mi voz.",
    "cmn": "你好，这是我的声音。",
    "zh": "你好，这是我的声音。",
    "it": "Ciao! Questa è la mia voce.",
    "pt": "Olá! Esta é a minha voz.",
    "ja": "こんにちは、これが私の声です。",
    "ru": "Привет! Так звучит мой голос.",
}


def preview(voice_id: str | None) -> Path:
    """A short clip of the voice (made on first request, then cached)."""
    voice = get_voice(voice_id)
    folder = facecast_home() / "previews"
    path = folder / (voice.id.replace(":", "_").replace("/", "_") + ".mp3")
    if not path.is_file():
        text = PREVIEW_TEXT.get(voice.base_language, "1 2 3 4 5.")
        speech = synthesize(text, voice.id)
        tmp = path.with_name(f".{path.name}.part.mp3")
        write_audio(tmp, speech.audio)
        os.replace(tmp, path)
    return path
