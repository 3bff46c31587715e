"""Closing eyelids: the upper lid drawn down over the eye while it blinks.

The mesh warp alone cannot close an eye: the triangles of the eye opening are
squashed into a streak of iris and sclera, and where they fold the warp keeps
the original pixels, so pupils show through as dark specks. So for each eye
with a blink value above zero this paints, in face-aligned coordinates (it
follows head roll) and only inside a small box round the eye:

- the eye under the lid: between the posed lid edge and the lower lid, the
  portrait's own unwarped eye, so a half-closed lid covers the iris rather
  than squashing it;
- the lid: from a little above the posed crease (above any lashes or liner
  that reach over it) down to the lid edge. Its colour starts as the skin just
  above it, where it fades in, so no seam shows, and turns on the way down into
  the portrait's own lid skin (measured once on the upper lid), lit a little
  rounder over the eyeball, shaded by the lashes at its margin, with grain as
  strong as the skin's round it;
- the lash line: a soft dark line of the portrait's lash colour along the lid
  edge, thickest towards the outer corner.

At full closure the lid edge meets the lower lid, so nothing of the eye shows.
Colours and grain are measured once per portrait; a frame without a blink
costs nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecast.render.rig import EYES, FaceFrame

# Blink values over which the painted lid and lash line fade in over the warped lid
# (below that the warp alone looks right: a slightly lowered real lid).
FADE_IN = (0.0, 0.4)
# Blink values over which the lid edge goes the last way down onto the lower lid,
# so that a full blink closes the eye to the pixel.
SEAL = (0.8, 1.0)
# The painted lid starts this far above the posed crease (fraction of the portrait's
# crease-to-lid height), so whatever the warp stretched below the crease (lashes,
# the crease's shadow) goes under it ...
TOP_EXTEND = 0.15
# ... or above dark lashes or eyeliner where they reach higher (up to this fraction):
# to the first pixel at least this bright (fraction of the lid skin's brightness).
TOP_EXTEND_MAX = 0.7
SKIN_LIKE = 0.45
# Above its top the lid fades out over at least this many pixels (or half its
# extension above the crease), over the skin whose colour it starts from: no seam.
TOP_SOFT_PX = 1.5
# The lid's colour turns from the skin above it into the lid's own skin colour over
# this fraction of its height (from its top).
SKIN_FROM = 0.6
SKIN_SHARE = 0.7  # the rest stays the light of the skin above (the lid is in its shade)
ABOVE_FLOOR = 0.6  # ... that light taken as at least this fraction of the lid skin's
# Where the lid skin is measured, as fractions of the source crease (0) to upper lid
# margin (1) distance: from above the crease down to above the lashes; the skin is
# taken between these percentiles of brightness (lashes, liner and shadows are darker,
# a brow-bone highlight brighter).
SKIN_BAND = (-0.5, 0.5)
SKIN_PERCENTILES = (30, 75)
# Shading of the closed lid: a soft highlight mid-lid (it is rounded over the eyeball)
# and the lashes' shadow on it just above their line (fractions of the skin colour).
HIGHLIGHT = 0.06
MARGIN_SHADOW = 0.3
# The lash line: width at its thickest (fraction of the eye's width, at least in
# pixels), its colour at most this fraction of the skin's, and its opacity.
LASH_WIDTH = 0.08
LASH_MIN_PX = 1.0
LASH_DARK = 0.3
LASH_ALPHA = 0.95
LASH_DROP = 0.25  # the line hangs this far (lash widths) below the lid edge
GRAIN_SIGMA = 1.2  # pixels: detail finer than this is the skin's grain
# The lid's grain, relative to the skin's round it (a stretched lid is smoother).
GRAIN_GAIN = 0.6
COLUMNS = 24  # lid colour samples across each eye


def _smoothstep(e0: float, e1: float, x: np.ndarray | float) -> np.ndarray:
    t = np.clip((np.asarray(x, np.float32) - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class _Eye:
    """One eye's lid colours, lash colour and skin grain, measured on the portrait."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, frame: FaceFrame,
                 eye: dict[str, tuple[int, ...]]) -> None:
        self.upper = list(eye["upper"])
        self.lower = list(eye["lower"])
        self.crease = list(eye["crease"])
        fr = frame
        pts = landmarks[:, :2].astype(np.float64)
        up, cr = _sorted(fr.local(pts[self.upper])), _sorted(fr.local(pts[self.crease]))
        self.width = float(up[-1, 0] - up[0, 0])
        # The outer corner is the one further from the face's midline (a = 0).
        self.outer_high = abs(float(up[-1, 0])) > abs(float(up[0, 0]))
        # The source contours (face coordinates), to find lid skin and grain by column.
        self.src_up, self.src_cr = up, cr
        a = np.linspace(up[0, 0], up[-1, 0], COLUMNS)
        u_b = np.interp(a, up[:, 0], up[:, 1])
        c_b = np.minimum(np.interp(a, cr[:, 0], cr[:, 1]), u_b - 1.0)
        v = np.linspace(*SKIN_BAND, 8)
        bb = c_b[None, :] + v[:, None] * (u_b - c_b)[None, :]
        aa = np.broadcast_to(a[None, :], bb.shape)
        samples = _sample(image, fr, aa, bb).reshape(len(v), COLUMNS, 3)
        lum = samples.mean(axis=2)
        # Lashes, the crease's shadow and any iris the landmarks let in are darker.
        lo, hi = np.percentile(lum, SKIN_PERCENTILES)
        keep = (lum >= lo) & (lum <= hi)
        self.skin = samples[keep].mean(axis=0) if keep.any() else np.median(
            samples.reshape(-1, 3), axis=0)
        # Light across the lid (one side may be in shade), smoothed, within +-15 %.
        col = np.array([np.median(lum[:, j][keep[:, j]]) if keep[:, j].any() else np.nan
                        for j in range(COLUMNS)])
        col = np.where(np.isfinite(col), col, np.nanmean(col) if np.isfinite(col).any() else 1.0)
        col = np.convolve(np.pad(col, 2, mode="edge"), np.ones(5) / 5, mode="valid")
        self.light_a = a
        self.light = np.clip(col / max(float(np.mean(col)), 1e-3), 0.85, 1.15)
        # How far dark lashes or liner reach above the crease points (they do on heavily
        # made-up eyes): the painted lid starts above them.
        steps = np.arange(0.0, float(np.max(u_b - c_b)) + 1.0)
        above = _sample(image, fr, np.broadcast_to(a, (len(steps), COLUMNS)),
                        c_b[None, :] - steps[:, None]).mean(axis=2)
        skin_like = above >= SKIN_LIKE * float(self.skin.mean())
        first = np.where(skin_like.any(axis=0), np.argmax(skin_like, axis=0), len(steps) - 1)
        padded = np.pad(first, 1, mode="edge")
        self.dark_above = np.maximum.reduce([padded[:-2], padded[1:-1], padded[2:]]).astype(
            np.float64)
        # Lash colour: the dark end of the upper lid margin.
        margin = _sample(image, fr, np.broadcast_to(a, (5, COLUMNS)),
                         u_b[None, :] + np.linspace(-0.06, 0.04, 5)[:, None] * self.width)
        mlum = margin.reshape(-1, 3).mean(axis=1)
        dark = margin.reshape(-1, 3)[mlum <= np.percentile(mlum, 20)]
        self.lash = np.minimum(dark.mean(axis=0), self.skin * LASH_DARK)
        # Grain: noise as strong and as fine as the lid skin's own detail. (The skin's
        # own pixels, moved down the lid, carry its lines along and print as stripes.)
        box = np.concatenate([pts[self.upper], pts[self.crease]])
        pad = 4
        h, w = image.shape[:2]
        x0, y0 = (max(int(v_), 0) for v_ in box.min(axis=0) - pad)
        x1, y1 = (min(int(v_), m) for v_, m in zip(box.max(axis=0) + pad, (w, h), strict=True))
        roi = image[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
        detail = roi - cv2.GaussianBlur(roi, (0, 0), GRAIN_SIGMA)
        # The median absolute detail (robust to the lashes' and crease's strong edges).
        self.grain_std = float(1.4826 * np.median(np.abs(detail))) if detail.size else 0.0
        side = int(np.ceil(self.width)) + 8
        noise = np.random.default_rng(side).standard_normal((side, side)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), 0.6)
        self.grain = noise * (GRAIN_GAIN * self.grain_std / max(float(noise.std()), 1e-6))


def _sorted(ab: np.ndarray) -> np.ndarray:
    return ab[np.argsort(ab[:, 0])]


def _sample(image: np.ndarray, fr: FaceFrame, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at face coordinates (a, b) in pixels."""
    xy = fr.origin + np.asarray(a)[..., None] * fr.right + np.asarray(b)[..., None] * fr.down
    mx = np.ascontiguousarray(xy[..., 0], np.float32).reshape(1, -1)
    my = np.ascontiguousarray(xy[..., 1], np.float32).reshape(1, -1)
    out = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(*np.shape(a), image.shape[2]).astype(np.float32)


class EyelidPainter:
    """Paints closing upper lids for one portrait (an RGB canvas and its landmarks)."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, frame: FaceFrame) -> None:
        self.image = image
        self.frame = frame
        self.eyes = {side: _Eye(image, landmarks, frame, EYES[side]) for side in EYES}

    def paint(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray,
              blinks: dict[str, float]) -> None:
        """Paint in place into ``patch`` (whose top-left is ``origin`` in the image) the
        lids of the eyes whose blink value (by side, as in ``EYES``) is above zero."""
        for side, value in blinks.items():
            if value > 0.0:
                self._paint_eye(patch, origin, posed, self.eyes[side], min(float(value), 1.0))

    def _paint_eye(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray,
                   eye: _Eye, blink: float) -> None:
        fr = self.frame
        up = _sorted(fr.local(posed[eye.upper]))
        lo = _sorted(fr.local(posed[eye.lower]))
        cr = _sorted(fr.local(posed[eye.crease]))
        lash_w = max(LASH_WIDTH * eye.width, LASH_MIN_PX)
        a0, a1 = float(up[0, 0]), float(up[-1, 0])
        # The lid and its lashes reach a little past the corners (over any corner pixel
        # of sclera the warp leaves there), fading in over that reach.
        reach = lash_w + 2.0
        seal = float(_smoothstep(*SEAL, blink))
        fade = float(_smoothstep(*FADE_IN, blink))

        def lines(at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
            """The painted lid's top, its edge, the lower lid and how soft the lid's top
            is (pixels) at columns ``at``."""
            lid = np.interp(at, up[:, 0], up[:, 1])
            bottom = np.interp(at, lo[:, 0], lo[:, 1])
            edge = np.minimum(lid + seal * np.maximum(bottom - lid, 0.0), bottom)
            top = np.minimum(np.interp(at, cr[:, 0], cr[:, 1]), edge - 1.0)
            band = np.interp(at, eye.src_up[:, 0], eye.src_up[:, 1]) - np.interp(
                at, eye.src_cr[:, 0], eye.src_cr[:, 1])
            band = np.maximum(band, 1.0)
            extend = np.clip(np.interp(at, eye.light_a, eye.dark_above) + 1.0,
                             TOP_EXTEND * band, TOP_EXTEND_MAX * band)
            top = top - extend * fade
            # The lid narrows towards the corners (almond-shaped, not a box).
            uu = (at - a0) / max(a1 - a0, 1.0)
            shape = 0.5 + 0.5 * _smoothstep(0.0, 0.08, uu) * _smoothstep(0.0, 0.08, 1 - uu)
            soft = np.maximum(TOP_SOFT_PX, 0.5 * extend * fade * shape)
            return edge - (edge - top) * shape, edge, bottom, soft

        # The box round all that is painted (image pixels, then in the patch).
        ak = np.linspace(a0 - reach - 1, a1 + reach + 1, 2 * COLUMNS)
        t_k, _, b_k, s_k = lines(ak)
        outline = np.concatenate([
            fr.origin + ak[:, None] * fr.right + (t_k - s_k - 4)[:, None] * fr.down,
            fr.origin + ak[:, None] * fr.right + (b_k + 2 * lash_w + 2)[:, None] * fr.down,
        ])
        ox, oy = origin
        x0, y0 = np.floor(outline.min(axis=0)).astype(int) - (ox, oy)
        x1, y1 = np.ceil(outline.max(axis=0) + 1).astype(int) - (ox, oy)
        x0, y0 = max(int(x0), 0), max(int(y0), 0)
        x1, y1 = min(int(x1), patch.shape[1]), min(int(y1), patch.shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        yy, xx = np.mgrid[y0 + oy : y1 + oy, x0 + ox : x1 + ox].astype(np.float32)
        rel_x, rel_y = xx - fr.origin[0], yy - fr.origin[1]
        a = rel_x * fr.right[0] + rel_y * fr.right[1]
        b = rel_x * fr.down[0] + rel_y * fr.down[1]
        u = (a - a0) / max(a1 - a0, 1.0)  # 0..1 corner to corner
        inside = np.clip((a - a0) + 0.5, 0, 1) * np.clip((a1 - a) + 0.5, 0, 1)
        inside_lid = _smoothstep(-reach, 0.0, a - a0) * _smoothstep(-reach, 0.0, a1 - a)
        top, edge, bottom, soft = lines(a)
        region = patch[y0:y1, x0:x1]
        out = region.astype(np.float32)

        # The eye under the lid: the portrait's own eye, unwarped, where it was open
        # in the portrait (below its own upper lid) and still is (above the lower lid).
        src_lid = np.interp(a, eye.src_up[:, 0], eye.src_up[:, 1])
        below = np.clip(b - np.maximum(edge, src_lid) + 0.5, 0, 1)
        above = np.clip(bottom - b + 0.5, 0, 1)
        m_eye = (below * above * inside)[..., None]
        src = self.image[y0 + oy : y1 + oy, x0 + ox : x1 + ox].astype(np.float32)
        out = out * (1 - m_eye) + src * m_eye

        # The lid: from above the crease to the lid edge. Its colour starts as the skin
        # just above it (so its top edge cannot show) and turns into the lid's own skin
        # colour on the way down; sealed, it reaches a little past the edge so no eye
        # pixel is left.
        v = (b - top) / np.maximum(edge - top, 1.0)
        cover = np.clip(edge + (0.6 + 0.5 * lash_w) * seal - b + 0.5, 0, 1)
        top_fade = _smoothstep(0.0, 1.0, (b - top) / soft + 1.0)  # soft above the top
        m_lid = (top_fade * cover * inside_lid * fade)[..., None]
        vc = np.clip(v, 0, 1)
        blend = SKIN_SHARE * _smoothstep(0.0, SKIN_FROM, vc)[..., None]
        above_col = self._above(out, (x0 + ox, y0 + oy), a, ak, t_k - s_k)
        # Not darker than the lid skin's shade: a brow, a glasses frame or a lash just
        # above the lid must not print as a dark band along its top.
        above_col = np.maximum(above_col, ABOVE_FLOOR * eye.skin)
        base = above_col * (1 - blend) + (eye.skin * np.interp(a, eye.light_a, eye.light)[
            ..., None]) * blend
        shade = 1.0 - HIGHLIGHT / 2 + HIGHLIGHT * np.sin(np.pi * vc)
        shade = shade * (1.0 - MARGIN_SHADOW * _smoothstep(0.75, 1.0, vc))
        skin = base * shade[..., None] + self._grain(eye, a, b, top)
        out = out * (1 - m_lid) + skin * m_lid

        # The lash line along the lid edge, hanging a little below it; thickest towards
        # the outer corner, thin at the inner one.
        outer = u if eye.outer_high else 1 - u
        taper = _smoothstep(0.0, 0.25, np.minimum(u, 1 - u) + 0.1) * (0.6 + 0.4 * outer)
        sigma = 0.5 * lash_w * np.maximum(taper, 0.35)
        d = b - (edge + LASH_DROP * lash_w * taper)
        m_lash = LASH_ALPHA * np.exp(-0.5 * (d / sigma) ** 2) * taper * inside_lid * fade
        out = out * (1 - m_lash[..., None]) + eye.lash[None, None, :] * m_lash[..., None]
        region[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)

    def _above(self, out: np.ndarray, corner: tuple[int, int], a: np.ndarray, ak: np.ndarray,
               t_k: np.ndarray) -> np.ndarray:
        """Per pixel (by its column ``a``), the colour of ``out`` (whose top-left is
        ``corner`` in the image) just above ``t_k`` (where the painted lid fades in) at columns
        ``ak``, smoothed along the lid (so a stray dark pixel there does not run down
        the lid as a streak)."""
        fr = self.frame
        # Three rows just above the top, then a running mean along the lid.
        rows_b = t_k[None, :] - 1.0 - np.arange(3.0)[:, None]
        xy = (fr.origin + ak[None, :, None] * fr.right + rows_b[..., None] * fr.down
              - np.asarray(corner))
        rows = cv2.remap(out, xy[..., 0].astype(np.float32), xy[..., 1].astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # The brightest of the three rows: a brow hair or a lash there is darker.
        best = np.argmax(rows.astype(np.float32).sum(axis=2), axis=0)
        cols = cv2.blur(rows[best, np.arange(rows.shape[1])][:, None, :].astype(np.float32),
                        (1, 5), borderType=cv2.BORDER_REPLICATE)[:, 0, :]
        pos = np.clip((a - ak[0]) / (ak[1] - ak[0]), 0, len(ak) - 1.001)
        i = pos.astype(np.int32)
        w = (pos - i)[..., None]
        return cols[i] * (1 - w) + cols[i + 1] * w

    @staticmethod
    def _grain(eye: _Eye, a: np.ndarray, b: np.ndarray, top: np.ndarray) -> np.ndarray:
        """The lid's grain, fixed to the lid (it slides down with it)."""
        x = (a - float(eye.src_up[0, 0]) + 2.0).astype(np.float32)
        y = np.maximum(b - top, 0.0).astype(np.float32)
        g = cv2.remap(eye.grain, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return g[..., None]
