"""Per-face calibration of the jaw: how far this face's mouth opens per unit of jaw,
and which landmarks sit on a moustache (whose hair moves with the upper lip).

The same jaw value opens some faces far less, as a face mesh sees them, than others:
a thick moustache hides the upper lip, a small face in a wide shot has a mouth of a
few pixels, a resting mouth may already be parted. So at set-up the animator poses
the face at a few jaw values, and the lip-sync measure's own face mesh
(:func:`facecast.quality.lipsync.lip_openings`, the very tracker that judges the
output) measures the inner-lip gap over the eye distance in each pose. The jaw gain
is then set so that the measured opening per unit jaw is
:data:`TARGET_OPENING_PER_JAW`, the value at which recorded speech gives a mouth
motion in the middle of the real speakers' range.

The gain scales the lips' opening in full and the chin and jaw line less
(:meth:`facecast.render.rig.FaceRig.set_jaw_gain`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from facecast.render.rig import LOWER_INNER, LOWER_OUTER, face_frame

# The jaw value probed: about a stressed vowel's opening in speech (the audio track's
# jaw sits around 0.2-0.7 while someone talks).
PROBE_JAW = 0.5
# Measured opening (inner-lip gap / outer-eye-corner distance, as the lip-sync measure
# reads it) per unit jaw. Set against real lips: a speaker's own frame rendered with
# their own speech (bench/bench_reenact.py) moved 0.61x as much as Klobuchar really did
# at 0.165 and 0.84x at 0.23, with Obama's render at 1.05x either way (his face opens
# more than this at gain 1, and calibration never takes opening away); on the shared
# faces 0.23 puts recorded speech at a motion of 0.027-0.050 (bench/bench_faces.py),
# inside the real speakers' 0.013-0.055.
TARGET_OPENING_PER_JAW = 0.23
# Open poses probed per step (each followed by a rest pose).
PROBE_REPEATS = 2
# Gains above this range mean the mesh cannot see the mouth, not that it needs more.
# Calibration only ever adds opening: below 1 a face the mesh reads well talked visibly
# less (Grace Hopper at 0.66-0.8) and its p/b/m gap ratio rose (0.05 -> 0.09-0.16, the
# wide shot's 0.18 -> 0.36: a closed mouth's gap is the mesh's floor, the open gap
# shrank), while those faces already move inside the real speakers' range at gain 1
# (0.036-0.043).
GAIN_RANGE = (1.0, 2.6)


# Moustache test: the skin between nose and upper lip must differ from the cheeks by
# this much (CIELAB distance) to be hair; shadow under the nose stays below it on the
# shared portraits (the six clean-shaven faces measure 5-17, the painted moustache 27:
# a thin margin, see bench/README.md).
MOUSTACHE_DELTA_E = 25.0
# Philtrum samples: between the point under the nose (164) and the upper lip's top
# (0, 37, 267), as pairs whose midpoints are sampled.
_PHILTRUM = ((164, 0), (167, 37), (393, 267))
_CHEEKS = (50, 280, 101, 330, 205, 425)


def moustache_points(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """Per landmark, whether it lies on a moustache; None when the face has none.

    A moustache is the skin over the upper lip being a colour far from the cheeks'.
    Its hair is then taken to cover the usual moustache area: from under the nose
    (whose base stays put) down to the mouth line, and on past the mouth corners to
    under it, where the ends hang
    (telling hair from skin landmark by landmark fails under the side light of
    paintings and many photos, where the shaded cheek is as dark as the hair).
    """
    fr = face_frame(landmarks)
    lab = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0  # OpenCV's 8-bit L to CIELAB's 0-100
    lab[..., 1:] -= 128.0
    h, w = lab.shape[:2]
    r = max(1, round(0.03 * fr.iod))
    pts = landmarks[:, :2].astype(np.float64)

    def colour(p: np.ndarray) -> np.ndarray:
        x, y = int(round(p[0])), int(round(p[1]))
        patch = lab[max(y - r, 0):min(y + r + 1, h), max(x - r, 0):min(x + r + 1, w)]
        return np.median(patch.reshape(-1, 3), axis=0) if patch.size else np.zeros(3)

    skin = np.median([colour(pts[i]) for i in _CHEEKS], axis=0)
    hair = np.median([colour((pts[i] + pts[j]) / 2) for i, j in _PHILTRUM], axis=0)
    if float(np.linalg.norm(hair - skin)) < MOUSTACHE_DELTA_E:
        return None
    ab = fr.local(pts)
    x, b = ab[:, 0] / fr.iod, ab[:, 1] / fr.iod
    beside = np.abs(ab[:, 0]) > 0.9 * fr.mouth_half_width
    out = (np.abs(x) < 0.75) & (b > -0.28) & ((b < 0.0) | (beside & (b < 0.45)))
    out[list(set(LOWER_OUTER + LOWER_INNER))] = False
    out[468:] = False
    return out


# Gains probed at most, the gain 1 start included: the mesh's response to the gain is
# monotone but far from linear (a lip must clear a moustache before the gap shows, a
# dark interior reads wider once the lips part), so one proportional step can land
# 30 % off the target: on the astronaut shot at 0.7x a first guess of 1.73 read 0.33
# against 0.23, where the proportional correction gave 1.22 and the face talked less
# than the same portrait at full size.
MAX_PROBES = 4
# Close enough: the measured opening per jaw within this fraction of the target.
TOLERANCE = 0.08
# A larger gain whose reading grows by less than this share of the proportional growth
# over the nearest smaller gain's is not seen by the mesh: the search stops there and keeps
# the gains it could see, rather than extrapolating from a reading that did not follow
# the gain. Mona Lisa reads 0.15-0.16 at gain 1 and 0.145-0.178 at 1.45-1.51 (the wide
# moustache shot 0.161 -> 0.129 at 1.42); which side of its first reading the second fell
# decided between gain 1 and 1.8-2.2 on a 1 % change in her first reading.
UNSEEN_GROWTH = 0.5


@dataclass(frozen=True)
class JawCalibration:
    """The gain chosen for one face and what was measured on the way."""

    gain: float
    opening_per_jaw: float  # measured at gain 1 (NaN when the mesh found no face)
    final_opening_per_jaw: float  # measured at the chosen gain
    probes: int  # gains measured, gain 1 included
    setup_ms: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def _next_gain(probed: list[tuple[float, float]], target: float) -> float:
    """The gain to measure next: interpolated between the nearest probes on either side
    of the target when there are such, else a step from the nearest probe scaled by how
    far its opening is from the target (the response through the origin)."""
    below = [p for p in probed if p[1] < target]
    above = [p for p in probed if p[1] >= target]
    if below and above:
        (g0, k0), (g1, k1) = max(below), min(above)
        if k1 > k0:
            return g0 + (target - k0) * (g1 - g0) / (k1 - k0)
    g, k = min(probed, key=lambda p: abs(p[1] - target))
    return g * target / max(k, 1e-4)


def calibrate_jaw(render: Callable[[float, float], np.ndarray]) -> JawCalibration:
    """The jaw gain for the face that ``render(jaw, gain)`` draws (an RGB image of the
    face posed at that jaw value with that gain, and nothing else moved).

    The gain is searched on measurements, not guessed: each probed gain's opening per
    jaw is measured, and the next gain interpolated between the probes on either side
    of :data:`TARGET_OPENING_PER_JAW`, until one reads within :data:`TOLERANCE` of it
    or :data:`MAX_PROBES` were measured; the probed gain that read nearest is taken."""
    from facecast.quality.lipsync import lip_tracker

    t0 = time.perf_counter()
    lo, hi = GAIN_RANGE
    target = TARGET_OPENING_PER_JAW
    rest: list[float] = []

    def slope(opening: Callable[[np.ndarray], float], gain: float) -> float:
        # Rest and open poses alternate, as a talking mouth does for the tracked mesh.
        opened = []
        for _ in range(PROBE_REPEATS):
            opened.append(opening(render(PROBE_JAW, gain)))
            rest.append(opening(render(0.0, gain)))
        return float((np.nanmean(opened) - np.nanmean(rest)) / PROBE_JAW)

    with lip_tracker() as opening:
        rest.append(opening(render(0.0, 1.0)))
        k1 = slope(opening, 1.0)
        if not np.isfinite(k1):
            return JawCalibration(1.0, k1, k1, 1, (time.perf_counter() - t0) * 1e3)
        probed = [(1.0, k1)]
        while len(probed) < MAX_PROBES:
            gain, k = min(probed, key=lambda p: abs(p[1] - target))
            if abs(k / target - 1.0) <= TOLERANCE:
                break
            proposed = float(np.clip(_next_gain(probed, target), lo, hi))
            # Calibration never takes opening away (GAIN_RANGE), and a gain already
            # measured, or the range's end, gives nothing new.
            if any(abs(proposed - g) < 0.02 for g, _ in probed):
                break
            k_new = slope(opening, proposed)
            if not np.isfinite(k_new) or k_new <= 1e-4:
                break
            smaller = [p for p in probed if p[0] < proposed]
            if smaller:
                g0, k0 = max(smaller)
                if k_new < k0 * (1.0 + UNSEEN_GROWTH * (proposed / g0 - 1.0)):
                    break
            probed.append((proposed, k_new))
        gain, k = min(probed, key=lambda p: abs(p[1] - target))
    return JawCalibration(gain, k1, k, len(probed), (time.perf_counter() - t0) * 1e3)
