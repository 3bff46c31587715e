"""The inside of an opened mouth: dark cavity, upper and lower teeth, a tongue hint.

It is painted into the gap between the posed inner lips, in face-aligned
coordinates so it follows head roll, with colours taken from the portrait
itself (lip colour for the cavity and tongue, skin brightness for the teeth),
and an anti-aliased, slightly shaded edge so no seam shows against the lips.
Before painting, the posed lips are cleaned of what the warp makes of a smiling
portrait's own teeth and dark corners (isolated specks, jagged corner notches), and
the line where the lips meet is drawn in the portrait's own crease colour, only
ever darkening.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecast.render.rig import LOWER_INNER, LOWER_OUTER, UPPER_INNER, UPPER_OUTER, FaceFrame

# Incisor and canine boundaries across the visible arch (fractions of the half width).
TOOTH_EDGES = (0.0, 0.2, 0.38, 0.54, 0.68, 0.8)
# The line where the lips meet: the portrait's own, the darkest pixel within this much
# (IOD) of the inner lips' midline at each of its points, the median of those; never
# lighter than this share of the lip colour (a lip line is a shadow of the lip).
SEAM_REACH = 0.03
SEAM_MAX_SHARE = 0.55
SEAM_OWN = 0.5  # the seam: this share of the crease's colour, the rest that cap's
# Specks on the lips (_despeckle): pixels this far (8-bit luma) from the median of their
# 5x5 neighbourhood, within this much (IOD) of the outer lip contour. The warp squeezes a
# smiling portrait's own teeth and dark mouth corners into thin lines and notches there.
SPECK_LEVEL = 32.0
SPECK_REACH = 0.04
# The mouth corners are softened (a blur of this sigma, IOD, never under a pixel) within
# this radius (IOD) of the outer corners: the warp stretches a smiling portrait's dark
# corner shadow into jagged notches larger than a speck.
CORNER_SOFTEN = 0.012
CORNER_RADIUS = 0.11
# The painted teeth fade in with the gap (IOD) between these: in a slit (the teeth
# channel lifting a closed upper lip) a teeth plate reads as a flat grey band.
TEETH_SLIT = (0.015, 0.045)


def seam_colour(image: np.ndarray, landmarks: np.ndarray, iod: float,
                lip: np.ndarray) -> np.ndarray:
    """The colour of the portrait's own line between the lips (RGB).

    A share of the median lip colour (the old seam) is lighter and greyer than the
    shadowed crease of a saturated mouth: painted over it at rest it reads as a flat
    grey band. The portrait's own crease has the lip's hue, darker.
    """
    pts = np.asarray(landmarks, np.float64)[:, :2]
    mid = (pts[list(UPPER_INNER)] + pts[list(LOWER_INNER)]) / 2.0
    h, w = image.shape[:2]
    r = max(1, int(round(SEAM_REACH * iod)))
    found = []
    for x, y in np.round(mid[1:-1]).astype(int):
        if not (0 <= x < w and 0 <= y < h):
            continue
        col = image[max(y - r, 0): y + r + 1, x].astype(np.float64)
        found.append(col[int(np.argmin(col.sum(axis=1)))])
    cap = np.asarray(lip, np.float64) * SEAM_MAX_SHARE
    if not found:
        return cap
    own = np.median(np.array(found), axis=0)
    # Darker than the cap only where the portrait's own crease is (a teeth-showing
    # smile's midline is light: then the cap). Half way to the crease's own colour: its
    # darkest pixel drawn as a full-width line is heavier than the crease (the stroke only
    # darkens, so at rest the portrait's own crease stays where it is darker).
    if own.sum() >= cap.sum():
        return cap
    return np.asarray(SEAM_OWN * own + (1.0 - SEAM_OWN) * cap, np.float64)


class MouthPainter:
    """Paints the mouth interior for one portrait; colours are measured once."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, frame: FaceFrame) -> None:
        self.frame = frame
        lip_mask = np.zeros(image.shape[:2], np.uint8)
        outer = np.concatenate([landmarks[list(UPPER_OUTER), :2],
                                landmarks[list(LOWER_OUTER[::-1]), :2]])
        inner = np.concatenate([landmarks[list(UPPER_INNER), :2],
                                landmarks[list(LOWER_INNER[::-1]), :2]])
        cv2.fillPoly(lip_mask, [np.round(outer).astype(np.int32)], 255)
        cv2.fillPoly(lip_mask, [np.round(inner).astype(np.int32)], 0)
        lips = image[lip_mask > 0].astype(np.float32)
        lip = np.median(lips, axis=0) if len(lips) else np.array([150.0, 80.0, 80.0])
        # Skin just below the eyes and beside the nose tells the scene's light level.
        ys, xs = frame.origin[1] - 0.55 * frame.iod, frame.origin[0]
        r = max(2, int(0.12 * frame.iod))
        y0, x0 = int(max(ys - r, 0)), int(max(xs - 3 * r, 0))
        skin_patch = image[y0 : int(ys + r), x0 : int(xs + 3 * r)].reshape(-1, 3).astype(np.float32)
        skin = np.median(skin_patch, axis=0) if len(skin_patch) else np.array([180.0] * 3)
        light = float(np.clip(skin.mean() / 165.0, 0.45, 1.1))
        cast = np.clip(skin / max(skin.mean(), 1.0), 0.85, 1.15) ** 0.35
        self.cavity = lip * np.array([0.42, 0.3, 0.3])
        self.seam = seam_colour(image, landmarks, frame.iod, lip)
        self.tongue = np.clip(lip * np.array([1.1, 0.78, 0.8]), 0, 255)
        self.teeth = np.clip(np.array([240.0, 226.0, 198.0]) * light * cast, 0, 255)

    def paint(
        self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray, teeth: float,
        tongue: float = 0.0,
    ) -> None:
        """Paint in place into ``patch`` (whose top-left is ``origin`` in the image). The
        painted interior always has its tongue resting low: ``tongue`` (l, th) is for
        painters with real tongues (:class:`facecast.render.stock_mouth.StockPainter`)."""
        self._despeckle(patch, origin, posed)
        up = posed[list(UPPER_INNER)] - origin
        lo = posed[list(LOWER_INNER)] - origin
        poly = np.concatenate([up, lo[::-1]])
        x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 3
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, patch.shape[1]), min(y1, patch.shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        fr = self.frame
        o: np.ndarray = fr.origin - np.asarray(origin, np.float64)
        # Face coordinates of the inner lip contours (pixels).
        def local(p: np.ndarray) -> np.ndarray:
            rel = p - o
            return np.stack([rel @ fr.right, rel @ fr.down], axis=1)

        up_l, lo_l = local(up), local(lo)
        gap = self._lip_seam(patch, posed[[61, 291]] - origin, up, lo)
        if gap < 0.6:
            return
        # Anti-aliased polygon mask, supersampled 4x through fillPoly's shift bits.
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255,
                     lineType=cv2.LINE_AA, shift=4)
        if not mask.any():
            return
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rel_x, rel_y = xx - o[0], yy - o[1]
        a = rel_x * fr.right[0] + rel_y * fr.right[1]
        b = rel_x * fr.down[0] + rel_y * fr.down[1]
        half = max(float(up_l[:, 0].max() - up_l[:, 0].min()) / 2.0, 1.0)
        centre_a = float(up_l[:, 0].mean())
        s = (a - centre_a) / half  # -1..1 across the opening
        ou = np.argsort(up_l[:, 0])
        ol = np.argsort(lo_l[:, 0])
        top = np.interp(a, up_l[ou, 0], up_l[ou, 1])
        bottom = np.interp(a, lo_l[ol, 0], lo_l[ol, 1])
        depth_top = b - top  # pixels below the upper lip edge
        depth_bottom = bottom - b  # pixels above the lower lip edge
        local_gap = np.maximum(bottom - top, 1e-3)

        arch = np.sqrt(np.clip(1.0 - (s / 0.9) ** 2, 0.0, 1.0))
        # Cavity: darker towards the middle and the back.
        shade = 0.8 + 0.35 * np.abs(s) ** 2
        out = self.cavity[None, None, :] * shade[..., None]
        # Tongue: a soft mound resting on the floor of the mouth.
        tongue_h = 0.45 * local_gap * np.sqrt(np.clip(1.0 - (s / 0.75) ** 2, 0, 1))
        t_alpha = np.clip((tongue_h - depth_bottom) / 1.5, 0, 1)
        t_alpha *= np.clip(gap / (0.08 * fr.iod), 0, 1)
        t_light = 0.7 + 0.3 * np.clip(1 - depth_bottom / (tongue_h + 1e-3), 0, 1)
        tongue_col = self.tongue * t_light[..., None]
        out = out * (1 - t_alpha[..., None]) + tongue_col * t_alpha[..., None]
        # Teeth: upper row hangs from the upper lip, lower row rises from the lower lip.
        slit = float(np.clip((gap / fr.iod - TEETH_SLIT[0]) / (TEETH_SLIT[1] - TEETH_SLIT[0]),
                             0.0, 1.0))
        vis = (0.55 + 0.45 * teeth) * slit
        up_h = (0.11 * fr.iod) * arch * vis
        lo_h = (0.06 * fr.iod) * arch * np.clip((gap / fr.iod - 0.08) / 0.12, 0, 1) * vis
        gaps = np.ones_like(s)
        for edge in TOOTH_EDGES:
            for e in (edge, -edge) if edge else (edge,):
                gaps *= 1.0 - 0.09 * np.exp(-(((s - e) * half) ** 2) / 0.6)
        tooth_shade = (0.72 + 0.28 * arch) * gaps
        up_alpha = np.clip((up_h - depth_top) / 1.2, 0, 1) * np.clip(up_h, 0, 1)
        up_col = self.teeth * (tooth_shade * (1.0 - 0.12 * depth_top / (up_h + 1e-3)))[..., None]
        lo_alpha = np.clip((lo_h - depth_bottom) / 1.2, 0, 1) * np.clip(lo_h, 0, 1)
        lo_col = self.teeth * (0.82 * tooth_shade)[..., None]
        out = out * (1 - lo_alpha[..., None]) + lo_col * lo_alpha[..., None]
        out = out * (1 - up_alpha[..., None]) + up_col * up_alpha[..., None]
        # The lips cast a thin shadow onto what is just inside them.
        edge_dist = np.minimum(depth_top, depth_bottom)
        out *= (0.7 + 0.3 * np.clip(edge_dist / max(1.5, 0.04 * fr.iod), 0, 1))[..., None]
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        region = patch[y0:y1, x0:x1]
        region[:] = np.clip(region * (1 - alpha) + out * alpha, 0, 255).astype(np.uint8)

    def _despeckle(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray
                   ) -> None:
        """Replace isolated specks on the posed lips and their corners (pixels far from
        their neighbourhood's median) by that median: the warp leaves a smiling
        portrait's teeth as dotted white lines and its dark corners as black notches."""
        outer = np.concatenate([posed[list(UPPER_OUTER), :2],
                                posed[list(LOWER_OUTER[::-1]), :2]]) - origin
        reach = max(2, int(round(SPECK_REACH * self.frame.iod)))
        x0, y0 = np.maximum(np.floor(outer.min(axis=0)).astype(int) - reach - 2, 0)
        x1, y1 = np.minimum(np.ceil(outer.max(axis=0)).astype(int) + reach + 3,
                            [patch.shape[1], patch.shape[0]])
        if x1 - x0 < 5 or y1 - y0 < 5:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round(outer - [x0, y0]).astype(np.int32)], 255)
        mask = cv2.dilate(mask, cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1)))
        region = patch[y0:y1, x0:x1]
        med = cv2.medianBlur(np.ascontiguousarray(region), 5)
        luma = np.array([0.299, 0.587, 0.114], np.float32)
        signed = (region.astype(np.float32) - med.astype(np.float32)) @ luma
        speck = (np.abs(signed) > SPECK_LEVEL) & (mask > 0)
        # The middle of the lip crease (where the seam runs) is a dark line, not a speck:
        # only light specks (squeezed teeth) are taken from it. Its ends, at the corners,
        # are where the dark notches are.
        up, lo = posed[list(UPPER_INNER), :2], posed[list(LOWER_INNER), :2]
        line = ((up + lo) / 2.0)[2:-2] - origin
        crease = np.zeros_like(mask)
        cv2.polylines(crease, [np.round(line - [x0, y0]).astype(np.int32)], False, 255,
                      thickness=max(3, int(round(0.04 * self.frame.iod))))
        speck &= ~((crease > 0) & (signed < 0))
        region[speck] = med[speck]
        sigma = max(1.0, CORNER_SOFTEN * self.frame.iod)
        soft = cv2.GaussianBlur(region, (0, 0), sigma).astype(np.float32)
        # a row and a column, broadcast: the same distances as full grids, for less
        xx = np.arange(x0, x1, dtype=np.float32)[None, :]
        yy = np.arange(y0, y1, dtype=np.float32)[:, None]
        w = np.zeros(region.shape[:2], np.float32)
        radius = CORNER_RADIUS * self.frame.iod
        for cx, cy in posed[[61, 291], :2] - origin:
            d = np.hypot(xx - cx, yy - cy) / radius
            w = np.maximum(w, np.clip(2.0 - 2.0 * d, 0.0, 1.0))
        w = w[..., None]
        region[:] = np.clip(region * (1.0 - w) + soft * w, 0, 255).astype(np.uint8)

    def _lip_seam(self, patch: np.ndarray, corners: np.ndarray, up: np.ndarray,
                  lo: np.ndarray) -> float:
        """Where the lips meet (or nearly), draw the seam between them: a soft dark line
        that hides whatever the collapsed gap left behind, fading as they part. Takes the
        mouth corners and inner lips in patch pixels; returns the widest gap (pixels)."""
        fr = self.frame
        gap = float(np.max((lo - up) @ fr.down))
        seam = np.concatenate([corners[:1], (up + lo) / 2.0, corners[1:]])
        self._stroke(patch, seam, self.seam, max(1.3, 0.03 * fr.iod),
                     float(np.clip(1.0 - gap / (0.08 * fr.iod), 0.0, 1.0)) * 0.9)
        return gap

    @staticmethod
    def _stroke(patch: np.ndarray, pts: np.ndarray, color: np.ndarray, width: float,
                alpha: float) -> None:
        """Blend an anti-aliased polyline of ``width`` pixels into ``patch``; it only
        darkens (a lip line is a shadow: where the portrait is already darker, as in its
        own crease, it stays as it is)."""
        if alpha <= 0.01:
            return
        x0, y0 = np.floor(pts.min(axis=0) - width - 2).astype(int)
        x1, y1 = np.ceil(pts.max(axis=0) + width + 3).astype(int)
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, patch.shape[1]), min(y1, patch.shape[0])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        line = np.round((pts - [x0, y0]) * 16).astype(np.int32)
        cv2.polylines(mask, [line], False, 255, thickness=max(1, round(width)),
                      lineType=cv2.LINE_AA, shift=4)
        a = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32)[..., None] * (alpha / 255.0)
        region = patch[y0:y1, x0:x1]
        blend = region * (1 - a) + color * a
        region[:] = np.clip(np.minimum(region, blend), 0, 255).astype(np.uint8)
