"""Moving the head over a still background.

The person is separated from the background once (MediaPipe's selfie
segmentation model, :mod:`facecast.face.segmenter`); the background behind the
head's edge is filled in once (inpainting at reduced resolution), so that when
the head turns or nods by a few pixels the background stays exactly still and
what the head uncovers is plausible background, not a stretched copy of the head. The head moves
rigidly (its outline is never bent); the neck absorbs the motion, fading to
no motion at the shoulders.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from facecast.face.segmenter import SelfieSegmenter
from facecast.render.warp import Region

# Largest expected motion in IOD units (roll of 2.5 degrees at the face's far edge plus shifts).
MARGIN_IOD = 0.35
PLATE_MAX_SIDE = 256
MAP_STEP = 8  # pixels per coarse motion-field cell


def person_mask(image: np.ndarray) -> np.ndarray:
    """Soft person mask (float32 0..1) of an RGB image."""
    with SelfieSegmenter() as seg:
        mask = seg.mask(image)
    return np.clip(mask, 0.0, 1.0)


class HeadMover:
    """Applies per-frame head transforms to a region of the frame.

    Built from the canvas, the face box and the inter-ocular distance; returns
    None from :meth:`create` when the portrait's person cannot be separated
    from its background reliably (then the head is kept still).
    """

    def __init__(self, image: np.ndarray, mask: np.ndarray, face: Region, iod: float,
                 pivot: tuple[float, float]) -> None:
        h, w = image.shape[:2]
        margin = int(math.ceil(MARGIN_IOD * iod)) + 2
        fh = face.height
        # The moving region: the head with a margin, down to the shoulders.
        self.region = Region(
            max(face.x0 - int(0.45 * face.width) - margin, 0),
            max(face.y0 - int(0.6 * fh) - margin, 0),
            min(face.x1 + int(0.45 * face.width) + margin, w),
            min(face.y1 + int(0.7 * fh), h),
        )
        r = self.region
        self.iod = iod
        # float32 throughout: under numpy 2 a float64 pivot would turn the remap grids
        # float64, which cv2.remap refuses (numpy 1 kept them float32).
        self.pivot = (np.array(pivot, np.float32) - [r.x0, r.y0]).astype(np.float32)
        m = mask[r.slices]
        self.mask = m
        yy, xx = np.mgrid[0 : r.height, 0 : r.width].astype(np.float32)
        self._xx, self._yy = xx, yy
        # The motion field is smooth: compute it on a coarse grid and upsample it.
        self._coarse = (max(2, r.width // MAP_STEP), max(2, r.height // MAP_STEP))
        cw, ch = self._coarse
        cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        self._cx = (cx + 0.5) * r.width / cw - 0.5
        self._cy = (cy + 0.5) * r.height / ch - 0.5
        # Rigid above the chin, fading out over the neck to still shoulders.
        chin = face.y1 - r.y0
        fade = max(0.5 * fh, 4.0)
        t = np.clip((yy - chin) / fade, 0.0, 1.0)
        self.weight = (1.0 - t * t * (3 - 2 * t)).astype(np.float32)
        tc = np.clip((self._cy - chin) / fade, 0.0, 1.0)
        self._coarse_weight = (1.0 - tc * tc * (3 - 2 * tc)).astype(np.float32)
        self.plate = self._background_plate(image[r.slices], m, margin)
        # Where no person now stands the plate shows; the body below the neck's fade keeps
        # its own mask (the same every frame, so made once).
        self._still = self.mask * (1.0 - self.weight)

    @classmethod
    def create(cls, image: np.ndarray, face: Region, iod: float,
               pivot: tuple[float, float]) -> HeadMover | None:
        mask = person_mask(image)
        face_part = mask[face.slices]
        # The face itself must be clearly "person"; paintings and drawings often are not.
        if face_part.size == 0 or float(np.mean(face_part > 0.5)) < 0.8:
            return None
        return cls(image, mask, face, iod, pivot)

    @staticmethod
    def _background_plate(patch: np.ndarray, mask: np.ndarray, margin: int) -> np.ndarray:
        """The patch with the person's rim replaced by inpainted background."""
        hard = (mask > 0.35).astype(np.uint8)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 3, 2 * margin + 3))
        # Only what a small motion can uncover needs filling: a band inside the outline.
        band = cv2.dilate(hard, np.ones((3, 3), np.uint8)) - cv2.erode(hard, k)
        band = np.clip(band, 0, 1)
        h, w = patch.shape[:2]
        s = min(1.0, PLATE_MAX_SIDE / max(h, w))
        small = cv2.resize(patch, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_AREA)
        small_fill = cv2.resize(hard, small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        # Fill the whole person area from the background, so no person colour leaks in.
        filled = cv2.inpaint(small, small_fill * 255, 5, cv2.INPAINT_TELEA)
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        plate = patch.copy()
        sel = band > 0
        plate[sel] = filled[sel]
        return plate

    def apply(self, frame: np.ndarray, roll_deg: float, dx: float, dy: float, scale: float,
              ) -> None:
        """Move the head in ``frame`` in place (``dx``/``dy`` in IOD units)."""
        r = self.region
        # Inverse of: rotate by roll and scale about the pivot, then translate.
        theta = math.radians(roll_deg)
        c, s = math.cos(theta) / (1 + scale), math.sin(theta) / (1 + scale)
        px, py = self.pivot
        ux = self._cx - px - dx * self.iod
        uy = self._cy - py - dy * self.iod
        wc = self._coarse_weight
        shift_x = wc * (c * ux + s * uy + px - self._cx)
        shift_y = wc * (-s * ux + c * uy + py - self._cy)
        size = (r.width, r.height)
        map_x = self._xx + cv2.resize(shift_x, size, interpolation=cv2.INTER_LINEAR)
        map_y = self._yy + cv2.resize(shift_y, size, interpolation=cv2.INTER_LINEAR)
        patch = frame[r.slices]
        moved = cv2.remap(patch, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.remap(self.mask, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        # Where no person now stands, show the background plate; the body keeps weight 0.
        alpha = np.maximum(alpha, self._still)
        patch[:] = cv2.blendLinear(moved, self.plate, alpha, 1.0 - alpha)
