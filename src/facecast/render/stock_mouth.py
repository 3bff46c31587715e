"""Photographic mouth interiors for faces with no recording of their own: the stock bank.

A portrait shows its mouth shut (or barely open), so when it talks the inside
of the mouth must come from somewhere. Painting it (:class:`MouthPainter`)
reads as a drawing at any zoom: a flat teeth plate over a dark cavity. This
module gives it real teeth, tongue and shadow instead: a compact bank of
mouth interiors cut from public-domain footage with the video avatars' own
machinery (:class:`facecast.render.mouth_bank.BankBuilder`; the data ships in
``facecast/assets/mouths/`` with its provenance and is rebuilt by
``tools/build_mouth_bank.py``).

:class:`StockPainter` prepares the bank once per face: every sample is
resampled to the face's own scale; its teeth are given the portrait's own teeth
colour (lightness from the cheeks; white balance from the whites of the eyes
where they can be trusted, else from the skin's cast; never green, blue or a
fixed cream) and the rest of the interior the same exposure with half the
change of white balance; it is blurred to the portrait's sharpness and given
the portrait's grain (one fixed pattern, so nothing shimmers from frame to
frame). Per frame it draws the seam where the lips meet (as the painter does)
and takes the interior from the samples nearest the posed opening, warped into
the inner-lip contour (:meth:`MouthBank.paint`), its edge feathered inwards.
Openings wider than any sample use the widest one, stretched; past 0.1 IOD the
middle of the opening is shaded dark (the upper teeth keep their light) and its sides
fall off into the cheeks' shadow, so a stretched or teeth-filled sample never reads as
a pale plate. Below the bank's
smallest opening (p/b/m, near-closures), and wherever a sample cannot be
warped, the painter draws it as before.

On l, th and dh (the track's ``tongue`` channel) a real l/th interior of the same
footage (``tongue.npz``, prepared alike) is painted over the usual one as much as the
channel asks, its upper teeth kept in front, before the shade of a wide opening (the
tongue lies in the mouth's shadow); over a portrait's own teeth (render/own_mouth.py)
only its tongue, behind them.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecast.assets import asset_path
from facecast.render.mouth import MouthPainter
from facecast.render.mouth_bank import MIN_GAP, MouthBank, MouthSample, _frame_axes, lip_colour
from facecast.render.rig import EYES, LOWER_INNER, MESH_POINTS, UPPER_INNER, FaceFrame

if TYPE_CHECKING:
    from facecast.render.own_mouth import OwnBank

STOCK_FILE = "mouths/stock.npz"
# The scale the samples are prepared at never exceeds this (canonical pixels per IOD):
# the warp enlarges them further for larger faces, and there is no detail to gain.
MAX_SCALE = 320.0
# The eye whites: the brightest share of the pixels inside the eyelids (the iris, pupil
# and lashes are darker), and how few pixels are too few to trust.
SCLERA_SHARE = 0.35
MIN_SCLERA_PIXELS = 12
# The portrait's teeth colour (teeth_colour):
TEETH_LIGHT = 1.08  # L* against the cheeks' L* ...
TEETH_L_RANGE = (45.0, 84.0)  # ... within these
TEETH_TINT = np.array([1.5, 14.0])  # a*, b* above the scene's neutral (teeth are yellowish)
TEETH_FLOOR_AB = np.array([1.0, 3.0])  # a*, b* never below (no green, no blue)
CAST_SHARE = 0.5  # the neutral from skin: this share of its departure from ...
TYPICAL_SKIN_AB = np.array([12.0, 17.0])  # ... a typical skin's a*, b*
SCLERA_TRUST = 0.9  # eye whites are the neutral when their L* is this share of the skin's
SKIN_B_SHARE = 0.8  # teeth b* at most this share of the skin's (unless the light is yellower)
SKIN_WARMTH = np.array([0.35, 0.5])  # teeth a*, b* at least these shares of the skin's
TEETH_SHARE = 0.2  # the footage's teeth colour: the brightest fifth of its openings
GAIN_RANGE = (0.3, 2.0)  # per channel, footage -> portrait
# Which of the footage's pixels are teeth: luma between these shares of its teeth's
# (flesh -> teeth colouring), unless their Lab chroma is past these multiples of the
# teeth's (tongue, gums and lips are as light, but pinker).
TEETH_BLEND = (0.55, 0.85)
TEETH_CHROMA_GATE = (1.3, 2.0)
TEETH_CHROMA_KEEP = 0.4  # share of the footage's teeth a*, b* variation that is kept
# Which of the footage's samples the stock keeps (stock_samples): above this gap (IOD)
# only those whose opening is at least this share teeth (Lab L* above the level).
STOCK_OPEN_GAP = 0.08
STOCK_MIN_TEETH = 0.08
TEETH_LIGHT_LEVEL = 54.9  # Lab L*
TEETH_PREFERENCE = 0.1  # IOD of choosing cost per unit of teeth share missing
KEEP_MARGIN = 0.12  # IOD of the footage kept around the opening (the warp reads 0.035)
# Blurs tried to bring a sample to the portrait's sharpness (Gaussian sigma, pixels at
# the face's scale), and the most grain added (standard deviation, 8-bit levels).
BLURS = (0.0, 0.5, 0.8, 1.1, 1.5, 2.0, 2.7)
MAX_GRAIN = 5.0
FEATHER_MIN = 0.5  # pixels: the softest edge of the interior against the lips ...
FEATHER_EXTRA = 0.006  # ... and how much softer per IOD pixel than the blur chosen
GRAIN_SEED = 14
# The dark of a wide-open mouth (StockPainter._shade_cavity): past the first of these
# gaps (IOD) the band between the upper teeth and the floor of the mouth is darkened, in
# full (this share of its light taken away) from the second. A sample stretched over a
# wide opening, or one whose lower teeth fill it, otherwise reads as a pale plate.
CAVITY_GAPS = (0.1, 0.22)
CAVITY_DARK = 0.65
# Depth down the opening (0 under the upper lip, 1 on the lower lip) where the cavity
# begins (the upper teeth hang above), where it is darkest, and how much of the dark is
# left on the floor of the mouth (lower teeth and tongue show there).
CAVITY_DEPTH = (0.22, 0.5)
CAVITY_FLOOR = 0.35
# ... and across it (0 middle, 1 corner): from the first to the second the cheeks' shadow
# takes this share of the light (under the upper lip, then from the cavity's depth down).
CAVITY_SIDE = (0.35, 0.95)
CAVITY_SIDE_DARK = (0.35, 0.8)
# The tongue (l, th, dh): samples of the same footage at those sounds (tongue.npz).
TONGUE_FILE = "mouths/tongue.npz"
TONGUE_PHONES = frozenset({"L", "TH", "DH"})  # ARPAbet, as the recogniser gives them
# Which of a sample's opening is tongue: at least this far (IOD) inside the inner lips
# (their wet inside is as pink), Lab L* between the cavity's dark and the teeth's light,
# a* past the grey of the teeth (smoothstep edges).
TONGUE_INSET = 0.02
TONGUE_L = ((24.0, 30.0), (56.0, 62.0))
TONGUE_A = (9.0, 13.0)
TONGUE_MIN_SHARE = 0.3  # of the opening, for a sample to be kept as a tongue sample
TONGUE_GAP_STEP = 0.04  # IOD: one tongue sample per band of gaps (the most tongue)
TONGUE_MIN = 0.03  # tongue channel values under this draw nothing
# The teeth stay in front of the tongue: its cover fades out over pixels whose luma is
# between these shares of the portrait's teeth luma.
TONGUE_BEHIND = (0.7, 0.9)
TONGUE_TEETH_DEPTH = (0.3, 0.45)  # ... the upper teeth: this far down the opening (0..1)
# The tongue's colour (_tongue_in): the portrait's lip colour, this much as light and as
# saturated (it lies in the mouth's shadow, wet), with this share of the footage's own
# variation of colour around its mean.
TONGUE_LIGHT = 0.9
TONGUE_CHROMA = 1.1
TONGUE_CHROMA_KEEP = 0.5
TONGUE_KEEP_L = (64.0, 74.0)  # L*: lighter pixels at the mask's edge are teeth, kept


def _smooth(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, a smoothstep between."""
    t = np.clip((x - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return np.asarray(t * t * (3.0 - 2.0 * t), np.float32)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(rgb, np.float64) @ np.array([0.299, 0.587, 0.114])


def sclera_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """Median RGB of the whites of both eyes (the brightest pixels inside the eyelids),
    or None where the eyes are too small or shut to show any."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    h, w = image.shape[:2]
    found = []
    for side in ("right", "left"):
        ring = np.concatenate([pts[list(EYES[side]["upper"])],
                               pts[list(EYES[side]["lower"][::-1])]])
        x0, y0 = np.maximum(np.floor(ring.min(axis=0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(ring.max(axis=0)).astype(int) + 1, [w, h])
        if x1 - x0 < 4 or y1 - y0 < 3:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round(ring - [x0, y0]).astype(np.int32)], 255)
        # One pixel in from the lid edges: lashes and lid shadow are not the eye white.
        mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
        px = image[y0:y1, x0:x1][mask > 0].astype(np.float64)
        if len(px):
            found.append(px)
    if not found:
        return None
    px = np.concatenate(found)
    lum = _luma(px)
    bright = px[lum >= np.quantile(lum, 1.0 - SCLERA_SHARE)]
    if len(bright) < MIN_SCLERA_PIXELS:
        return None
    return np.median(bright, axis=0)


def skin_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Median RGB of the cheeks (between the eyes' lower lids and the mouth corners)."""
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    _, _, _, iod = _frame_axes(pts)
    h, w = image.shape[:2]
    r = max(2, int(0.1 * iod))
    found = []
    for idx in (205, 425):  # mid-cheek points of the mesh
        x, y = np.round(pts[idx]).astype(int)
        patch = image[max(y - r, 0): min(y + r, h), max(x - r, 0): min(x + r, w)]
        found.append(patch.reshape(-1, 3).astype(np.float64))
    px = np.concatenate(found)
    return np.median(px, axis=0) if len(px) else np.full(3, 160.0)


def _detail_ratio(grey: np.ndarray, mask: np.ndarray) -> float:
    """Fine detail against coarser detail inside ``mask``: lower is softer."""
    g = grey.astype(np.float32)
    fine = g - cv2.GaussianBlur(g, (0, 0), 1.0)
    mid = g - cv2.GaussianBlur(g, (0, 0), 3.0)
    sel = mask > 0
    return float(fine[sel].var() / max(mid[sel].var(), 1e-6))


def _noise_level(grey: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Standard deviation of the grain of an image patch (inside ``mask``): what a small
    blur removes, measured in the flattest tenth of 7x7 windows (skin texture,
    wrinkles and edges are detail, not grain)."""
    if grey.shape[0] < 16 or grey.shape[1] < 16:
        return 0.0
    g = grey.astype(np.float32)
    hf = g - cv2.GaussianBlur(g, (0, 0), 1.0)
    local = cv2.boxFilter(hf * hf, -1, (7, 7))[3:-3, 3:-3]
    if mask is not None:
        local = local[cv2.erode(mask, np.ones((7, 7), np.uint8))[3:-3, 3:-3] > 0]
        if local.size < 16:
            return 0.0
    # A unit-variance white noise keeps about 0.72 of its spread through this high-pass.
    return float(np.sqrt(max(float(np.quantile(local, 0.1)), 0.0)) / 0.72)


def _kept(upper: np.ndarray, lower: np.ndarray, shape: tuple[int, ...], grow: float
          ) -> np.ndarray:
    """Mask (uint8) of the opening between the inner lips grown by ``grow`` pixels."""
    mask = np.zeros(shape[:2], np.uint8)
    ring = np.concatenate([upper, lower[::-1]])
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
    k = max(1, int(round(grow)))
    return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))


# sRGB (D65) <-> CIE Lab in NumPy, as OpenCV's float conversion does it: OpenCV's own
# builds lookup tables on its first Lab call (about 0.2 s per process).
_RGB_TO_XYZ = np.array([[0.412453, 0.357580, 0.180423],
                        [0.212671, 0.715160, 0.072169],
                        [0.019334, 0.119193, 0.950227]])
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_WHITE = np.array([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (L* 0..100) of RGB values on the 0..255 scale (any shape ending in 3)."""
    c = np.clip(np.asarray(rgb, np.float64) / 255.0, 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = (lin @ _RGB_TO_XYZ.T) / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """RGB on the 0..255 scale (unclipped) of CIE Lab values."""
    lab = np.asarray(lab, np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = np.where(f > 0.206893, f ** 3, (f - 16.0 / 116.0) / 7.787) * _WHITE
    lin = np.clip(xyz @ _XYZ_TO_RGB.T, 0.0, None)
    c = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1.0 / 2.4) - 0.055)
    return c * 255.0


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(np.asarray(rgb, np.float64).reshape(3))


def _rgb(lab: np.ndarray) -> np.ndarray:
    return lab_to_rgb(np.asarray(lab, np.float64).reshape(3))


def bank_teeth(bank: MouthBank) -> np.ndarray:
    """Median RGB of the teeth in a bank: the brightest fifth of the openings of its
    open samples (the colour the portrait's own teeth colour replaces)."""
    found = []
    for s in bank.samples:
        if s.gap < 0.1:
            continue
        mask = np.zeros(s.crop.shape[:2], np.uint8)
        ring = np.concatenate([s.upper, s.lower[::-1]])
        cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
        found.append(s.crop[cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0])
    px = np.concatenate(found).astype(np.float64) if found else np.zeros((0, 3))
    if len(px) < 10:
        return np.array([200.0, 190.0, 180.0])
    lum = _luma(px)
    return np.median(px[lum >= np.quantile(lum, 1.0 - TEETH_SHARE)], axis=0)


def teeth_share(sample: MouthSample) -> float:
    """Share of a sample's opening that is teeth (light pixels, Lab L* over 55)."""
    mask = np.zeros(sample.crop.shape[:2], np.uint8)
    ring = np.concatenate([sample.upper, sample.lower[::-1]])
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
    inside = cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0
    if not inside.any():
        return 0.0
    light = rgb_to_lab(sample.crop[inside])[:, 0]
    return float(np.mean(light > TEETH_LIGHT_LEVEL))


def stock_samples(bank: MouthBank) -> MouthBank:
    """The samples fit for the stock: every small opening (a dark slit is what a
    barely parted mouth shows), and of the larger ones only those with teeth in view
    (a gaping dark hole, an "oo" seen from the front, reads as a hole in a portrait)."""
    kept = [s for s in bank.samples
            if s.gap < STOCK_OPEN_GAP or teeth_share(s) >= STOCK_MIN_TEETH]
    return _trimmed(MouthBank(kept, bank.scale, bank.usual_width))


def _trimmed(bank: MouthBank) -> MouthBank:
    """Only the opening and a thin band of lip around it ship: the rest of the person's
    face is never drawn (and would only enlarge the package)."""
    kept = []
    for s in bank.samples:
        crop = s.crop.copy()
        crop[_kept(s.upper, s.lower, crop.shape, KEEP_MARGIN * bank.scale) == 0] = \
            np.round(s.lip).astype(np.uint8)
        kept.append(MouthSample(crop, s.upper, s.lower, s.gap, s.width, s.lip, s.sharpness,
                                s.frame))
    return MouthBank(kept, bank.scale, bank.usual_width)


def tongue_mask(crop: np.ndarray, upper: np.ndarray, lower: np.ndarray, scale: float
                ) -> np.ndarray:
    """Where a sample's opening shows its tongue (H, W) float32 0..1."""
    mask = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(np.concatenate([upper, lower[::-1]])).astype(np.int32)], 255)
    k = max(1, int(round(TONGUE_INSET * scale)))
    inside = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                       (2 * k + 1, 2 * k + 1))) > 0
    lab = rgb_to_lab(crop)
    m = (_smooth(lab[..., 0], *TONGUE_L[0]) * (1.0 - _smooth(lab[..., 0], *TONGUE_L[1]))
         * _smooth(lab[..., 1], *TONGUE_A) * inside)
    return np.asarray(cv2.GaussianBlur(m.astype(np.float32), (0, 0), 1.0), np.float32)


def tongue_share(sample: MouthSample, scale: float) -> float:
    """Share of a sample's opening that is tongue."""
    mask = np.zeros(sample.crop.shape[:2], np.uint8)
    ring = np.concatenate([sample.upper, sample.lower[::-1]])
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
    inside = mask > 0
    if not inside.any():
        return 0.0
    return float(tongue_mask(sample.crop, sample.upper, sample.lower, scale)[inside].mean())


def tongue_samples(bank: MouthBank) -> MouthBank:
    """Of samples cut where l, th or dh is heard, those showing the most tongue: one per
    band of gaps, each at least :data:`TONGUE_MIN_SHARE` tongue, kept as the stock
    keeps its samples (the opening and a thin band of lip)."""
    best: dict[int, tuple[float, MouthSample]] = {}
    for s in bank.samples:
        share = tongue_share(s, bank.scale)
        band = int(s.gap // TONGUE_GAP_STEP)
        if share >= TONGUE_MIN_SHARE and (band not in best or share > best[band][0]):
            best[band] = (share, s)
    return _trimmed(MouthBank([s for _, s in best.values()], bank.scale, bank.usual_width))


@functools.lru_cache(maxsize=1)
def stock_tongue() -> MouthBank | None:
    """The packaged tongue samples, read once per process (None where absent)."""
    try:
        return MouthBank.load(asset_path(TONGUE_FILE))
    except FileNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def stock_bank() -> tuple[MouthBank, np.ndarray]:
    """The packaged bank and its teeth colour (RGB), read once per process."""
    path = asset_path(STOCK_FILE)
    bank = MouthBank.load(path)
    with np.load(path) as data:
        teeth = np.asarray(data["teeth"], np.float64)
    return bank, teeth


def teeth_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The colour (CIE Lab) this portrait's teeth would have in its own light.

    Brightness follows the cheeks (teeth in an open mouth are about as light as the
    lit skin around it). White balance follows the whites of the eyes, the neutral
    surface every face shows, where they can be trusted (at least about as light as
    the skin and less coloured than it; small, shadowed or painted eyes are not);
    otherwise the skin's departure from a typical skin colour, half of it, as the
    cast. Teeth never go greener or bluer than the scene's neutral.
    """
    skin = _lab(skin_colour(image, landmarks))
    white = sclera_colour(image, landmarks)
    light = float(np.clip(TEETH_LIGHT * skin[0], *TEETH_L_RANGE))
    neutral = CAST_SHARE * (skin[1:] - TYPICAL_SKIN_AB)
    tint = TEETH_TINT
    if white is not None:
        w = _lab(white)
        if w[0] >= SCLERA_TRUST * skin[0] and np.hypot(*w[1:]) < np.hypot(*skin[1:]):
            neutral, tint = w[1:], TEETH_TINT * 0.5
    ab = neutral + tint
    # Teeth are never yellower than most of the skin (a yellow light already shows in
    # the neutral), nor greener or bluer than a slightly warm grey.
    ab[1] = min(ab[1], max(SKIN_B_SHARE * skin[2], neutral[1]))
    # ... and a little of the skin's own warmth: teeth greyer than that read as green or
    # cyan beside pink lips.
    ab = np.maximum(ab, np.maximum(TEETH_FLOOR_AB, SKIN_WARMTH * skin[1:]))
    return np.array([light, *ab])


def colour_gain(image: np.ndarray, landmarks: np.ndarray, src_teeth: np.ndarray) -> np.ndarray:
    """Per-channel gain that turns the footage's teeth into this portrait's."""
    want = _rgb(teeth_colour(image, landmarks))
    return np.clip(want / np.maximum(src_teeth, 1.0), *GAIN_RANGE)


def flesh_gain(teeth_gain: np.ndarray) -> np.ndarray:
    """Per-channel gain for the rest of the interior (tongue, gums, the wet inside of the
    lips, the dark of the mouth): the teeth's exposure with half their colour change.
    The footage's teeth are pinker than teeth are (warm light and the flesh around
    them), so their full change to the portrait's teeth colour is more than the change
    of light: on the flesh it turns pink grey or lavender."""
    luma = max(float(_luma(teeth_gain)), 1e-6)
    return np.asarray(luma * np.sqrt(teeth_gain / luma), np.float64)


def _tongue_in(sample: MouthSample, lip: np.ndarray) -> MouthSample:
    """A prepared tongue sample whose tongue takes the portrait's lip colour (the same
    flesh; the footage's tongue, small and compressed, is a dull brownish pink that reads
    grey on a pale face), keeping part of its own variation of colour and its shading."""
    if sample.mask is None:
        return sample
    m = sample.mask
    sel = m > 0.05
    if not sel.any():
        return sample
    lab = rgb_to_lab(sample.crop[sel])
    # Light pixels at the mask's edge are teeth: left as they are.
    w = (m[sel] * (1.0 - _smooth(lab[:, 0], *TONGUE_KEEP_L)))[:, None]
    mean = (lab * w).sum(axis=0) / max(float(w.sum()), 1e-6)
    want = rgb_to_lab(np.asarray(lip, np.float64))
    out = lab.copy()
    out[:, 0] = np.minimum(lab[:, 0] * (TONGUE_LIGHT * want[0] / max(mean[0], 1.0)),
                           TONGUE_KEEP_L[0])
    out[:, 1:] = want[1:] * TONGUE_CHROMA + TONGUE_CHROMA_KEEP * (lab[:, 1:] - mean[1:])
    crop = sample.crop.copy()
    crop[sel] = np.clip(sample.crop[sel] * (1.0 - w) + lab_to_rgb(out) * w, 0, 255
                        ).astype(np.uint8)
    return MouthSample(crop, sample.upper, sample.lower, sample.gap, sample.width,
                       sample.lip, sample.sharpness, sample.frame, sample.mask)


class StockBank(MouthBank):
    """The stock samples prepared for one face: beyond the widest sample the widest is
    stretched, and widths are compared relative to each face's own mouth."""

    def __init__(self, samples: list[MouthSample], scale: float, usual_width: float,
                 face_width: float) -> None:
        super().__init__(samples, scale, usual_width)
        # The footage's mouth is wider or narrower than this face's at rest: compare
        # openings in the footage's terms.
        self.width_scale = usual_width / face_width if face_width > 0 else 1.0
        # How the samples were brought to the face (for reports): colour gains per
        # channel (teeth, flesh), blur sigma (pixels) and grain added (8-bit levels).
        self.gain = np.ones(3)
        self.flesh_gain = np.ones(3)
        self.blur = 0.0
        self.grain = 0.0
        self.feather = 0.0  # the interior's edge softness (pixels): the portrait's own

        # The tongue samples prepared alike (None: no tongue drawn).
        self.tongue: TongueBank | None = None

    def choose(self, gap: float, width: float) -> list[tuple[MouthSample, float]]:
        return super().choose(min(gap, self.max_gap), width * self.width_scale)


class TongueBank(StockBank):
    """The stock's tongue samples for one face: every opening takes the nearest (its gap
    held within the samples' range), drawn only where its tongue is; ``whole`` draws
    all of each sample (teeth, tongue and the dark of the mouth)."""

    def __init__(self, samples: list[MouthSample], scale: float, usual_width: float,
                 face_width: float, whole: bool = False) -> None:
        super().__init__(samples, scale, usual_width, face_width)
        self.whole: TongueBank = self
        if not whole:
            self.whole = TongueBank([MouthSample(s.crop, s.upper, s.lower, s.gap, s.width,
                                                 s.lip, s.sharpness, s.frame)
                                     for s in samples], scale, usual_width, face_width, True)

    def choose(self, gap: float, width: float) -> list[tuple[MouthSample, float]]:
        lo = float(np.min(self._gaps)) if len(self._gaps) else 0.0
        return super().choose(max(gap, lo), width)


def _recolour(crops: np.ndarray, flesh: np.ndarray, want: np.ndarray, src_teeth: np.ndarray
              ) -> np.ndarray:
    """The footage's crops (N, H, W, 3) in the portrait's colours (float32, 0..255).

    The flesh takes ``flesh`` per channel. The teeth are set in Lab: lightness scaled,
    colour placed on the portrait's teeth colour ``want`` with part of the footage's
    variation around it (a per-channel gain tuned to the footage's pinkish mean turns
    its greyer teeth green). Which pixels are teeth: light ones (between shares of the
    footage's teeth luma the flesh colouring passes to the teeth's) that are not much
    more coloured than its teeth (tongue, gums and lips can be as light, but pinker).
    """
    px = crops.astype(np.float32)
    out = px * flesh.astype(np.float32)
    src_luma = float(_luma(src_teeth))
    light = _smooth(px @ np.array([0.299, 0.587, 0.114], np.float32),
                    TEETH_BLEND[0] * src_luma, TEETH_BLEND[1] * src_luma)
    sel = light > 0  # only these need Lab (a small share of the pixels)
    if not sel.any():
        return out
    src_lab = _lab(src_teeth)
    chroma = max(float(np.hypot(src_lab[1], src_lab[2])), 4.0)
    lab = rgb_to_lab(px[sel])
    t = light[sel] * (1.0 - _smooth(np.hypot(lab[:, 1], lab[:, 2]),
                                    TEETH_CHROMA_GATE[0] * chroma,
                                    TEETH_CHROMA_GATE[1] * chroma))
    lab[:, 0] *= want[0] / max(src_lab[0], 1.0)
    lab[:, 1:] = want[1:] + TEETH_CHROMA_KEEP * (lab[:, 1:] - src_lab[1:])
    t = t[:, None].astype(np.float32)
    out[sel] = out[sel] * (1.0 - t) + lab_to_rgb(lab).astype(np.float32) * t
    return out


def prepare(image: np.ndarray, landmarks: np.ndarray,
            source: tuple[MouthBank, np.ndarray] | None = None) -> StockBank | None:
    """The stock bank brought to this face (scale, colour, sharpness, grain); None when
    there is no stock bank or the face is too small for one."""
    src, src_teeth = source if source is not None else stock_bank()
    if not len(src):
        return None
    pts = np.asarray(landmarks, np.float64)[:MESH_POINTS, :2]
    _, _, _, iod = _frame_axes(pts)
    if iod < 12:
        return None
    image = np.asarray(image)
    gain = colour_gain(image, landmarks, src_teeth)
    flesh = flesh_gain(gain)
    want = teeth_colour(image, landmarks)
    f = min(iod, MAX_SCALE) / src.scale
    h0, w0 = src.samples[0].crop.shape[:2]
    size = (max(8, round(w0 * f)), max(8, round(h0 * f)))
    fx, fy = size[0] / w0, size[1] / h0
    interp = cv2.INTER_AREA if f < 1.0 else cv2.INTER_CUBIC
    # The portrait's sharpness and grain, around its mouth (lips and the skin beside).
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    centre = (pts[UPPER_INNER[0]] + pts[UPPER_INNER[-1]]) / 2.0
    box = np.round([centre[0] - 0.55 * iod, centre[1] - 0.3 * iod,
                    centre[0] + 0.55 * iod, centre[1] + 0.4 * iod]).astype(int)
    box = np.clip(box, 0, [grey.shape[1], grey.shape[0], grey.shape[1], grey.shape[0]])
    around = grey[box[1]: box[3], box[0]: box[2]]
    want_detail = _detail_ratio(around, np.ones_like(around)) if around.size > 64 else None
    wide = np.round([centre[0] - 0.9 * iod, centre[1] - 0.7 * iod,
                     centre[0] + 0.9 * iod, centre[1] + 0.5 * iod]).astype(int)
    wide = np.clip(wide, 0, [grey.shape[1], grey.shape[0], grey.shape[1], grey.shape[0]])
    want_grain = _noise_level(grey[wide[1]: wide[3], wide[0]: wide[2]])

    # One blur for every sample (chosen on the open ones), so the interior's sharpness
    # does not change as the samples take turns.
    blur = 0.0
    if want_detail is not None:
        chosen = [s for s in src.samples if s.gap > 0.1][:8] or src.samples[:8]
        probe = [(cv2.resize(s.crop, size, interpolation=interp), s) for s in chosen]
        greys = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im, _ in probe]
        # Measured on what the stock keeps (the opening and the lips' inner band).
        masks = [_kept(s.upper * fx, s.lower * fy, im.shape, 0.06 * iod) for im, s in probe]

        def detail(sigma: float) -> float:
            return float(np.median([_detail_ratio(
                cv2.GaussianBlur(g, (0, 0), sigma) if sigma else g, m)
                for g, m in zip(greys, masks, strict=True)]))

        blur = min(BLURS, key=lambda s: abs(detail(s) - want_detail))
    rng = np.random.default_rng(GRAIN_SEED)
    grain = rng.standard_normal((size[1], size[0]), np.float32)
    # The footage's own grain is gone (H.264 at 450x450, then resampled): the portrait's
    # is added in full, one fixed pattern for every sample.
    add = min(want_grain, MAX_GRAIN)
    def brought(found: list[MouthSample], masks: list[np.ndarray] | None = None
                ) -> list[MouthSample]:
        """``found`` at the face's scale, colour, sharpness and grain."""
        coloured = _recolour(np.stack([s.crop for s in found]), flesh, want, src_teeth)
        samples = []
        for k, (im, s) in enumerate(zip(coloured, found, strict=True)):
            out = cv2.resize(im, size, interpolation=interp)
            if blur:
                out = cv2.GaussianBlur(out, (0, 0), blur)
            if add > 0.3:
                out += (add * grain)[..., None]
            crop = np.clip(out, 0, 255).astype(np.uint8)
            scale = np.array([fx, fy], np.float32)
            mask = (None if masks is None else
                    np.asarray(cv2.resize(masks[k], size, interpolation=cv2.INTER_LINEAR),
                               np.float32))
            samples.append(MouthSample(crop, (s.upper + 0.5) * scale - 0.5,
                                       (s.lower + 0.5) * scale - 0.5, s.gap, s.width,
                                       np.full(3, 128.0, np.float32), s.sharpness, s.frame,
                                       mask))
        return samples

    samples = brought(src.samples)
    face_width = float(np.linalg.norm(pts[291] - pts[61])) / iod
    bank = StockBank(samples, src.scale * fx, src.usual_width, face_width)
    tongue = stock_tongue() if source is None else None
    if tongue is not None and len(tongue) and tongue.samples[0].crop.shape == \
            src.samples[0].crop.shape:
        # Only the tongue of each is drawn: where the footage showed it (before recolouring).
        masks = [tongue_mask(t.crop, t.upper, t.lower, tongue.scale) for t in tongue.samples]
        lip = lip_colour(image, pts)
        tongues = brought(tongue.samples, masks)
        if lip is not None:
            tongues = [_tongue_in(t, lip) for t in tongues]
        bank.tongue = TongueBank(tongues, src.scale * fx, src.usual_width, face_width)
    # Of similar openings, those showing more teeth are preferred: a portrait's mouth
    # reads as open and lit, not as a dark hole.
    shares = np.array([teeth_share(s) for s in src.samples])  # the footage's own view
    bank.bias = TEETH_PREFERENCE * (shares.max(initial=0.0) - shares)
    bank.gain, bank.flesh_gain, bank.blur, bank.grain = gain, flesh, blur, add
    # A sharp cut-out edge shows against soft lips: the edge is as soft as the portrait
    # (the blur it needed) plus a little, never under half a pixel.
    bank.feather = max(FEATHER_MIN, blur + FEATHER_EXTRA * iod)
    return bank


class StockPainter(MouthPainter):
    """The mouth painter whose interior is real: the stock bank prepared for this face.

    The painter's own drawing stays for the line where the lips meet and for openings
    under the bank's smallest (p/b/m and near-closures render exactly as before), and
    as the fallback.
    """

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, frame: FaceFrame,
                 stock: StockBank | bool | None = True) -> None:
        """``stock``: True prepares the packaged bank; None / False paints only."""
        super().__init__(image, landmarks, frame)
        self.stock: StockBank | None = (prepare(image, landmarks) if stock is True
                                        else stock or None)
        # A portrait showing its own teeth: its own opening is the interior
        # (render/own_mouth.py: set by the animator, at the stock's scale).
        self.own: OwnBank | None = None
        self._neutral_lip = np.full(3, 128.0)  # the prepared samples' colour is final
        self._teeth_luma = float(_luma(_rgb(teeth_colour(image, landmarks))))
        self.stock_frames = 0  # frames painted from a bank (a statistic the tests read)
        self._count_lock = threading.Lock()  # frames are painted by two threads at once

    def _count(self) -> None:
        with self._count_lock:
            self.stock_frames += 1

    def paint(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray,
              teeth: float, tongue: float = 0.0) -> None:
        bank = self.stock
        gap, width = MouthBank.opening(posed)
        # bank.choose, not bank.fits: the same answer without finding the opening again
        if bank is None or gap < MIN_GAP or not bank.choose(gap, width):
            super().paint(patch, origin, posed, teeth, tongue)
            return
        self._despeckle(patch, origin, posed)
        up = posed[list(UPPER_INNER)] - origin
        lo = posed[list(LOWER_INNER)] - origin
        gap_px = self._lip_seam(patch, posed[[61, 291]] - origin, up, lo)
        own = self.own
        # The portrait's own opening, shown from the upper lip down to the lower.
        if own is not None and gap <= own.own_gap and own.paint(
                patch, origin, posed, self._neutral_lip, own.feather):
            self._count()
            self._paint_tongue(patch, origin, posed, tongue)
            return
        if not bank.paint(patch, origin, posed, self._neutral_lip, bank.feather):
            super().paint(patch, origin, posed, teeth, tongue)
            return
        self._count()
        # The tongue lies in the mouth: it is shaded with the rest (drawn after the shade,
        # an l / th sample stretched over a wide opening was a flat light plate).
        self._paint_tongue(patch, origin, posed, tongue)
        self._shade_cavity(patch, up, lo, gap_px)
        self._paint_own_top(patch, origin, posed, gap)

    def _paint_tongue(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray,
                      tongue: float) -> None:
        """The tongue (l, th, dh) over the interior: the stock's tongue samples, only where
        they show tongue, as much as the channel asks, behind the teeth."""
        bank = self.stock
        if bank is None or bank.tongue is None or tongue < TONGUE_MIN:
            return
        pts = np.asarray(posed, np.float64)[:, :2] - np.asarray(origin, np.float64)
        x0, y0 = np.maximum(np.floor(pts[list(UPPER_INNER + LOWER_INNER)].min(axis=0))
                            .astype(int) - 2, 0)
        x1, y1 = np.minimum(np.ceil(pts[list(UPPER_INNER + LOWER_INNER)].max(axis=0))
                            .astype(int) + 3, [patch.shape[1], patch.shape[0]])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        opacity = float(np.clip(tongue, 0.0, 1.0))
        before = patch[y0:y1, x0:x1].astype(np.float32)
        luma = before @ np.array([0.299, 0.587, 0.114], np.float32)
        front = _smooth(luma, *(self._teeth_luma * np.array(TONGUE_BEHIND)))
        if self.own is None:
            # A real l / th mouth of the footage (its tongue, the dark and teeth around it)
            # in place of the usual interior, as much as the channel asks; the upper teeth
            # of the usual interior stay in front (the tongue tip is behind them).
            if not bank.tongue.whole.paint(patch, origin, posed, self._neutral_lip,
                                           bank.feather, opacity=opacity):
                return
            depth = self._depth(pts[list(UPPER_INNER)], pts[list(LOWER_INNER)],
                                (x0, y0, x1, y1))
            front = front * (1.0 - _smooth(depth, *TONGUE_TEETH_DEPTH))
        # Over the portrait's own teeth only the tongue is drawn, and only behind them:
        # where the interior is darker than teeth.
        elif not bank.tongue.paint(patch, origin, posed, self._neutral_lip, self.own.feather,
                                   opacity=opacity):
            return
        front = front[..., None]
        region = patch[y0:y1, x0:x1]
        region[:] = np.clip(region * (1.0 - front) + before * front, 0, 255).astype(np.uint8)

    def _paint_own_top(self, patch: np.ndarray, origin: tuple[int, int], posed: np.ndarray,
                       gap: float) -> None:
        """The portrait's own opening over the top of a wider one (own-teeth portraits)."""
        own = self.own
        if own is not None:
            # Wider than the portrait's own opening: all of it hangs under the upper lip
            # at its own size (teeth are not stretched), the stock's darker floor below.
            top = posed.copy()
            share = own.own_gap / gap
            top[list(LOWER_INNER)] = posed[list(UPPER_INNER)] + share * (
                posed[list(LOWER_INNER)] - posed[list(UPPER_INNER)])
            own.paint(patch, origin, top, self._neutral_lip, own.feather)

    def _depth(self, up: np.ndarray, lo: np.ndarray, box: tuple[int, int, int, int]
               ) -> np.ndarray:
        """Per pixel of ``box`` (x0, y0, x1, y1), how far down the opening between the
        inner lips ``up`` and ``lo`` it lies: 0 under the upper lip, 1 on the lower."""
        fr = self.frame
        x0, y0, x1, y1 = box
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        a = xx * fr.right[0] + yy * fr.right[1]
        b = xx * fr.down[0] + yy * fr.down[1]
        ua, ub = up @ fr.right, up @ fr.down
        la, lb = lo @ fr.right, lo @ fr.down
        top = np.interp(a, ua[np.argsort(ua)], ub[np.argsort(ua)])
        bottom = np.interp(a, la[np.argsort(la)], lb[np.argsort(la)])
        return np.asarray((b - top) / np.maximum(bottom - top, 1.0), np.float32)

    def _across(self, up: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Per pixel of ``box`` (x0, y0, x1, y1), where across the opening it lies: 0 in
        the middle, -1 / +1 at the corners (the inner lips' ends ``up[0]``, ``up[-1]``)."""
        fr = self.frame
        x0, y0, x1, y1 = box
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        a = xx * fr.right[0] + yy * fr.right[1]
        ends = np.sort([float(up[0] @ fr.right), float(up[-1] @ fr.right)])
        mid, half = (ends[0] + ends[1]) / 2.0, max((ends[1] - ends[0]) / 2.0, 1.0)
        return np.asarray((a - mid) / half, np.float32)

    def _shade_cavity(self, patch: np.ndarray, up: np.ndarray, lo: np.ndarray,
                      gap_px: float) -> None:
        """Darken the middle of a wide opening (patch coordinates of the inner lips):
        the upper teeth under the upper lip keep their light, the floor keeps part."""
        fr = self.frame
        k = CAVITY_DARK * float(_smooth(np.array(gap_px / fr.iod), *CAVITY_GAPS))
        if k < 0.01:
            return
        poly = np.concatenate([up, lo[::-1]])
        x0, y0 = np.maximum(np.floor(poly.min(axis=0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(poly.max(axis=0)).astype(int) + 2,
                            [patch.shape[1], patch.shape[0]])
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255,
                     lineType=cv2.LINE_AA, shift=4)
        depth = self._depth(up, lo, (x0, y0, x1, y1))
        band = _smooth(depth, *CAVITY_DEPTH) * (
            1.0 - (1.0 - CAVITY_FLOOR) * _smooth(depth, 0.75, 1.0))
        # Towards the corners the cheeks shade the mouth: the floor (lower teeth, tongue)
        # and the back teeth fall off into the dark, so a stretched sample's even floor
        # reads rounded, lit in front and in the middle.
        side = np.abs(self._across(up, (x0, y0, x1, y1)))
        lateral = _smooth(side, *CAVITY_SIDE) * (
            CAVITY_SIDE_DARK[0] + (CAVITY_SIDE_DARK[1] - CAVITY_SIDE_DARK[0])
            * _smooth(depth, *CAVITY_DEPTH))
        band = 1.0 - (1.0 - band) * (1.0 - lateral)
        shade = 1.0 - k * band * (mask.astype(np.float32) / 255.0)
        region = patch[y0:y1, x0:x1]
        region[:] = np.clip(region * shade[..., None], 0, 255).astype(np.uint8)
