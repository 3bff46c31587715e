"""Renderer: canvas geometry, the face rig, life motion and the animator on a real face."""

from __future__ import annotations

import numpy as np
import pytest

from facecast.errors import InputError
from facecast.motion.life import LifeTrack, life_track
from facecast.motion.track import CHANNELS, MouthTrack
from facecast.render.animator import PortraitAnimator
from facecast.render.canvas import canvas_size, fit_photo
from facecast.render.rig import JAW_DROP, RIG_CHANNELS, FaceRig


@pytest.fixture(scope="module")
def animator(astronaut: np.ndarray, landmarks: np.ndarray) -> PortraitAnimator:
    return PortraitAnimator(astronaut, landmarks)


def mouth(**values: float) -> np.ndarray:
    return np.array([values.get(c, 0.0) for c in CHANNELS], np.float32)


@pytest.mark.parametrize(
    ("size", "aspect", "expected"),
    [
        ("source", None, (512, 512)),
        ("720p", "16:9", (1280, 720)),
        ("1080p", "9:16", (1080, 1920)),
        ("720p", None, (720, 720)),
        ("640x360", None, (640, 360)),
        ("4k", "16:9", (3840, 2160)),
    ],
)
def test_canvas_size(size: str, aspect: str | None, expected: tuple[int, int]) -> None:
    assert canvas_size(512, 512, size, aspect) == expected


@pytest.mark.parametrize("size", ["huge", "5000x5000", "10x10"])
def test_canvas_size_refuses(size: str) -> None:
    with pytest.raises(InputError) as err:
        canvas_size(512, 512, size)
    assert err.value.code == "bad_size"


def test_fit_maps_landmarks_onto_the_same_pixels(astronaut: np.ndarray,
                                                  landmarks: np.ndarray) -> None:
    fit = fit_photo(astronaut, 1280, 720)
    assert fit.image.shape == (720, 1280, 3)
    mapped = fit.map_points(landmarks)
    nose = landmarks[1, :2].astype(int)
    nose_c = np.round(mapped[1, :2]).astype(int)
    # Same colour at the nose tip before and after fitting (resized, so allow some change).
    diff = np.abs(astronaut[nose[1], nose[0]].astype(int) - fit.image[nose_c[1], nose_c[0]])
    assert diff.max() < 40


def test_rig_channels_move_the_right_features(landmarks: np.ndarray) -> None:
    rig = FaceRig(landmarks)
    rest = rig.pose(np.zeros(len(RIG_CHANNELS)))
    gap = lambda p: float(np.linalg.norm(p[14] - p[13]))  # noqa: E731
    assert gap(rest) < 0.02 * rig.frame.iod, "rest pose closes the lips"
    v = np.zeros(len(RIG_CHANNELS))
    v[RIG_CHANNELS.index("jaw")] = 1.0
    assert gap(rig.pose(v)) == pytest.approx(JAW_DROP * rig.frame.iod * 1.03, rel=0.15)
    v[RIG_CHANNELS.index("closure")] = 1.0
    assert gap(rig.pose(v)) < 0.02 * rig.frame.iod, "p/b/m close the lips whatever the jaw"
    w = np.zeros(len(RIG_CHANNELS))
    w[RIG_CHANNELS.index("blink_left")] = w[RIG_CHANNELS.index("blink_right")] = 1.0
    eye_open = float(np.linalg.norm(rest[159] - rest[145]))
    eye_shut = float(np.linalg.norm(rig.pose(w)[159] - rig.pose(w)[145]))
    assert eye_shut < 0.2 * eye_open
    width = lambda p: float(np.linalg.norm(p[291] - p[61]))  # noqa: E731
    s = np.zeros(len(RIG_CHANNELS))
    s[RIG_CHANNELS.index("spread")] = 1.0
    r = np.zeros(len(RIG_CHANNELS))
    r[RIG_CHANNELS.index("round")] = 1.0
    assert width(rig.pose(r)) < width(rest) < width(rig.pose(s))


def test_life_track_is_deterministic_smooth_and_blinks() -> None:
    a = life_track(750, 25, seed=7)
    b = life_track(750, 25, seed=7)
    c = life_track(750, 25, seed=8)
    assert np.array_equal(a.head, b.head) and np.array_equal(a.blink, b.blink)
    assert not np.array_equal(a.head, c.head)
    starts = np.flatnonzero((a.blink[1:] > 0.5) & (a.blink[:-1] <= 0.5))
    assert 3 <= len(starts) <= 15, "about one blink every 2-7 s over 30 s"
    assert np.abs(np.diff(a.head[:, 0])).max() < 0.25, "head roll changes smoothly"
    assert np.abs(a.head[:, 0]).max() <= 2.5
    still = life_track(100, 25, seed=1, head_motion=0.0, blinks=False)
    assert not still.head.any() and not still.blink.any()


def test_animator_opens_mouth_and_keeps_background_still(animator: PortraitAnimator,
                                                         astronaut: np.ndarray) -> None:
    head = np.array([2.0, 0.05, 0.05, 0.005], np.float32)
    closed = animator.render(mouth(), 0.0, head)
    opened = animator.render(mouth(jaw=1.0, teeth=1.0), 0.0, head)
    again = animator.render(mouth(jaw=1.0, teeth=1.0), 0.0, head)
    assert np.array_equal(opened, again), "rendering is deterministic"
    # Far from the head, the picture is untouched even while the head moves.
    for frame in (closed, opened):
        assert np.array_equal(frame[:, :40], astronaut[:, :40])
        assert np.array_equal(frame[-40:, :], astronaut[-40:, :])
    # The open mouth shows a dark cavity between the lips.
    lm = animator.rig.pose(np.zeros(len(RIG_CHANNELS)))
    # Looked for down the middle, from the lips' resting line to 0.25 of the eye distance
    # below it (where the cavity's edge falls moves by a pixel with the face mesh's
    # rounding), as the darkest 3x3 spot on that line.
    x, y = np.round((lm[13] + lm[14]) / 2).astype(int)
    depth = round(0.25 * animator.rig.frame.iod)

    def darkest(frame: np.ndarray) -> float:
        line = frame[y : y + depth + 3, x - 1 : x + 2].mean(axis=(1, 2))
        return float(np.convolve(line, np.ones(3) / 3, mode="valid").min())

    assert darkest(opened) < darkest(closed) - 40


def test_frames_drawn_two_at_a_time_are_the_frames_drawn_one_by_one(
        animator: PortraitAnimator) -> None:
    # Opening and closing, a blink and a moving head: every part of the per-frame path
    # (warp, interior, lids, head) is drawn by both threads at once.
    n = 100
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    values = np.zeros((n, len(CHANNELS)), np.float32)
    values[:, CHANNELS.index("jaw")] = np.abs(np.sin(4 * np.pi * t))
    values[:, CHANNELS.index("teeth")] = t
    blink = np.where((t > 0.4) & (t < 0.6), 1.0, 0.0).astype(np.float32)
    head = np.stack([2 * np.sin(6 * t), 0.05 * t, -0.05 * t, 0.01 * t], axis=1)
    life = LifeTrack(25.0, blink, head.astype(np.float32))
    track = MouthTrack(25.0, values, "phonemes")
    one = list(animator.frames(track, life, threads=1))
    two = list(animator.frames(track, life, threads=2))
    assert len(two) == n
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
