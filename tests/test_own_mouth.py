"""Issue #14's photographic mouth, the rest: a portrait's own teeth, and the tongue on l/th."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecast.assets import asset_path
from facecast.face import check_face
from facecast.media import load_image
from facecast.motion.from_phonemes import track_from_phonemes
from facecast.motion.track import CHANNELS, MouthTrack
from facecast.motion.visemes import viseme_for
from facecast.render.animator import PortraitAnimator
from facecast.render.rig import LOWER_INNER, RIG_CHANNELS, UPPER_INNER, UPPER_OUTER
from facecast.render.stock_mouth import TONGUE_FILE, StockPainter, stock_tongue
from facecast.timing import PhonemeTiming

TONGUE = CHANNELS.index("tongue")


def animator(image: np.ndarray, landmarks: np.ndarray) -> PortraitAnimator:
    """At the rig's own jaw scale (the calibration's gain would resize fixed poses)."""
    return PortraitAnimator(image, landmarks, head_motion=False, calibrate=False)


def posed(anim: PortraitAnimator, mouth: np.ndarray) -> np.ndarray:
    values = np.zeros(len(RIG_CHANNELS), np.float32)
    values[: len(CHANNELS)] = mouth
    return anim.rig.pose(values)


def region(shape: tuple[int, ...], pts: np.ndarray, upper: tuple[int, ...],
           lower: tuple[int, ...], erode: bool = False) -> np.ndarray:
    ring = np.concatenate([pts[list(upper), :2], pts[list(lower[::-1]), :2]])
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
    return (cv2.erode(mask, np.ones((3, 3), np.uint8)) if erode else mask) > 0


def lab(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def upper_lip_streaks(frame: np.ndarray, pts: np.ndarray) -> float:
    """Mean |dL*/dx| on the upper lip: a smiling portrait's teeth squeezed into the lip
    by the closing warp show as vertical light stripes across it."""
    band = region(frame.shape, pts, UPPER_OUTER, UPPER_INNER)
    grad = np.abs(np.diff(lab(frame)[..., 0], axis=1))
    return float(grad[band[:, 1:] & band[:, :-1]].mean())


def tongue_share(frame: np.ndarray, pts: np.ndarray, lip_a: float) -> float:
    """Share of the opening that is tongue-coloured: as red as the lips (a* at least 0.6
    of theirs), neither teeth-light nor cavity-dark."""
    inside = region(frame.shape, pts, UPPER_INNER, LOWER_INNER, erode=True)
    px = lab(frame)[inside]
    return float(np.mean((px[:, 1] >= 0.6 * lip_a) & (px[:, 0] > 25) & (px[:, 0] < 70)))


def lip_a_star(image: np.ndarray, landmarks: np.ndarray) -> float:
    lips = region(image.shape, landmarks, UPPER_OUTER, UPPER_INNER)
    return float(np.median(lab(image)[lips][:, 1]))


def viseme(phone: str) -> np.ndarray:
    return viseme_for(phone).target_array().astype(np.float32)


@pytest.fixture(scope="module")
def obama(shared_media: Path) -> tuple[np.ndarray, np.ndarray]:
    image = load_image(shared_media / "faces" / "obama_official_portrait.jpg")
    verdict = check_face(image)
    assert verdict.accepted and verdict.analysis is not None
    return image, verdict.analysis.landmarks


# ---- a portrait's own teeth -------------------------------------------------------------


def test_a_teeth_showing_portrait_closes_without_its_teeth_on_the_lips(
        astronaut: np.ndarray, landmarks: np.ndarray) -> None:
    # The astronaut smiles with her teeth showing. Closing her mouth used to squeeze
    # them into the upper lip: 3.48 there on main, 1.83 now (her own lip: 4.14, with
    # the teeth edge inside the mesh's lip line).
    anim = animator(astronaut, landmarks)
    closed = np.zeros(len(CHANNELS), np.float32)
    for mouth in (closed, viseme("M")):
        frame = anim.render(mouth, 0.0, None)
        assert upper_lip_streaks(frame, posed(anim, mouth)) < 2.6


def test_obamas_closed_lips_carry_no_teeth_and_his_open_mouth_shows_his_own(
        obama: tuple[np.ndarray, np.ndarray]) -> None:
    image, landmarks = obama
    anim = animator(image, landmarks)
    closed = np.zeros(len(CHANNELS), np.float32)
    frame = anim.render(closed, 0.0, None)
    # 2.79 on main (vertical stripes of his squeezed teeth), 0.82 now.
    assert upper_lip_streaks(frame, posed(anim, closed)) < 1.6
    # Open, the opening's lightest pixels are his own teeth's light (L* 91.8 in the
    # portrait): the stock's recoloured teeth gave 83.2 on main, his own give 90.1.
    own = region(image.shape, landmarks, UPPER_INNER, LOWER_INNER, erode=True)
    own_light = float(np.quantile(lab(image)[own][:, 0], 0.9))
    mouth = np.zeros(len(CHANNELS), np.float32)
    mouth[CHANNELS.index("jaw")] = 0.35
    frame = anim.render(mouth, 0.0, None)
    inside = region(image.shape, posed(anim, mouth), UPPER_INNER, LOWER_INNER, erode=True)
    assert float(np.quantile(lab(frame)[inside][:, 0], 0.9)) > own_light - 3.0
    # ... and p/b/m still close the lips.
    pts = posed(anim, viseme("M"))
    gap = float(np.linalg.norm(pts[14] - pts[13])) / anim.rig.frame.iod
    assert gap < 0.02


# ---- the tongue on l / th -----------------------------------------------------------------


def test_l_th_and_dh_raise_the_tongue_channel_and_nothing_else_does() -> None:
    for phone in ("L", "TH", "DH", "l", "θ", "ð"):
        assert viseme(phone)[TONGUE] == 1.0, phone
    for phone in ("AA", "IY", "M", "B", "P", "F", "S", "T", "SIL"):
        assert viseme(phone)[TONGUE] == 0.0, phone
    # Through coarticulation: "all" then "ma": the tongue is up on the l, down on the m,
    # and the m still shuts the lips.
    phones = [PhonemeTiming("AO", 0.10, 0.25), PhonemeTiming("L", 0.25, 0.35),
              PhonemeTiming("M", 0.35, 0.45), PhonemeTiming("AA", 0.45, 0.65)]
    track = track_from_phonemes(phones, 0.8, lead=0.0)
    at = {t: int(t * track.fps) for t in (0.30, 0.40, 0.55)}
    assert track.values[at[0.30], TONGUE] > 0.7
    assert track.values[at[0.40], TONGUE] < 0.2
    assert track.values[at[0.40], CHANNELS.index("closure")] > 0.95
    assert track.values[at[0.55], TONGUE] < 0.2


def test_a_six_channel_track_still_reads() -> None:
    old = {"format": "facecast.mouth-track/1", "fps": 25.0, "source": "phonemes",
           "channels": list(CHANNELS[:6]), "frames": [[0.5, 0, 0, 0, 0, 0.2]] * 3}
    track = MouthTrack.from_dict(old)
    assert track.values.shape == (3, len(CHANNELS)) and not track.values[:, TONGUE].any()


def test_the_tongue_samples_ship_with_their_provenance() -> None:
    bank = stock_tongue()
    assert bank is not None and len(bank) >= 3
    path = asset_path(TONGUE_FILE)
    with np.load(path) as data:
        crops = hashlib.sha256(data["crops"].tobytes()).hexdigest()
    assert crops in (path.parent / "PROVENANCE.md").read_text()


def test_the_tongue_shows_on_l_and_not_on_aa(astronaut: np.ndarray,
                                             landmarks: np.ndarray) -> None:
    # The stock interior (the astronaut's own teeth would hide a tongue behind them).
    anim = animator(astronaut, landmarks)
    anim.painter = StockPainter(anim.canvas, landmarks, anim.rig.frame)
    lip_a = lip_a_star(astronaut, landmarks)
    share = {p: tongue_share(anim.render(viseme(p), 0.0, None), posed(anim, viseme(p)), lip_a)
             for p in ("L", "AA")}
    # main: 0.31 (the pink of her lips in a small opening) and 0.11; now 0.94 and 0.15.
    assert share["L"] > 0.6
    assert share["AA"] < 0.25


def test_grace_hoppers_tongue_shows_on_l_and_th(shared_media: Path) -> None:
    image = load_image(shared_media / "faces" / "grace_hopper.jpg")
    verdict = check_face(image)
    assert verdict.accepted and verdict.analysis is not None
    lm = verdict.analysis.landmarks
    anim = animator(image, lm)
    lip_a = lip_a_star(image, lm)
    share = {p: tongue_share(anim.render(viseme(p), 0.0, None), posed(anim, viseme(p)), lip_a)
             for p in ("L", "TH", "AA")}
    # main: 0.012, 0.018, 0.005; now 0.50, 0.55, 0.005.
    assert share["L"] > 0.3 and share["TH"] > 0.3
    assert share["AA"] < 0.05
