"""Speech: text-to-speech with phoneme timings (piper neural voice)."""

from facecast.speech.piper_tts import DEFAULT_VOICE, Speech, synthesize

__all__ = ["DEFAULT_VOICE", "Speech", "synthesize"]
