"""Life in a still face: eye blinks, small head motion and breathing, and the head
gestures and camera moves an expression asks for.

All of it is deterministic for a given seed. Head motion is smoothed noise
(never jerky) plus small nods that follow the speech's activity; blinks come at
natural, irregular intervals (about every 2 to 6 s), close in 100-150 ms and
open more slowly, now and then stop half way or come in pairs, and prefer
pauses in the speech.

On top of that, :func:`nod_track`, :func:`shake_track` and :func:`tilt_track`
make deliberate gestures (rhythmic nods, head shakes, a held tilt) under an
envelope (e.g. "while speaking"), :func:`with_gestures` adds them to a life
track within bounds the head mover can show, and :func:`zoom_track` is a slow
camera zoom for the whole picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HEAD_CHANNELS: tuple[str, ...] = ("roll", "dx", "dy", "scale")
# Bounds of the head pose with gestures: the head mover fills in background for about
# 0.35 IOD of motion at the head's edge (render/head.py MARGIN_IOD); 4 degrees of roll
# at a head top ~2.5 IOD above the pivot is 0.17 IOD, plus up to 0.14 IOD of shift.
GESTURE_LIMITS = np.array([4.0, 0.12, 0.14, 0.02], np.float32)
MAX_ZOOM = 1.5


@dataclass
class LifeTrack:
    """Per frame: ``blink`` 0..1 (both eyes) and ``head`` (n, 4) = HEAD_CHANNELS.

    ``roll`` is in degrees; ``dx``/``dy`` are in inter-ocular distances;
    ``scale`` is a relative size change (0.003 = 0.3 % larger). ``face``, when
    given, holds the expression channels per frame (n, len(FACE_CHANNELS) of
    :mod:`facecast.render.rig`); None is the portrait's own expression.
    """

    fps: float
    blink: np.ndarray
    head: np.ndarray
    face: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.blink)


def gaussian_filter1d(x: np.ndarray, sigma: float, **kwargs: Any) -> np.ndarray:
    """SciPy's ``gaussian_filter1d``, imported when first used: ``scipy.ndimage`` takes
    0.15 s to import, which a render otherwise pays before it can start its speech
    recogniser (:mod:`facecast.motion.recognition_process`)."""
    from scipy.ndimage import gaussian_filter1d as scipy_gaussian

    return np.asarray(scipy_gaussian(x, sigma, **kwargs))


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, seconds: float) -> np.ndarray:
    """Unit-variance noise low-passed to features of about ``seconds``."""
    pad = int(3 * seconds * fps) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma=seconds * fps)[pad:-pad]
    return x / (x.std() + 1e-9) if n > 1 else x


# Blink timing (seconds). Real blinks close in about 100-150 ms, stay shut for a
# moment and open more slowly (about 150-350 ms); these are the ranges each blink's
# timing is drawn from, and BLINK_TIMING is the typical blink.
BLINK_CLOSE_S = (0.10, 0.15)
BLINK_HOLD_S = (0.0, 0.05)
BLINK_OPEN_S = (0.18, 0.32)
BLINK_TIMING = (0.12, 0.03, 0.24)  # close, hold, open
# Some blinks are incomplete (the lid stops part way), a few come in pairs.
HALF_BLINK_P = 0.2
HALF_BLINK_DEPTH = (0.45, 0.75)
DOUBLE_BLINK_P = 0.08


def blink_curve(fps: float, close_s: float = BLINK_TIMING[0], hold_s: float = BLINK_TIMING[1],
                open_s: float = BLINK_TIMING[2], depth: float = 1.0) -> np.ndarray:
    """One blink's lid closure per frame: an accelerating close, a short hold and a
    slower, decelerating open, peaking at ``depth`` (1 = shut).

    The close is rounded to whole frames, so that one frame is always at the full
    ``depth`` (a blink sampled between its frames would never quite shut).
    """
    n_close = max(1, round(close_s * fps))
    close = n_close / fps
    t = np.arange(int(np.ceil((close + hold_s + open_s) * fps)) + 1) / fps
    # Closing: the lid speeds up (ease-in) and stops at the lower lid.
    c = np.where(t < close, np.sin(0.5 * np.pi * t / close) ** 2, 1.0)
    # Opening: fast at first, slowing as the lid reaches the top (ease-out).
    opening = np.clip((t - close - hold_s) / open_s, 0.0, 1.0)
    c = c * (1.0 - (1.0 - (1.0 - opening) ** 2))
    return np.clip(depth * c, 0.0, 1.0).astype(np.float32)


def _one_blink(rng: np.random.Generator, fps: float) -> np.ndarray:
    """A blink with its own timing within the natural ranges; some stop part way."""
    depth = rng.uniform(*HALF_BLINK_DEPTH) if rng.random() < HALF_BLINK_P else 1.0
    return blink_curve(fps, rng.uniform(*BLINK_CLOSE_S), rng.uniform(*BLINK_HOLD_S),
                       rng.uniform(*BLINK_OPEN_S), depth)


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
        # Each blink's own timing and depth come from a stream of their own, so the
        # blink times and the head motion stay what the seed always gave.
        vary = np.random.default_rng([seed, 3])
        t = rng.uniform(0.4, 2.0)
        while True:
            start = int(t * fps)
            # Nudge the blink to the quietest frame nearby: people blink at pauses.
            lo, hi = max(start - int(0.4 * fps), 0), min(start + int(0.4 * fps), n_frames)
            if lo < hi:
                start = lo + int(np.argmin(act[lo:hi] + 1e-3 * np.abs(np.arange(lo, hi) - start)))
            if start >= n_frames:
                break
            curve = _one_blink(vary, fps)
            if vary.random() < DOUBLE_BLINK_P:  # a second blink as the lid reopens
                second = _one_blink(vary, fps)
                at = int(np.argmax(curve)) + max(2, round(0.12 * fps))
                both = np.zeros(max(len(curve), at + len(second)), np.float32)
                both[: len(curve)] = curve
                both[at : at + len(second)] = np.maximum(both[at : at + len(second)], second)
                curve = both
            seg = curve[: n_frames - start]
            blink[start : start + len(seg)] = np.maximum(blink[start : start + len(seg)], seg)
            t = start / fps + float(np.clip(rng.gamma(4.0, 0.9), 1.8, 7.0))
    head: np.ndarray = np.zeros((n_frames, len(HEAD_CHANNELS)), np.float32)
    if n_frames and head_motion > 0:
        # The head's noise has a stream of its own too: drawn after the blinks, it followed
        # how many blinks the whole activity had room for, so a render started on the
        # first seconds of its speech (pipeline.talking_photo._Progressive) moved the head
        # otherwise than the whole speech would have.
        rng = np.random.default_rng([seed, 4])
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


def _phase(rng: np.random.Generator, n: int, fps: float, rate: float, jitter: float
           ) -> np.ndarray:
    """Oscillator phase (radians) at ``rate`` Hz whose speed wanders by about ``jitter``."""
    speed = rate * (1.0 + jitter * _smooth_noise(rng, n, fps, 1.5)) if n > 1 else np.full(n, rate)
    return rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.cumsum(np.maximum(speed, 0.2 * rate)) / fps


def nod_track(n_frames: int, fps: float, amplitude: float, rate: float,
              envelope: np.ndarray | None = None, *, seed: int = 0) -> np.ndarray:
    """Nods as head ``dy`` per frame (IOD units, + = down): the head dips by up to
    ``amplitude`` and comes back, ``rate`` times a second, scaled by ``envelope`` (0..1)."""
    if n_frames == 0 or amplitude == 0 or rate <= 0:
        return np.zeros(n_frames, np.float32)
    rng = np.random.default_rng([seed, 1])
    env = np.ones(n_frames) if envelope is None else np.asarray(envelope, float)[:n_frames]
    # A nod goes down from the rest pose and back up, never above it.
    dip = 0.5 - 0.5 * np.cos(_phase(rng, n_frames, fps, rate, 0.12))
    return (amplitude * dip * env).astype(np.float32)


def shake_track(n_frames: int, fps: float, amplitude: float, rate: float,
                envelope: np.ndarray | None = None, *, roll_per_iod: float = 10.0,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Head shakes as (``dx`` in IOD, ``roll`` in degrees) per frame.

    A 2D head cannot turn (yaw); side to side motion with a little roll that
    follows it reads as a shake ("no") at these small amplitudes. The roll leans
    the top of the head the way it moves (the pivot is under the chin), so the
    face swings further than the neck, as in a turn.
    """
    if n_frames == 0 or amplitude == 0 or rate <= 0:
        zero = np.zeros(n_frames, np.float32)
        return zero, zero.copy()
    rng = np.random.default_rng([seed, 2])
    env = np.ones(n_frames) if envelope is None else np.asarray(envelope, float)[:n_frames]
    swing = np.sin(_phase(rng, n_frames, fps, rate, 0.10)) * env
    return ((amplitude * swing).astype(np.float32),
            (roll_per_iod * amplitude * swing).astype(np.float32))


def tilt_track(n_frames: int, fps: float, degrees: float, envelope: np.ndarray | None = None
               ) -> np.ndarray:
    """A held head tilt (roll, degrees; + clockwise in the image), eased in and out."""
    if n_frames == 0 or degrees == 0:
        return np.zeros(n_frames, np.float32)
    env = np.ones(n_frames) if envelope is None else np.asarray(envelope, float)[:n_frames]
    # The tilt leans in over about half a second rather than jumping at the first frame.
    ramp = np.clip(np.arange(n_frames) / max(0.5 * fps, 1.0), 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)
    return (degrees * env * ramp).astype(np.float32)


def zoom_track(n_frames: int, fps: float, start_zoom: float, end_zoom: float,
               start: float = 0.0, end: float = 1.0) -> np.ndarray:
    """Camera zoom per frame (1 = the whole picture, 1.2 = 20 % closer), easing from
    ``start_zoom`` to ``end_zoom`` between the fractions ``start`` and ``end`` of the video."""
    if n_frames == 0:
        return np.ones(0, np.float32)
    lo, hi = sorted((float(start), float(end)))
    t = (np.arange(n_frames) + 0.5) / n_frames
    u = np.clip((t - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    u = u * u * (3 - 2 * u)  # eased: a camera starts and stops moving gently
    zoom = start_zoom + (end_zoom - start_zoom) * u
    return np.clip(zoom, 1.0, MAX_ZOOM).astype(np.float32)


def with_gestures(life: LifeTrack, gestures: np.ndarray, *, gain: np.ndarray | None = None,
                  face: np.ndarray | None = None) -> LifeTrack:
    """``life`` with its natural head motion scaled by ``gain`` (per frame), ``gestures``
    (n, 4) added, the sum kept within :data:`GESTURE_LIMITS`, and expression channels."""
    head = life.head.astype(np.float32).copy()
    n = len(head)
    if gain is not None:
        head *= np.asarray(gain, np.float32)[:n, None]
    head += np.asarray(gestures, np.float32)[:n]
    head = np.clip(head, -GESTURE_LIMITS, GESTURE_LIMITS)
    return LifeTrack(life.fps, life.blink, head, face if face is not None else life.face)
