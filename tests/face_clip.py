"""A short synthetic clip from one portrait, for the video-mode face tests.

The portrait drifts right and down, turns and grows a little each frame, so the
face mesh's tracking (each frame's crop from the previous frame's landmarks) is
what places it. Deterministic: the same frames on every run.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

CLIP_FRAMES = 24


def synthetic_clip(image: np.ndarray, frames: int = CLIP_FRAMES) -> Iterator[np.ndarray]:
    h, w = image.shape[:2]
    for k in range(frames):
        m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 1.5 * k, 1.0 + 0.01 * k)
        m[:, 2] += (2.0 * k, 1.0 * k)
        yield cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
