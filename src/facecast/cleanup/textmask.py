"""Which pixels of a subtitle area are burned-in text, frame by frame.

Burned-in subtitles are thin, high-contrast strokes (usually light with a dark
outline) that stay pixel-still for as long as a line is shown. A stroke
candidate is a pixel much brighter than the opening of its neighbourhood
(a morphological top-hat with a kernel wider than a stroke); a text pixel is a
candidate that is also one in every frame of a third of a second before or
after it, which drops the moving texture of the picture underneath (a tie's
pattern, a tree) while keeping the first and last frames of every line. The mask is then
grown to cover the outline and the anti-aliased fringe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Polarity = Literal["light", "dark"]


@dataclass(frozen=True)
class StrokeParams:
    """Scales for one video: ``kernel`` wider than a stroke, ``grow`` covers outline + fringe."""

    kernel: int
    grow: int
    contrast: int = 50  # top-hat response of a text stroke over what surrounds it
    level: int = 150  # light text is at least this bright (dark text at most 255 - level)
    polarity: Polarity = "light"


def stroke_params(frame_height: int, polarity: Polarity = "light") -> StrokeParams:
    """Scales that suit subtitles of a usual size (3-8% of the frame height)."""
    kernel = max(5, round(0.021 * frame_height)) | 1
    grow = max(2, round(0.0075 * frame_height)) + 1
    return StrokeParams(kernel=kernel, grow=grow, polarity=polarity)


def stroke_candidates(y: np.ndarray, params: StrokeParams) -> np.ndarray:
    """Pixels of the luma plane ``y`` (uint8) that look like a text stroke of ``params``."""
    # A rectangular kernel keeps the opening separable, hence cheap on wide strips.
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (params.kernel, params.kernel))
    if params.polarity == "light":
        response = cv2.morphologyEx(y, cv2.MORPH_TOPHAT, kernel)
        return (response > params.contrast) & (y > params.level)
    response = cv2.morphologyEx(y, cv2.MORPH_BLACKHAT, kernel)
    return (response > params.contrast) & (y < 255 - params.level)


def persistence_frames(fps: float) -> int:
    """Frames a stroke must hold still on one side: about a third of a second.

    Subtitles stay up for a second or more, pixel-still, while highlights of a
    moving picture drift off their pixels within a few frames even in a slow
    pan (measured: a 12 px/s pan leaves a fifth as many false text pixels at
    0.32 s as at 0.2 s, with every subtitle pixel still found).
    """
    return int(min(12, max(3, round(0.32 * fps))))


def text_mask(centre: np.ndarray, before: Sequence[np.ndarray | None],
              after: Sequence[np.ndarray | None], params: StrokeParams) -> np.ndarray:
    """The text mask of one frame from its candidates and those of the frames just
    before and after it (``None`` past either end of the video).

    A candidate counts when it is also one in every frame before it or every
    frame after it.
    """
    if not centre.any():
        return np.zeros_like(centre)
    keep = np.zeros_like(centre)
    for side in (before, after):
        if side and all(c is not None for c in side):
            held = centre.copy()
            for c in side:
                held &= c  # type: ignore[operator]
            keep |= held
    if not any(c is not None for c in before) and not any(c is not None for c in after):
        keep = centre  # a video of one frame: nothing to compare with
    return grow_mask(keep, params.grow)


def grow_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (Euclidean)."""
    if radius <= 0 or not mask.any():
        return mask.copy()
    inverse = np.where(mask, 0, 255).astype(np.uint8)
    distance = cv2.distanceTransform(inverse, cv2.DIST_L2, 3)
    return distance <= radius


def still_structures(samples: Sequence[np.ndarray], params: StrokeParams) -> np.ndarray | None:
    """Stroke-like pixels of a subtitle area that never go away: part of the picture (a
    bright sign, litter on a lawn), not subtitles; None when the area's text does not
    change across ``samples`` (luma crops spread over the video), so cannot tell.

    A pixel counts when it is a candidate in nearly every sample while the
    candidates as a whole keep changing, as subtitles do from line to line.
    """
    if len(samples) < 6:
        return None
    maps = [stroke_candidates(s, params) for s in samples]
    total = np.sum(maps, axis=0)
    # How alike the candidates are between samples far apart in time.
    half = len(maps) // 2
    overlaps = []
    for a, b in zip(maps[:half], maps[half:], strict=False):
        union = int((a | b).sum())
        if union:
            overlaps.append((a & b).sum() / union)
    if not overlaps or float(np.mean(overlaps)) >= 0.5:
        return None
    still = total >= 0.85 * len(maps)
    if not still.any():
        return None
    # Whole strokes that stay, not the odd pixel where letters of different lines happen
    # to overlap: keep the connected pieces that are (nearly) all still in some sample.
    structures = np.zeros_like(still)
    for m in maps[:: max(1, len(maps) // 8)]:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m.view(np.uint8), connectivity=8)
        if n <= 1:
            continue
        kept = np.bincount(labels[still], minlength=n)
        whole = np.flatnonzero(kept >= 0.8 * stats[:, cv2.CC_STAT_AREA])
        whole = whole[whole > 0]
        if whole.size:
            structures |= np.isin(labels, whole)
    return grow_mask(structures, 1) if structures.any() else None


def choose_polarity(samples: Sequence[np.ndarray], frame_height: int) -> Polarity:
    """Light or dark text, from luma crops of a subtitle area: whichever leaves more strokes.

    Light text with a dark outline also shows dark strokes (the outline), but
    fewer and thinner than its light core; dark text needs clearly more.
    """
    light = stroke_params(frame_height, "light")
    dark = stroke_params(frame_height, "dark")
    n_light = sum(int(stroke_candidates(s, light).sum()) for s in samples)
    n_dark = sum(int(stroke_candidates(s, dark).sum()) for s in samples)
    return "dark" if n_dark > 2 * n_light else "light"
