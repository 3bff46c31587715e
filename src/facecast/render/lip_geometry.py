"""The geometry of a tracked face that dubbing measures: its frame from the eyes (origin,
axes, inter-ocular distance), the inner-lip gap, the mouth's width, and the lip bands
whose inner points follow their contour rows.

Dubbing (:mod:`facecast.render.dub`, :mod:`facecast.render.dub_warp`) and the mouth
bank (:mod:`facecast.render.mouth_bank`) share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facecast.render.rig import (
    EYES,
    LOWER_INNER,
    LOWER_OUTER,
    MESH_POINTS,
    UPPER_INNER,
    UPPER_OUTER,
)

# Inner-lip pairs (upper, lower) from corner to corner; the corners themselves are shared.
_PAIRS = np.array(list(zip(UPPER_INNER, LOWER_INNER, strict=True))[1:-1])
_CENTRE_PAIRS = _PAIRS[2:-2]  # the five middle pairs: where the opening is measured
_OUTER_PAIRS = np.array(list(zip(UPPER_OUTER, LOWER_OUTER, strict=True))[1:-1])
_EYE_R = list(EYES["right"]["upper"] + EYES["right"]["lower"])
_EYE_L = list(EYES["left"]["upper"] + EYES["left"]["lower"])


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
            if (
                cv2.pointPolygonTest(outer.astype(np.float32), q, False) > 0
                and cv2.pointPolygonTest(inner.astype(np.float32), q, False) <= 0
            ):
                idx.append(i)
        index = np.array(idx, dtype=np.int64)
        pts = loc[index]
        d = {
            name: _polyline_distance(pts, loc[list(row)])
            for name, row in (
                ("ui", UPPER_INNER),
                ("uo", UPPER_OUTER),
                ("li", LOWER_INNER),
                ("lo", LOWER_OUTER),
            )
        }
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
        for upper, (inner, outer) in (
            (True, (UPPER_INNER, UPPER_OUTER)),
            (False, (LOWER_INNER, LOWER_OUTER)),
        ):
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
                vals.append(
                    np.stack(
                        [np.interp(x, xs, flat[r[order], k]) for k in range(flat.shape[1])], axis=1
                    )
                )
            v = vals[0] * (1.0 - t)[:, None] + vals[1] * t[:, None]
            out[sel] = v.reshape((int(sel.sum()), *rows.shape[1:]))
        return out
