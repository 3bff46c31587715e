"""A static watermark or logo as an overlay model, and taking it off each frame.

A logo burned into a video is an overlay laid over every frame the same way:
``I = (1 - a) * B + a * L`` per pixel, with opacity ``a`` and colour ``L``
fixed while the background ``B`` changes. Where the logo is semi-transparent
the true background can be computed back, ``B = (I - a * L) / (1 - a)``,
which is exact up to codec noise, unlike painting a guess over it. Where it is
opaque (or the fit fails) its pixels are left to the temporal fill.

The model is estimated from frames sampled across the video:

* the logo's pixels are those of the temporal median that stand out from a
  median-filtered version of it (strokes and shapes thinner than the filter);
* opacity and colour come from a robust linear fit of pixels just inside the
  logo against pixels just outside it, over all samples: across the logo's
  edge the background barely changes, so ``inside = (1 - a) * outside + a * L``;
* anti-aliased edges get a per-pixel opacity from the same relation, against
  a background inpainted over the logo and one pixel round it (no wider: a
  guess from further away is worse than the faint edge it would take in);
  the logo's solid pixels all get its opacity, the median of its pixels'
  opacities around their most common value (a 0.02 error leaves 11 grey
  levels of ghost on black);
* a fitted colour within a few levels of white (or black) is taken as white (or
  black): the fit's colour strays that far on a white logo, and the error shows;
* on a still shot the inpainted background is wrong the same way in every
  sample, so opacity and colour are then calibrated across the logo's strokes,
  against a parabola through the clear picture on either side of each
  (:func:`_calibrated`), and the rim's background is guessed again between the
  picture outside and the picture recovered under the solid pixels.

The overlay is taken off the YUV planes (:class:`PlaneInversion`), since 4:2:0
chroma mixes logo and picture at the logo's edges, down to its faintest
anti-aliased rim (a fill there, smooth on grainy footage, drew an outline).

Only the strokes' inside is known to be fully covered; along their outline the
coverage is an estimate, and an error of a few percent there comes off as a dark
or bright outline. So the model also says, per pixel, how far a fill from the
well-recovered neighbours is to be trusted over the inversion (``doubt``: the
inversion's error against the fill's, from the picture's detail beside the logo)
and what that fill is off by on the whole (``fill_bias``);
:func:`facecast.cleanup.fill.repair_band` blends the two in each frame.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from scipy.special import ndtr

from facecast.cleanup.textmask import grow_mask

OverlayKind = Literal["semi-transparent", "opaque", "none"]
MAX_INVERT_ALPHA = 0.85  # above this, noise times 1 / (1 - a) is worse than a fill
MAX_ALPHA_SAMPLES = 16
FRINGE_ALPHA = 0.2  # of the logo's opacity: a pixel this covered next to it is its edge
SOLID = 0.85  # of the logo's opacity: estimates above are the logo's solid pixels
FAINTEST = 0.04  # of the logo's opacity: less is left alone (5% white is 13 grey levels)
FULL_SHARE = 0.6  # prior: the share of a logo's pixels that it covers fully
FULL_SPREAD = 0.02  # of the logo's opacity: a fully covered pixel's estimate strays this far
CHECK_ROUNDS = 3  # of leaving out solid pixels more likely partly covered, and guessing again
NEUTRAL_SNAP = 8.0  # grey levels per channel: a fitted colour this close to white is white
RIM_ITERATIONS = 40  # of the harmonic fill under the rim: 1-2 px wide, started from Telea
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as cv2 RGB2GRAY
TEXTURE_REACH = 4  # px round a pixel where the picture's detail is read (9x9)
DOUBT_MIN = 0.05  # a fill this little trusted over the inversion is not worth its cost
BAND_ITERATIONS = 24  # of the harmonic fill across the doubted band: a few pixels wide
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
_CROSS4 = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
ACROSS_SPAN = 5  # px at most between the clear pixels on either side of a stroke
FILL_SPAN = 9  # the same for the fill across a band of doubted pixels (letters' gaps too)
ACROSS_AGREE = 8.0  # grey levels: a stroke's two sides this close lie on one surface
ACROSS_MIN = 40  # fewer crossings of the logo's strokes than this: the fit stands
ACROSS_TRUST = 0.1  # of the fitted opacity: a calibration further off is not the logo's
ACROSS_SHIFT = 40.0  # grey levels: the most the colour's luma is moved by the calibration


@dataclass
class OverlayModel:
    """Where the logo is and how it was laid over the picture.

    ``x1, y1`` place the maps in the frame. ``alpha`` is the per-pixel opacity
    used for inversion (0 outside the logo); ``fixed`` marks pixels to fill
    instead (opaque ones).
    """

    x1: int
    y1: int
    alpha: np.ndarray
    colour: np.ndarray
    fixed: np.ndarray
    kind: OverlayKind
    opacity: float = 0.0
    fit_r2: float = 0.0
    info: dict[str, float] = field(default_factory=dict)
    doubt: np.ndarray | None = None  # per pixel, the weight of a fill from its neighbours
    fill_bias: np.ndarray | None = None  # grey levels that fill is off by, per pixel
    _plan: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape[0], self.alpha.shape[1]

    @property
    def pixels(self) -> int:
        return int(((self.alpha > 0) | self.fixed).sum())

    def remove(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rgb`` (the model's rectangle) with the overlay taken off where it can be,
        and the mask of pixels so recovered."""
        if self._plan is None:
            self._plan = self._prepare()
        invert, box, gain, offset = self._plan
        if box is None:
            return rgb, invert
        out = rgb.copy()
        part = out[box]
        recovered = np.clip(part.astype(np.float32) * gain + offset + 0.5, 0, 255)
        cv2.copyTo(recovered.astype(np.uint8), invert[box].view(np.uint8), part)
        return out, invert

    def crop(self, rows: slice, cols: slice) -> OverlayModel:
        """The part of this model at ``rows, cols`` of its maps."""
        return OverlayModel(self.x1 + (cols.start or 0), self.y1 + (rows.start or 0),
                            self.alpha[rows, cols], self.colour, self.fixed[rows, cols],
                            self.kind, self.opacity, self.fit_r2, dict(self.info),
                            None if self.doubt is None else self.doubt[rows, cols],
                            None if self.fill_bias is None else self.fill_bias[rows, cols])

    def _prepare(self) -> tuple[np.ndarray, tuple[slice, slice] | None, np.ndarray, np.ndarray]:
        # B = (I - a L) / (1 - a) = I * gain + offset, worked out once for the logo's box.
        invert = (self.alpha > 0) & ~self.fixed
        rows, cols = np.nonzero(invert.any(axis=1))[0], np.nonzero(invert.any(axis=0))[0]
        if rows.size == 0:
            return invert, None, np.zeros(0), np.zeros(0)
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        a = np.where(invert[box], self.alpha[box], 0.0).astype(np.float32)
        gain1 = 1.0 / (1.0 - a)
        gain = cv2.merge([gain1, gain1, gain1])
        offset = cv2.merge([-a * float(c) * gain1 for c in self.colour])
        return invert, box, gain, offset


def _yuv(colour: np.ndarray, sub: int) -> tuple[float, float, float]:
    """``colour`` (RGB) in the YUV that :mod:`facecast.cleanup.io` converts with."""
    rgb = np.full((2, 2, 3), np.clip(colour + 0.5, 0, 255).astype(np.uint8), np.uint8)
    if sub == 2:
        flat = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).ravel()
        return float(flat[0]), float(flat[4]), float(flat[5])
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)[0, 0]
    return float(yuv[0]), float(yuv[1]), float(yuv[2])


@dataclass
class PlaneInversion:
    """An overlay taken off the YUV planes of a region directly.

    Chroma of 4:2:0 video holds one sample per 2x2 pixels, so at a logo's edge
    it mixes logo and picture; inverting there with the block's mean opacity is
    right, while inverting RGB pixel by pixel leaves a coloured ghost.
    """

    rows: slice
    cols: slice
    sub: int
    where_y: np.ndarray
    gain_y: np.ndarray
    offset_y: np.ndarray
    where_c: np.ndarray
    gain_c: np.ndarray
    offset_u: np.ndarray
    offset_v: np.ndarray

    @classmethod
    def build(cls, alpha: np.ndarray, colour: np.ndarray, sub: int) -> PlaneInversion | None:
        """From a region-sized opacity map (0 where nothing is inverted)."""
        rows, cols = np.nonzero((alpha > 0).any(axis=1))[0], np.nonzero((alpha > 0).any(axis=0))[0]
        if rows.size == 0:
            return None
        h, w = alpha.shape
        y1, x1 = rows[0] // sub * sub, cols[0] // sub * sub
        y2 = min(h, -(-(rows[-1] + 1) // sub) * sub)
        x2 = min(w, -(-(cols[-1] + 1) // sub) * sub)
        a = alpha[y1:y2, x1:x2].astype(np.float32)
        yl, ul, vl = _yuv(colour, sub)
        gain = 1.0 / (1.0 - a)
        ac = a if sub == 1 else cv2.resize(a, ((x2 - x1) // 2, (y2 - y1) // 2),
                                           interpolation=cv2.INTER_AREA)
        gain_c = 1.0 / (1.0 - ac)
        return cls(slice(y1, y2), slice(x1, x2), sub, a > 0, gain, -a * yl * gain, ac > 0,
                   gain_c, -ac * ul * gain_c, -ac * vl * gain_c)

    def apply(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
        """Take the overlay off the region's planes (views into the frame), in place."""
        part = y[self.rows, self.cols]
        out = np.clip(part * self.gain_y + self.offset_y + 0.5, 0, 255).astype(np.uint8)
        np.copyto(part, out, where=self.where_y)
        s = self.sub
        crows = slice(self.rows.start // s, self.rows.stop // s)
        ccols = slice(self.cols.start // s, self.cols.stop // s)
        for plane, offset in ((u, self.offset_u), (v, self.offset_v)):
            cpart = plane[crows, ccols]
            out = np.clip(cpart * self.gain_c + offset + 0.5, 0, 255).astype(np.uint8)
            np.copyto(cpart, out, where=self.where_c)

    def inverted(self, shape: tuple[int, int]) -> np.ndarray:
        """The pixels this inversion recovers, as a region-sized mask."""
        out = np.zeros(shape, bool)
        out[self.rows, self.cols] = self.where_y
        return out


def _logo_pixels(med: np.ndarray, inside: np.ndarray, scale: int, lighter: bool) -> np.ndarray:
    """Pixels of the median image within ``inside`` that stand out from their surroundings
    on one side (``lighter`` or darker): a logo is laid on one way, while texture of the
    picture stands out both ways."""
    med8 = np.clip(med + 0.5, 0, 255).astype(np.uint8)
    k = max(5, scale) | 1
    background = cv2.medianBlur(med8, min(k, 255))
    signed = (med - background.astype(np.float32)).mean(axis=2)
    if inside.sum() < 16:
        return np.zeros_like(inside)
    dev = signed if lighter else -signed
    positive = np.clip(dev[inside], 0, 255).astype(np.uint8).reshape(-1, 1)
    otsu, _ = cv2.threshold(positive, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (dev > max(float(otsu), 12.0)) & inside
    return _drop_specks(mask)


def _drop_specks(mask: np.ndarray, smallest: int = 6) -> np.ndarray:
    """``mask`` without connected pieces under ``smallest`` pixels (noise, texture)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < smallest)
    small = small[small > 0]
    if small.size:
        mask = mask & ~np.isin(labels, small)
    return mask


def _backgrounds(stack: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples (at most MAX_ALPHA_SAMPLES) and each one's background inpainted over ``hole``."""
    picks = np.unique(np.linspace(0, len(stack) - 1, min(len(stack), MAX_ALPHA_SAMPLES))
                      .round().astype(int))
    hole8 = hole.astype(np.uint8) * 255
    frames, backgrounds = [], []
    for i in picks:
        frame = np.clip(stack[i] + 0.5, 0, 255).astype(np.uint8)
        backgrounds.append(cv2.inpaint(frame, hole8, 3, cv2.INPAINT_TELEA).astype(np.float32))
        frames.append(stack[i])
    return np.stack(frames), np.stack(backgrounds)


def _sample_opacities(frames: np.ndarray, bgs: np.ndarray, colour: np.ndarray
                      ) -> np.ndarray:
    """Per-sample, per-pixel opacity of an overlay of ``colour`` over ``bgs``; NaN where
    the background is too close to that colour to tell."""
    towards = colour - bgs
    norm = (towards * towards).sum(axis=-1)
    raw = ((frames - bgs) * towards).sum(axis=-1) / np.maximum(norm, 1.0)
    raw[norm < 3 * 24.0**2] = np.nan
    return raw


def _opacity(frames: np.ndarray, bgs: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per-pixel opacity (median over samples) of an overlay of ``colour``; NaN where the
    background is too close to that colour to tell."""
    raw = _sample_opacities(frames, bgs, colour)
    with warnings.catch_warnings():
        # Pixels with no usable sample at all are NaN, on purpose.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(raw, axis=0)


def _fit_line(inside: np.ndarray, background: np.ndarray
              ) -> tuple[float, np.ndarray] | None:
    """Robust fit of ``inside = slope * background + offset`` (one slope, an offset per
    channel), or None when the background varies too little to tell slope from offset."""
    if len(inside) > 60_000:
        pick = np.random.default_rng(0).choice(len(inside), 60_000, replace=False)
        inside, background = inside[pick], background[pick]
    keep = np.ones(len(inside), bool)
    slope, offset = 1.0, np.zeros(3, np.float32)
    for _ in range(3):
        x, y = background[keep], inside[keep]
        if len(x) < 20:
            return None
        xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)
        denom = float((xc * xc).sum())
        if denom / xc.size < 6.0**2:
            return None
        slope = float((xc * yc).sum() / denom)
        offset = (y.mean(axis=0) - slope * x.mean(axis=0)).astype(np.float32)
        resid = np.abs(inside - (slope * background + offset)).max(axis=1)
        keep = resid < max(3.0 * float(np.median(resid[keep])), 4.0)
    return slope, offset


def _fit_overlay(stack: np.ndarray, mask: np.ndarray, inside: np.ndarray
                 ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    """Colour and opacity of the overlay on ``mask``; also the samples used, their
    inpainted backgrounds and the hole those were inpainted over."""
    # One pixel round the logo, no more: a wider hole joins the letters and their frame
    # into one blob, and the background guessed across it from far away (across a
    # high-contrast edge, a striped wall) is off by more than a missed faint pixel costs
    # (a 55% logo on a blind-striped wall: 26.7 dB on its pixels with one pixel, 18.8
    # with two). The faint edge the first mask misses is added by _grow_support.
    hole = grow_mask(mask, 1) & inside
    frames, bgs = _backgrounds(stack, hole)
    # Start from white or black per channel, as the logo's pixels are brighter or darker
    # than the background around them; then fit opacity and colour on the logo's core.
    deviation = np.median((frames - bgs)[:, mask], axis=(0, 1))
    colour = np.where(deviation >= 0, 255.0, 0.0).astype(np.float32)
    for _ in range(3):
        alpha = _opacity(frames, bgs, colour)
        known = mask & ~np.isnan(alpha)
        if known.sum() < 8:
            break
        level = _plateau(alpha[known])
        core = known & (alpha >= 0.7 * level) & (alpha <= 1.3 * level)
        fit = _fit_line(frames[:, core].reshape(-1, 3), bgs[:, core].reshape(-1, 3))
        if fit is None:
            break
        slope, offset = fit
        if not 0.05 < 1.0 - slope < 0.95:
            break
        colour = np.clip(offset / (1.0 - slope), 0, 255).astype(np.float32)
    # The plateau from the unclipped opacities: clipped ones would pile up at exactly 1
    # and outvote a semi-transparent logo's plateau, spread by noise over a few bins, as
    # soon as a bright part of a still picture (a white van) lies in the box.
    raw = _opacity(frames, bgs, colour)[mask]
    return colour, _plateau(raw[~np.isnan(raw)]), frames, bgs, hole


def _core_aided(frames: np.ndarray, bgs: np.ndarray, hole: np.ndarray, alpha: np.ndarray,
                opacity: float, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backgrounds under the logo's anti-aliased rim guessed again, now between the
    picture outside and the picture recovered under the logo's solid pixels.

    Guessed from outside alone, the background under a letter is the picture a few
    pixels off: on a still shot of letters on a blind slat's falling edge it came out
    10-15 grey levels too bright in every sample, the rim's opacity 0.03-0.06 short and
    the letters' outline bright. Once the logo's opacity is known the solid pixels'
    background is exact, ``(I - a L) / (1 - a)``, so the rim lies between two known
    sides, and a harmonic fill (each pixel the mean of its four neighbours) across it is
    within 0.02 of its opacity (rms; 0.05-0.07 guessed from outside). Then each solid
    pixel is checked against its neighbours the same way, in a few rounds: a letter's
    edge 86-97% covered passes the first test, and taken as solid its background comes
    out 10-15 grey levels too dark, which darkens its neighbours' guesses too (their
    estimates 0.03-0.04 high); each round leaves out the pixels more likely partly
    covered than fully (:func:`_full_chance`) and guesses their background again.
    Next to a stroke's inside the outer layer starts out instead, and those of its
    pixels fully covered after all are taken back (the darkened guesses never happen).
    The pixels that only pass SOLID against these backgrounds are checked the same way.
    Returns the backgrounds, the pixels so left out (the letters' edges) and each
    pixel's opacity error from its samples' spread (of the logo's opacity).
    """
    solid = hole & (alpha >= SOLID * opacity) & (alpha <= (2.0 - SOLID) * opacity)
    edges = np.zeros_like(hole)
    spread = np.full(hole.shape, FULL_SPREAD, np.float32)
    if not solid.any() or not (hole & ~solid).any():
        return bgs, edges, spread
    ys, xs = np.nonzero(hole)
    rows = slice(max(0, ys.min() - 1), ys.max() + 2)
    cols = slice(max(0, xs.min() - 1), xs.max() + 2)
    recovered = (frames - opacity * colour) / (1.0 - opacity)
    # The solid pixels' outer layer (next to a pixel that is not solid along a row or a
    # column, and to the stroke's inside) is where a stroke's edge lies; start with it left
    # out, so that no edge pixel snapped to full darkens the guess of its neighbours, and
    # take back those that are fully covered after all (grainy Obama's edges -11 -> -8).
    core = solid & (cv2.erode(solid.view(np.uint8), _CROSS, borderValue=0) > 0)
    outer = solid & ~core & (cv2.dilate(core.view(np.uint8), _CROSS) > 0)
    # A stroke too thin to have an inside (a small logo's) has no such layer: its pixels
    # start in, and the rounds leave out those more likely partly covered.
    thin = solid & ~core & ~outer
    solid = core | thin
    out = bgs
    for _ in range(CHECK_ROUNDS + 1):
        out = _rim_fill(bgs, recovered, hole, solid, rows, cols)
        around = _neighbour_mean(out[:, rows, cols])
        told, error = _opacity_spread(frames[:, rows, cols], around, colour)
        chance = _full_chance(np.nan_to_num(told, nan=0.0) / opacity, error / opacity)
        full = np.zeros_like(solid)
        full[rows, cols] = chance >= 0.5
        want = core | (outer & full) | (thin & solid & full)
        spread[rows, cols] = error / opacity
        if np.array_equal(want, solid):
            break
        solid = want
    else:
        out = _rim_fill(bgs, recovered, hole, solid, rows, cols)
    edges = (outer | thin) & ~solid
    # The pixels not solid at first (estimated against the backgrounds from outside) that
    # come out above SOLID against these would be snapped to full unchecked: a thin
    # letter's top row on a slat's edge, 85-93 % covered, came off 8-16 grey levels dark.
    # They are checked as the others were.
    told, error = _opacity_spread(frames[:, rows, cols], _neighbour_mean(out[:, rows, cols]),
                                  colour)
    coverage = np.nan_to_num(told, nan=0.0) / opacity
    late = np.zeros_like(solid)
    late[rows, cols] = (coverage >= SOLID) & (_full_chance(coverage, error / opacity) < 0.5)
    edges |= late & hole & ~(core | outer | thin)
    return out, edges, spread


def _rim_fill(bgs: np.ndarray, recovered: np.ndarray, hole: np.ndarray, solid: np.ndarray,
              rows: slice, cols: slice) -> np.ndarray:
    """``bgs`` with the solid pixels' backgrounds recovered and the rest of the hole filled
    harmonically between them and the picture outside."""
    out = bgs.copy()
    out[:, solid] = recovered[:, solid]
    part, where = out[:, rows, cols], (hole & ~solid)[rows, cols]
    for _ in range(RIM_ITERATIONS):
        part[:, where] = _neighbour_mean(part)[:, where]
    return out


def _opacity_spread(frames: np.ndarray, bgs: np.ndarray, colour: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel opacity (median over samples, as :func:`_opacity`) and the standard error
    of that median from the samples' own (robust) spread."""
    raw = _sample_opacities(frames, bgs, colour)
    with warnings.catch_warnings():
        # Pixels with no usable sample at all are NaN, on purpose.
        warnings.simplefilter("ignore", RuntimeWarning)
        told = np.nanmedian(raw, axis=0)
        mad = np.nanmedian(np.abs(raw - told), axis=0)
    n = np.maximum((~np.isnan(raw)).sum(axis=0), 1)
    # 1.4826 MAD is the samples' standard deviation; the median's error is 1.2533 / sqrt(n)
    # of it.
    return told, 1.2533 * 1.4826 * np.nan_to_num(mad, nan=1.0) / np.sqrt(n)


def _full_chance(coverage: np.ndarray, error: np.ndarray) -> np.ndarray:
    """How likely a pixel whose estimated coverage (its opacity over the logo's) is
    ``coverage``, give or take ``error`` (the samples' part), is fully covered rather than
    partly: a posterior with FULL_SHARE of the logo's pixels fully covered and the rest
    spread evenly over (0, 1), and an error of at least FULL_SPREAD (the background's guess,
    off the same way in every sample of a still shot)."""
    s = np.sqrt(error**2 + FULL_SPREAD**2)
    t = np.minimum(coverage, 1.0)
    full = FULL_SHARE * np.exp(-0.5 * ((t - 1.0) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    partly = (1.0 - FULL_SHARE) * (ndtr((1.0 - t) / s) - ndtr(-t / s))
    return full / np.maximum(full + partly, 1e-12)


def _neighbour_mean(stack: np.ndarray) -> np.ndarray:
    """Each pixel's mean of its four neighbours (edges repeated), for a stack of images."""
    pad = np.pad(stack, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    return 0.25 * (pad[:, :-2, 1:-1] + pad[:, 2:, 1:-1] + pad[:, 1:-1, :-2] + pad[:, 1:-1, 2:])


def _crossings(solid: np.ndarray, clear: np.ndarray, span: int = ACROSS_SPAN
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines across the logo's strokes: for each ``solid`` pixel and direction (row, column,
    both diagonals) with ``clear`` picture on both sides within ACROSS_SPAN, the flat
    index of the solid pixel and of two clear pixels on each side, outermost first
    (shape (n, 4)), and their positions along the line (the solid pixel at 0)."""
    h, w = solid.shape
    ys, xs = np.nonzero(solid)
    at, idx, pos = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        found = []
        for sign in (1, -1):
            f = np.zeros(len(ys), int)
            for k in range(1, span):
                yy, xx = ys + sign * k * dy, xs + sign * k * dx
                ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w) & (f == 0)
                f[ok & clear[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]] = k
            found.append(f)
        fa, fb = found
        good = (fa > 0) & (fb > 0) & (fa + fb <= span)
        offsets = np.stack([-(fb + 1), -fb, fa, fa + 1], axis=1)
        yy, xx = ys[:, None] + offsets * dy, xs[:, None] + offsets * dx
        good &= ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)).all(axis=1)
        good &= clear[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)].all(axis=1)
        at.append((ys * w + xs)[good])
        idx.append((yy * w + xx)[good])
        pos.append(offsets[good])
    return np.concatenate(at), np.concatenate(idx), np.concatenate(pos).astype(np.float64)


def _quadratic_at_zero(pos: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Least-squares parabolas through (pos, values), row by row, evaluated at 0."""
    design = np.stack([np.ones_like(pos), pos, pos * pos], axis=2)  # (n, 4, 3)
    gram = np.einsum("nki,nkj->nij", design, design)
    rhs = np.einsum("nki,nk->ni", design, values)
    return np.linalg.solve(gram, rhs[..., None])[:, 0, 0]


def _calibrated(stack: np.ndarray, mask: np.ndarray, alpha: np.ndarray, opacity: float,
                colour: np.ndarray, inside: np.ndarray, weights: np.ndarray = LUMA
                ) -> tuple[float, np.ndarray] | None:
    """Opacity and colour made to agree with the picture right beside the logo's strokes,
    or None when too few strokes can be crossed.

    On a still shot nothing tells the fit's opacity and colour from the inpainted
    background's error, which is the same in every sample. Across a stroke the
    picture is continuous: a parabola through two clear pixels on either side
    (luma, averaged over the samples) is its background to a fraction of a grey level,
    where a straight line across the letters on Klobuchar's dark band between bright
    slats was 1.5 too bright, and guessing from all round 3-6. Only crossings whose two
    sides agree count (a stroke along a slat's edge says nothing). The colour's luma is
    then moved so that the recovered strokes meet that picture (the median over the
    crossings): the opacity stays, and with it the fit's consistency on a moving picture.
    Where that colour would pass white or black (a white logo: 258-260 on Klobuchar) the
    colour stays and the opacity is taken from the same crossings instead.
    """
    solid = mask & (alpha >= SOLID * opacity) & (alpha <= (2.0 - SOLID) * opacity)
    covered = mask | (grow_mask(mask, 1) & (alpha > FAINTEST * opacity))
    clear = inside & ~covered
    at, idx, pos = _crossings(solid, clear)
    if at.size < ACROSS_MIN:
        return None
    luma = (stack @ weights).reshape(len(stack), -1).mean(axis=0)
    values = luma[idx].astype(np.float64)
    agree = np.abs(values[:, 1] - values[:, 2]) <= ACROSS_AGREE
    if agree.sum() < ACROSS_MIN:
        return None
    beside = _quadratic_at_zero(pos[agree], values[agree])
    under = luma[at[agree]].astype(np.float64)
    ly = float(weights @ colour)
    want = float(np.median((under - (1.0 - opacity) * beside) / opacity))
    if 0.0 <= want <= 255.0:
        if abs(want - ly) > ACROSS_SHIFT:
            return None
        return opacity, np.clip(colour + (want - ly), 0, 255).astype(np.float32)
    towards = ly - beside
    # A background near the logo's own luma tells nothing about its opacity.
    ratio = (under - beside) / np.where(np.abs(towards) < 24.0, np.nan, towards)
    ratio = ratio[~np.isnan(ratio)]
    if ratio.size < ACROSS_MIN:
        return None
    told = float(np.median(ratio))
    if abs(told - opacity) > ACROSS_TRUST * opacity:
        return None
    return told, colour


def _refit_opacity(frames: np.ndarray, bgs: np.ndarray, mask: np.ndarray,
                   colour: np.ndarray) -> float:
    """The logo's opacity once its colour is fixed (as :func:`_fit_overlay` ends)."""
    raw = _opacity(frames, bgs, colour)[mask]
    return _plateau(raw[~np.isnan(raw)])


def _plateau(alpha: np.ndarray) -> float:
    """The logo's own opacity: the most common value of its pixels' opacities.

    Anti-aliased edges sit below it and picture texture that slipped into the
    mask scatters anywhere, but the logo's solid pixels all share one value.
    """
    values = alpha[(alpha > 0.05) & (alpha <= 1.0)]
    if values.size < 8:
        return float(np.percentile(alpha, 90)) if alpha.size else 0.0
    hist, edges = np.histogram(values, bins=50, range=(0.0, 1.0))
    smooth = np.convolve(hist.astype(np.float32), np.ones(3, np.float32) / 3, mode="same")
    peak = int(np.argmax(smooth))
    # The bin's centre is only good to a bin (0.02): on a black background an opacity
    # 0.02 short leaves the letters 11 grey levels bright. The median of the values
    # around the peak is as robust and not quantised.
    near = values[(values >= edges[max(0, peak - 2)]) & (values <= edges[min(50, peak + 3)])]
    return float(np.median(near))


def _grow_support(mask: np.ndarray, alpha: np.ndarray, opacity: float,
                  inside: np.ndarray) -> np.ndarray:
    """``mask`` with the pixels next to it that the overlay visibly covers added.

    The logo's pixels are first found as those standing out in the median
    image; the faint anti-aliased edge of each stroke does not, and left out of
    the hole it passes for background: every background guessed across the
    stroke comes out too close to the logo's colour, and the opacity too low;
    and outside the hole it is not taken off at all (on black, 15%-covered edge
    pixels left as they were drew the letters' outline 23 grey levels bright).
    """
    faint = (np.nan_to_num(alpha, nan=0.0) > FRINGE_ALPHA * opacity) & inside
    beside = cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return mask | _drop_specks(faint & beside)


def _polarity_fit(stack: np.ndarray, med: np.ndarray, inside: np.ndarray, scale: int,
                  lighter: bool) -> tuple | None:
    """(colour, opacity, frames, backgrounds, hole, mask, explained) of an overlay lighter
    (or darker) than the picture, or None when nothing stands out that way."""
    mask = _logo_pixels(med, inside, scale, lighter)
    if mask.sum() < 8:
        return None
    colour, opacity, frames, bgs, hole = _fit_overlay(stack, mask, inside)
    # Keep the pixels the fitted overlay explains (their opacity near the logo's): texture
    # of the picture that stood out too falls away here. Then fit once more on those.
    alpha = _opacity(frames, bgs, colour)
    consistent = mask & ((alpha >= 0.5 * opacity) & (alpha <= 1.6 * opacity) | np.isnan(alpha))
    consistent = _drop_specks(consistent)
    if 8 <= consistent.sum() < mask.sum():
        mask = consistent
        colour, opacity, frames, bgs, hole = _fit_overlay(stack, mask, inside)
    # Once: more rounds creep, a pixel at a time, along the picture's own bright structures
    # beside the logo (a blind's slats on a still shot fit the overlay as well as it).
    told = _opacity(frames, bgs, colour)
    # The pixels touching the mask at a corner only lie outside the hole, where the
    # background is the frame itself: guessed across a hole with them in, they can show
    # their coverage (a letter's terminal, an "s"'s hook, touches the strokes so; left out
    # it stayed 24-66 grey levels bright on Klobuchar's logo).
    corners = (cv2.dilate(mask.view(np.uint8), np.ones((3, 3), np.uint8)) > 0) & inside & ~hole
    if corners.any():
        _, wide = _backgrounds(stack, hole | corners)
        told = np.where(corners, _opacity(frames, wide, colour), told)
    grown = _grow_support(mask, told, opacity, inside)
    if grown.sum() > mask.sum():
        mask = grown
        colour, opacity, frames, bgs, hole = _fit_overlay(stack, mask, inside)
    alpha = np.clip(np.nan_to_num(_opacity(frames, bgs, colour), nan=0.0), 0.0, 1.0)
    # How much of the logo's deviation from the inpainted background the model explains.
    a = np.minimum(alpha, opacity)[None, :, :, None]
    model = (1 - a) * bgs + a * colour
    resid = float(((frames - model)[:, mask] ** 2).sum())
    total = float(((frames - bgs)[:, mask] ** 2).sum()) + 1e-6
    return colour, opacity, frames, bgs, hole, mask, 1.0 - resid / total


def estimate_overlay(samples: Sequence[np.ndarray], box: tuple[int, int, int, int],
                     origin: tuple[int, int] = (0, 0), luma: np.ndarray = LUMA) -> OverlayModel:
    """The overlay inside ``box`` (in the samples' coordinates) from RGB crops across the video.

    ``samples`` show the same rectangle in different frames, with some picture
    around ``box`` for context; ``origin`` is where that rectangle sits in the frame;
    ``luma`` the R, G, B weights of the video's luma (its matrix's; BT.601's by default).
    """
    if not samples:
        raise ValueError("estimate_overlay needs at least one sample")
    stack = np.stack(samples).astype(np.float32)
    h, w = stack.shape[1:3]
    bx1, by1, bx2, by2 = box
    inside = np.zeros((h, w), bool)
    inside[by1:by2, bx1:bx2] = True
    med = np.median(stack, axis=0)
    scale = round(0.4 * min(by2 - by1, bx2 - bx1))
    ox, oy = origin
    empty = np.zeros((h, w), np.float32)
    none = np.zeros((h, w), bool)
    # A logo lighter than the picture, or darker: try both. On a still shot dark windows
    # explain as well as a black logo, so a semi-transparent fit is preferred, and a
    # light one (far the most common watermark) unless a dark one fits clearly better.
    fits = []
    for lighter in (True, False):
        fit = _polarity_fit(stack, med, inside, scale, lighter)
        if fit is not None:
            semi = 0.08 <= fit[1] <= 0.92 and fit[6] >= 0.6
            score = fit[6] * float(np.sqrt(fit[5].sum())) * (1.3 if lighter else 1.0)
            fits.append((semi, score, fit))
    if not fits:
        return OverlayModel(ox, oy, empty, np.zeros(3, np.float32), none, "none")
    fits.sort(key=lambda f: (f[0], f[1]), reverse=True)
    colour, opacity, frames, bgs, hole, mask, explained = fits[0][2]
    neutral = np.round(colour.mean() / 255.0) * 255.0
    if np.all(np.abs(colour - neutral) <= NEUTRAL_SNAP):
        # White (or black) unless the fit says otherwise by more than NEUTRAL_SNAP: a white
        # logo's fitted colour strays a few levels (255, 255, 253.8 on a talking head), and
        # that alone left its letters 1.2 grey levels dark. A logo off white by more on any
        # channel (cream, pale yellow) keeps its fitted colour.
        colour = np.full(3, neutral, np.float32)
        opacity = _refit_opacity(frames, bgs, mask, colour)
    alpha = np.nan_to_num(_opacity(frames, bgs, colour), nan=0.0)
    edges = np.zeros_like(hole)
    spread = np.full(hole.shape, FULL_SPREAD, np.float32)
    if 0.08 <= opacity <= 0.92:
        # Against the inpainted background the fit is biased wherever that guess is, and on
        # a still shot the same way in every sample (letters on a dark band between bright
        # blind slats: 0.538 for 0.55). The picture right beside the strokes says it better.
        calibrated = _calibrated(stack, mask, alpha, opacity, colour, inside, luma)
        if calibrated is not None:
            opacity, colour = calibrated
            alpha = np.nan_to_num(_opacity(frames, bgs, colour), nan=0.0)
        # With the opacity known, the rim's background is guessed again between the picture
        # outside and the picture recovered under the solid pixels.
        bgs, edges, spread = _core_aided(frames, bgs, hole, alpha, opacity, colour)
        alpha = np.nan_to_num(_opacity(frames, bgs, colour), nan=0.0)
    alpha = np.clip(alpha, 0.0, 1.0)
    info = {"explained": explained, "pixels": float(mask.sum())}
    if opacity > 0.92 or opacity < 0.08 or explained < 0.6:
        # Opaque, or not an overlay the model explains: fill these pixels instead.
        fixed = grow_mask(mask, 1) & inside
        return OverlayModel(ox, oy, empty, np.zeros(3, np.float32), fixed, "opaque",
                            opacity=min(max(opacity, 0.0), 1.0), fit_r2=explained, info=info)
    # The logo's solid pixels share its opacity: noise in their estimates, clipped at the
    # opacity, would leave them all a little short (a faint bright copy of the letters).
    # Not the letters' edges that _core_aided found partly covered, though: snapped, an
    # edge 86-97% covered came off 10-15 grey levels too dark (a talking head's letters
    # 1.2 dark on the whole). They keep their own estimate, at most the logo's opacity.
    snap = (alpha >= SOLID * opacity) & ~edges
    alpha = np.where(edges, np.minimum(alpha, opacity), alpha)
    alpha[snap] = opacity
    alpha[~hole] = 0.0
    alpha[alpha < FAINTEST * opacity] = 0.0
    # Deep inside a large logo the inpainted background is a poor guess; the logo's
    # own opacity is the better one there.
    deep = mask & ~grow_mask(~mask, 2)
    alpha[deep] = opacity
    # The faint anti-aliased rim is inverted too, not filled: at an opacity of a few
    # percent an error in it costs little, while a fill there, smooth where the picture
    # is grainy, drew the letters' outline (and was further from the truth: 26.8 dB
    # against 29.9 dB on the rim of a logo over a grainy talking head).
    fixed = alpha > MAX_INVERT_ALPHA
    alpha[fixed] = 0.0
    doubt, bias = _doubt(frames, bgs, alpha, opacity, colour, spread, hole, inside, luma)
    return OverlayModel(ox, oy, alpha, colour, fixed, "semi-transparent", opacity=opacity,
                        fit_r2=explained, info=info, doubt=doubt, fill_bias=bias)


def _doubt(frames: np.ndarray, bgs: np.ndarray, alpha: np.ndarray, opacity: float,
           colour: np.ndarray, spread: np.ndarray, hole: np.ndarray, inside: np.ndarray,
           weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far to trust a fill from the neighbours over the inversion, per pixel (0-1).

    Only the strokes' inside is certain: a pixel whose four neighbours are all fully
    covered is fully covered too. Elsewhere the coverage is an estimate, off by its
    samples' spread and at least FULL_SPREAD (the background's guess), and the inversion
    turns a coverage error ``e`` into ``opacity * e * (L - B) / (1 - a)`` grey levels
    (10-15 along a stroke's outline 86-97% covered, taken as full). A fill from the
    neighbours is off by the picture's own detail at the scale of a pixel, read beside
    the logo: a few levels on a clean picture, the grain's on a grainy one. The weights
    are the two errors' shares, as for two independent estimates.
    """
    inverted = alpha > 0
    full = inverted & (alpha >= opacity * (1.0 - 1e-4))
    core = full & (cv2.erode(full.view(np.uint8), _CROSS, borderValue=0) > 0)
    luma = frames @ weights
    # Across a band two or three pixels wide: the picture at two pixels on either side.
    pad = np.pad(luma, ((0, 0), (2, 2), (2, 2)), mode="edge")
    lap = luma - 0.25 * (pad[:, :-4, 2:-2] + pad[:, 4:, 2:-2] + pad[:, 2:-2, :-4]
                         + pad[:, 2:-2, 4:])
    clear = inside & ~grow_mask(hole, 2)
    if clear.sum() < 16:
        return np.zeros(alpha.shape, np.float32), np.zeros(alpha.shape, np.float32)
    # The picture's detail near each pixel (the logo's own pixels left out): a block's edge
    # or a slat's beside a stroke makes a fill across it worse than anything the inversion
    # leaves, while a flat wall lets it be exact.
    power = np.where(clear, (lap**2).mean(axis=0), 0.0).astype(np.float32)
    k = (2 * TEXTURE_REACH + 1,) * 2
    total = cv2.boxFilter(power, -1, k, normalize=False, borderType=cv2.BORDER_REFLECT)
    count = cv2.boxFilter(clear.astype(np.float32), -1, k, normalize=False,
                          borderType=cv2.BORDER_REFLECT)
    overall = float(power[clear].mean())
    texture = np.sqrt(np.where(count >= 4, total / np.maximum(count, 1.0), overall))
    background = (bgs @ weights).mean(axis=0)
    contrast = np.abs(float(weights @ colour) - background)
    error = np.sqrt(spread**2 + FULL_SPREAD**2)
    levels = opacity * error * contrast / np.maximum(1.0 - alpha, 0.05)
    doubt = levels**2 / (levels**2 + np.maximum(texture, 0.5) ** 2)
    doubt[~inverted | core] = 0.0
    # What the harmonic fill gets wrong here, on the whole. It is a straight line across
    # a stroke, and letters in a dark trough between a blind's bright slats, or on the
    # falling edge of a light band, sit below that line: they were filled 2-4 grey levels
    # bright. A parabola through two known pixels on either side of the stroke, along the
    # directions where the two sides agree, follows the picture's curve (within 0.1-0.3 on
    # such walls); their difference on the recovered picture's mean over the samples is
    # what the fill is then corrected by, frame after frame.
    a = alpha[None, :, :, None]
    mean = (((frames - a * colour) / (1.0 - a)) @ weights).mean(axis=0)
    band = doubt > DOUBT_MIN
    known = ~band & (~inverted | core | (doubt <= DOUBT_MIN))
    bias = np.zeros(alpha.shape, np.float32)
    across, found = _across_fill(mean, band, known)
    if found.any():
        fill = harmonic_fill(mean[..., None], band)[..., 0]
        # Where no line crosses the band with both sides known, the correction of the
        # crossings nearby (it follows the picture's curve, which spans the logo).
        bias = _local_median(np.where(found, fill - across, np.nan), band, TEXTURE_REACH)
        bias[found] = (fill - across)[found]
    return doubt.astype(np.float32), bias


def _across_fill(image: np.ndarray, band: np.ndarray, known: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``image``'s ``band`` pixels guessed across the band from ``known`` pixels: a parabola
    through two on either side, along each direction where the two sides agree, averaged;
    and the pixels so guessed."""
    at, idx, pos = _crossings(band, known, FILL_SPAN)
    out = np.zeros(image.shape, np.float32)
    found = np.zeros(image.shape, bool)
    if at.size == 0:
        return out, found
    values = image.ravel()[idx].astype(np.float64)
    agree = np.abs(values[:, 1] - values[:, 2]) <= ACROSS_AGREE
    if not agree.any():
        return out, found
    guess = _quadratic_at_zero(pos[agree], values[agree])
    total = np.bincount(at[agree], guess, minlength=image.size)
    count = np.bincount(at[agree], minlength=image.size)
    flat = count > 0
    out.ravel()[flat] = total[flat] / count[flat]
    found.ravel()[flat] = True
    return out, found


def _local_median(values: np.ndarray, where: np.ndarray, reach: int) -> np.ndarray:
    """At each ``where`` pixel, the median of the ``values`` (NaN: none) within ``reach``
    (0 where fewer than 4 are known); 0 elsewhere."""
    out = np.zeros(values.shape, np.float32)
    for y, x in zip(*np.nonzero(where), strict=True):
        near = values[max(0, y - reach):y + reach + 1, max(0, x - reach):x + reach + 1]
        near = near[~np.isnan(near)]
        if near.size >= 4:
            out[y, x] = float(np.median(near))
    return out


def harmonic_fill(image: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """``image`` (float32, HxWxC) with its ``unknown`` pixels filled harmonically (each the
    mean of its four neighbours) from the rest, a band a few pixels wide at most."""
    fill = image.astype(np.float32).copy()
    where = np.repeat(unknown[..., None], fill.shape[2], axis=2)
    for _ in range(BAND_ITERATIONS):
        blurred = cv2.filter2D(fill, -1, _CROSS4, borderType=cv2.BORDER_REPLICATE)
        np.copyto(fill, blurred.reshape(fill.shape), where=where)
    return fill
