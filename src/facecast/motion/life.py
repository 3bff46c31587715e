"""Life in a still face: eye blinks, small head motion and breathing.

All of it is deterministic for a given seed. Head motion is smoothed noise
(never jerky) plus small nods that follow the speech's activity; blinks come at
natural, irregular intervals (about every 2 to 6 s), close fast and open a
little slower, and prefer pauses in the speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

HEAD_CHANNELS: tuple[str, ...] = ("roll", "dx", "dy", "scale")


@dataclass
class LifeTrack:
    """Per frame: ``blink`` 0..1 (both eyes) and ``head`` (n, 4) = HEAD_CHANNELS.

    ``roll`` is in degrees; ``dx``/``dy`` are in inter-ocular distances;
    ``scale`` is a relative size change (0.003 = 0.3 % larger).
    """

    fps: float
    blink: np.ndarray
    head: np.ndarray

    def __len__(self) -> int:
        return len(self.blink)


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, seconds: float) -> np.ndarray:
    """Unit-variance noise low-passed to features of about ``seconds``."""
    pad = int(3 * seconds * fps) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma=seconds * fps)[pad:-pad]
    return x / (x.std() + 1e-9) if n > 1 else x


def blink_curve(fps: float, close_s: float = 0.08, hold_s: float = 0.03,
                open_s: float = 0.14) -> np.ndarray:
    """One blink's lid closure per frame: a fast close, a short hold, a slower open."""
    t = np.arange(int(np.ceil((close_s + hold_s + open_s) * fps)) + 1) / fps
    c = np.where(t < close_s, np.sin(0.5 * np.pi * t / close_s) ** 2, 1.0)
    opening = np.clip((t - close_s - hold_s) / open_s, 0.0, 1.0)
    return np.clip(c * (1.0 - np.sin(0.5 * np.pi * opening) ** 2), 0.0, 1.0)


def life_track(
    n_frames: int,
    fps: float,
    *,
    seed: int = 0,
    activity: np.ndarray | None = None,
    head_motion: float = 1.0,
    blinks: bool = True,
) -> LifeTrack:
    """Blinks and head motion for ``n_frames`` frames.

    ``activity`` (0..1 per frame, e.g. the mouth's opening) makes the head nod
    a little with emphasis and moves blinks toward pauses. ``head_motion``
    scales all head movement (0 = perfectly still head).
    """
    rng = np.random.default_rng(seed)
    act = np.zeros(n_frames) if activity is None else np.asarray(activity, float)[:n_frames]
    act = np.pad(act, (0, n_frames - len(act)))
    blink = np.zeros(n_frames, np.float32)
    if blinks and n_frames:
        curve = blink_curve(fps)
        t = rng.uniform(0.4, 2.0)
        while True:
            start = int(t * fps)
            # Nudge the blink to the quietest frame nearby: people blink at pauses.
            lo, hi = max(start - int(0.4 * fps), 0), min(start + int(0.4 * fps), n_frames)
            if lo < hi:
                start = lo + int(np.argmin(act[lo:hi] + 1e-3 * np.abs(np.arange(lo, hi) - start)))
            if start >= n_frames:
                break
            seg = curve[: n_frames - start]
            blink[start : start + len(seg)] = np.maximum(blink[start : start + len(seg)], seg)
            t = start / fps + float(np.clip(rng.gamma(4.0, 0.9), 1.8, 7.0))
    head = np.zeros((n_frames, len(HEAD_CHANNELS)), np.float32)
    if n_frames and head_motion > 0:
        times = np.arange(n_frames) / fps
        emphasis = gaussian_filter1d(act, sigma=0.12 * fps) - gaussian_filter1d(act, 0.8 * fps)
        head[:, 0] = 1.1 * _smooth_noise(rng, n_frames, fps, 1.1)
        head[:, 1] = 0.035 * _smooth_noise(rng, n_frames, fps, 1.3)
        breathing = np.sin(2 * np.pi * times / 4.2 + rng.uniform(0, 2 * np.pi))
        head[:, 2] = 0.025 * _smooth_noise(rng, n_frames, fps, 0.9) + 0.10 * emphasis
        head[:, 2] += 0.008 * breathing
        head[:, 3] = 0.004 * breathing
        head *= head_motion
        # Keep the extremes bounded so the head never swings far from the photo.
        limits = np.array([2.5, 0.08, 0.07, 0.01], np.float32) * max(head_motion, 1e-6)
        head = np.clip(head, -limits, limits)
    return LifeTrack(fps, blink, head)
