"""Closing eyelids: the upper lid drawn down over the eye while it blinks.

The mesh warp alone cannot close an eye: the triangles of the eye opening are
squashed into a streak of iris and sclera, and where they fold the warp keeps
the original pixels, so pupils show through as dark specks. So for each eye
with a blink value above zero this paints, in face-aligned coordinates (it
follows head roll) and only inside a small box round the eye:

- the eye under the lid: between the posed lid edge and the lower lid, the
  portrait's own unwarped eye, so a half-closed lid covers the iris rather
  than squashing it;
- the lid: from above the posed crease (over the lit band of the lid's fold and
  any lashes or liner that reach over it, short of the brow) down to the lid
  edge. Its tone is filled in from the skin round the lid and the eye (a smooth
  membrane over them, from pixels as bright as skin, a shaded socket included,
  not darker lashes, brows or frames), so it meets the skin at every edge, runs
  from the socket's shade to the lower lid's light, and no patch shows; it fades
  in over a feather above its top, taking the fold line over the crease with it.
  On that tone: the portrait's own skin texture from under the eye, drawn out
  along the lid (fine folds) and fixed to it, fine grain as strong as the
  skin's, a little roundness over the eyeball and the lashes' shade at its
  margin;
- the lash line: a soft dark line of the portrait's lash colour along the lid
  edge, even along the lid and thinning only at the corners.

At full closure the lid edge comes down over the lower lid's rim, so nothing of the
eye shows and the lashes lie on the lower lid as on a real shut eye.
Colours, texture and grain are measured once per portrait; a frame without a
blink costs nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecast.render.rig import BROWS, EYES, FaceFrame

# Blink values over which the painted lid and lash line fade in over the warped lid
# (below that the warp alone looks right: a slightly lowered real lid).
FADE_IN = (0.0, 0.4)
# Blink values over which the lid edge goes the last way down onto the lower lid,
# so that a full blink closes the eye to the pixel.
SEAL = (0.8, 1.0)
# ... and past it by this fraction of the eye's width (about 3 mm on an adult eye): a
# shut lid's margin and its lashes lie over the lower lid's rim, below the line where
# the open eye's white meets the lower lid (which is where the landmarks put the lower
# lid). Meeting that line exactly, the shut eye read to a face mesh as a slit still
# open, 0.2-0.5 of the open eye on the narrow-eyed portraits (a real shut eye: 0.1).
# (0.1 left Mona Lisa's soft, wide lower-lid rim showing under the line as a slit, 0.15-0.18
# of her open eye across the lids; 0.12 covers it. More reads a little more open on the
# 256 px woman: bench/README.md, "fourth round".)
SEAL_OVERLAP = 0.12
# The painted lid starts this far above the posed crease (fraction of the portrait's
# crease-to-lid height), so whatever the warp stretched below the crease (lashes,
# the crease's shadow, the lit band of the lid's fold, which reaches a little above
# the crease points: at 0.15 it stayed on Mona Lisa as a light rim round the lid's top
# and lit its tone) goes under it, though never more than BROW_ROOM of the way to
# the brow ...
TOP_EXTEND = 0.5
TOP_EXTEND_MIN = 0.15  # (but at least this, as before, close under a brow)
# ... or above dark lashes or eyeliner where they reach higher (up to this fraction):
# to the first pixel at least this bright (fraction of the lid skin's brightness).
TOP_EXTEND_MAX = 0.7
SKIN_LIKE = 0.45
# Above its top the lid fades out over at least this many pixels (or half its
# extension above the crease), over the skin whose colour it starts from: no seam.
TOP_SOFT_PX = 1.5
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
# The lid's fine grain (seeded noise, fixed to the lid), relative to the skin's round it,
# on top of the texture below (which, drawn out along the lid, is smoother than skin).
GRAIN_GAIN = 0.6
# The dark above the crease the lid reaches over stops short of the brow: at most
# this fraction of the crease-to-brow distance.
BROW_ROOM = 0.2
# The lid's texture: the portrait's own skin detail under the eye (finer than this
# fraction of the eye's width, at least TEXTURE_MIN_PX), taken from this far below the
# lower lid (fraction of the eye's width: past the lower lashes) over a band this
# deep, reflected where the lid is deeper; clipped at this many robust deviations (a
# stray lash or mole must not print as a line or a spot on the lid).
TEXTURE_SIGMA = 0.02
TEXTURE_MIN_PX = 1.0
TEXTURE_FROM = 0.1
TEXTURE_BAND = 0.25
TEXTURE_ALONG = 0.04  # drawn out along the lid over this fraction of the eye's width
TEXTURE_CLIP = 2.0
TEXTURE_GAIN = 2.0
# The lid's tone is the surround's, filled in smoothly from outside the lid and eye
# (so it meets the skin round it at every edge), taken this much blurred (pixels) ...
FILL_BLUR = 1.0
# ... from the pixels round it as bright as skin: weighted in between these fractions
# of the lid skin's brightness at that column, as measured on the portrait (lashes,
# liner, brow hairs and glasses frames are darker). The lid skin is measured on the lit
# fold, so a shaded socket round it is often half as bright: from 0.55 up, Mona Lisa's
# socket did not count and her lid took the tone of the lit skin under the eye ...
SKIN_TONE = (0.35, 0.55)
# ... and not much brighter than it (the lit skin beside a lid in a hard shadow would
# light the lid): weighted down between these fractions.
LIT_TONE = (1.6, 2.2)
# ... and the lid fades in over this much more (fraction of the crease-to-lid height,
# at most BROW_ROOM of the way to the brow, at least FEATHER_MIN_PX) above its top:
# the line of the fold over the crease fades with it (a shut lid is unfolded).
FEATHER = 0.6
FEATHER_MIN_PX = 2.0
# The fill relaxes towards a smooth membrane this many times at each level of its
# pyramid from this one up (0: full size; pull-push alone leaves a flat plateau of the
# box's mean skin inside a wide hole, stepping to the skin at its edge: a lighter patch
# with a rim on a shaded socket). The plateau is a coarse-level thing: relaxing the two
# finest levels too changed the tone by under a grey level and doubled the fill's cost.
RELAX = 30
RELAX_FROM = 2
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
        self.light_a = a  # the columns of the per-column measures below
        # The lid skin's brightness by column, smoothed (one side may be in shade).
        col = np.array([np.median(lum[:, j][keep[:, j]]) if keep[:, j].any() else np.nan
                        for j in range(COLUMNS)])
        col = np.where(np.isfinite(col), col, np.nanmean(col) if np.isfinite(col).any()
                       else float(self.skin.mean()))
        self.light = np.convolve(np.pad(col, 2, mode="edge"), np.ones(5) / 5, mode="valid")
        # How far dark lashes or liner reach above the crease points (they do on heavily
        # made-up eyes): the painted lid starts above them.
        steps = np.arange(0.0, float(np.max(u_b - c_b)) + 1.0)
        above = _sample(image, fr, np.broadcast_to(a, (len(steps), COLUMNS)),
                        c_b[None, :] - steps[:, None]).mean(axis=2)
        skin_like = above >= SKIN_LIKE * float(self.skin.mean())
        first = np.where(skin_like.any(axis=0), np.argmax(skin_like, axis=0), len(steps) - 1)
        padded = np.pad(first, 1, mode="edge")
        dark_above = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:]).astype(
            np.float64)
        # ... but never into the brow (a dark brow close over a deep-set eye is not liner):
        # the lid would reach up to it and carry its tone.
        side_name = next(k for k, v in EYES.items() if v is eye)
        brow = _sorted(fr.local(pts[list(BROWS[side_name][5:])]))
        brow_room = np.maximum(c_b - np.interp(a, brow[:, 0], brow[:, 1]), 0.0)
        self.dark_above = np.minimum(dark_above, BROW_ROOM * brow_room)
        self.brow_cap = BROW_ROOM * brow_room  # how high the lid may reach, by column
        self.brow_room = float(np.median(brow_room))
        # Lash colour: the dark end of the upper lid margin.
        margin = _sample(image, fr, np.broadcast_to(a, (5, COLUMNS)),
                         u_b[None, :] + np.linspace(-0.06, 0.04, 5)[:, None] * self.width)
        mlum = margin.reshape(-1, 3).mean(axis=1)
        dark = margin.reshape(-1, 3)[mlum <= np.percentile(mlum, 20)]
        self.lash = np.minimum(dark.mean(axis=0), self.skin * LASH_DARK)
        h, w = image.shape[:2]
        # Grain: noise as strong and as fine as the lid skin's own detail.
        box = np.concatenate([pts[self.upper], pts[self.crease]])
        x0, y0 = (max(int(v_), 0) for v_ in box.min(axis=0) - 4)
        x1, y1 = (min(int(v_), m) for v_, m in zip(box.max(axis=0) + 4, (w, h), strict=True))
        roi = image[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
        detail = roi - cv2.GaussianBlur(roi, (0, 0), GRAIN_SIGMA)
        # The median absolute detail (robust to the lashes' and crease's strong edges).
        grain_std = float(1.4826 * np.median(np.abs(detail))) if detail.size else 0.0
        side = int(np.ceil(self.width)) + 8
        noise = np.random.default_rng(side).standard_normal((side, side)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), 0.6)
        self.grain = noise * (GRAIN_GAIN * grain_std / max(float(noise.std()), 1e-6))
        # Texture: the skin's own detail under the eye (below the lower lashes: no brow
        # hairs, liner or glasses there), as a map indexed by (column, depth below the
        # lid's top), so the lid carries it fixed to itself.
        self.band = float(np.median(u_b - c_b))
        sigma_t = max(TEXTURE_MIN_PX, TEXTURE_SIGMA * self.width)
        lo_src = _sorted(fr.local(pts[self.lower]))
        self.tex_a0 = float(up[0, 0]) - 0.3 * self.width
        at = np.arange(self.tex_a0, float(up[-1, 0]) + 0.3 * self.width, 1.0)
        c_t = np.interp(at, lo_src[:, 0], lo_src[:, 1]) + TEXTURE_FROM * self.width
        depth = np.arange(max(2.0, round(TEXTURE_BAND * self.width)))
        gray = image.astype(np.float32).mean(axis=2)
        xy = (fr.origin + at[None, :, None] * fr.right
              + (c_t[None, :] + depth[:, None])[..., None] * fr.down)
        bx0, by0 = np.floor(xy.reshape(-1, 2).min(axis=0) - 3 * sigma_t - 2).astype(int)
        bx1, by1 = np.ceil(xy.reshape(-1, 2).max(axis=0) + 3 * sigma_t + 2).astype(int)
        bx0, by0, bx1, by1 = max(bx0, 0), max(by0, 0), min(bx1, w), min(by1, h)
        roi_t = gray[by0:by1, bx0:bx1]
        det = roi_t - cv2.GaussianBlur(roi_t, (0, 0), sigma_t)
        tex = cv2.remap(det, (xy[..., 0] - bx0).astype(np.float32),
                        (xy[..., 1] - by0).astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT)
        # Drawn out along the lid (a shut lid's fine lines run along it, and a spot or a
        # pore under the eye must not print as a dark speck on it).
        tex = cv2.GaussianBlur(tex, (0, 0), sigmaX=max(TEXTURE_ALONG * self.width, 0.5),
                               sigmaY=0.1)
        lim = TEXTURE_CLIP * 1.4826 * float(np.median(np.abs(tex)) + 1e-3)
        self.texture = np.ascontiguousarray(
            TEXTURE_GAIN * np.clip(tex, -lim, lim) / max(float(gray[by0:by1, bx0:bx1].mean()), 1.0),
            np.float32)


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
            edge = np.minimum(lid + seal * np.maximum(bottom - lid, 0.0), bottom) + (
                seal * SEAL_OVERLAP * eye.width)
            top = np.minimum(np.interp(at, cr[:, 0], cr[:, 1]), edge - 1.0)
            band = np.interp(at, eye.src_up[:, 0], eye.src_up[:, 1]) - np.interp(
                at, eye.src_cr[:, 0], eye.src_cr[:, 1])
            band = np.maximum(band, 1.0)
            least = np.minimum(TOP_EXTEND * band, np.maximum(
                np.interp(at, eye.light_a, eye.brow_cap), TOP_EXTEND_MIN * band))
            extend = np.clip(np.interp(at, eye.light_a, eye.dark_above) + 1.0,
                             least, TOP_EXTEND_MAX * band)
            top = top - extend * fade
            # The lid narrows towards the corners (almond-shaped, not a box).
            uu = (at - a0) / max(a1 - a0, 1.0)
            shape = 0.5 + 0.5 * _smoothstep(0.0, 0.08, uu) * _smoothstep(0.0, 0.08, 1 - uu)
            soft = np.maximum(TOP_SOFT_PX, 0.5 * extend * fade * shape)
            return edge - (edge - top) * shape, edge, bottom, soft

        # The box round all that is painted (image pixels, then in the patch).
        # (with room round the lid and eye for the skin its tone is filled in from)
        feather = max(FEATHER_MIN_PX, min(FEATHER * eye.band, BROW_ROOM * eye.brow_room))
        ak = np.linspace(a0 - reach - feather - 3, a1 + reach + feather + 3, 2 * COLUMNS)
        t_k, _, b_k, s_k = lines(ak)
        outline = np.concatenate([
            fr.origin + ak[:, None] * fr.right + (t_k - s_k - feather - 4)[:, None] * fr.down,
            fr.origin + ak[:, None] * fr.right
            + (b_k + seal * SEAL_OVERLAP * eye.width + 2 * lash_w + 2)[:, None] * fr.down,
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
        # The lid's own fade at the corners, a little wider (its tone is the surround's,
        # so the wider fade cannot show; the lash line keeps inside_lid).
        wide_lid = _smoothstep(-reach - feather, 0.0, a - a0) * _smoothstep(
            -reach - feather, 0.0, a1 - a)
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

        # The lid: from above the crease to the lid edge; sealed, it reaches a little past
        # the edge so no eye pixel is left. Its tone is the skin round it, filled in
        # smoothly from outside the lid and the eye (a membrane over the hole: it meets
        # the surround at every edge, so no outline or band shows), fading in over a
        # feather above its top (which takes the crease's line with it); on that tone
        # the portrait's own skin texture from above the crease, mirrored down.
        v = (b - top) / np.maximum(edge - top, 1.0)
        cover = np.clip(edge + (0.6 + 0.5 * lash_w) * seal - b + 0.5, 0, 1)
        t_top = np.clip((b - top) / (soft + feather) + 1.0, 0.0, 1.0)  # per pixel: soft varies
        top_fade = t_top * t_top * (3.0 - 2.0 * t_top)
        m_lid = (top_fade * cover * wide_lid * fade)[..., None]
        # The hole: the lid, the open eye under it and the lower lash line.
        hole = (m_lid[..., 0] > 0.002) | (m_eye[..., 0] > 0) | (
            (b >= edge - 1.0) & (b <= bottom + lash_w + 1.0) & (wide_lid > 0))
        # Only skin counts: brow hairs, lashes, liner, a glasses frame or a dark corner
        # round the hole would tint the lid (a dark band along its top).
        low = cv2.GaussianBlur(out, (0, 0), FILL_BLUR)
        ref = np.maximum(np.interp(a, eye.light_a, eye.light), 1.0)
        lum = low.mean(axis=2) / ref
        known = (~hole).astype(np.float32) * _smoothstep(*SKIN_TONE, lum) * (
            1.0 - _smoothstep(*LIT_TONE, lum))
        if known.sum() >= 4:
            tone = _fill(low, known)
        else:  # no skin in the box (a tiny face): the lid skin measured once
            tone = np.broadcast_to(eye.skin, out.shape).astype(np.float32)
        vc = np.clip(v, 0, 1)
        shade = 1.0 - HIGHLIGHT / 2 + HIGHLIGHT * np.sin(np.pi * vc)
        shade = shade * (1.0 - MARGIN_SHADOW * _smoothstep(0.75, 1.0, vc))
        skin = tone * (shade + self._texture(eye, a, b, top))[..., None] + self._grain(
            eye, a, b, top)
        out = out * (1 - m_lid) + skin * m_lid

        # The lash line along the lid edge, hanging a little below it; as thick along the
        # whole lid as a shut eye's margin is, thinning only at the corners. (Thicker
        # towards the outer corner, as it was, the face mesh read its lower edge as a
        # second lid line on the paintings: a gap of 0.05-0.2 of the eye's width.)
        taper = _smoothstep(0.0, 0.25, np.minimum(u, 1 - u) + 0.1)
        sigma = 0.5 * lash_w * np.maximum(taper, 0.35)
        d = b - (edge + LASH_DROP * lash_w * taper)
        m_lash = LASH_ALPHA * np.exp(-0.5 * (d / sigma) ** 2) * taper * inside_lid * fade
        out = out * (1 - m_lash[..., None]) + eye.lash[None, None, :] * m_lash[..., None]
        region[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)

    @staticmethod
    def _texture(eye: _Eye, a: np.ndarray, b: np.ndarray, top: np.ndarray) -> np.ndarray:
        """The lid's texture (relative to its tone), fixed to the lid's top: depth 0 is
        the skin just above the crease, deeper rows mirror it up towards the brow."""
        x = (a - eye.tex_a0).astype(np.float32)
        y = np.abs(b - top).astype(np.float32)
        return cv2.remap(eye.texture, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


    @staticmethod
    def _grain(eye: _Eye, a: np.ndarray, b: np.ndarray, top: np.ndarray) -> np.ndarray:
        """The lid's grain, fixed to the lid (it slides down with it)."""
        x = (a - float(eye.src_up[0, 0]) + 2.0).astype(np.float32)
        y = np.maximum(b - top, 0.0).astype(np.float32)
        g = cv2.remap(eye.grain, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return g[..., None]


def _fill(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``image`` where ``known`` is 1, filled in smoothly elsewhere (pull-push: the
    known pixels averaged down a pyramid, the gaps filled from the coarser level on the
    way back up), so the fill meets the known pixels at the hole's edge."""
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    c, w = image * known[..., None], known
    while True:
        levels.append((c, w))
        h, wd = w.shape
        if min(h, wd) <= 2:
            break
        size = (max(wd // 2, 1), max(h // 2, 1))
        c = cv2.resize(c, size, interpolation=cv2.INTER_AREA)
        w = cv2.resize(w, size, interpolation=cv2.INTER_AREA)
        if c.ndim == 2:
            c = c[..., None]
    c, w = levels[-1]
    total = max(float(w.sum()), 1e-6)
    mean = (c.reshape(-1, c.shape[-1]).sum(axis=0) / total).astype(np.float32)
    val = np.where(w[..., None] > 1e-6, c / np.maximum(w, 1e-6)[..., None], mean)
    for level, (c, w) in reversed(list(enumerate(levels[:-1]))):
        up = cv2.resize(val, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        if up.ndim == 2:
            up = up[..., None]
        alpha = np.clip(2.0 * w, 0.0, 1.0)[..., None]
        fixed = alpha * (c / np.maximum(w, 1e-6)[..., None])
        val = fixed + (1 - alpha) * up
        free = 1 - alpha
        # Jacobi steps: the hole's pixels towards their neighbours' mean.
        for _ in range(RELAX if level >= RELAX_FROM else 0):
            val = fixed + free * cv2.blur(val, (3, 3), borderType=cv2.BORDER_REPLICATE).reshape(
                val.shape)
    return val.astype(np.float32)
