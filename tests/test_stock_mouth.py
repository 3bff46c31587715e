"""The real mouth interior of talking photos: the packaged stock bank, prepared per face."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecast.assets import asset_path
from facecast.face import check_face
from facecast.motion.track import CHANNELS
from facecast.render.animator import PortraitAnimator
from facecast.render.mouth import MouthPainter
from facecast.render.mouth_bank import MouthBank
from facecast.render.rig import LOWER_INNER, RIG_CHANNELS, UPPER_INNER
from facecast.render.stock_mouth import (
    STOCK_FILE,
    StockPainter,
    prepare,
    stock_bank,
    teeth_colour,
)


def still_animator(image: np.ndarray, landmarks: np.ndarray) -> PortraitAnimator:
    """An animator at the rig's own jaw scale: these tests pose fixed jaw values to look at
    the interior, which the per-face calibration's gain would otherwise resize."""
    return PortraitAnimator(image, landmarks, head_motion=False, calibrate=False)


def mouth(**values: float) -> np.ndarray:
    return np.array([values.get(c, 0.0) for c in CHANNELS], np.float32)


def lab(px: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(px.reshape(-1, 1, 3).astype(np.float32) / 255.0,
                        cv2.COLOR_RGB2LAB).reshape(-1, 3)


def opening(shape: tuple[int, ...], posed: np.ndarray) -> np.ndarray:
    ring = np.concatenate([posed[list(UPPER_INNER), :2], posed[list(LOWER_INNER[::-1]), :2]])
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 255)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0


def test_the_stock_bank_ships_spans_the_openings_and_matches_its_provenance() -> None:
    bank, teeth = stock_bank()
    assert len(bank) >= 20
    gaps = np.sort([s.gap for s in bank.samples])
    assert gaps[0] <= 0.03 and gaps[-1] >= 0.25  # IOD: from a parted mouth to a wide one
    assert np.diff(gaps).max() < 0.06  # no hole in between
    assert float(teeth @ [0.299, 0.587, 0.114]) > 120  # its teeth are light
    path = asset_path(STOCK_FILE)
    assert path.stat().st_size < 2_500_000
    provenance = (path.parent / "PROVENANCE.md").read_text()
    with np.load(path) as data:
        crops = hashlib.sha256(data["crops"].tobytes()).hexdigest()
    assert crops in provenance and "17 U.S.C." in provenance


def test_openings_beyond_the_bank_stretch_its_widest_and_tiny_ones_are_declined(
        astronaut: np.ndarray, landmarks: np.ndarray) -> None:
    stock = prepare(astronaut, landmarks)
    assert stock is not None
    widest = max(stock.samples, key=lambda s: s.gap)
    chosen = stock.choose(0.6, stock.usual_width / stock.width_scale)
    assert [s for s, _ in chosen] == [widest]
    assert stock.choose(0.005, 0.9) == []


def test_an_open_mouth_on_the_astronaut_is_real_and_takes_her_white_balance(
        astronaut: np.ndarray, landmarks: np.ndarray) -> None:
    real = still_animator(astronaut, landmarks)
    painted = still_animator(astronaut, landmarks)
    painted.painter = MouthPainter(painted.canvas, landmarks, painted.rig.frame)
    values = mouth(jaw=1.0, teeth=0.6)
    probed = real.painter.stock_frames  # the jaw calibration's own probe renders
    a, b = real.render(values, 0.0, None), painted.render(values, 0.0, None)
    assert real.painter.stock_frames == probed + 1
    posed = _pose(real, values)
    inside = opening(a.shape, posed)
    assert inside.sum() > 150
    # A photograph's interior: every pixel its own colour; the painted plate repeats a few.
    real_px, painted_px = a[inside], b[inside]
    assert len(np.unique(real_px, axis=0)) > 0.8 * len(real_px)
    assert len(np.unique(painted_px, axis=0)) < 0.7 * len(painted_px)
    # The teeth (the brightest fifth of the opening) are light and warm like her skin:
    # no green or cyan cast (the painted plate's a* is about 0 here: greenish cream).
    px = lab(real_px)
    tooth = px[px[:, 0] >= np.quantile(px[:, 0], 0.8)].mean(axis=0)
    assert tooth[0] > 50 and tooth[1] >= 1.0 and tooth[2] >= 5.0
    x, y = np.round(landmarks[205, :2]).astype(int)  # her cheek
    skin = lab(astronaut[y - 3: y + 4, x - 3: x + 4]).mean(axis=0)
    hue = np.degrees(np.arctan2([tooth[2], skin[2]], [tooth[1], skin[1]]))
    assert abs(hue[0] - hue[1]) < 25


def _pose(animator: PortraitAnimator, values: np.ndarray) -> np.ndarray:
    full = np.zeros(len(RIG_CHANNELS), np.float32)
    full[: len(CHANNELS)] = values
    return animator.rig.pose(full)


def test_teeth_follow_the_portraits_white_balance(astronaut: np.ndarray,
                                                  landmarks: np.ndarray) -> None:
    """The same face under bluer light gets bluer (less yellow) teeth, and never past
    neutral into blue."""
    cool = np.clip(astronaut * np.array([0.85, 1.0, 1.2]), 0, 255).astype(np.uint8)
    warm_teeth, cool_teeth = teeth_colour(astronaut, landmarks), teeth_colour(cool, landmarks)
    assert cool_teeth[2] < warm_teeth[2] - 3
    assert cool_teeth[1] >= 0.0 and cool_teeth[2] >= 0.0


def test_closures_stay_closed_and_take_nothing_from_the_bank(
        astronaut: np.ndarray, landmarks: np.ndarray) -> None:
    real = still_animator(astronaut, landmarks)
    painted = still_animator(astronaut, landmarks)
    painted.painter = MouthPainter(painted.canvas, landmarks, painted.rig.frame)
    values = mouth(jaw=1.0, closure=1.0, teeth=0.6)
    probed = real.painter.stock_frames  # the jaw calibration's own probe renders
    a, b = real.render(values, 0.0, None), painted.render(values, 0.0, None)
    assert real.painter.stock_frames == probed
    assert np.array_equal(a, b)  # the painter's lip seam, nothing else
    # Shut to within a pixel (the teeth channel lifts the upper lip a little).
    assert MouthBank.opening(_pose(real, values))[0] < 0.02


@pytest.fixture(scope="module")
def grace(shared_media: Path) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.cvtColor(cv2.imread(str(shared_media / "faces" / "grace_hopper.jpg")),
                         cv2.COLOR_BGR2RGB)
    verdict = check_face(image)
    assert verdict.accepted and verdict.analysis is not None
    return image, verdict.analysis.landmarks


def test_a_wide_open_mouth_keeps_a_dark_cavity(grace: tuple[np.ndarray, np.ndarray]) -> None:
    """Grace Hopper's widest opening in the bench's speech (jaw 0.88): her stretched
    sample used to fill it with pale lower teeth, a grey-white plate with no dark."""
    image, landmarks = grace
    animator = still_animator(image, landmarks)
    values = mouth(jaw=0.88, spread=0.1, teeth=0.21)
    frame = animator.render(values, 0.0, None)
    inside = opening(frame.shape, _pose(animator, values))
    light = lab(frame[inside])[:, 0]
    assert inside.sum() > 300
    assert light[light <= np.quantile(light, 1 / 3)].mean() < 10  # was 15 (now 6)
    assert np.median(light) < 25  # was 37 (now 17)
    assert light.max() > 60  # the upper teeth keep their light


def test_the_lip_line_at_rest_is_the_portraits_own_crease(
        grace: tuple[np.ndarray, np.ndarray]) -> None:
    """At rest the seam used to be painted over her dark red crease in a lighter, greyer
    colour (a flat grey band); it only darkens now, in her crease's own colour."""
    image, landmarks = grace
    animator = still_animator(image, landmarks)
    frame = animator.render(mouth(), 0.0, None)
    luma = np.array([0.299, 0.587, 0.114])
    worse = []
    for k in (3, 4, 5, 6, 7):  # the middle of the midline
        x, y = np.round((landmarks[UPPER_INNER[k], :2] + landmarks[LOWER_INNER[k], :2]) / 2
                        ).astype(int)
        before = (image[y - 3: y + 4, x].astype(np.float64) @ luma).min()
        after = (frame[y - 3: y + 4, x].astype(np.float64) @ luma).min()
        worse.append(after - before)
    assert np.mean(worse) < 3  # the old seam was about 30 levels lighter than the crease


def test_no_dark_specks_at_the_mouth_corners(astronaut: np.ndarray,
                                             landmarks: np.ndarray) -> None:
    """Her smile's dark corner shadow used to be stretched by the warp into jagged black
    notches at the corners (open and closed): pixels far darker than their neighbours'
    median, beside the posed corners and outside the opening (17 / 14 / 23 before)."""
    animator = still_animator(astronaut, landmarks)
    iod = animator.rig.frame.iod
    grey = np.array([0.299, 0.587, 0.114], np.float32)
    for values in (mouth(jaw=0.9, teeth=0.2), mouth(jaw=0.3, spread=0.4, teeth=0.46), mouth()):
        frame = animator.render(values, 0.0, None)
        posed = _pose(animator, values)
        dark = (cv2.medianBlur(frame, 5).astype(np.float32) @ grey
                - frame.astype(np.float32) @ grey) > 30
        inside = cv2.dilate(opening(frame.shape, posed).astype(np.uint8),
                            np.ones((3, 3), np.uint8)) > 0
        yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
        near = np.zeros(frame.shape[:2], bool)
        for cx, cy in posed[[61, 291], :2]:
            near |= np.hypot(xx - cx, yy - cy) < 0.15 * iod
        assert int((dark & near & ~inside).sum()) < 8


def _interior(frame: np.ndarray, posed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The opening's pixels (Lab L*) and how far down the opening each lies (0 under the
    upper lip, 1 on the lower)."""
    up, lo = posed[list(UPPER_INNER), :2], posed[list(LOWER_INNER), :2]
    ys, xs = np.nonzero(opening(frame.shape, posed))
    top, bottom = np.interp(xs, up[:, 0], up[:, 1]), np.interp(xs, lo[:, 0], lo[:, 1])
    return lab(frame[ys, xs])[:, 0], (ys - top) / np.maximum(bottom - top, 1.0)


def test_a_wide_opening_is_rounded_at_its_corners(astronaut: np.ndarray,
                                                  landmarks: np.ndarray) -> None:
    """Every inner-lip point but the corners used to move in full with the jaw: the
    opening was a box with square sides and a wedge at each corner. Beside the corners it
    is now lower than in the middle, as a real opening is (main: 1.0 of the middle)."""
    animator = still_animator(astronaut, landmarks)
    posed = _pose(animator, mouth(jaw=1.0, teeth=0.4))
    height = posed[list(LOWER_INNER), 1] - posed[list(UPPER_INNER), 1]
    assert height[5] > 0.15 * animator.rig.frame.iod
    assert height[1] < 0.8 * height[5] and height[-2] < 0.8 * height[5]
    # ... and still nearly full half way out (the gap the tracker measures stays).
    assert height[3] > 0.9 * height[5] and height[-4] > 0.9 * height[5]


def test_a_tongue_at_a_wide_opening_is_shaded_with_the_cavity(
        astronaut: np.ndarray, landmarks: np.ndarray) -> None:
    """Grace Hopper's widest frame in the bench's speech (jaw 0.86 with a little l):
    the l / th sample was drawn after the cavity's shade, stretched over the opening, so
    its teeth and tongue lit the lower half as a flat light plate. Now the tongue is
    shaded with the rest: it lifts the lower half's light by little (main: +10 L*)."""
    animator = still_animator(astronaut, landmarks)
    animator.painter = StockPainter(animator.canvas, landmarks, animator.rig.frame)
    lower = {}
    for tongue in (0.0, 0.37):
        values = mouth(jaw=0.86, spread=0.11, teeth=0.25, tongue=tongue)
        light, depth = _interior(animator.render(values, 0.0, None), _pose(animator, values))
        assert (depth > 0.55).sum() > 60
        lower[tongue] = float(light[depth > 0.55].mean())
    assert lower[0.37] < lower[0.0] + 3.0
