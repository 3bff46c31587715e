"""The warp that re-voices the lower face of a video frame: a rig of displacements built
once in the face's own frame (:class:`DubRig`) and a fixed-topology mesh of the
landmarks below the nose inside a still ring (:class:`DubWarper`), so everything above
the nose and outside the ring is the source pixel for pixel. Around the lips the map is
exact per pixel, elsewhere upsampled from a coarse grid.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from scipy.spatial import Delaunay

from facecast.motion.track import CHANNELS
from facecast.render.lip_geometry import (
    _CENTRE_PAIRS,
    _OUTER_PAIRS,
    _PAIRS,
    EyeFrame,
    LipBand,
    _mouth_width,
    eye_frame,
)
from facecast.render.rig import (
    LOWER_INNER,
    MESH_POINTS,
    RIG_CHANNELS,
    UPPER_INNER,
    FaceRig,
)
from facecast.render.warp import Region, _affine_coefficients, _signed_area

_CH = {name: RIG_CHANNELS.index(name) for name in RIG_CHANNELS}
_MOUTH = [RIG_CHANNELS.index(c) for c in CHANNELS]
_JAW = CHANNELS.index("jaw")
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
        self._jaw_gap = max(
            float(np.mean(jaw[_CENTRE_PAIRS[:, 1], 1] - jaw[_CENTRE_PAIRS[:, 0], 1])), 0.05
        )
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
        posed = self.neutral(loc, speaking) + np.einsum(
            "c,cpk->pk", FaceRig.weights(values), self.basis
        )
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
        inside = (np.abs(x) < RING_X - 0.1) & (y > RING_TOP + 0.12) & (y < self.bottom - 0.04)
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
        on_inner = np.array(
            [v < len(self.index) and int(self.index[v]) in inner for v in range(len(verts))]
        )
        self.across = on_inner[self.triangles].all(axis=1)
        self.partner = np.arange(len(verts))
        for up, lo in zip(UPPER_INNER, LOWER_INNER, strict=True):
            if up in vertex_of and lo in vertex_of:
                self.partner[vertex_of[lo]] = vertex_of[up]

    def region(self, fr: EyeFrame, width: int, height: int) -> Region | None:
        corners = fr.point(
            np.array(
                [
                    [-RING_X, RING_TOP],
                    [RING_X, RING_TOP],
                    [-RING_X, self.bottom],
                    [RING_X, self.bottom],
                ]
            )
        )
        x0, y0 = np.floor(corners.min(axis=0)).astype(int)
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 1
        r = Region(max(0, x0), max(0, y0), min(width, x1), min(height, y1))
        return r if r.width >= 4 and r.height >= 4 else None

    def warp(
        self,
        image: np.ndarray,
        region: Region,
        src: np.ndarray,
        dst: np.ndarray,
        fine: Region | None = None,
    ) -> np.ndarray | None:
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
            coarse = ~(
                (lo[:, 0] > fx0 + m)
                & (lo[:, 1] > fy0 + m)
                & (hi[:, 0] < fx1 - m)
                & (hi[:, 1] < fy1 - m)
            )
        # Grid point g stands for region coordinate (g + 0.5) / s - 0.5, as cv2.resize has it.
        dx, dy, _ = _rasterise(
            (d_local[coarse] + 0.5) * np.array([sx, sy]) - 0.5,
            (gh, gw),
            coef[coarse],
            lambda g: (g + 0.5) / sx - 0.5,
            lambda g: (g + 0.5) / sy - 0.5,
        )
        size = (region.width, region.height)
        if (gw, gh) != size:
            dx = cv2.resize(dx, size, interpolation=cv2.INTER_LINEAR)
            dy = cv2.resize(dy, size, interpolation=cv2.INTER_LINEAR)
        if fine is not None and scale < 1.0:
            fx0, fy0 = max(fine.x0 - region.x0, 0), max(fine.y0 - region.y0, 0)
            fx1, fy1 = (
                min(fine.x1 - region.x0, region.width),
                min(fine.y1 - region.y0, region.height),
            )
            near = (hi[:, 0] >= fx0) & (lo[:, 0] < fx1) & (hi[:, 1] >= fy0) & (lo[:, 1] < fy1)
            if fx1 - fx0 > 1 and fy1 - fy0 > 1 and near.any():
                fdx, fdy, hit = _rasterise(
                    d_local[near] - np.array([fx0, fy0]),
                    (fy1 - fy0, fx1 - fx0),
                    coef[near],
                    lambda g: g + float(fx0),
                    lambda g: g + float(fy0),
                )
                fdx, fdy = _fill_holes(fdx, fdy, hit)
                box = (slice(fy0, fy1), slice(fx0, fx1))
                dx[box], dy[box] = fdx, fdy
        # Sample from the whole frame, not just the region: a target near the region's
        # edge may pull pixels from just outside it.
        dx += np.arange(region.x0, region.x1, dtype=np.float32)[None, :]
        dy += np.arange(region.y0, region.y1, dtype=np.float32)[:, None]
        return cv2.remap(image, dx, dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _fill_holes(
    dx: np.ndarray, dy: np.ndarray, hit: np.ndarray, passes: int = 3
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


def _rasterise(
    tri: np.ndarray,
    shape: tuple[int, int],
    coef: np.ndarray,
    to_x: Callable[[np.ndarray], np.ndarray],
    to_y: Callable[[np.ndarray], np.ndarray],
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
