"""The person's own mouth interiors, for avatars cloned from a video.

A painted mouth (:class:`facecast.render.mouth.MouthPainter`) reads as "a
mouth"; a person's own teeth, tongue and shadows read as *them*. While a
recording is tracked once, :class:`BankBuilder` keeps crops of the mouth
region at different lip gaps and widths, each normalised to the face's own
frame (centred between the inner mouth corners, turned to the eye line, at a
fixed number of pixels per inter-ocular distance, IOD) together with the
inner-lip contour seen there, the lip colour (for colour matching) and a
sharpness score. Per cell of (gap, width) only the sharpest few frontal
samples are kept, so a ten-minute recording gives a bank of a few megabytes.

At render, :meth:`MouthBank.paint` takes the samples nearest to the new
opening (the two that bracket its lip gap, favouring a similar mouth width),
warps each so that its inner-lip contour lands on the new one (a fixed strip
triangulation of the contour and a thin margin around it, as one remap),
blends them by gap (so the interior changes smoothly as the mouth opens),
matches their colour to this frame's lips, and composites them inside the new
contour. When no sample is near enough in opening it returns False and the
caller paints the interior instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from facecast.render.dub_warp import _rasterise
from facecast.render.lip_geometry import eye_frame
from facecast.render.rig import LOWER_INNER, LOWER_OUTER, MESH_POINTS, UPPER_INNER, UPPER_OUTER
from facecast.render.warp import _affine_coefficients, _signed_area

PathLike = str | os.PathLike[str]

# The canonical window around the mouth centre, in IOD units: x along the eye line, y down.
WINDOW_X = 0.7
WINDOW_TOP = 0.35
WINDOW_BOTTOM = 0.5
SCALE_RANGE = (48, 192)  # canonical pixels per IOD: the face's own size, within these
MIN_GAP = 0.02  # IOD: narrower openings show no interior worth keeping
GAP_STEP = 0.025  # IOD: the gap bands samples are kept in
WIDTH_STEP = 0.06  # IOD: the width bands
PER_CELL = 2  # samples kept per (gap, width) cell while collecting
MAX_YAW = 0.12  # IOD: the nose tip this far beside the eye midpoint is too turned to use
# Choosing samples at render: how much a width difference counts against a gap difference.
WIDTH_WEIGHT = 0.25
# Without a sample within this much of the asked gap (IOD, or this share of it, whichever
# is more) the bank declines and the painter is used.
MAX_GAP_MISS = 0.04
MAX_GAP_MISS_SHARE = 0.35
MARGIN = 0.035  # IOD: the strip around the contour that the warp carries along
COLOUR_GAIN = (0.8, 1.25)  # per-channel colour matching stays within these


def _frame_axes(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Mouth centre (between the inner corners), unit right / down axes, IOD (pixels)."""
    fr = eye_frame(pts)
    centre = (pts[UPPER_INNER[0]] + pts[UPPER_INNER[-1]]) / 2.0
    return centre, fr.right, fr.down, fr.iod


def _opening(pts: np.ndarray, centre: np.ndarray, right: np.ndarray, down: np.ndarray,
             iod: float) -> tuple[float, float]:
    """:meth:`MouthBank.opening` of mesh points ``pts`` (float64 pixels) on their
    :func:`_frame_axes` (a painter that has them already does not find them again)."""
    up, lo = pts[list(UPPER_INNER)], pts[list(LOWER_INNER)]
    gap = float(np.mean(((lo - centre) @ down - (up - centre) @ down)[3:-3])) / iod
    return gap, float(np.linalg.norm(pts[291] - pts[61])) / iod


def lip_colour(image: np.ndarray, pts: np.ndarray) -> np.ndarray | None:
    """Median RGB of the lips (between the outer and inner contours), or None."""
    outer = np.concatenate([pts[list(UPPER_OUTER)], pts[list(LOWER_OUTER[::-1])]])
    inner = np.concatenate([pts[list(UPPER_INNER)], pts[list(LOWER_INNER[::-1])]])
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(outer.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(outer.max(axis=0)).astype(int) + 2, [w, h])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(outer - [x0, y0]).astype(np.int32)], 255)
    cv2.fillPoly(mask, [np.round(inner - [x0, y0]).astype(np.int32)], 0)
    px = image[y0:y1, x0:x1][mask > 0]
    return np.median(px, axis=0).astype(np.float32) if len(px) >= 10 else None


def _contour_vertices(up: np.ndarray, lo: np.ndarray, right: np.ndarray, down: np.ndarray,
                      margin: float) -> np.ndarray:
    """The warp's vertices: the inner contour (upper row, lower row without the shared
    corners) and the same pushed ``margin`` outwards (up, down, and out at the corners)."""
    up_m = up - down * margin
    lo_m = lo + down * margin
    up_m[0] = lo_m[0] = up[0] - right * margin
    up_m[-1] = lo_m[-1] = up[-1] + right * margin
    return np.concatenate([up, lo[1:-1], up_m, lo_m[1:-1]]).astype(np.float64)


def _strip_triangles(n: int) -> np.ndarray:
    """Triangles over :func:`_contour_vertices` for contour rows of ``n`` points."""
    m = n - 2  # lower-row points without the corners

    def upper(k: int) -> int:
        return k

    def lower(k: int) -> int:  # lower row shares the corners with the upper row
        return 0 if k == 0 else n - 1 if k == n - 1 else n + k - 1

    def upper_m(k: int) -> int:
        return n + m + k

    def lower_m(k: int) -> int:
        return upper_m(0) if k == 0 else upper_m(n - 1) if k == n - 1 else 2 * n + m + k - 1

    tris: list[tuple[int, int, int]] = []
    for a, b in ((upper_m, upper), (upper, lower), (lower, lower_m)):
        for k in range(n - 1):
            quad = (a(k), a(k + 1), b(k + 1), b(k))
            for tri in ((quad[0], quad[1], quad[2]), (quad[0], quad[2], quad[3])):
                if len(set(tri)) == 3:
                    tris.append(tri)
    return np.array(tris, np.int32)


_TRIANGLES = _strip_triangles(len(UPPER_INNER))


@dataclass(eq=False)
class MouthSample:
    """One view of the person's mouth, in the canonical frame."""

    crop: np.ndarray  # (H, W, 3) uint8
    upper: np.ndarray  # (11, 2) inner upper-lip contour, canonical pixels
    lower: np.ndarray  # (11, 2) inner lower-lip contour
    gap: float  # IOD
    width: float  # IOD (outer mouth corners)
    lip: np.ndarray  # RGB
    sharpness: float
    frame: int  # where in the recording it was seen
    # Which of the crop is drawn (H, W) float32 0..1 (the stock's tongue samples: only
    # the tongue); None: all of it.
    mask: np.ndarray | None = None


class MouthBank:
    """The kept samples and the canonical frame they are drawn in."""

    def __init__(self, samples: list[MouthSample], scale: float, usual_width: float) -> None:
        self.samples = sorted(samples, key=lambda s: s.gap)
        self.scale = float(scale)
        self.usual_width = float(usual_width)
        self._gaps = np.array([s.gap for s in self.samples], np.float64)
        self._widths = np.array([s.width for s in self.samples], np.float64)
        # A per-sample addition to the choosing cost (IOD): none for a person's own bank.
        self.bias = np.zeros(len(self.samples), np.float64)
        lips = np.array([s.lip for s in self.samples], np.float64).reshape(-1, 3)
        self.lip = np.median(lips, axis=0) if len(lips) else np.full(3, 128.0)

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def max_gap(self) -> float:
        return float(np.max(self._gaps)) if len(self._gaps) else 0.0

    # ------------------------------------------------------------------ choosing

    def choose(self, gap: float, width: float) -> list[tuple[MouthSample, float]]:
        """Samples and weights for an opening of ``gap`` and ``width`` (IOD); empty when
        none is near enough.

        The nearest sample (gap first, width second) and, when the asked gap lies
        between it and another similar sample, that one too, weighted linearly by gap
        (a smoothstep, so each is used alone near its own gap and blends are brief).
        """
        if not self.samples or gap < MIN_GAP * 0.5:
            return []
        cost = np.abs(self._gaps - gap) + WIDTH_WEIGHT * np.abs(self._widths - width) + self.bias
        a = int(np.argmin(cost))
        if abs(self._gaps[a] - gap) > max(MAX_GAP_MISS, MAX_GAP_MISS_SHARE * gap):
            return []
        side = np.sign(gap - self._gaps[a])
        other = np.flatnonzero(np.sign(self._gaps - gap) == -side) if side else np.array([])
        if not len(other):
            return [(self.samples[a], 1.0)]
        b = int(other[np.argmin(cost[other])])
        span = abs(self._gaps[b] - self._gaps[a])
        if span < 1e-6 or span > 2 * MAX_GAP_MISS:
            return [(self.samples[a], 1.0)]
        t = float(np.clip(abs(gap - self._gaps[a]) / span, 0.0, 1.0))
        t = t * t * (3.0 - 2.0 * t)
        if t < 0.02:
            return [(self.samples[a], 1.0)]
        return [(self.samples[a], 1.0 - t), (self.samples[b], t)]

    # ------------------------------------------------------------------ painting

    @staticmethod
    def opening(posed: np.ndarray) -> tuple[float, float]:
        """Lip gap (middle of the mouth) and mouth width of landmarks, in IOD units."""
        pts = np.asarray(posed, np.float64)[:MESH_POINTS, :2]
        return _opening(pts, *_frame_axes(pts))

    def fits(self, posed: np.ndarray) -> bool:
        """Whether the bank has a sample near the opening of ``posed``."""
        return bool(self.choose(*self.opening(posed)))

    def paint(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray,
              lip: np.ndarray | None = None, feather: float = 0.0,
              opacity: float = 1.0) -> bool:
        """Paint the interior of the opening between ``posed``'s inner lips (image pixels,
        468+ landmarks) into ``patch`` (its top-left at ``origin`` in the image) from the
        person's own samples; ``lip`` is this face's lip colour, to match colours to;
        ``feather`` (pixels) softens the edge inwards; ``opacity`` scales the cover (and a
        sample's ``mask`` limits it). Returns False (``patch`` untouched) when the bank
        has nothing near enough."""
        pts = np.asarray(posed, np.float64)[:MESH_POINTS, :2]
        axes = _frame_axes(pts)
        _, right, down, iod = axes
        up = pts[list(UPPER_INNER)]
        lo = pts[list(LOWER_INNER)]
        chosen = self.choose(*_opening(pts, *axes))
        if not chosen:
            return False
        poly = np.concatenate([up, lo[::-1]]) - np.asarray(origin, np.float64)
        target = _contour_vertices(up, lo, right, down, MARGIN * iod) - np.asarray(origin)
        x0, y0 = np.floor(target.min(axis=0)).astype(int) - 1
        x1, y1 = np.ceil(target.max(axis=0)).astype(int) + 2
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, patch.shape[1]), min(y1, patch.shape[0])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return False
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255,
                     lineType=cv2.LINE_AA, shift=4)
        if not mask.any():
            return False
        local = target - [x0, y0]
        out = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        cover = np.zeros((y1 - y0, x1 - x0), np.float32)
        for sample, weight in chosen:
            warped = self._warp(sample, local, (y1 - y0, x1 - x0))
            if warped is None:
                return False
            gain = self._gain(sample, lip)
            out += warped * (gain * weight)[None, None, :].astype(np.float32)
            if sample.mask is None:
                cover += weight
            else:
                held = MouthSample(np.repeat(sample.mask[..., None], 3, axis=2),
                                   sample.upper, sample.lower, sample.gap, sample.width,
                                   sample.lip, sample.sharpness, sample.frame)
                m = self._warp(held, local, (y1 - y0, x1 - x0))
                if m is None:
                    return False
                cover += m[..., 0] * weight
        alpha = mask.astype(np.float32) / 255.0
        if feather > 0.3:
            # A soft edge inside the lips for soft portraits: the mask is shrunk by about
            # the feather, then blurred by it, so nothing spills over the lips.
            k = int(round(feather))
            if k:
                alpha = cv2.erode(alpha, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
            alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
        if opacity != 1.0 or any(sample.mask is not None for sample, _ in chosen):
            alpha = alpha * cover * opacity
        alpha = alpha[..., None]
        region = patch[y0:y1, x0:x1]
        region[:] = np.clip(region * (1.0 - alpha) + out * alpha, 0, 255).astype(np.uint8)
        return True

    def _gain(self, sample: MouthSample, lip: np.ndarray | None) -> np.ndarray:
        """Per-channel colour gain from the sample's light to this frame's."""
        want = np.asarray(lip if lip is not None else self.lip, np.float64)
        return np.clip(want / np.maximum(np.asarray(sample.lip, np.float64), 1.0), *COLOUR_GAIN)

    def _warp(self, sample: MouthSample, target: np.ndarray, shape: tuple[int, int]
              ) -> np.ndarray | None:
        """The sample's crop warped so its contour (and margin) lands on ``target``."""
        canon = np.array([1.0, 0.0]), np.array([0.0, 1.0])
        src = _contour_vertices(sample.upper.astype(np.float64), sample.lower.astype(np.float64),
                                *canon, MARGIN * self.scale)
        d = target[_TRIANGLES]
        s = src[_TRIANGLES]
        ok = np.abs(_signed_area(d)) > 0.05
        if not ok.any():
            return None
        coef = _affine_coefficients(d[ok].astype(np.float32), s[ok].astype(np.float32))
        dx, dy, hit = _rasterise(d[ok], shape, coef, lambda g: g, lambda g: g)
        if not hit.any():
            return None
        # Pixels no triangle covers (outside the margin) read the nearest covered map.
        if not hit.all():
            _, labels = cv2.distanceTransformWithLabels(
                (~hit).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
            ys, xs = np.nonzero(hit)
            lut_x = np.zeros(labels.max() + 1, np.float32)
            lut_y = np.zeros(labels.max() + 1, np.float32)
            lut_x[labels[ys, xs]], lut_y[labels[ys, xs]] = dx[ys, xs], dy[ys, xs]
            dx, dy = lut_x[labels], lut_y[labels]
        gy, gx = np.mgrid[0: shape[0], 0: shape[1]].astype(np.float32)
        return cv2.remap(sample.crop, gx + dx, gy + dy, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)

    # ------------------------------------------------------------------ storage

    def save(self, path: PathLike, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Write the bank as one ``.npz`` (crops padded to the canonical window), with
        ``extra`` arrays beside it (the stock bank's colour references; ignored by load)."""
        path = Path(path)
        n, points = len(self.samples), len(UPPER_INNER)
        h, w = _window_shape(self.scale)
        crops = np.zeros((n, h, w, 3), np.uint8)
        for k, s in enumerate(self.samples):
            crops[k] = s.crop
        with path.open("wb") as fh:
            np.savez_compressed(
                fh, crops=crops, scale=np.float64(self.scale),
                usual_width=np.float64(self.usual_width),
                # The contour length is spelled out: an empty bank (a recording where the
                # mouth never opens) has no sample to infer it from.
                upper=np.array([s.upper for s in self.samples], np.float32).reshape(n, points, 2),
                lower=np.array([s.lower for s in self.samples], np.float32).reshape(n, points, 2),
                gap=np.array([s.gap for s in self.samples], np.float32),
                width=np.array([s.width for s in self.samples], np.float32),
                lip=np.array([s.lip for s in self.samples], np.float32).reshape(n, 3),
                sharpness=np.array([s.sharpness for s in self.samples], np.float32),
                frame=np.array([s.frame for s in self.samples], np.int64),
                # Any: numpy 2's stubs match ** against savez's allow_pickle flag
                **cast("dict[str, Any]", extra or {}))
        return path

    @staticmethod
    def load(path: PathLike) -> MouthBank:
        """Read a bank written by :meth:`save` (ValueError / OSError when broken)."""
        with np.load(Path(path)) as data:
            crops = data["crops"]
            n = len(crops)
            fields = {k: data[k] for k in ("upper", "lower", "gap", "width", "lip",
                                           "sharpness", "frame")}
            scale, usual = float(data["scale"]), float(data["usual_width"])
        if any(len(v) != n for v in fields.values()) or crops.ndim != 4:
            raise ValueError("mouth bank arrays disagree in length")
        samples = [MouthSample(crops[k], fields["upper"][k], fields["lower"][k],
                               float(fields["gap"][k]), float(fields["width"][k]),
                               fields["lip"][k], float(fields["sharpness"][k]),
                               int(fields["frame"][k])) for k in range(n)]
        return MouthBank(samples, scale, usual)


def _window_shape(scale: float) -> tuple[int, int]:
    return (int(round((WINDOW_TOP + WINDOW_BOTTOM) * scale)),
            int(round(2 * WINDOW_X * scale)))


class BankBuilder:
    """Collects mouth samples from tracked frames (one call per frame), then builds the bank.

    Not thread-safe; cheap enough to run in the tracking thread (a small affine warp
    and a Laplacian per kept candidate).
    """

    def __init__(self, every: int = 1, keep: set[int] | None = None) -> None:
        self.every = max(1, every)
        self.keep = keep  # only these frame indices (held-out evaluation), or all
        self.scale: float | None = None
        self._cells: dict[tuple[int, int], list[MouthSample]] = {}
        self._widths: list[float] = []
        self.offered = 0

    def offer(self, index: int, rgb: np.ndarray, landmarks: np.ndarray) -> None:
        """Consider frame ``index`` (RGB) with its raw mesh landmarks (pixels)."""
        if index % self.every or (self.keep is not None and index not in self.keep):
            return
        pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
        centre, right, down, iod = _frame_axes(pts)
        if iod < 8:
            return
        self.offered += 1
        width = float(np.linalg.norm(pts[291] - pts[61])) / iod
        self._widths.append(width)
        eyes = (pts[33] + pts[263]) / 2.0
        if abs(float((pts[1] - eyes) @ right)) / iod > MAX_YAW:
            return  # turned: the inner mouth shows from the side
        up, lo = pts[list(UPPER_INNER)], pts[list(LOWER_INNER)]
        gap = MouthBank.opening(pts)[0]
        if gap < MIN_GAP:
            return
        if self.scale is None:
            self.scale = float(np.clip(round(iod), *SCALE_RANGE))
        scale = self.scale
        cell = (int(gap // GAP_STEP), int(width // WIDTH_STEP))
        kept = self._cells.setdefault(cell, [])
        h, w = _window_shape(scale)
        # Canonical -> image: p = centre + (right * (u - cx) + down * (v - cy)) * iod / scale.
        k = iod / scale
        cx, cy = WINDOW_X * scale, WINDOW_TOP * scale
        m = np.array([[right[0] * k, down[0] * k, 0.0], [right[1] * k, down[1] * k, 0.0]])
        m[:, 2] = centre - m[:, :2] @ np.array([cx, cy])
        # Only the part of the frame under the window is read (and, for a face much larger
        # than the canonical scale, smoothed first: warpAffine has no area filter).
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64) @ m.T
        fh, fw = rgb.shape[:2]
        bx0, by0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, [fw, fh])
        bx1, by1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 3, 0, [fw, fh])
        if bx1 - bx0 < 4 or by1 - by0 < 4:
            return
        src = rgb[by0:by1, bx0:bx1]
        if k > 1.5:
            src = cv2.GaussianBlur(src, (0, 0), 0.5 * k)
        m_src = m.copy()
        m_src[:, 2] -= [bx0, by0]
        crop = cv2.warpAffine(src, m_src, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        inv = cv2.invertAffineTransform(m)

        def canon(p: np.ndarray) -> np.ndarray:
            return (p @ inv[:, :2].T + inv[:, 2]).astype(np.float32)

        cu, cl = canon(up), canon(lo)
        # Sharpness inside the opening: motion-blurred frames make smeared teeth.
        inner = np.concatenate([cu, cl[::-1]])
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(inner).astype(np.int32)], 255)
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
        if cv2.countNonZero(mask) < 12:
            return
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        sharp = float(cv2.Laplacian(grey, cv2.CV_32F)[mask > 0].var())
        if len(kept) >= PER_CELL and sharp <= min(s.sharpness for s in kept):
            return
        lip = lip_colour(rgb, pts)
        if lip is None:
            return
        kept.append(MouthSample(crop, cu, cl, gap, width, lip, sharp, index))
        if len(kept) > PER_CELL:
            kept.sort(key=lambda s: -s.sharpness)
            del kept[PER_CELL:]

    def build(self) -> MouthBank:
        """One sample per cell (the sharpest), for cells near the person's usual widths."""
        usual = float(np.median(self._widths)) if self._widths else 0.0
        samples = [max(kept, key=lambda s: s.sharpness) for kept in self._cells.values() if kept]
        return MouthBank(samples, self.scale or SCALE_RANGE[0], usual)


def interior_scores(reference: np.ndarray, candidate: np.ndarray, landmarks: np.ndarray
                    ) -> tuple[float, float]:
    """PSNR (dB) and SSIM (grey, Gaussian window) of ``candidate`` against ``reference``
    inside the opening between the inner lips of ``landmarks``: how close a rebuilt mouth
    interior is to the one the camera saw."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    poly = np.concatenate([pts[list(UPPER_INNER)], pts[list(LOWER_INNER[::-1])]])
    h, w = reference.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(axis=0)).astype(int) - 6, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 7, [w, h])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 255)
    inside = mask > 0
    if inside.sum() < 4:
        return float("nan"), float("nan")
    a = reference[y0:y1, x0:x1].astype(np.float64)
    b = candidate[y0:y1, x0:x1].astype(np.float64)
    mse = float(np.mean((a[inside] - b[inside]) ** 2))
    psnr = 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    weights = np.array([0.299, 0.587, 0.114])
    ga, gb = a @ weights, b @ weights

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (0, 0), 1.5)

    mu_a, mu_b = blur(ga), blur(gb)
    var_a = blur(ga * ga) - mu_a**2
    var_b = blur(gb * gb) - mu_b**2
    cov = blur(ga * gb) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1)
                                                        * (var_a + var_b + c2))
    return float(psnr), float(ssim[inside].mean())
