"""A portrait's own visible teeth as its mouth interior.

A portrait that smiles with its teeth showing (Obama's official portrait, the
astronaut) already has a real mouth interior: its own teeth, in its own light.
The rig closes every resting mouth (render/rig.py), and warping such a mouth
shut squeezes those teeth into light stripes on the upper lip and the dark
corners of the smile into blobs. Here, for such a portrait (:func:`shows_teeth`):

- :func:`closed_canvas` gives the warp a copy of the portrait whose open
  interior (teeth, the dark corners of the smile, and the teeth the landmarks
  leave just inside the lips) is filled in from the lips around it, so that a
  closed frame shows closed lips;
- :class:`OwnBank` is a mouth bank of one sample, the portrait's own opening,
  cut from the untouched portrait. An opening smaller than the portrait's own
  shows the top of that opening, anchored under the upper lip and cut off by the
  raised lower lip (the upper teeth stay under the upper lip and come into view as
  the jaw drops, as in a real mouth, instead of being squashed); a larger one shows
  all of it, stretched, and is shaded dark below the teeth as the stock is.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecast.render.mouth_bank import MIN_GAP, BankBuilder, MouthBank, MouthSample, _frame_axes
from facecast.render.rig import LOWER_INNER, LOWER_OUTER, MESH_POINTS, UPPER_INNER, UPPER_OUTER
from facecast.render.stock_mouth import FEATHER_EXTRA, FEATHER_MIN, rgb_to_lab

# A resting mouth open at least this much (IOD, mean inner-lip gap over its middle) ...
OWN_MIN_GAP = 0.06
# ... whose opening is at least this share teeth (Lab L* over TEETH_L) shows its teeth.
OWN_MIN_TEETH = 0.3
TEETH_L = 55.0
# What of the portrait is interior (closed_canvas): the opening between the inner lips,
# grown by this much (IOD; the mesh puts the inner lip line a little inside the teeth),
# and, inside the outer lips, pixels this much lighter than the lips with no more
# colour than they have (teeth) or darker than this share of them (the cavity and the
# smile's dark corners) that touch it.
INTERIOR_GROW = 0.005
TEETH_OVER_LIP = 10.0  # L* over the lighter lip
DARK_SHARE = 0.5  # of the darker lip's L*
# How far from the opening (IOD) teeth and dark pixels may be interior, and around the
# inner corners, where a smile's dark corners reach out towards the outer ones.
INTERIOR_REACH = 0.04
CORNER_REACH = 0.12
INPAINT_RADIUS = 0.04  # IOD
# Reveal steps (share of the own opening) the synthetic samples are cut at and cached.
REVEAL_STEPS = 64


def _lab(rgb: np.ndarray) -> np.ndarray:
    # NumPy's Lab, not OpenCV's: its first call builds tables (a second or more under load).
    return rgb_to_lab(np.asarray(rgb).reshape(-1, 3))


def _ring(pts: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([pts[list(upper)], pts[list(lower[::-1])]])


def shows_teeth(image: np.ndarray, landmarks: np.ndarray) -> bool:
    """Whether the portrait's resting mouth is open with its teeth in view."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    gap, _ = MouthBank.opening(pts)
    if gap < OWN_MIN_GAP:
        return False
    ring = _ring(pts, UPPER_INNER, LOWER_INNER)
    x0, y0 = np.maximum(np.floor(ring.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.minimum(np.ceil(ring.max(axis=0)).astype(int) + 3,
                        [image.shape[1], image.shape[0]])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return False
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(ring - [x0, y0]).astype(np.int32)], 255)
    px = image[y0:y1, x0:x1][cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0]
    if len(px) < 20:
        return False
    return bool(np.mean(_lab(px)[:, 0] > TEETH_L) >= OWN_MIN_TEETH)


def interior_mask(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Mask (uint8, 255 inside) of the portrait's own open mouth interior."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    _, _, _, iod = _frame_axes(pts)
    full = np.zeros(image.shape[:2], np.uint8)
    # Everything happens in a box around the outer lips and the corners' reach.
    lips = pts[list(UPPER_OUTER + LOWER_OUTER)]
    pad = int(np.ceil(CORNER_REACH * iod)) + 4
    bx0, by0 = np.maximum(np.floor(lips.min(axis=0)).astype(int) - pad, 0)
    bx1, by1 = np.minimum(np.ceil(lips.max(axis=0)).astype(int) + pad + 1,
                          [image.shape[1], image.shape[0]])
    if bx1 - bx0 < 5 or by1 - by0 < 5:
        return full
    image = image[by0:by1, bx0:bx1]
    pts = pts - [bx0, by0]
    full[by0:by1, bx0:bx1] = _interior_mask(image, pts, iod)
    return full


def _interior_mask(image: np.ndarray, pts: np.ndarray, iod: float) -> np.ndarray:
    """:func:`interior_mask` inside a box (``pts`` in its pixels)."""
    h, w = image.shape[:2]

    def fill(ring: np.ndarray) -> np.ndarray:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(ring).astype(np.int32)], 255)
        return m

    def grow(m: np.ndarray, r: float) -> np.ndarray:
        k = max(1, int(round(r)))
        return np.asarray(cv2.dilate(m, cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))), np.uint8)

    inner = fill(_ring(pts, UPPER_INNER, LOWER_INNER))
    outer = fill(_ring(pts, UPPER_OUTER, LOWER_OUTER))
    # Upper and lower lip bands: the upper lip is often in shadow, darker than the lower.
    upper_lip = (fill(np.concatenate([pts[list(UPPER_OUTER)], pts[list(UPPER_INNER[::-1])]]))
                 > 0) & (inner == 0)
    lower_lip = (fill(np.concatenate([pts[list(LOWER_OUTER)], pts[list(LOWER_INNER[::-1])]]))
                 > 0) & (inner == 0)
    grown = grow(inner, INTERIOR_GROW * iod)
    # Where teeth and dark may still be interior: near the opening, and the smile's
    # corners out to the outer lip corners.
    near = grow(inner, INTERIOR_REACH * iod)
    for i in (UPPER_INNER[0], UPPER_INNER[-1]):
        cv2.circle(near, tuple(int(v) for v in np.round(pts[i])),
                   int(round(CORNER_REACH * iod)), 255, -1)
    allowed = (near > 0) & (outer > 0)
    ys, xs = np.nonzero(allowed)
    if not len(ys):
        return grown
    y0, y1, x0, x1 = int(np.min(ys)), int(np.max(ys)) + 1, int(np.min(xs)), int(np.max(xs)) + 1
    box = (slice(y0, y1), slice(x0, x1))
    lab = _lab(image[box].reshape(-1, 3)).reshape(y1 - y0, x1 - x0, 3)
    bands = [lab[m[box]] for m in (upper_lip, lower_lip)]
    if min(len(b) for b in bands) < 5:
        return grown
    lip_l = [float(np.median(b[:, 0])) for b in bands]
    lip_c = float(np.median(np.hypot(np.concatenate(bands)[:, 1],
                                     np.concatenate(bands)[:, 2])))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    teeth = (lab[..., 0] > max(lip_l) + TEETH_OVER_LIP) & (chroma < lip_c)
    dark = lab[..., 0] < DARK_SHARE * min(lip_l)
    cand = grown.copy()
    cand[box] |= ((teeth | dark) & allowed[box]).astype(np.uint8) * 255
    # Only what touches the opening: a dark crease or a highlight elsewhere is lip.
    _, labels = cv2.connectedComponents(cand, connectivity=8)
    touching = np.unique(labels[grown > 0])
    out = np.isin(labels, touching[touching > 0]).astype(np.uint8) * 255
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return np.asarray(cv2.dilate(out, np.ones((3, 3), np.uint8)), np.uint8)


def closed_canvas(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The portrait with its open mouth interior filled in from the lips around it: what
    the warp closes (a closed frame then shows lips, not squeezed teeth)."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    _, _, _, iod = _frame_axes(pts)
    mask = interior_mask(image, landmarks)
    ys, xs = np.nonzero(mask)
    out = np.array(image, copy=True)
    if not len(ys):
        return out
    pad = int(round(3 * INPAINT_RADIUS * iod)) + 4
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, image.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, image.shape[1])
    radius = max(2.0, INPAINT_RADIUS * iod)
    bgr = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
    filled = cv2.inpaint(bgr, mask[y0:y1, x0:x1], radius, cv2.INPAINT_TELEA)
    out[y0:y1, x0:x1] = cv2.cvtColor(filled, cv2.COLOR_BGR2RGB)
    return out


class OwnBank(MouthBank):
    """The portrait's own opening as a bank: any asked opening gets one sample of it,
    revealed from the upper lip down as far as the asked gap (all of it beyond)."""

    def __init__(self, sample: MouthSample, scale: float, feather: float) -> None:
        super().__init__([sample], scale, sample.width)
        self.own = sample
        self.feather = feather
        self._cut: dict[int, MouthSample] = {}

    @property
    def own_gap(self) -> float:
        return self.own.gap

    def choose(self, gap: float, width: float) -> list[tuple[MouthSample, float]]:
        if gap < MIN_GAP * 0.5:
            return []
        step = int(round(min(gap / self.own.gap, 1.0) * REVEAL_STEPS))
        if step < 1:
            return []
        sample = self._cut.get(step)
        if sample is None:
            f = step / REVEAL_STEPS
            s = self.own
            lower = (s.upper + f * (s.lower - s.upper)).astype(np.float32)
            sample = MouthSample(s.crop, s.upper, lower, s.gap * f, s.width, s.lip,
                                 s.sharpness, s.frame)
            self._cut[step] = sample
        return [(sample, 1.0)]


def own_bank(image: np.ndarray, landmarks: np.ndarray, scale: float) -> OwnBank | None:
    """The portrait's own opening, cut as a bank sample at ``scale`` canonical pixels per
    IOD (the stock's, so the two share one margin); None when it cannot be cut (a
    turned face, too small an opening)."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    # The portrait's own pixels need no softening to match it: the stock's least feather.
    feather = max(FEATHER_MIN, FEATHER_EXTRA * _frame_axes(pts)[3])
    builder = BankBuilder()
    builder.scale = float(scale)
    builder.offer(0, np.ascontiguousarray(image), np.asarray(landmarks, np.float64))
    bank = builder.build()
    if not len(bank):
        return None
    s = bank.samples[0]
    # The crop is the portrait's own colour: no gain (the painter's neutral lip).
    neutral = np.full(3, 128.0, np.float32)
    return OwnBank(MouthSample(s.crop, s.upper, s.lower, s.gap, s.width, neutral,
                               s.sharpness, s.frame), bank.scale, feather)
