"""Timed speech units shared between the speech engine and the motion engine.

Speech (TTS, forced alignment) produces these; motion turns them into mouth
shapes. Keeping the value types here lets neither part import the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class PhonemeTiming:
    """One phoneme (IPA as espeak-ng writes it, or ARPAbet) from ``start`` to ``end`` seconds."""

    phoneme: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WordTiming:
    """One word from ``start`` to ``end`` seconds."""

    word: str
    start: float
    end: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
