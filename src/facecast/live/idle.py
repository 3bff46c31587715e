"""Endless life for a live face: blinks, breathing, small head motion and the expression.

:func:`facecast.motion.life.life_track` makes a fixed number of frames; a live
session has no end. Blocks of ``BLOCK_S`` are made one after another (each with its
own seed) and the head motion of consecutive blocks is cross-faded over
``OVERLAP_S`` (eased), so block edges do not jerk: the head moves at most about
twice as fast there as within a block. Only two blocks are held at a time.
"""

from __future__ import annotations

import numpy as np

from facecast.motion.expressions import ExpressionPlan, expression_track, get_template
from facecast.motion.life import LifeTrack, life_track, with_gestures

BLOCK_S = 30.0
OVERLAP_S = 2.0


class IdleMotion:
    """Blink, head pose and expression channels for any frame index, in order."""

    def __init__(self, fps: int, *, seed: int = 0, expression: str | None = None,
                 head_motion: float = 1.0) -> None:
        self.fps = fps
        self.seed = seed
        self.head_motion = head_motion
        template = get_template(expression)
        self.plan = ExpressionPlan(template.controls)
        self.block = int(BLOCK_S * fps)
        self.overlap = int(OVERLAP_S * fps)
        self._blocks: dict[int, LifeTrack] = {}

    def _make(self, b: int) -> LifeTrack:
        """Block ``b``: frames ``b * block`` to ``(b + 1) * block + overlap``."""
        n = self.block + self.overlap
        life = life_track(n, self.fps, seed=self.seed + 7919 * b,
                          head_motion=self.head_motion)
        if not self.plan.is_neutral():
            # No speech is known ahead live: the expression is laid over pauses.
            expr = expression_track(self.plan, self.fps, n, np.zeros(n, np.float32),
                                    seed=self.seed + b)
            life = with_gestures(life, expr.head * self.head_motion, gain=expr.gain,
                                 face=expr.face)
        return life

    def _get(self, b: int) -> LifeTrack:
        if b not in self._blocks:
            for old in [k for k in self._blocks if k < b - 1]:
                del self._blocks[old]
            self._blocks[b] = self._make(b)
        return self._blocks[b]

    def at(self, k: int) -> tuple[float, np.ndarray, np.ndarray | None]:
        """``(blink, head (4,), face channels or None)`` at frame ``k``."""
        b, i = divmod(max(k, 0), self.block)
        cur = self._get(b)
        blink, head = float(cur.blink[i]), cur.head[i].copy()
        face = None if cur.face is None else cur.face[i].copy()
        if b > 0 and i < self.overlap:
            # the previous block's tail fades out as this block's start fades in
            prev = self._get(b - 1)
            w = 0.5 - 0.5 * np.cos(np.pi * (i + 1) / (self.overlap + 1))  # eased
            j = self.block + i
            head = (1 - w) * prev.head[j] + w * head
            blink = max(blink, float(prev.blink[j]))
            if face is not None and prev.face is not None:
                face = (1 - w) * prev.face[j] + w * face
        return blink, head.astype(np.float32), face
