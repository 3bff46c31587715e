"""Choosing a video avatar's idle loop: a stretch of the recording where the face is seen
throughout, whose end matches its start in picture and head pose (cross-faded at
render), preferring calm stretches and longer ones.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.pipeline.video_loop import CROSSFADE_S, POSE_POINTS, POSE_WEIGHT, Loop
from facecast.render.lip_geometry import _EYE_L, _EYE_R, mouth_gap

IDLE_MIN_S = 4.0  # the idle loop needs at least this long a stretch with the face
IDLE_MAX_S = 30.0  # and is at most this long (longer loops repeat less, cost disk)
LOOP_THUMB_W = 24  # width of the grey thumbnails frames are matched on
# Loop choice: costs are in units of the recording's ordinary frame-to-frame change.
# A jump costing up to JUMP_UNSEEN ordinary steps does not show once cross-faded with
# the heads moved to the pose between them: below it, longer loops (fewer repeats of the
# same gestures in a long render) and calmer ones win.
JUMP_UNSEEN = 2.5
CALM_WEIGHT = 0.5  # per unit of mouth activity (the original mouth is taken back anyway)
MOTION_WEIGHT = 0.5  # per unit of head motion above the recording's usual
LENGTH_BONUS = 2.0  # a loop of IDLE_MAX_S is worth this much of a jump's cost
MAX_OFFSETS = 160  # loop lengths tried (evenly spread) on long recordings


def _loop_thumb(rgb: np.ndarray) -> np.ndarray:
    """A small grey picture of a frame, for matching frames (loop points, seeking)."""
    h, w = rgb.shape[:2]
    small = cv2.resize(
        rgb, (LOOP_THUMB_W, max(2, round(h * LOOP_THUMB_W / w))), interpolation=cv2.INTER_AREA
    )
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def choose_idle(
    points: np.ndarray,
    presence: np.ndarray,
    thumbs: np.ndarray,
    fps: float,
    max_s: float = IDLE_MAX_S,
    min_s: float = IDLE_MIN_S,
) -> tuple[int, int, Loop]:
    """The stretch of the recording to store as the idle loop: ``(first, last, loop)``,
    the loop in frames of the stretch.

    Over every loop length from ``min_s`` to ``max_s`` and every start where the
    face is fully present from the cross-fade's first frame to the loop's end,
    the cost of the jump (picture and head-pose difference over the cross-fade,
    in units of the recording's usual frame-to-frame change; beyond
    :data:`JUMP_UNSEEN` in full, below it a little) plus a little for mouth
    activity and head motion inside the stretch, less a bonus for length.
    Raises ``face_lost`` when no stretch of ``min_s`` has the face throughout.
    """
    n = len(points)
    fade = max(2, round(CROSSFADE_S * fps))
    ok = presence >= 1.0
    longest = max((b - a for a, b in _runs(ok)), default=0)
    l_min = max(2 * fade + 2, round(min_s * fps))
    if longest - fade + 1 < l_min:
        raise InputError(
            f"the face is never seen for {min_s:g} s on end (longest "
            f"{longest / fps:.1f} s): an avatar needs a stretch that long",
            code="face_lost",
        )
    l_max = max(l_min, min(round(max_s * fps), longest - fade + 1))
    # Features per frame: a small grey picture and the head's pose points (IOD units).
    eye_r = points[:, _EYE_R].mean(axis=1)
    eye_l = points[:, _EYE_L].mean(axis=1)
    iod_all = np.linalg.norm(eye_l - eye_r, axis=1)
    iod = float(np.median(iod_all[ok])) if ok.any() else 1.0
    pose = points[:, POSE_POINTS].astype(np.float64) / max(iod, 1e-3)
    pic = thumbs.reshape(len(thumbs), -1).astype(np.float32) / 255.0
    if len(pic) < n:
        pic = (
            np.concatenate([pic, np.repeat(pic[-1:], n - len(pic), axis=0)])
            if len(pic)
            else np.zeros((n, 1), np.float32)
        )
    pic = pic[:n]

    def distance(lag: int) -> np.ndarray:
        """Frame i against frame i + lag, for every i."""
        dp = np.sqrt(np.mean((pic[lag:] - pic[: n - lag]) ** 2, axis=1))
        dq = np.linalg.norm(pose[lag:] - pose[: n - lag], axis=2).mean(axis=1)
        return dp + POSE_WEIGHT * dq

    step = distance(1)
    usual = float(np.median(step[ok[1:] & ok[:-1]])) if (ok[1:] & ok[:-1]).any() else 1.0
    usual = max(usual, 1e-4)
    # Per-frame activity, summed with prefix sums for any stretch.
    gaps = np.array([mouth_gap(p) if ok[i] else 0.0 for i, p in enumerate(points)])
    act = np.abs(np.diff(gaps, prepend=gaps[:1]))
    act /= max(float(np.median(act[ok])) if ok.any() else 1.0, 1e-4)
    motion = np.concatenate([[0.0], step]) / usual
    bad = np.concatenate([[0], np.cumsum(~ok)])
    act_sum = np.concatenate([[0.0], np.cumsum(act)])
    motion_sum = np.concatenate([[0.0], np.cumsum(motion)])
    lags = np.arange(l_min, l_max + 1)
    if len(lags) > MAX_OFFSETS:
        lags = np.unique(np.linspace(l_min, l_max, MAX_OFFSETS).round().astype(int))
    best: tuple[float, int, int] | None = None
    kernel = np.ones(fade) / fade
    for lag in lags:
        d = distance(int(lag)) / usual  # d[i]: frame i vs frame i + lag
        # Jumping from end e = s + lag back to start s: the mean over the fade before them.
        cost = np.convolve(d, kernel, mode="valid")  # cost[k] covers d[k .. k + fade - 1]
        s: np.ndarray = np.arange(fade - 1, fade - 1 + len(cost))  # the start each cost belongs to
        e = s + lag
        lo = s - fade + 1
        keep = e < n
        s, e, lo, cost = s[keep], e[keep], lo[keep], cost[keep]
        if not len(s):
            continue
        whole = bad[e + 1] - bad[lo] == 0
        if not whole.any():
            continue
        span = (e - lo + 1).astype(np.float64)
        calm = (act_sum[e + 1] - act_sum[lo]) / span
        still = (motion_sum[e + 1] - motion_sum[lo]) / span
        total = (
            np.maximum(cost - JUMP_UNSEEN, 0.0)
            + 0.05 * cost
            + CALM_WEIGHT * calm
            + MOTION_WEIGHT * np.maximum(still - 1.0, 0.0)
            - LENGTH_BONUS * lag / max(1.0, max_s * fps)
        )
        total[~whole] = np.inf
        k = int(np.argmin(total))
        if np.isfinite(total[k]) and (best is None or total[k] < best[0]):
            best = (float(total[k]), int(s[k]), int(e[k]))
    if best is None:  # cannot happen once a long enough run exists; kept for safety
        a, b = max(_runs(ok), key=lambda r: r[1] - r[0])
        return a, b - 1, Loop(0, b - 1 - a, 0)
    _, s_at, e_at = best
    first = s_at - fade + 1
    return first, e_at, Loop(s_at - first, e_at - first, fade)
