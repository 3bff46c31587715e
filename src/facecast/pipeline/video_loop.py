"""Looping a source video for speech that outlasts it: the loop point where picture and
head pose best match an early frame, and the schedule of source frames (with the
cross-fade) for each output frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from facecast.pipeline.face_tracking import FaceSeries
from facecast.render.lip_geometry import eye_frame

CROSSFADE_S = 0.24  # the loop's cross-fade
POSE_WEIGHT = 1.0  # head-pose distance (IOD) against picture difference (0..1) in the match
# Stable landmarks (eye corners, nose, brows, face outline) for matching head poses.
POSE_POINTS = np.array([33, 133, 362, 263, 1, 4, 168, 10, 152, 234, 454, 70, 300])


@dataclass(frozen=True)
class Loop:
    """Play to ``end``, then go on from ``start + 1``; the ``fade`` frames up to ``end``
    are cross-faded with those up to ``start``."""

    start: int
    end: int
    fade: int

    @property
    def period(self) -> int:
        return self.end - self.start


def choose_loop(series: FaceSeries, fps: float) -> Loop:
    """The loop whose jump shows least: the picture and the head pose over the
    cross-fade before the end frame best match those before the start frame."""
    n = len(series)
    fade = max(2, round(CROSSFADE_S * fps))
    # The end thumbnails that run without a break up to the last frame.
    ends = [(i, th) for i, th in series.end_thumbs if i < n]
    while len(ends) > 1 and ends[-1][0] - ends[0][0] != len(ends) - 1:
        ends.pop(0)
    if len(series.start_thumbs) < fade or len(ends) < fade or not ends or ends[-1][0] != n - 1:
        return Loop(0, n - 1, 0)  # too little to choose from: the plain loop
    first_end = ends[0][0]
    start = np.stack(series.start_thumbs).reshape(len(series.start_thumbs), -1)
    end = np.stack([th for _, th in ends]).reshape(len(ends), -1)
    # Picture difference (0..1) between every end candidate and every start candidate
    # (row by row: the whole cube would take a hundred megabytes).
    diff = np.stack([np.abs(row[None, :] - start).mean(axis=1) for row in end]) / 255.0
    pose = series.points[:, POSE_POINTS].astype(np.float64)
    present = series.presence > 0
    ends_idx = np.arange(first_end, n)
    starts_idx = np.arange(len(start))
    scale = np.array([eye_frame(series.points[i]).iod if present[i] else 1.0 for i in starts_idx])
    d_pose = np.linalg.norm(pose[ends_idx][:, None] - pose[starts_idx][None], axis=3).mean(axis=2)
    both = present[ends_idx][:, None] & present[starts_idx][None, :]
    one = present[ends_idx][:, None] != present[starts_idx][None, :]
    diff += np.where(both, POSE_WEIGHT * d_pose / scale[None, :], 0.0) + np.where(one, 0.5, 0.0)
    # Cost of jumping from end e to start s: the mean difference over the fade before them.
    cost = np.zeros_like(diff)
    for j in range(fade):
        shifted = np.full_like(diff, np.inf)
        shifted[j:, j:] = diff[: len(diff) - j, : diff.shape[1] - j]
        cost += shifted / fade
    e_grid, s_grid = np.meshgrid(ends_idx, starts_idx, indexing="ij")
    min_period = max(2 * fade + 2, n // 2)
    cost[e_grid - s_grid < min_period] = np.inf
    # Slightly prefer longer loops: fewer repeats of the same stretch.
    cost += 0.002 * (n - (e_grid - s_grid)) / fps
    if not np.isfinite(cost).any():
        return Loop(0, n - 1, 0)
    a, b = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return Loop(int(starts_idx[b]), int(ends_idx[a]), fade)


def schedule(n_out: int, n_src: int, loop: Loop | None) -> Iterator[tuple[int, int | None, float]]:
    """For each output frame: the source frame, and a frame to cross-fade it with (weight)."""
    k = 0
    i = 0
    while k < n_out:
        if loop is None or i <= loop.end:
            blend, w = None, 0.0
            if loop is not None and loop.fade and i > loop.end - loop.fade:
                j = i - (loop.end - loop.fade)  # 1..fade
                blend, w = loop.start - (loop.end - i), j / (loop.fade + 1.0)
            if i >= n_src:
                return
            yield i, blend, w
            k += 1
            i += 1
        else:
            i = loop.start + 1
