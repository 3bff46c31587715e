"""What a live session is asked for (:class:`LiveSpec`) and what it reports (:class:`LiveEvent`).

Both cross the process boundary (the spec to the session's process, events back),
so they are plain frozen dataclasses of builtin values. The spec's rules live in
:mod:`facecast.rules` (``LIVE_*``); :func:`check_spec` applies them in the
caller's process, before a process is spawned.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facecast.errors import InputError
from facecast.rules import (
    LIVE_DEFAULT_FPS,
    LIVE_DEFAULT_SIZE,
    LIVE_FPS,
    LIVE_MAX_PIXELS,
    LIVE_MAX_SIDE,
    LIVE_MIN_SIDE,
)

# Event types, in the order a caller meets them.
EVENT_TYPES = ("ready", "utterance_started", "word", "utterance_ended", "interrupted",
               "closed", "error")


@dataclass(frozen=True)
class LiveSpec:
    """One avatar to stream: its portrait, voice, picture size, expression and rate."""

    photo: Path
    voice: str | None = None
    width: int = LIVE_DEFAULT_SIZE[0]
    height: int = LIVE_DEFAULT_SIZE[1]
    expression: str | None = None
    fps: int = LIVE_DEFAULT_FPS


@dataclass(frozen=True)
class LiveEvent:
    """Something that happened on the session's media clock (``t`` seconds from its start).

    ``type`` is one of :data:`EVENT_TYPES`; ``word`` is set for ``"word"``; ``reason``
    says why an utterance ended (``"done"``, ``"interrupted"``, ``"cancelled"``) or why
    the session closed or failed.
    """

    type: str
    utterance_id: str | None
    t: float
    word: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_spec(spec: LiveSpec) -> None:
    """Refuse a picture size, frame rate, voice or expression a session cannot use
    (InputError with a stable code), without reading the photo."""
    w, h = spec.width, spec.height
    for name, side in (("width", w), ("height", h)):
        if not isinstance(side, int) or not LIVE_MIN_SIDE <= side <= LIVE_MAX_SIDE:
            raise InputError(f"{name} {side} is out of range: use {LIVE_MIN_SIDE} to "
                             f"{LIVE_MAX_SIDE}", code="bad_size", width=w, height=h)
        if side % 2:
            raise InputError(f"{name} {side} is odd: video needs even sides",
                             code="bad_size", width=w, height=h)
    if w * h > LIVE_MAX_PIXELS:
        raise InputError(f"{w}x{h} is over the live limit of {LIVE_MAX_PIXELS} pixels "
                         "(1280x720)", code="bad_size", width=w, height=h)
    if spec.fps not in LIVE_FPS:
        raise InputError(f"fps {spec.fps} is not offered live: use one of "
                         f"{', '.join(map(str, LIVE_FPS))}", code="bad_fps", fps=spec.fps)
    from facecast.motion.expressions import get_template
    from facecast.speech.voices import get_voice

    get_template(spec.expression)  # unknown_expression
    get_voice(spec.voice)  # unknown voice
