"""The face rig: how each animation channel moves the 478 face-mesh landmarks.

Every channel (the mouth channels of :mod:`facecast.motion.track`, the two
eyelids and the expression channels: brows raised or furrowed, smile, eyes wide,
squint) is a fixed displacement per landmark at value 1. A frame's landmark
positions are the source positions plus the channel values times those
displacements, so a whole frame costs one small matrix product. Amplitudes are
in units of the inter-ocular distance (IOD), so the rig fits any face size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecast.motion.expressions import FACE_CHANNELS
from facecast.motion.track import CHANNELS

# MediaPipe face-mesh indices (canonical topology), ordered left to right in the
# image for lips, and corner-to-corner for eyelids.
UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Eyes: the subject's right eye is on the image's left.
EYES = {
    "right": {
        "upper": (33, 246, 161, 160, 159, 158, 157, 173, 133),
        "lower": (33, 7, 163, 144, 145, 153, 154, 155, 133),
        "crease": (247, 30, 29, 27, 28, 56, 190),
    },
    "left": {
        "upper": (362, 398, 384, 385, 386, 387, 388, 466, 263),
        "lower": (362, 382, 381, 380, 374, 373, 390, 249, 263),
        "crease": (414, 286, 258, 257, 259, 260, 467),
    },
}
# Eyebrows, each side's upper then lower row from its outer to its inner end.
BROWS = {
    "right": (70, 63, 105, 66, 107, 46, 53, 52, 65, 55),
    "left": (300, 293, 334, 296, 336, 276, 283, 282, 295, 285),
}
MESH_POINTS = 468  # 468..477 are iris points: left out of the warp mesh
# Expression channels (FACE_CHANNELS: 0 = the portrait's own face; smile may go
# negative: corners down).
# New channels go last, so the mouth and blink indices every caller uses stay put.
RIG_CHANNELS: tuple[str, ...] = (*CHANNELS, "blink_left", "blink_right", *FACE_CHANNELS)

_JAW, _CLOSURE, _LABIODENTAL = (RIG_CHANNELS.index(c) for c in ("jaw", "closure", "labiodental"))
_BLINKS = (RIG_CHANNELS.index("blink_left"), RIG_CHANNELS.index("blink_right"))
_SMILE, _EYES_WIDE, _SQUINT = (RIG_CHANNELS.index(c) for c in ("smile", "eyes_wide", "squint"))
_FIRST_FACE = RIG_CHANNELS.index(FACE_CHANNELS[0])
_CHIN = 152

# Channel amplitudes at value 1, in IOD units.
JAW_DROP = 0.24
UPPER_LIP_LIFT = 0.05
# How an inner lip's jaw move fades into its corners' (t 0 mid-lip .. 1 at the corner):
# the move is the corner's by t**LIP_LENS. Real wide openings (the stock footage's,
# measured from the line between the corners) are lens-shaped, each lip's depth 1 - t**2
# of its middle's (0.34 / 0.55 / 0.76 / 0.92 at t 0.83 / 0.69 / 0.5 / 0.28); that on a
# portrait's lips (outer lines too) pinched the opening into a diamond and cut its
# measured gap (a jaw gain of 2.2 on Mona Lisa), so the rig rounds only the ends: at 6
# the opening beside the corners is about 0.65 of the middle's, half way out 0.98 (the
# gap the tracker measures stays).
LIP_LENS = 6.0
HAIR_SWAY = 0.5  # share of the jaw drop a moustache's hanging tips follow
JAW_CHEEK = 0.35  # share of the jaw drop the cheeks beside the mouth follow at the mouth line
# A per-face jaw gain (render/calibrate.py) scales the lips' opening in full; the chin
# and jaw line follow it up to this much, and the skin between blends the two, so
# a face whose mouth a face mesh barely sees does not get a yawning jaw.
JAW_GAIN_FACE_MAX = 1.4
SPREAD = 0.13
ROUND = 0.28
# Closing a portrait's open resting mouth (teeth showing): the share of the gap the upper
# lip covers (the lower lip the rest), and how much the upper and lower outer lip lines
# follow their inner lines (the rest of the move stretches the lip).
OPEN_REST = ((0.4, 0.6), (0.9, 0.7))
REST_SKIN = 0.25  # IOD of skin beyond the outer lip line that follows that move, fading
# Expression amplitudes at value 1, in IOD units (an eyebrow flash lifts the brows by
# roughly 5-8 mm on a 63 mm inter-ocular distance; an eye opening is about 0.14 IOD).
BROW_RAISE = 0.10  # brows up; the forehead above follows less, up to its top
FURROW_DOWN = 0.05  # inner brows down (the outer ends 30 % of it)
FURROW_IN = 0.04  # inner brows towards the nose
SMILE_UP = 0.06  # lip corners up
SMILE_OUT = 0.04  # lip corners out
CHEEK_UP = 0.03  # cheeks up
SMILE_LIDS = 0.015  # lower eyelids up (the cheeks push them)
EYES_WIDE = 0.04  # upper eyelids up (at the lid's middle)
SQUINT_LOWER = 0.035  # lower eyelids up
SQUINT_UPPER = 0.012  # upper eyelids down
# The lower lid's share of a blink's closing: none, so that all the portrait's eye
# opening lies under the closing upper lid (render/eyelid.py paints it shut) and no
# squashed sclera is left between the lids' old and new lines.
BLINK_LOWER = 0.0


@dataclass(frozen=True)
class FaceFrame:
    """A face-aligned frame: origin at the mouth centre, ``right``/``down`` unit axes."""

    origin: np.ndarray
    right: np.ndarray
    down: np.ndarray
    iod: float
    mouth_half_width: float

    def local(self, pts: np.ndarray) -> np.ndarray:
        """Image points -> (a, b) face coordinates in pixels."""
        rel = pts[..., :2] - self.origin
        return np.stack([rel @ self.right, rel @ self.down], axis=-1)

    def to_image(self, vec: np.ndarray) -> np.ndarray:
        """Face-frame vectors -> image vectors (pixels)."""
        return vec[..., :1] * self.right + vec[..., 1:2] * self.down


def face_frame(landmarks: np.ndarray) -> FaceFrame:
    """The frame of a face from its landmarks (pixels, full image)."""
    pts = landmarks[:, :2].astype(np.float64)
    eye_r = pts[list(EYES["right"]["upper"] + EYES["right"]["lower"])].mean(axis=0)
    eye_l = pts[list(EYES["left"]["upper"] + EYES["left"]["lower"])].mean(axis=0)
    right = eye_l - eye_r
    iod = float(np.linalg.norm(right))
    right = right / iod
    down = np.array([-right[1], right[0]])
    origin = (pts[13] + pts[14]) / 2.0
    half_width = float(np.linalg.norm(pts[291] - pts[61])) / 2.0
    return FaceFrame(origin, right, down, iod, max(half_width, 1e-3))


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class FaceRig:
    """Displacement basis for one face: ``pose(values) -> landmark positions``."""

    def __init__(self, landmarks: np.ndarray, hair: np.ndarray | None = None,
                 open_rest: bool = False) -> None:
        """``hair``: per landmark, whether it sits on a moustache (see
        :func:`moustache_points`); None: no moustache. ``open_rest``: the portrait's
        mouth is open with its teeth showing (render/own_mouth.py), closed as
        :data:`OPEN_REST` says."""
        self.source = landmarks[:, :2].astype(np.float32)
        self.rest = np.zeros_like(self.source)
        self.frame = face_frame(landmarks)
        n = len(self.source)
        self.basis = np.zeros((len(RIG_CHANNELS), n, 2), np.float32)
        fr = self.frame
        ab = fr.local(self.source)  # pixels in face frame
        a = ab[:, 0] / fr.mouth_half_width  # -1..1 across the mouth
        b = ab[:, 1] / fr.iod  # IOD units, + below the mouth line
        upper = np.array(UPPER_OUTER + UPPER_INNER)
        lower = np.array(LOWER_OUTER + LOWER_INNER)
        corners = np.array([61, 291, 78, 308])
        lips = np.unique(np.concatenate([upper, lower]))
        # Nearness to the mouth for non-lip points (1 on the lips, fading over ~0.35 IOD).
        dx_out = np.maximum(np.abs(a) - 1.0, 0.0) * fr.mouth_half_width / fr.iod
        near = np.exp(-(dx_out**2 + b**2) / (2 * 0.35**2))
        near[lips] = 1.0

        def put(channel: str, face_vec: np.ndarray) -> None:
            self.basis[RIG_CHANNELS.index(channel)] = fr.to_image(face_vec) * fr.iod

        # jaw: the jaw turns about its hinges, in front of the ears. Seen from the front a
        # point drops by how far forward of the hinge axis it sits: the lower lip and chin
        # the full amount, the jaw line less towards its angle (~0.9 IOD out), which
        # hardly moves. The cheeks beside the mouth are skin stretched between the still
        # cheekbone and the jaw: they follow part way, fading out towards the eyes; above
        # the mouth's middle (upper lip, nose) nothing drops.
        x = ab[:, 0] / fr.iod
        lever = 1.0 - 0.85 * _smoothstep(0.25, 1.0, np.abs(x))
        beside = _smoothstep(0.8, 1.3, np.abs(a)) * JAW_CHEEK
        ramp = beside * _smoothstep(-0.55, 0.0, b) + (1.0 - beside) * _smoothstep(0.0, 0.15, b)
        w = ramp * lever
        w[b > 2.0] = 0.0
        w[lower] = 1.0
        w[corners] = 0.45
        w[upper] = 0.0
        jaw = np.zeros((n, 2))
        jaw[:, 1] = JAW_DROP * w
        jaw[upper, 1] = -UPPER_LIP_LIFT * 0.6
        jaw[corners, 1] = JAW_DROP * 0.42
        # The inner lips' move fades into the corners' (LIP_LENS): with every point but
        # the corner moving in full the opening was a box with square sides and a wedge
        # at each corner. (The outer lines keep their move: fading them too tore the
        # skin above the upper lip's ends.)
        ends = a[[78, 308]]
        for contour in (UPPER_INNER, LOWER_INNER):
            idx = np.array(contour[1:-1])
            t = np.clip(np.where(a[idx] < 0, a[idx] / min(ends[0], -1e-3),
                                 a[idx] / max(ends[1], 1e-3)), 0.0, 1.0)
            fade = t ** LIP_LENS
            jaw[idx, 1] = (1.0 - fade) * jaw[idx, 1] + fade * JAW_DROP * 0.42
        if hair is not None:
            # A moustache grows on the upper lip: its hair moves with that lip, and the
            # jaw opens under it. Ends that hang beside the mouth corners sway half way
            # with the jaw towards their tips, or the skin between them and the dropping
            # corners shears into streaks.
            on_lip = hair[:n].copy()
            on_lip[lower] = False
            tip = _smoothstep(0.0, 0.45, b[on_lip])
            sway = HAIR_SWAY * JAW_DROP * w[on_lip]
            jaw[on_lip, 1] = (1.0 - tip) * -UPPER_LIP_LIFT * 0.6 + tip * sway
        lipmask = np.zeros(n, bool)
        lipmask[lips] = True
        jaw[lipmask, 0] = -0.10 * a[lipmask] * fr.mouth_half_width / fr.iod
        put("jaw", jaw)

        # spread: corners out and slightly up, lips thinner.
        spread = np.zeros((n, 2))
        spread[:, 0] = SPREAD * np.clip(a, -1.2, 1.2) * near
        spread[:, 1] = (-0.03 * np.clip(a, -1, 1) ** 2 - 0.12 * b) * near
        put("spread", spread)

        # round: lips pulled in towards the centre and pushed out (a little fuller).
        rnd = np.zeros((n, 2))
        rnd[:, 0] = -ROUND * a * fr.mouth_half_width / fr.iod * near
        rnd[:, 1] = 0.12 * b * near
        put("round", rnd)

        # Rest pose: the inner lips meet on their shared midline. A portrait that
        # smiles with open lips is closed first, so that every opening is painted
        # by the same mouth interior rather than half real teeth, half painted.
        up_in, lo_in = np.array(UPPER_INNER), np.array(LOWER_INNER)
        # A portrait showing its teeth (open_rest) closes mostly by raising the lower lip,
        # and moves its lips more than it stretches them: a thin upper lip stretched over
        # half a smile's opening reads as streaks.
        share, follow = OPEN_REST if open_rest else ((0.5, 0.5), (0.5, 0.5))
        mid = (ab[up_in, 1] + share[0] * (ab[lo_in, 1] - ab[up_in, 1]) if open_rest
               else (ab[up_in, 1] + ab[lo_in, 1]) / 2.0)
        rest = np.zeros((n, 2))
        rest[up_in, 1] = (mid - ab[up_in, 1]) / fr.iod
        rest[lo_in, 1] = (mid - ab[lo_in, 1]) / fr.iod
        rest[np.array(UPPER_OUTER), 1] = rest[up_in, 1] * follow[0]
        rest[np.array(LOWER_OUTER), 1] = rest[lo_in, 1] * follow[1]
        rest[corners] = 0.0
        if open_rest:
            self._carry_lip_rest(rest, ab)
        self.rest = (fr.to_image(rest) * fr.iod).astype(np.float32)
        # closure (p, b, m) has no shape of its own beyond the rest pose: it cancels
        # the jaw's opening of the lips (see pose()).

        # labiodental (f, v): upper lip lifts to show the teeth, lower lip tucks up to them.
        lab = np.zeros((n, 2))
        lab[np.array(UPPER_INNER + UPPER_OUTER), 1] = -0.06
        lab[lo_in, 1] = -0.01
        lab[np.array(LOWER_OUTER), 1] = -0.01
        lab[corners] = 0.0
        put("labiodental", lab)

        # teeth: the upper lip lifts slightly so the teeth show.
        teeth = np.zeros((n, 2))
        teeth[np.array(UPPER_INNER), 1] = -0.025
        teeth[np.array(UPPER_OUTER), 1] = -0.015
        teeth[corners] = 0.0
        put("teeth", teeth)

        for side in ("left", "right"):
            self.basis[RIG_CHANNELS.index(f"blink_{side}")] = self._blink(side)
        self._expressions(ab / fr.iod, lips, b, near)
        # Motion under a quarter pixel is invisible; dropping it keeps far-away triangles
        # still, and still triangles cost nothing to warp.
        self.basis[np.linalg.norm(self.basis, axis=2) < 0.25] = 0.0
        self._smile_lids[~self.basis[_SMILE].any(axis=1)] = 0.0
        self._jaw_unit = self.basis[_JAW].copy()
        self._jaw_share = near.astype(np.float32)  # 1 on the lips: their part of a gain
        self.jaw_gain = 1.0
        # The most the chin (152) may drop at jaw 1, in IOD (a portrait cut off just
        # under the chin has no room for more: see PortraitAnimator).
        self.chin_room = float("inf")

    def _carry_lip_rest(self, rest: np.ndarray, ab: np.ndarray) -> None:
        """The rest move of the lip contours, carried to every mesh point on the lips
        (interpolated between outer and inner contour) and to the skin just outside them
        (fading out over :data:`REST_SKIN` IOD). The mesh has rows of points inside each
        lip; left still while the contours around them move, the lip folds between them
        into a sawtooth along its border."""
        iod = self.frame.iod
        contours = set(UPPER_OUTER + UPPER_INNER + LOWER_OUTER + LOWER_INNER)
        free = np.array([i for i in range(min(len(ab), MESH_POINTS)) if i not in contours])
        a, b = ab[free, 0], ab[free, 1]
        lo_a, hi_a = float(ab[[61, 291], 0].min()), float(ab[[61, 291], 0].max())
        across = (a > lo_a) & (a < hi_a)

        def line(idx: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            order = np.argsort(ab[list(idx), 0])
            xs = ab[list(idx), 0][order]
            return (np.interp(a, xs, ab[list(idx), 1][order]),
                    np.interp(a, xs, rest[list(idx), 1][order]))

        for outer, inner, away in ((UPPER_OUTER, UPPER_INNER, -1.0),
                                   (LOWER_OUTER, LOWER_INNER, 1.0)):
            y_out, s_out = line(outer)
            y_in, s_in = line(inner)
            t = (b - y_out) / np.where(np.abs(y_in - y_out) > 1e-3, y_in - y_out, 1e-3)
            on_lip = across & (t > 0.0) & (t < 1.0)
            rest[free[on_lip], 1] = s_out[on_lip] + t[on_lip] * (s_in[on_lip] - s_out[on_lip])
            beyond = away * (b - y_out) / iod  # IOD outside the outer contour
            skin = across & (beyond > 0.0) & (beyond < REST_SKIN)
            fade = 1.0 - _smoothstep(0.0, REST_SKIN, beyond[skin])
            rest[free[skin], 1] = s_out[skin] * fade

    def set_jaw_gain(self, gain: float) -> None:
        """Scale the jaw channel: the lips' opening by ``gain``, the chin and jaw line by
        at most :data:`JAW_GAIN_FACE_MAX` (and less where the chin would drop further
        than ``chin_room``), the skin between by a blend of the two."""
        face = min(gain, JAW_GAIN_FACE_MAX)
        share = float(self._jaw_share[_CHIN])
        drop = float(self._jaw_unit[_CHIN] @ self.frame.down) / self.frame.iod
        if drop > 0 and (face + max(gain - face, 0.0) * share) * drop > self.chin_room:
            # the face gain that puts the chin, blended with the lips' gain, at its room
            face = max((self.chin_room / drop - gain * share) / (1.0 - share), 0.0)
        per_point = face + max(gain - face, 0.0) * self._jaw_share
        self.basis[_JAW] = self._jaw_unit * per_point[:, None]
        self.jaw_gain = float(gain)

    def _expressions(self, xy: np.ndarray, lips: np.ndarray, b: np.ndarray,
                     near: np.ndarray) -> None:
        """Brows, smile, eyes wide and squint, from positions ``xy`` in IOD units."""
        fr = self.frame
        n = len(xy)
        x, y = xy[:, 0], xy[:, 1]
        lid_pts = np.array([i for eye in EYES.values() for i in eye["upper"] + eye["lower"]])
        brow_pts = np.array([i for side in BROWS.values() for i in side])
        eye_y = float(np.mean(y[lid_pts]))  # the face frame's x axis runs through both eyes
        brow_y = float(np.mean(y[brow_pts]))
        mid = float(np.mean(x[lid_pts]))  # the face's midline
        dx_mid = x - mid
        span = max(eye_y - brow_y, 1e-3)
        # t: 0 on the eye line, 1 on the brow line; h: IOD above the brow line.
        t = (eye_y - y) / span
        h = brow_y - y
        above_eyes = t > 0
        lateral = 1.0 - _smoothstep(1.0, 1.3, np.abs(dx_mid))  # temples fade out
        eye_inside = np.zeros(n, bool)
        eye_inside[lid_pts] = True
        eye_inside[MESH_POINTS:] = True  # iris points follow nothing

        def put(channel: str, face_vec: np.ndarray) -> None:
            self.basis[RIG_CHANNELS.index(channel)] = fr.to_image(face_vec) * fr.iod

        # brow_raise: brows up by the full amount, the skin between brow and lid stretches
        # (lid margins stay), the forehead above moves less towards its top, so the
        # warp's still border above the head is never crowded.
        w = np.where(t <= 1.0, _smoothstep(0.25, 1.0, t),
                     1.0 - 0.65 * _smoothstep(0.0, 0.5, h)) * lateral
        w[~above_eyes | eye_inside] = 0.0
        w[brow_pts] = 1.0
        raise_vec = np.zeros((n, 2))
        raise_vec[:, 1] = -BROW_RAISE * w
        put("brow_raise", raise_vec)

        # brow_furrow: the inner brows come down and together (corrugator); the outer
        # ends follow a little; the forehead above stays.
        v = np.where(t <= 1.0, 0.8 * _smoothstep(0.25, 1.0, t),
                     1.0 - _smoothstep(0.0, 0.35, h)) * lateral
        v[~above_eyes | eye_inside] = 0.0
        v[brow_pts] = 1.0
        inner = 1.0 - _smoothstep(0.2, 0.8, np.abs(dx_mid))
        furrow = np.zeros((n, 2))
        furrow[:, 1] = FURROW_DOWN * (0.3 + 0.7 * inner) * v
        # Towards the midline, fading to nothing at it (points there have nowhere to go).
        furrow[:, 0] = -FURROW_IN * np.sign(dx_mid) * inner * _smoothstep(0.0, 0.2,
                                                                      np.abs(dx_mid)) * v
        put("brow_furrow", furrow)

        # smile: lip corners up and out (not the lips' middle, so closed lips stay
        # closed), nothing below the lower lip (the chin stays), cheeks up, lower lids up.
        mouth_a = np.clip(x / (fr.mouth_half_width / fr.iod), -1.2, 1.2)
        near_s = near * (1.0 - _smoothstep(0.15, 0.5, b))
        smile = np.zeros((n, 2))
        smile[:, 0] = SMILE_OUT * mouth_a * near_s
        smile[:, 1] = -SMILE_UP * mouth_a**2 * near_s
        cheek_y = eye_y / 2.0  # half way from the eyes to the mouth line
        for side in (-1.0, 1.0):
            g = np.exp(-((x - mid - side * 0.55) ** 2 + (y - cheek_y) ** 2) / (2 * 0.22**2))
            g[lips] = 0.0
            g[eye_inside] = 0.0
            smile[:, 1] -= CHEEK_UP * g
            smile[:, 0] += 0.3 * CHEEK_UP * side * g
        lids = np.zeros((n, 2))
        for eye in EYES.values():
            lo = np.array(eye["lower"])
            lids[lo, 1] = -SMILE_LIDS * self._lid_shape(xy, eye["lower"])
        smile += lids
        put("smile", smile)
        # The lids' part, kept to take back while the eyes blink (see pose()).
        self._smile_lids = (fr.to_image(lids) * fr.iod).astype(np.float32)

        # eyes_wide: upper lids up (most at the middle), the crease follows half way.
        wide = np.zeros((n, 2))
        squint = np.zeros((n, 2))
        for eye in EYES.values():
            up, lo = np.array(eye["upper"]), np.array(eye["lower"])
            shape_up = self._lid_shape(xy, eye["upper"])
            wide[up, 1] = -EYES_WIDE * shape_up
            wide[list(eye["crease"]), 1] = -0.5 * EYES_WIDE
            # squint: lower lids up, upper lids a little down.
            squint[lo, 1] = -SQUINT_LOWER * self._lid_shape(xy, eye["lower"])
            squint[up, 1] = SQUINT_UPPER * shape_up
            squint[list(eye["crease"]), 1] = 0.5 * SQUINT_UPPER
        put("eyes_wide", wide)
        put("squint", squint)

    @staticmethod
    def _lid_shape(xy: np.ndarray, lid: tuple[int, ...]) -> np.ndarray:
        """0 at the eye corners, 1 in the middle of the lid (by position across the eye)."""
        xs = xy[list(lid), 0]
        u = (xs - xs[0]) / (xs[-1] - xs[0]) if xs[-1] != xs[0] else np.zeros_like(xs)
        return np.sin(np.pi * np.clip(u, 0.0, 1.0)) ** 0.8

    def _blink(self, side: str) -> np.ndarray:
        """Upper lid down onto the lower lid (the lower lid moves by ``BLINK_LOWER``),
        crease follows."""
        eye = EYES[side]
        fr = self.frame
        ab = fr.local(self.source)
        up, lo = np.array(eye["upper"]), np.array(eye["lower"])
        # The lower lid's height under each upper-lid point (interpolated across the eye).
        order = np.argsort(ab[lo, 0])
        lo_at_up = np.interp(ab[up, 0], ab[lo[order], 0], ab[lo[order], 1])
        gap = lo_at_up - ab[up, 1]  # pixels, >= 0 for an open eye
        disp = np.zeros((len(self.source), 2), np.float32)
        disp[up, 1] = gap * (1.0 - BLINK_LOWER)
        up_at_lo = np.interp(ab[lo, 0], ab[up[np.argsort(ab[up, 0])], 0],
                             ab[up[np.argsort(ab[up, 0])], 1])
        disp[lo, 1] = -(ab[lo, 1] - up_at_lo) * BLINK_LOWER
        disp[list(eye["crease"]), 1] = float(np.mean(gap)) * 0.3
        disp[[up[0], up[-1]]] = 0.0  # the eye corners stay put
        return fr.to_image(disp)

    @staticmethod
    def weights(values: np.ndarray) -> np.ndarray:
        """Basis weights for channel ``values``: closed or tucked lips cancel the jaw; a
        blink takes back eyes-wide and squint, so that a blinking eye still closes and
        its lids never cross."""
        v = np.asarray(values, np.float32).copy()
        v[_JAW] *= (1.0 - v[_CLOSURE]) * (1.0 - 0.8 * v[_LABIODENTAL])
        blink = float(max(v[_BLINKS[0]], v[_BLINKS[1]]))
        if blink > 0.0:
            v[_EYES_WIDE] *= 1.0 - blink
            v[_SQUINT] *= 1.0 - blink
        return v

    def pose(self, values: np.ndarray) -> np.ndarray:
        """Landmark positions (n, 2) for channel ``values`` ordered as ``RIG_CHANNELS``."""
        w = self.weights(values)
        # Without expression channels, the product over the original channels only: the
        # same sums in the same order as before they existed, so natural renders are
        # bit for bit what they were.
        n = len(w) if w[_FIRST_FACE:].any() else _FIRST_FACE
        # einsum, not tensordot: tensordot's small product goes to OpenBLAS's threaded
        # gemv, whose worker spins after every frame (see render/dub.py's DubRig.target).
        posed = self.source + self.rest + np.einsum("c,cpk->pk", w[:n], self.basis[:n])
        blink = float(max(w[_BLINKS[0]], w[_BLINKS[1]]))
        if blink > 0.0 and w[_SMILE] != 0.0:
            # A smile lifts the lower lids; a closed eye's lids meet where the blink puts
            # them, so that lift fades out as the eye closes.
            posed -= (blink * float(w[_SMILE])) * self._smile_lids
        return posed
