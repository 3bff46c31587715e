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
   (:class:`facecast.render.lip_geometry.LipBand`), so a lip moves as one piece;
2. the new mouth channels are added with the rig's displacement basis, built
   once for this face in its own frame (eye line, inter-ocular units) and
   turned and scaled with the face every frame;
3. only the lower face is warped: a fixed-topology mesh of the landmarks below
   the nose plus a still ring around the mouth, jaw and chin, so everything
   above the nose and outside the ring is the source pixel for pixel. Where
   the original mouth was open and the new one is shut, the triangles across
   the old opening collapse and the lips close over the old teeth; around the
   lips the map is exact per pixel, elsewhere it is upsampled from a grid;
4. the interior of the new opening is a real one from the packaged stock bank
   (:class:`facecast.render.stock_mouth.StockPainter`, brought to this face's
   colour, sharpness and grain), painted (:class:`MouthPainter`, in the colours of
   this person's teeth, mouth, lips and skin) only where the stock has none, then
   softened to the face's own sharpness, as is the line where the lips meet. With a mouth bank
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

import cv2
import numpy as np

from facecast.face.analysis import FACE_OVAL
from facecast.motion.track import CHANNELS
from facecast.render.dub_warp import _JAW, REFERENCE_GAP, SHUT_CANCEL, DubRig, DubWarper
from facecast.render.lip_geometry import _PAIRS, eye_frame, mouth_gap
from facecast.render.mouth_bank import MIN_GAP as MIN_OWN_GAP
from facecast.render.mouth_bank import MouthBank, lip_colour
from facecast.render.rig import (
    JAW_DROP,
    LOWER_INNER,
    LOWER_OUTER,
    MESH_POINTS,
    UPPER_INNER,
    UPPER_LIP_LIFT,
    UPPER_OUTER,
    FaceFrame,
)
from facecast.render.stock_mouth import StockPainter
from facecast.render.warp import Region

_LIP_ROWS = np.array(sorted(set(UPPER_OUTER + LOWER_OUTER)))
# Points that carry the head's rigid motion: eyes, nose, brows, forehead, face outline.
_MORPH_POINTS = np.array([33, 133, 362, 263, 1, 4, 6, 168, 10, 70, 300, 234, 454, 127, 356,
                          152, 172, 397])

# How far the jaw channel at 1 opens the middle of the lips (IOD), as the rig has it.
JAW_GAP = JAW_DROP + 0.6 * UPPER_LIP_LIFT


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


class _FramePainter(StockPainter):
    """The mouth interior with its face frame set per video frame: real (the stock bank,
    :mod:`facecast.render.stock_mouth`), painted where it has none, the painting in the
    video's own teeth and mouth-cavity colours where the original mouth showed them."""

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
                 posed: np.ndarray, teeth: float, tongue: float = 0.0) -> bool:
        """Paint the opening; True when what was drawn is the person's own (a photograph
        of their mouth, already as sharp as the video), False when synthesised."""
        self.frame = frame
        self.paint(patch, origin, posed, teeth, tongue)
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
                 posed: np.ndarray, teeth: float, tongue: float = 0.0) -> bool:
        self.frame = frame
        if not self.bank.fits(posed):
            if self.bank.opening(posed)[0] >= MIN_OWN_GAP:
                self.painted_frames += 1
            self.paint(patch, origin, posed, teeth, tongue)
            return False
        self._lip_seam(patch, posed[[61, 291]] - origin, posed[list(UPPER_INNER)] - origin,
                       posed[list(LOWER_INNER)] - origin)
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
                                     teeth, float(mouth[CHANNELS.index("tongue")]))
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
