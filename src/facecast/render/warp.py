"""Piecewise-affine warping of a face region along moving landmarks.

The mesh topology is fixed once (Delaunay over the source landmarks plus a
frame of fixed anchor points around the region), so triangles never flip or
change neighbours between frames. Each frame only the triangles whose corners
moved are rasterised, at a reduced resolution whose maps are then upsampled:
piecewise-affine maps are linear inside each triangle, so the bilinear upsample
is exact there and only softens triangle edges by a fraction of a pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

# Maps are computed on a grid no larger than this (pixels per side), then upsampled.
MAP_MAX_SIDE = 320
# A vertex that moves less than this (pixels) counts as still.
STILL_EPS = 0.05
# A pixel reads its source at most this far (pixels) outside its triangle's source.
SOURCE_REACH = 1.0


@dataclass(frozen=True)
class Region:
    """An axis-aligned pixel rectangle ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def anchor_ring(region: Region, per_side: int = 8) -> np.ndarray:
    """Fixed points along the region's border: the warp is the identity there."""
    xs = np.linspace(region.x0, region.x1 - 1, per_side + 1)
    ys = np.linspace(region.y0, region.y1 - 1, per_side + 1)
    top = np.stack([xs, np.full_like(xs, region.y0)], 1)
    bottom = np.stack([xs, np.full_like(xs, region.y1 - 1)], 1)
    left = np.stack([np.full_like(ys[1:-1], region.x0), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], region.x1 - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right]).astype(np.float32)


class MeshWarper:
    """Warp ``region`` of an image so that ``points`` move to new positions.

    ``points`` are the movable vertices (pixels, full-image coordinates); the
    anchor ring of ``region`` is added as fixed vertices.
    """

    def __init__(self, points: np.ndarray, region: Region) -> None:
        self.region = region
        inside = (
            (points[:, 0] > region.x0)
            & (points[:, 0] < region.x1 - 1)
            & (points[:, 1] > region.y0)
            & (points[:, 1] < region.y1 - 1)
        )
        self.point_index = np.flatnonzero(inside)
        self.anchors = anchor_ring(region)
        verts = np.concatenate([points[self.point_index], self.anchors]).astype(np.float64)
        self.src = verts.astype(np.float32)
        self.triangles = Delaunay(verts).simplices.astype(np.int32)
        # Drop slivers: they carry no pixels and make the affine solve ill-conditioned.
        area = _signed_area(self.src[self.triangles])
        keep = np.abs(area) > 1e-3
        self.triangles = self.triangles[keep]
        self._orientation = np.sign(area[keep])
        scale = min(1.0, MAP_MAX_SIDE / max(region.width, region.height))
        self.grid_w = max(2, round(region.width * scale))
        self.grid_h = max(2, round(region.height * scale))
        # Per-axis scale and the pixel-centre convention cv2.resize uses, so that
        # grid point g stands for region coordinate (g + 0.5) / s - 0.5 exactly.
        self._sx = self.grid_w / region.width
        self._sy = self.grid_h / region.height
        gx, gy = np.meshgrid(
            (np.arange(self.grid_w, dtype=np.float32) + 0.5) / self._sx - 0.5,
            (np.arange(self.grid_h, dtype=np.float32) + 0.5) / self._sy - 0.5,
        )
        self._rx, self._ry = gx, gy  # region-local coordinates of the grid points
        fx, fy = np.meshgrid(
            np.arange(region.width, dtype=np.float32), np.arange(region.height, dtype=np.float32)
        )
        self._fx, self._fy = fx, fy  # full-resolution identity maps

    def vertices(self, moved: np.ndarray) -> np.ndarray:
        """Target vertex array for the full landmark array ``moved``."""
        return np.concatenate([moved[self.point_index], self.anchors]).astype(np.float32)

    def maps(self, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Full-resolution remap maps (region-local source coordinates) for target vertices.

        Returns None when nothing moved (the region is unchanged).
        """
        moving = np.abs(dst - self.src).max(axis=1) > STILL_EPS
        tri_moving = moving[self.triangles].any(axis=1)
        if not tri_moving.any():
            return None
        tris = self.triangles[tri_moving]
        d = dst[tris]  # (t, 3, 2) target corners
        s = self.src[tris]
        # A triangle squashed flat or flipped by extreme channel values keeps identity
        # rather than folding the image over itself.
        ok = np.sign(_signed_area(d)) == self._orientation[tri_moving]
        tris, d, s = tris[ok], d[ok], s[ok]
        origin = np.array([self.region.x0, self.region.y0], np.float32)
        d_local, s_local = d - origin, s - origin
        coef = _affine_coefficients(d_local, s_local)
        scale = np.array([self._sx, self._sy], np.float32)
        d_grid = (d_local + 0.5) * scale - 0.5
        # Per call, not per warper: two frames may be warped at once (render threads).
        ids = np.full((self.grid_h, self.grid_w), -1, np.int32)
        pts = np.round(d_grid * 16).astype(np.int32)  # 4 fractional bits for fillConvexPoly
        fill = cv2.fillConvexPoly
        # Hundreds of triangles a frame, most a few pixels: the call's overhead is the
        # cost, so positional arguments (LINE_8, 4 fractional bits) over a plain loop.
        for t, corners in enumerate(pts):
            fill(ids, corners, t, cv2.LINE_8, 4)
        sel = ids >= 0
        # Work with displacements (zero at the anchor ring), so upsampling cannot
        # shift the region's still border by a fraction of a pixel.
        dx = np.zeros((self.grid_h, self.grid_w), np.float32)
        dy = np.zeros_like(dx)
        if sel.any():
            k = ids[sel]
            rx, ry = self._rx[sel], self._ry[sel]
            # Read no further than SOURCE_REACH pixels beyond each triangle's own source:
            # the rasteriser also fills pixels on a triangle's edge, and where a triangle
            # is squashed nearly flat (a portrait's open mouth closed by the rig) its map
            # extrapolates from there to pixels far away (specks of shirt or teeth on the
            # lip line).
            lo = s_local.min(axis=1) - SOURCE_REACH
            hi = s_local.max(axis=1) + SOURCE_REACH
            # Each pixel's triangle's six coefficients and four bounds, gathered once.
            c = coef.reshape(-1, 6)[k]
            b = np.concatenate([lo, hi], axis=1)[k]
            sx = np.clip(rx * c[:, 0] + ry * c[:, 2] + c[:, 4], b[:, 0], b[:, 2])
            sy = np.clip(rx * c[:, 1] + ry * c[:, 3] + c[:, 5], b[:, 1], b[:, 3])
            dx[sel] = sx - rx
            dy[sel] = sy - ry
        size = (self.region.width, self.region.height)
        if (self.grid_w, self.grid_h) != size:
            dx = cv2.resize(dx, size, interpolation=cv2.INTER_LINEAR)
            dy = cv2.resize(dy, size, interpolation=cv2.INTER_LINEAR)
        return self._fx + dx, self._fy + dy

    def warp(self, image: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
        """The region of ``image`` warped to target vertices ``dst``, or None if unchanged."""
        maps = self.maps(dst)
        if maps is None:
            return None
        patch = image[self.region.slices]
        return cv2.remap(patch, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _signed_area(tri: np.ndarray) -> np.ndarray:
    """Twice the signed area of triangles ``(..., 3, 2)``."""
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    return (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (
        c[..., 0] - a[..., 0]
    )


def _affine_coefficients(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Per-triangle affine maps dst -> src as (t, 3, 2): ``[x y 1] @ coef = src``.

    Closed-form 3x3 inverse: thousands of times faster than a batched LAPACK
    solve for this many tiny systems.
    """
    x0, y0 = dst[:, 0, 0], dst[:, 0, 1]
    x1, y1 = dst[:, 1, 0], dst[:, 1, 1]
    x2, y2 = dst[:, 2, 0], dst[:, 2, 1]
    det = x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1)
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    inv = np.empty((len(dst), 3, 3), np.float32)
    inv[:, 0] = np.stack([y1 - y2, y2 - y0, y0 - y1], 1)
    inv[:, 1] = np.stack([x2 - x1, x0 - x2, x1 - x0], 1)
    inv[:, 2] = np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], 1)
    inv /= det[:, None, None]
    return np.einsum("tij,tjk->tik", inv, src)
