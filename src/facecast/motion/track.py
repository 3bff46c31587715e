"""The mouth track: a renderer-agnostic time series of mouth shapes.

Speech becomes a :class:`MouthTrack` (from phoneme timings or from the sound
alone); the renderer reads it frame by frame. Every channel is in [0, 1]:

- ``jaw``: jaw / lip aperture, 0 closed at rest, 1 wide open ("aa")
- ``spread``: lip corners pulled wide ("ee", smile-like)
- ``round``: lips rounded and pushed forward ("oo", "w")
- ``closure``: lips pressed together (p, b, m); overrides ``jaw`` for the lips
- ``labiodental``: lower lip raised to the upper teeth (f, v)
- ``teeth``: how much of the teeth shows between the lips
- ``tongue``: the tongue tip raised to the upper teeth or between them (l, th, dh);
  no lip shape of its own: the mouth interior shows the tongue
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHANNELS: tuple[str, ...] = ("jaw", "spread", "round", "closure", "labiodental", "teeth",
                             "tongue")
# The layout before the tongue channel: tracks saved with it read with no tongue.
LEGACY_CHANNELS: tuple[str, ...] = CHANNELS[:6]
CHANNEL_INDEX: dict[str, int] = {name: i for i, name in enumerate(CHANNELS)}
# Brief lip contacts that must survive a drop in frame rate.
PEAK_CHANNELS = [CHANNEL_INDEX["closure"], CHANNEL_INDEX["labiodental"], CHANNEL_INDEX["tongue"]]


@dataclass
class MouthTrack:
    """``values[i, c]`` is channel ``CHANNELS[c]`` at time ``i / fps`` seconds."""

    fps: float
    values: np.ndarray
    # what the track was derived from: "phonemes" (known words), "recognised" (phonemes
    # recognised in the audio) or "audio" (the sound alone)
    source: str = "audio"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2 or self.values.shape[1] != len(CHANNELS):
            raise ValueError(f"values must be (n, {len(CHANNELS)}), got {self.values.shape}")

    def __len__(self) -> int:
        return len(self.values)

    @property
    def duration(self) -> float:
        return len(self.values) / self.fps

    def channel(self, name: str) -> np.ndarray:
        return self.values[:, CHANNEL_INDEX[name]]

    def frame(self, i: int) -> dict[str, float]:
        """Channel values at frame ``i`` (clamped to the track's ends)."""
        row = self.values[min(max(i, 0), len(self.values) - 1)]
        return {name: float(v) for name, v in zip(CHANNELS, row, strict=True)}

    def resampled(self, fps: float) -> MouthTrack:
        """The same track at another frame rate.

        Going down in rate, each output frame averages the input over its own
        time window (no aliasing), except lip contacts (``closure``,
        ``labiodental``), which keep their peak: a 30 ms /m/ must still show
        as closed lips in one 40 ms video frame.
        """
        if fps == self.fps:
            return self
        n = max(1, round(self.duration * fps))
        t_new = np.arange(n) / fps
        t_old = np.arange(len(self.values)) / self.fps
        if fps >= self.fps:
            cols = [np.interp(t_new, t_old, self.values[:, c]) for c in range(len(CHANNELS))]
            return MouthTrack(fps, np.stack(cols, axis=1), self.source, dict(self.meta))
        # Input frames belonging to each output frame's window [t - T/2, t + T/2).
        edges = np.searchsorted(t_old, np.append(t_new - 0.5 / fps, t_new[-1] + 0.5 / fps))
        out = np.empty((n, len(CHANNELS)), np.float32)
        for i in range(n):
            lo, hi = edges[i], max(edges[i + 1], edges[i] + 1)
            window = self.values[min(lo, len(self.values) - 1) : hi]
            out[i] = window.mean(axis=0)
            out[i, PEAK_CHANNELS] = window[:, PEAK_CHANNELS].max(axis=0)
        return MouthTrack(fps, out, self.source, dict(self.meta))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "facecast.mouth-track/1",
            "fps": self.fps,
            "source": self.source,
            "channels": list(CHANNELS),
            "frames": np.round(self.values, 4).tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MouthTrack:
        layout = list(data.get("channels", []))
        frames = np.asarray(data["frames"], dtype=np.float32)
        if layout == list(LEGACY_CHANNELS) and frames.ndim == 2:
            frames = np.pad(frames, ((0, 0), (0, len(CHANNELS) - len(LEGACY_CHANNELS))))
        elif layout != list(CHANNELS):
            raise ValueError(f"unknown channel layout {data.get('channels')!r}")
        return cls(float(data["fps"]), frames, str(data.get("source", "audio")),
                   dict(data.get("meta", {})))

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict()))
        return path
