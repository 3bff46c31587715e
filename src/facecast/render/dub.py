"""Re-voicing a face in video: each source frame's mouth is closed, then moved by new speech.

Per frame, from that frame's (smoothed) landmarks:

1. the original mouth is neutralised: its jaw opening is estimated from the
   inner-lip gap and taken back with the rig's own jaw displacement (so the
   chin comes up with the lower lip; how much jaw goes with how much lip gap
   is calibrated per person, :func:`calibrate_jaw_cancel`), a change in mouth
   width from the person's usual width is taken back with the spread or round
   displacement, and whatever gap is left is closed by moving the inner lips
   onto their midline, as :class:`facecast.render.rig.FaceRig` does for
   open-lipped portraits. The points inside each lip follow its contour rows
   (:class:`LipBand`), so a lip moves as one piece;
2. the new mouth channels are added with the rig's displacement basis, built
   once for this face in its own frame (eye line, inter-ocular units) and
   turned and scaled with the face every frame;
3. only the lower face is warped: a fixed-topology mesh of the landmarks below
   the nose plus a still ring around the mouth, jaw and chin, so everything
   above the nose and outside the ring is the source pixel for pixel. Where
   the original mouth was open and the new one is shut, the triangles across
   the old opening collapse and the lips close over the old teeth; around the
   lips the map is exact per pixel, elsewhere it is upsampled from a grid;
4. the interior of the new opening is painted (:class:`MouthPainter`) in the
   colours of this person's teeth, mouth, lips and skin, then softened to the
   face's own sharpness, as is the line where the lips meet. With a mouth bank
   (a cloned video avatar, :mod:`facecast.render.mouth_bank`) the interior is
   the person's own, from the recording, wherever the bank has a sample near
   the new opening.

How much jaw is taken back depends on the new mouth too: a shut one needs only
the share :data:`SHUT_CANCEL` of the calibrated gain, a speaking one all of it
(see :func:`calibrate_jaw_cancel`).

:func:`morph_blend` cross-fades two frames of the same person with both heads
moved to the pose between them, for seamless loops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from facecast.face.analysis import FACE_OVAL
from facecast.motion.track import CHANNELS
from facecast.render.mouth import MouthPainter
from facecast.render.mouth_bank import MIN_GAP as MIN_OWN_GAP
from facecast.render.mouth_bank import MouthBank, lip_colour
from facecast.render.rig import (
    EYES,
    JAW_DROP,
    LOWER_INNER,
    LOWER_OUTER,
    MESH_POINTS,
    RIG_CHANNELS,
    UPPER_INNER,
    UPPER_LIP_LIFT,
    UPPER_OUTER,
    FaceFrame,
    FaceRig,
)
from facecast.render.warp import Region, _affine_coefficients, _signed_area

_CH = {name: RIG_CHANNELS.index(name) for name in RIG_CHANNELS}
_MOUTH = [RIG_CHANNELS.index(c) for c in CHANNELS]
_JAW = CHANNELS.index("jaw")
# Inner-lip pairs (upper, lower) from corner to corner; the corners themselves are shared.
_PAIRS = np.array(list(zip(UPPER_INNER, LOWER_INNER, strict=True))[1:-1])
_CENTRE_PAIRS = _PAIRS[2:-2]  # the five middle pairs: where the opening is measured
_OUTER_PAIRS = np.array(list(zip(UPPER_OUTER, LOWER_OUTER, strict=True))[1:-1])
_LIP_ROWS = np.array(sorted(set(UPPER_OUTER + LOWER_OUTER)))
_EYE_R = list(EYES["right"]["upper"] + EYES["right"]["lower"])
_EYE_L = list(EYES["left"]["upper"] + EYES["left"]["lower"])
# Points that carry the head's rigid motion: eyes, nose, brows, forehead, face outline.
_MORPH_POINTS = np.array([33, 133, 362, 263, 1, 4, 6, 168, 10, 70, 300, 234, 454, 127, 356,
                          152, 172, 397])

# The warped zone, in the face's own frame: origin between the eyes, x to the
# image-right along the eye line, y down, in inter-ocular units (IOD). The mouth
# sits near y 1.15, the nose tip near 0.65 and the chin near 2.0.
RING_X = 1.45
RING_TOP = 0.5
RING_BOTTOM = 2.55  # at most; else this far below the chin:
CHIN_MARGIN = 0.5
# Motion fades in from the nose tip to the upper lip: nothing above moves at all.
FADE_TOP = (0.66, 0.92)
# Gap in IOD units a closed mouth still shows to the mesh (lips pressed: slightly under 0).
CLOSED_GAP = 0.005
MAX_CANCEL_JAW = 2.5
# The jaw taken back depends on the new mouth: with it shut, this share of the calibrated
# gain (the shut-mouth calibration point, 1 / SPEECH_CANCEL); from a jaw channel of
# SPEAKING_JAW up, all of it (see calibrate_jaw_cancel).
SHUT_CANCEL = 1.0 / 1.45
SPEAKING_JAW = 0.1
WIDTH_CANCEL = 0.8  # fraction of the width change taken back (the rest reads as expression)
# Where the mesh topology is built the inner lips are at least this far apart (IOD), so
# that triangles span the opening rather than lying flat along it.
REFERENCE_GAP = 0.03
# The coarse map grid's longest side: displacement is smooth away from the lips, which
# get an exact per-pixel map of their own.
MAP_MAX_SIDE = 192
# Vertices that move less than this (pixels) count as still: a triangle of still
# vertices is left out of the warp (it is the source, pixel for pixel).
STILL_PX = 0.15
# Target triangles with less than this twice-area (pixels squared) count as collapsed.
MIN_TWICE_AREA = 0.5
# How far the jaw channel at 1 opens the middle of the lips (IOD), as the rig has it.
JAW_GAP = JAW_DROP + 0.6 * UPPER_LIP_LIFT


@dataclass(frozen=True)
class EyeFrame:
    """A face's frame from its eyes: ``origin`` between them, unit axes, IOD in pixels."""

    origin: np.ndarray
    right: np.ndarray
    down: np.ndarray
    iod: float

    def local(self, pts: np.ndarray) -> np.ndarray:
        """Image pixels -> face coordinates in IOD units."""
        rel = pts - self.origin
        return np.stack([rel @ self.right, rel @ self.down], axis=-1) / self.iod

    def to_image(self, vec: np.ndarray) -> np.ndarray:
        """Face-frame vectors in IOD units -> image vectors in pixels."""
        return (vec[..., :1] * self.right + vec[..., 1:2] * self.down) * self.iod

    def point(self, loc: np.ndarray) -> np.ndarray:
        """Face coordinates (IOD units) -> image pixels."""
        return self.origin + self.to_image(loc)


def eye_frame(landmarks: np.ndarray) -> EyeFrame:
    """The frame of a face from its eye contours (pixels, full image)."""
    pts = landmarks[:, :2].astype(np.float64)
    eye_r, eye_l = pts[_EYE_R].mean(axis=0), pts[_EYE_L].mean(axis=0)
    right = eye_l - eye_r
    iod = max(float(np.linalg.norm(right)), 1e-3)
    right /= iod
    return EyeFrame((eye_r + eye_l) / 2.0, right, np.array([-right[1], right[0]]), iod)


def mouth_gap(landmarks: np.ndarray) -> float:
    """Mean inner-lip gap over the middle of the mouth, in IOD units."""
    loc = eye_frame(landmarks).local(landmarks[:, :2].astype(np.float64))
    return float(np.mean(loc[_CENTRE_PAIRS[:, 1], 1] - loc[_CENTRE_PAIRS[:, 0], 1]))


def _mouth_width(loc: np.ndarray) -> float:
    return float(np.linalg.norm(loc[291] - loc[61]))


def _polyline_distance(pts: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of each point to a polyline (both in the same coordinates)."""
    a, b = line[:-1][None], line[1:][None]
    p = pts[:, None]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1).min(axis=1)


@dataclass(frozen=True)
class LipBand:
    """The landmarks inside each lip, between its inner and outer contour rows.

    The rig moves the rows; these points follow by interpolation (across the
    mouth along x, and from the inner row to the outer by ``t``), so a lip
    moves as one piece and never folds over its own middle.
    """

    index: np.ndarray
    upper: np.ndarray  # bool: in the upper lip
    x: np.ndarray  # face x (IOD units) at the reference
    t: np.ndarray  # 0 at the inner row, 1 at the outer row

    @staticmethod
    def of(loc: np.ndarray) -> LipBand:
        rows = set(UPPER_INNER + UPPER_OUTER + LOWER_INNER + LOWER_OUTER)
        outer = np.concatenate([loc[list(UPPER_OUTER)], loc[list(LOWER_OUTER[::-1])]])
        inner = np.concatenate([loc[list(UPPER_INNER)], loc[list(LOWER_INNER[::-1])]])
        idx = []
        for i in range(MESH_POINTS):
            if i in rows:
                continue
            q = (float(loc[i, 0]), float(loc[i, 1]))
            if (cv2.pointPolygonTest(outer.astype(np.float32), q, False) > 0
                    and cv2.pointPolygonTest(inner.astype(np.float32), q, False) <= 0):
                idx.append(i)
        index = np.array(idx, dtype=np.int64)
        pts = loc[index]
        d = {name: _polyline_distance(pts, loc[list(row)]) for name, row in (
            ("ui", UPPER_INNER), ("uo", UPPER_OUTER), ("li", LOWER_INNER), ("lo", LOWER_OUTER))}
        upper = d["ui"] + d["uo"] <= d["li"] + d["lo"]
        d_in = np.where(upper, d["ui"], d["li"])
        d_out = np.where(upper, d["uo"], d["lo"])
        t = d_in / np.maximum(d_in + d_out, 1e-9)
        return LipBand(index, upper, pts[:, 0].copy(), t)

    def follow(self, loc_x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Values at the band points from values at the four rows' points.

        ``rows`` is indexed like the landmarks (only the row entries are read);
        ``loc_x`` gives the rows' x positions. Returns one value per band point
        (``rows`` may carry trailing dimensions).
        """
        out = np.zeros((len(self.index), *rows.shape[1:]), np.float64)
        for upper, (inner, outer) in ((True, (UPPER_INNER, UPPER_OUTER)),
                                      (False, (LOWER_INNER, LOWER_OUTER))):
            sel = self.upper == upper
            if not sel.any():
                continue
            x, t = self.x[sel], self.t[sel]
            flat = rows.reshape(len(rows), -1)
            vals = []
            for row in (inner, outer):
                r = np.array(row)
                order = np.argsort(loc_x[r])
                xs = loc_x[r][order]
                vals.append(np.stack([np.interp(x, xs, flat[r[order], k])
                                      for k in range(flat.shape[1])], axis=1))
            v = vals[0] * (1.0 - t)[:, None] + vals[1] * t[:, None]
            out[sel] = v.reshape((int(sel.sum()), *rows.shape[1:]))
        return out


def _ring(bottom_y: float, per_side: int = 8) -> np.ndarray:
    """The still border of the warped zone, in face coordinates."""
    xs = np.linspace(-RING_X, RING_X, per_side + 1)
    ys = np.linspace(RING_TOP, bottom_y, per_side + 1)
    top = np.stack([xs, np.full_like(xs, RING_TOP)], 1)
    bottom = np.stack([xs, np.full_like(xs, bottom_y)], 1)
    left = np.stack([np.full_like(ys[1:-1], -RING_X), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], RING_X), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class DubRig:
    """The rig's channel displacements for one face, in that face's own frame.

    Built once from a reference pose (landmarks of a frame with the mouth
    nearly shut); :meth:`target` then gives, for any frame's landmarks, where
    each landmark goes for the new mouth channels.
    """

    def __init__(self, reference: np.ndarray, usual_width: float | None = None) -> None:
        ref = reference[:MESH_POINTS, :2].astype(np.float32)
        # How much jaw is taken back per unit of jaw the lip gap suggests: people open
        # their lips and drop their jaw in their own proportions (see calibrate_jaw_cancel).
        self.jaw_cancel = 1.0
        rig = FaceRig(ref)
        self.frame = eye_frame(ref)
        fr = self.frame
        # Rig basis (pixels at the reference) -> face frame, IOD units.
        b = rig.basis.astype(np.float64)
        self.basis = np.stack([b @ fr.right, b @ fr.down], axis=-1) / fr.iod
        self.basis[_CH["blink_left"]] = 0.0
        self.basis[_CH["blink_right"]] = 0.0
        loc = fr.local(ref.astype(np.float64))
        self.band = LipBand.of(loc)
        self._ref_x = loc[:, 0].copy()
        # The rig moves the lips' contour rows; the points inside each lip follow them.
        for c in range(len(RIG_CHANNELS)):
            self.basis[c, self.band.index] = self.band.follow(self._ref_x, self.basis[c])
        jaw, spread, rnd = (self.basis[_CH[c]] for c in ("jaw", "spread", "round"))
        # Guarded: on a tiny face the rig prunes sub-quarter-pixel motion to nothing.
        self._jaw_gap = max(float(np.mean(jaw[_CENTRE_PAIRS[:, 1], 1]
                                          - jaw[_CENTRE_PAIRS[:, 0], 1])), 0.05)
        self._spread_width = max(float((spread[291] - spread[61])[0]), 0.05)
        self._round_width = max(float((rnd[61] - rnd[291])[0]), 0.05)
        self.width = usual_width if usual_width else _mouth_width(loc)
        # Motion is allowed only below the nose (and fades in from it).
        self._fade = _smoothstep(*FADE_TOP, loc[:, 1])[:, None]

    def neutral(self, loc: np.ndarray, speaking: float = 1.0) -> np.ndarray:
        """Face coordinates of ``loc`` with the mouth closed and at its usual width.

        ``speaking`` (0..1) says how far the new mouth will open: a shut one needs
        only the share :data:`SHUT_CANCEL` of the jaw taken back (see
        :func:`calibrate_jaw_cancel`); more would lift the chin as the original opens.
        """
        gap = float(np.mean(loc[_CENTRE_PAIRS[:, 1], 1] - loc[_CENTRE_PAIRS[:, 0], 1]))
        out = loc.copy()
        cancel = self.jaw_cancel * (SHUT_CANCEL + (1.0 - SHUT_CANCEL) * speaking)
        jaw = np.clip((gap - CLOSED_GAP) / self._jaw_gap * cancel, 0.0, MAX_CANCEL_JAW)
        out -= jaw * self.basis[_CH["jaw"]]
        d_width = (_mouth_width(out) - self.width) * WIDTH_CANCEL
        if d_width > 0:
            out -= (d_width / self._spread_width) * self.basis[_CH["spread"]]
        elif d_width < 0:
            out -= (-d_width / self._round_width) * self.basis[_CH["round"]]
        # What is left of the gap: inner lips onto their midline, the outer lips half way,
        # the inside of each lip in between.
        up, lo = _PAIRS[:, 0], _PAIRS[:, 1]
        mid = (out[up, 1] + out[lo, 1]) / 2.0
        shift = np.zeros(len(out))
        shift[up], shift[lo] = mid - out[up, 1], mid - out[lo, 1]
        shift[_OUTER_PAIRS[:, 0]] = 0.5 * shift[up]
        shift[_OUTER_PAIRS[:, 1]] = 0.5 * shift[lo]
        shift[self.band.index] = self.band.follow(self._ref_x, shift)
        out[:, 1] += shift
        return out

    def target(self, loc: np.ndarray, mouth: np.ndarray) -> np.ndarray:
        """Face coordinates of the landmarks ``loc`` speaking ``mouth`` (``CHANNELS`` order)."""
        values = np.zeros(len(RIG_CHANNELS), np.float32)
        values[_MOUTH] = mouth
        speaking = float(_smoothstep(0.0, SPEAKING_JAW, np.array(mouth[_JAW])))
        # einsum, not tensordot: a (13 x 936) product goes to OpenBLAS's threaded gemv,
        # whose worker then spins for a while after every frame (measured: +7 ms of CPU
        # per 720p frame on 2 cores, taken from the encoder).
        posed = self.neutral(loc, speaking) + np.einsum("c,cpk->pk", FaceRig.weights(values),
                                                        self.basis)
        # Lips never pass through each other: a fold would turn the warp inside out.
        up, lo = _PAIRS[:, 0], _PAIRS[:, 1]
        cross = posed[lo, 1] < posed[up, 1]
        if cross.any():
            mid = (posed[lo[cross], 1] + posed[up[cross], 1]) / 2.0
            posed[lo[cross], 1] = mid
            posed[up[cross], 1] = mid
        return loc + (posed - loc) * self._fade


class DubWarper:
    """Piecewise-affine warp of the lower face with per-frame source and target vertices.

    The topology is fixed once, from the reference pose with the mouth a little
    open (so that triangles span the opening and can collapse or grow), over
    the landmarks inside the zone plus its still ring.
    """

    def __init__(self, reference_local: np.ndarray) -> None:
        # The zone ends a little below the chin (the jaw drops at most ~0.25 IOD): a
        # head tilted back brings the chin closer to the eyes, and the neck below it
        # must stay the source.
        self.bottom = float(min(RING_BOTTOM, reference_local[152, 1] + CHIN_MARGIN))
        ring = _ring(self.bottom)
        x, y = reference_local[:, 0], reference_local[:, 1]
        # Points close to the ring would flip their thin triangles with small head turns.
        inside = ((np.abs(x) < RING_X - 0.1) & (y > RING_TOP + 0.12)
                  & (y < self.bottom - 0.04))
        self.index = np.flatnonzero(inside)
        self.ring = ring
        verts = np.concatenate([reference_local[self.index], ring])
        tris = Delaunay(verts).simplices.astype(np.int32)
        area = _signed_area(verts[tris])
        keep = np.abs(area) > 1e-6
        self.triangles = tris[keep]
        self.orientation = np.sign(area[keep])
        # Triangles across the opening (all corners on the inner lips) take their pixels
        # from the upper lip's inner edge, not from whatever the source mouth shows
        # inside: the lower-lip corners read at their upper partners in the source.
        vertex_of = {int(lm): v for v, lm in enumerate(self.index)}
        inner = set(UPPER_INNER) | set(LOWER_INNER)
        on_inner = np.array([v < len(self.index) and int(self.index[v]) in inner
                             for v in range(len(verts))])
        self.across = on_inner[self.triangles].all(axis=1)
        self.partner = np.arange(len(verts))
        for up, lo in zip(UPPER_INNER, LOWER_INNER, strict=True):
            if up in vertex_of and lo in vertex_of:
                self.partner[vertex_of[lo]] = vertex_of[up]

    def region(self, fr: EyeFrame, width: int, height: int) -> Region | None:
        corners = fr.point(np.array([[-RING_X, RING_TOP], [RING_X, RING_TOP],
                                     [-RING_X, self.bottom], [RING_X, self.bottom]]))
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
        r = Region(max(0, x0), max(0, y0), min(width, x1), min(height, y1))
        return r if r.width >= 4 and r.height >= 4 else None

    def warp(self, image: np.ndarray, region: Region, src: np.ndarray, dst: np.ndarray,
             fine: Region | None = None) -> np.ndarray | None:
        """``region`` of ``image`` with the points at ``src`` moved to ``dst`` (pixels,
        vertex order of :attr:`index` then the ring); None when nothing moves.

        The maps are built on a grid of at most ``MAP_MAX_SIDE`` pixels and
        upsampled, except inside ``fine`` (the lips), where they are exact per
        pixel: where lips close over an open mouth the map jumps from the upper
        lip to the lower, and an upsampled map would show what lies between.
        """
        moving = np.abs(dst - src).max(axis=1) > STILL_PX
        tri_moving = moving[self.triangles].any(axis=1)
        if not tri_moving.any():
            return None
        tris = self.triangles[tri_moving]
        d = dst[tris]
        s = np.where(self.across[tri_moving][:, None, None], src[self.partner[tris]], src[tris])
        # A triangle the target flips, or squashes to (nearly) nothing, is left out: its
        # affine map would be ill-conditioned. Left-out pixels in the lips' exact box
        # take their neighbour's map (below); elsewhere they keep the identity.
        area = _signed_area(d)
        ok = (np.sign(area) == self.orientation[tri_moving]) & (np.abs(area) > MIN_TWICE_AREA)
        if not ok.any():
            return None
        origin = np.array([region.x0, region.y0], np.float64)
        d_local = d[ok] - origin
        coef = _affine_coefficients(d_local.astype(np.float32), (s[ok] - origin).astype(np.float32))
        scale = min(1.0, MAP_MAX_SIDE / max(region.width, region.height))
        gw, gh = max(2, round(region.width * scale)), max(2, round(region.height * scale))
        sx, sy = gw / region.width, gh / region.height
        lo, hi = d_local.min(axis=1), d_local.max(axis=1)
        coarse = np.ones(len(d_local), bool)
        if fine is not None and scale < 1.0:
            # Triangles well inside the exact box need no coarse map.
            fx0, fy0 = fine.x0 - region.x0, fine.y0 - region.y0
            fx1, fy1 = fine.x1 - region.x0, fine.y1 - region.y0
            m = 2.0 / scale
            coarse = ~((lo[:, 0] > fx0 + m) & (lo[:, 1] > fy0 + m)
                       & (hi[:, 0] < fx1 - m) & (hi[:, 1] < fy1 - m))
        # Grid point g stands for region coordinate (g + 0.5) / s - 0.5, as cv2.resize has it.
        dx, dy, _ = _rasterise((d_local[coarse] + 0.5) * np.array([sx, sy]) - 0.5, (gh, gw),
                               coef[coarse], lambda g: (g + 0.5) / sx - 0.5,
                               lambda g: (g + 0.5) / sy - 0.5)
        size = (region.width, region.height)
        if (gw, gh) != size:
            dx = cv2.resize(dx, size, interpolation=cv2.INTER_LINEAR)
            dy = cv2.resize(dy, size, interpolation=cv2.INTER_LINEAR)
        if fine is not None and scale < 1.0:
            fx0, fy0 = max(fine.x0 - region.x0, 0), max(fine.y0 - region.y0, 0)
            fx1, fy1 = min(fine.x1 - region.x0, region.width), min(fine.y1 - region.y0,
                                                                   region.height)
            near = ((hi[:, 0] >= fx0) & (lo[:, 0] < fx1) & (hi[:, 1] >= fy0) & (lo[:, 1] < fy1))
            if fx1 - fx0 > 1 and fy1 - fy0 > 1 and near.any():
                fdx, fdy, hit = _rasterise(d_local[near] - np.array([fx0, fy0]),
                                           (fy1 - fy0, fx1 - fx0), coef[near],
                                           lambda g: g + float(fx0), lambda g: g + float(fy0))
                fdx, fdy = _fill_holes(fdx, fdy, hit)
                box = (slice(fy0, fy1), slice(fx0, fx1))
                dx[box], dy[box] = fdx, fdy
        # Sample from the whole frame, not just the region: a target near the region's
        # edge may pull pixels from just outside it.
        dx += np.arange(region.x0, region.x1, dtype=np.float32)[None, :]
        dy += np.arange(region.y0, region.y1, dtype=np.float32)[:, None]
        return cv2.remap(image, dx, dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _fill_holes(dx: np.ndarray, dy: np.ndarray, hit: np.ndarray, passes: int = 3
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pixels no triangle covered (collapsed slivers along the closed lips) copy the map
    of the covered pixel above or below. Never an average: across the lips the map
    jumps, and a mean would read from the middle of the old opening."""
    hit = hit.copy()
    for _ in range(passes):
        if hit.all():
            break
        for shift in (1, -1):
            src_rows = slice(0, -1) if shift == 1 else slice(1, None)
            dst_rows = slice(1, None) if shift == 1 else slice(0, -1)
            take = ~hit[dst_rows] & hit[src_rows]
            for m in (dx, dy):
                m[dst_rows][take] = m[src_rows][take]
            hit[dst_rows] |= take
    return dx, dy


def _rasterise(tri: np.ndarray, shape: tuple[int, int], coef: np.ndarray,
               to_x: Callable[[np.ndarray], np.ndarray], to_y: Callable[[np.ndarray], np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement maps on a grid: each cell takes the affine map of the triangle
    (``tri`` in grid coordinates) that covers it; ``to_x``/``to_y`` turn grid columns
    and rows into the region coordinates that ``coef`` works in."""
    ids = np.full(shape, -1, np.int32)
    pts = np.round(tri * 16).astype(np.int32)  # 4 fractional bits for fillConvexPoly
    for t, corners in enumerate(pts):
        cv2.fillConvexPoly(ids, corners, t, cv2.LINE_8, 4)
    hit = ids >= 0
    dx = np.zeros(shape, np.float32)
    dy = np.zeros(shape, np.float32)
    if hit.any():
        gy, gx = np.nonzero(hit)
        rx, ry = to_x(gx.astype(np.float32)), to_y(gy.astype(np.float32))
        k = ids[gy, gx]
        dx[gy, gx] = rx * coef[k, 0, 0] + ry * coef[k, 1, 0] + coef[k, 2, 0] - rx
        dy[gy, gx] = rx * coef[k, 0, 1] + ry * coef[k, 1, 1] + coef[k, 2, 1] - ry
    return dx, dy, hit


# Blur (pixels per IOD pixel, and at most) given to what the painter draws.
PAINT_SOFTNESS = 0.012
MAX_PAINT_BLUR = 2.0
SEAM_BAND = 0.02  # width (IOD) of the softened band along the inner lips
OWN_SOFTNESS = 0.6  # blur (pixels) at the edge of an interior from the person's own mouth
OPEN_GAP = 0.06  # IOD: a mouth this open shows its teeth and cavity to sample


def mouth_colours(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """``[teeth, cavity]`` RGB seen inside an open mouth in this frame, or None when the
    mouth is not open enough to tell: the brightest and the darkest of its pixels."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    if mouth_gap(pts) < OPEN_GAP:
        return None
    poly = np.concatenate([pts[list(UPPER_INNER)], pts[list(LOWER_INNER[::-1])]])
    h, w = image.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(axis=0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 1, [w, h])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 255)
    # Stay off the lips' edge: only what is clearly inside the opening.
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    px = image[y0:y1, x0:x1][mask > 0].astype(np.float32)
    if len(px) < 20:
        return None
    lum = px @ np.array([0.299, 0.587, 0.114], np.float32)
    hi, lo = np.percentile(lum, 85), np.percentile(lum, 25)
    return np.stack([np.median(px[lum >= hi], axis=0), np.median(px[lum <= lo], axis=0)])


def _grown(box: Region, within: Region, by: int) -> tuple[slice, slice] | None:
    """``box`` (image pixels) grown by ``by`` and clipped, as slices into ``within``."""
    x0, y0 = max(box.x0 - by, within.x0), max(box.y0 - by, within.y0)
    x1, y1 = min(box.x1 + by, within.x1), min(box.y1 + by, within.y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return slice(y0 - within.y0, y1 - within.y0), slice(x0 - within.x0, x1 - within.x0)


def _head_weight(landmarks: np.ndarray, shape: tuple[int, int], step: int) -> np.ndarray:
    """A soft weight (1 on the head, fading out over about an IOD) on a grid of ``step``
    pixels: how much of the head's motion each place follows."""
    fr = eye_frame(landmarks)
    gh, gw = -(-shape[0] // step), -(-shape[1] // step)
    mask = np.zeros((gh, gw), np.float32)
    oval = landmarks[list(FACE_OVAL), :2] / step
    # Grown upwards and outwards for hair and ears, downwards for the neck.
    centre = oval.mean(axis=0)
    grown = centre + (oval - centre) * 1.35
    cv2.fillPoly(mask, [np.round(grown).astype(np.int32)], 1.0)
    sigma = max(0.5 * fr.iod / step, 1.0)
    return cv2.GaussianBlur(mask, (0, 0), sigma)


def morph_blend(a: np.ndarray, pts_a: np.ndarray, b: np.ndarray, pts_b: np.ndarray,
                w: float) -> np.ndarray:
    """Cross-fade frame ``a`` into frame ``b`` (weight ``w`` of ``b``) with both heads
    moved to the pose between them, so the head does not show twice.

    Each head follows a similarity transform (from eye, nose and face-outline
    points) under a soft head mask; the background stays where it is.
    """
    pa = np.asarray(pts_a, np.float64)[:MESH_POINTS, :2]
    pb = np.asarray(pts_b, np.float64)[:MESH_POINTS, :2]
    mid = (1.0 - w) * pa + w * pb
    step = 8
    h, width = a.shape[:2]
    gx, gy = np.meshgrid(np.arange(0, width, step, dtype=np.float32),
                         np.arange(0, h, step, dtype=np.float32))

    def pulled(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
        m, _ = cv2.estimateAffinePartial2D(mid[_MORPH_POINTS].astype(np.float32),
                                           pts[_MORPH_POINTS].astype(np.float32))
        if m is None:
            return img
        weight = _head_weight((pts + mid) / 2.0, (h, width), step)
        sx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2]
        sy = m[1, 0] * gx + m[1, 1] * gy + m[1, 2]
        dx = cv2.resize(((sx - gx) * weight).astype(np.float32), (width, h),
                        interpolation=cv2.INTER_LINEAR)
        dy = cv2.resize(((sy - gy) * weight).astype(np.float32), (width, h),
                        interpolation=cv2.INTER_LINEAR)
        dx += np.arange(width, dtype=np.float32)[None, :]
        dy += np.arange(h, dtype=np.float32)[:, None]
        return cv2.remap(img, dx, dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return cv2.addWeighted(pulled(b, pb), w, pulled(a, pa), 1.0 - w, 0.0)


class _FramePainter(MouthPainter):
    """The mouth painter with its face frame set per video frame, and the video's own
    teeth and mouth-cavity colours where the original mouth showed them."""

    def use_colours(self, colours: np.ndarray | None) -> None:
        if colours is None:
            return
        teeth, cavity = (np.asarray(c, np.float64) for c in colours)
        weights = np.array([0.299, 0.587, 0.114])
        # Only trust it when it reads as teeth: clearly brighter than the cavity.
        if teeth @ weights > max(1.8 * (cavity @ weights), 80.0):
            # Painted teeth are shaded (x0.72..1 across the arch): start a little brighter.
            self.teeth = np.clip(teeth * 1.08, 0, 255)
            self.cavity = (self.cavity + np.minimum(cavity, self.cavity * 1.5)) / 2.0
        # A softer line where the lips meet: the source's own lip edges already show it.
        self.seam = self.seam * 0.6 + self.tongue * 0.4 * 0.6

    def paint_in(self, frame: FaceFrame, patch: np.ndarray, origin: tuple[int, int],
                 posed: np.ndarray, teeth: float) -> bool:
        """Paint the opening; True when what was drawn is the person's own (a photograph
        of their mouth, already as sharp as the video), False when synthesised."""
        self.frame = frame
        self.paint(patch, origin, posed, teeth)
        return False


class _BankPainter(_FramePainter):
    """The painter that takes the interior from the person's own mouth bank where it has
    a sample near the new opening, and synthesises it only where it has none."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, frame: FaceFrame,
                 bank: MouthBank) -> None:
        super().__init__(image, landmarks, frame)
        self.bank = bank
        # The lips' colour in the video being dubbed: the bank's samples are brought to it.
        self.lip = lip_colour(image, np.asarray(landmarks, np.float64)[:MESH_POINTS, :2])
        self.own_frames = 0
        self.painted_frames = 0

    def paint_in(self, frame: FaceFrame, patch: np.ndarray, origin: tuple[int, int],
                 posed: np.ndarray, teeth: float) -> bool:
        self.frame = frame
        if not self.bank.fits(posed):
            if self.bank.opening(posed)[0] >= MIN_OWN_GAP:
                self.painted_frames += 1
            self.paint(patch, origin, posed, teeth)
            return False
        up = posed[list(UPPER_INNER)] - origin
        lo = posed[list(LOWER_INNER)] - origin
        gap_px = float(np.max((lo - up) @ frame.down))
        # The line where the lips meet, as the painter draws it (it fades as they part).
        corners = posed[[61, 291]] - origin
        seam = np.concatenate([corners[:1], (up + lo) / 2.0, corners[1:]])
        self._stroke(patch, seam, self.seam, max(1.3, 0.03 * frame.iod),
                     float(np.clip(1.0 - gap_px / (0.08 * frame.iod), 0.0, 1.0)) * 0.9)
        if self.bank.paint(patch, origin, posed, self.lip):
            self.own_frames += 1
            return True
        return False


def _face_frame(landmarks: np.ndarray) -> FaceFrame:
    fr = eye_frame(landmarks)
    origin = (landmarks[13, :2] + landmarks[14, :2]) / 2.0
    half = float(np.linalg.norm(landmarks[291, :2] - landmarks[61, :2])) / 2.0
    return FaceFrame(origin.astype(np.float64), fr.right, fr.down, fr.iod, max(half, 1e-3))


class MouthDubber:
    """Renders dubbed frames of one face: source frame + its landmarks + mouth channels."""

    def __init__(self, reference: np.ndarray, usual_width: float | None = None, *,
                 jaw_gain: float = 1.0, jaw_cancel: float = 1.0,
                 colours: np.ndarray | None = None, bank: MouthBank | None = None) -> None:
        """``bank``: the person's own mouth interiors (a cloned video avatar); without it,
        or where it has nothing near the new opening, the interior is painted."""
        ref = np.asarray(reference, np.float64)[:MESH_POINTS, :2]
        self.bank = bank
        self.rig = DubRig(ref, usual_width)
        self.rig.jaw_cancel = float(jaw_cancel)
        self.jaw_gain = float(jaw_gain)
        self.colours = colours
        fr = self.rig.frame
        loc = fr.local(ref)
        up, lo = _PAIRS[:, 0], _PAIRS[:, 1]
        push = np.maximum(REFERENCE_GAP - (loc[lo, 1] - loc[up, 1]), 0.0) / 2.0
        opened = loc.copy()
        opened[up, 1] -= push
        opened[lo, 1] += push
        self.warper = DubWarper(opened)
        self._painter: _FramePainter | None = None

    def reset(self) -> None:
        """Forget the colours measured so far (the next frame measures them again)."""
        self._painter = None

    @property
    def own_mouth_frames(self) -> tuple[int, int]:
        """Open-mouth frames drawn from the person's own mouth bank, and those painted
        because the bank had nothing near (both 0 without a bank)."""
        if isinstance(self._painter, _BankPainter):
            return self._painter.own_frames, self._painter.painted_frames
        return 0, 0

    def render(self, image: np.ndarray, landmarks: np.ndarray, mouth: np.ndarray,
               presence: float = 1.0) -> np.ndarray:
        """The dubbed frame (a new array; ``image`` is left as it is).

        ``landmarks`` are this frame's (smoothed) 468 mesh points in pixels;
        ``presence`` (0..1) fades the dubbing in and out where tracking starts or stops.
        """
        out = image.copy()
        if presence <= 0.0:
            return out
        h, w = image.shape[:2]
        pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
        fr = eye_frame(pts)
        region = self.warper.region(fr, w, h)
        if region is None:
            return out
        loc = fr.local(pts)
        mouth = np.array(mouth, np.float32)
        mouth[_JAW] *= self.jaw_gain
        target = self.rig.target(loc, mouth)
        moved = pts + fr.to_image(target - loc) * presence
        ring = fr.point(self.warper.ring)
        idx = self.warper.index
        src = np.concatenate([pts[idx], ring])
        dst = np.concatenate([moved[idx], ring])
        lips = np.concatenate([pts[_LIP_ROWS], moved[_LIP_ROWS]])
        pad = 0.12 * fr.iod
        (lx0, ly0), (lx1, ly1) = lips.min(axis=0) - pad, lips.max(axis=0) + pad
        fine = Region(int(lx0), int(ly0), int(np.ceil(lx1)) + 1, int(np.ceil(ly1)) + 1)
        patch = self.warper.warp(image, region, src, dst, fine)
        if patch is None:
            patch = image[region.slices].copy()
        if self._painter is None:
            # Colours are measured once, from the first dubbed frame: a re-measure
            # per frame would flicker with the original mouth's movement.
            if self.bank is not None and len(self.bank):
                self._painter = _BankPainter(image, pts, _face_frame(pts), self.bank)
            else:
                self._painter = _FramePainter(image, pts, _face_frame(pts))
            self._painter.use_colours(self.colours)
        teeth = float(mouth[CHANNELS.index("teeth")])
        painted = patch.copy()
        own = self._painter.paint_in(_face_frame(moved), painted, (region.x0, region.y0), moved,
                                     teeth)
        # The painter draws crisp edges; video of a face is softer the larger the face is
        # drawn (optics, scaling, compression): soften what it changed to match. The
        # person's own mouth is already as sharp as the video: only its edge is eased.
        sigma = float(np.clip(PAINT_SOFTNESS * fr.iod, 0.5, MAX_PAINT_BLUR))
        if own:
            sigma = OWN_SOFTNESS
        box = _grown(fine, region, int(3 * sigma) + 1)
        if box is not None:
            before = patch[box].astype(np.float32)
            drawn = painted[box].astype(np.float32)
            # Not a blur of the change alone: that would keep the fine detail of whatever
            # the warp left underneath (streaks of stretched lip inside the opening).
            changed = (np.abs(drawn - before).max(axis=2) > 0.5).astype(np.float32)
            weight = np.clip(cv2.GaussianBlur(changed, (0, 0), sigma) * 2.0, 0.0, 1.0)
            soft = cv2.GaussianBlur(drawn, (0, 0), sigma)
            merged = before + (soft - before) * weight[..., None]
            # Where the lips meet, the warp joins two stretched edges along a one-pixel
            # line; soften a band along the inner lips so it reads as a lip seam.
            origin = np.array([box[1].start + region.x0, box[0].start + region.y0])
            ring = np.concatenate([moved[list(UPPER_INNER)], moved[list(LOWER_INNER[::-1])]])
            band = np.zeros(merged.shape[:2], np.uint8)
            width = max(2, round(SEAM_BAND * fr.iod))
            cv2.polylines(band, [np.round((ring - origin) * 16).astype(np.int32)], True, 255,
                          width, cv2.LINE_AA, 4)
            weight = cv2.GaussianBlur(band.astype(np.float32) / 255.0, (0, 0), width / 2.0)
            soft = cv2.GaussianBlur(merged, (0, 0), max(sigma, 1.0))
            merged += (soft - merged) * np.clip(weight * 1.5, 0.0, 1.0)[..., None]
            painted[box] = np.clip(merged, 0, 255).astype(np.uint8)
        patch = painted if presence >= 1.0 else cv2.addWeighted(painted, presence, patch,
                                                                1.0 - presence, 0.0)
        out[region.slices] = patch
        return out


# Jaw-cancel gains tried by calibrate_jaw_cancel (the rig's gain while speaking; a shut
# mouth gets SHUT_CANCEL of it: these bracket where a shut mouth stops showing the
# original opening), and the range its answer is kept in.
CANCEL_TRIALS = (0.9, 1.7)
CANCEL_RANGE = (0.9, 2.2)
# Speech needs more jaw taken back than a shut mouth shows: measured on the two real
# talking heads of the shared media (lip gap of the dubbed video, less the part the new
# track explains, correlated with the source's own lip gap), the original motion is gone
# at a gain of 1.15 (Klobuchar) and 1.3 (Obama), where shut-mouth renders stop showing it
# at 0.78 and 0.88: about 1.45 times as much (SHUT_CANCEL is its inverse).
SPEECH_CANCEL = 1.0 / SHUT_CANCEL
DEFAULT_CANCEL = 1.2  # without samples or a clear trend: what those two people needed


def calibrate_jaw_cancel(dubber: MouthDubber,
                         samples: list[tuple[np.ndarray, np.ndarray]],
                         mesh: Callable[[np.ndarray, np.ndarray], np.ndarray | None]) -> float:
    """The jaw-cancel gain that leaves none of the original opening for a face mesh to see.

    The lip gap alone does not say how far the jaw dropped: one person opens
    mostly with the lips, another with the jaw. ``samples`` are frames (usually
    face crops) with their landmarks, spread over the person's openings; each is
    rendered with the mouth shut at two gains and meshed again by ``mesh(image,
    landmarks_hint)``. The rig's gain where the meshed gap no longer rises with
    the original gap is interpolated, within :data:`CANCEL_RANGE`. A shut mouth
    gets :data:`SHUT_CANCEL` of the gain (:meth:`DubRig.neutral`), so the gain
    found is :data:`SPEECH_CANCEL` times the shut-mouth point: a moving mouth
    shows more of the original jaw than a shut one. With too few samples, or no clear trend,
    :data:`DEFAULT_CANCEL` is used.
    """
    if len(samples) < 8:
        return DEFAULT_CANCEL
    src_gaps = np.array([mouth_gap(pts) for _, pts in samples])
    if np.ptp(src_gaps) < 0.05:
        return DEFAULT_CANCEL  # the mouth hardly opens: nothing to calibrate on
    shut = np.zeros(len(CHANNELS), np.float32)
    slopes = []
    saved = dubber.rig.jaw_cancel
    try:
        for gain in CANCEL_TRIALS:
            dubber.rig.jaw_cancel = gain
            xs, ys = [], []
            for (image, pts), g in zip(samples, src_gaps, strict=True):
                found = mesh(dubber.render(image, pts, shut), pts)
                if found is not None:
                    xs.append(g)
                    ys.append(mouth_gap(found))
            if len(xs) < 8:
                return DEFAULT_CANCEL
            slopes.append(float(np.polyfit(xs, ys, 1)[0]))
    finally:
        dubber.rig.jaw_cancel = saved
        dubber.reset()
    (g0, g1), (s0, s1) = CANCEL_TRIALS, slopes
    if s1 >= s0:
        return DEFAULT_CANCEL  # more cancelling did not help: the trend is noise
    return float(np.clip(g0 - s0 * (g1 - g0) / (s1 - s0), *CANCEL_RANGE))
