"""Face analysis and the portrait check, with the real mediapipe models on real images.

The astronaut (shipped with the package) and images built from it always run; the
photos in ../shared/media run when that folder is present.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecast.errors import FaceCheckError
from facecast.face import (
    DEFAULT_LIMITS,
    FACE_OVAL,
    KLING_LIMITS,
    KREADO_LIMITS,
    LEFT_EYE,
    LEFT_IRIS,
    LIPS_INNER,
    LIPS_OUTER,
    NOSE_TIP,
    REASONS,
    RIGHT_EYE,
    RIGHT_IRIS,
    FaceAnalysis,
    FaceAnalyzer,
    FaceBox,
    FaceCheckLimits,
    FaceCheckResult,
    HeadPose,
    check_face,
    head_pose,
    verdict_from_analysis,
)

ACCEPTED_FACES = (
    "astronaut_eileen_collins.png",
    "obama_official_portrait.jpg",
    "grace_hopper.jpg",
    "painting_mona_lisa.jpg",
    "photo_woman_happy_256.png",
    "anime_style_girl.png",
)
REJECTED_FACES = {
    "noface_coffee.png": "no_face",
    "two_faces_obama_biden.jpg": "multiple_faces",
    "tiny_face_messi5.jpg": "face_too_small",
    "partial_face_cropped_obama.jpg": "face_cut_off",
}
# Mona Lisa's head is turned about 17 degrees; the others face the camera.
MAX_YAW = {"painting_mona_lisa.jpg": 25.0}

MOUTH_CORNERS = (61, 291)


@pytest.fixture(scope="module")
def analyzer() -> Iterator[FaceAnalyzer]:
    with FaceAnalyzer() as fa:
        yield fa


@pytest.fixture(scope="module")
def astronaut_analysis(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> FaceAnalysis:
    return analyzer.analyze(astronaut)


def _check_landmarks_on_face(analysis: FaceAnalysis, max_yaw: float = 10.0) -> None:
    lm, box = analysis.landmarks, analysis.box
    width, height = analysis.image_size
    assert lm.shape == (478, 3)
    assert lm.dtype == np.float32
    assert np.isfinite(lm).all()
    assert box.x >= 0 and box.y >= 0
    assert box.x + box.w <= width and box.y + box.h <= height
    # The mesh covers forehead to chin, a bit more than the detector box: allow 40%.
    mx, my = 0.4 * box.w, 0.4 * box.h
    assert (lm[:, 0] > box.x - mx).all() and (lm[:, 0] < box.x + box.w + mx).all()
    assert (lm[:, 1] > box.y - my).all() and (lm[:, 1] < box.y + box.h + my).all()
    eyes_y = lm[list(LEFT_EYE + RIGHT_EYE), 1].mean()
    mouth_y = lm[list(LIPS_OUTER), 1].mean()
    assert eyes_y < lm[NOSE_TIP, 1] < mouth_y
    # Subject's left eye is on the image's right.
    assert lm[list(LEFT_EYE), 0].mean() > lm[list(RIGHT_EYE), 0].mean()
    pose = analysis.pose
    assert abs(pose.yaw) < max_yaw, pose
    assert abs(pose.pitch) < 12.0, pose
    assert abs(pose.roll) < 10.0, pose


# ---------------------------------------------------------------- contours


def test_contours_walk_mediapipe_connection_sets() -> None:
    # mediapipe 0.10.21's FACEMESH_* sets (face_mesh_connections.py), kept in tests/data
    # since mediapipe is no longer installed.
    conn = json.loads((Path(__file__).parent / "data" / "face_mesh_connections.json").read_text())

    def edges(loop: tuple[int, ...]) -> set[frozenset[int]]:
        return {frozenset((a, b)) for a, b in zip(loop, loop[1:] + loop[:1], strict=True)}

    def as_set(connections: list[list[int]]) -> set[frozenset[int]]:
        return {frozenset(e) for e in connections}

    assert edges(LIPS_OUTER) | edges(LIPS_INNER) == as_set(conn["FACEMESH_LIPS"])
    assert not set(LIPS_OUTER) & set(LIPS_INNER)
    assert edges(LEFT_EYE) == as_set(conn["FACEMESH_LEFT_EYE"])
    assert edges(RIGHT_EYE) == as_set(conn["FACEMESH_RIGHT_EYE"])
    assert edges(FACE_OVAL) == as_set(conn["FACEMESH_FACE_OVAL"])
    assert edges(LEFT_IRIS) == as_set(conn["FACEMESH_LEFT_IRIS"])
    assert edges(RIGHT_IRIS) == as_set(conn["FACEMESH_RIGHT_IRIS"])
    for loop in (LIPS_OUTER, LIPS_INNER, LEFT_EYE, RIGHT_EYE, FACE_OVAL):
        assert len(set(loop)) == len(loop)


def test_contours_run_counter_clockwise(astronaut_analysis: FaceAnalysis) -> None:
    lm = astronaut_analysis.landmarks
    for loop in (LIPS_OUTER, LEFT_EYE, RIGHT_EYE, FACE_OVAL):
        x, y = lm[list(loop), 0], lm[list(loop), 1]
        # Shoelace area with y pointing down: negative = counter-clockwise on screen.
        assert 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)) < 0


# ---------------------------------------------------------------- astronaut


def test_astronaut_accepted_with_landmarks_on_the_face(
    analyzer: FaceAnalyzer, astronaut_path: Path
) -> None:
    result = check_face(astronaut_path, analyzer=analyzer)
    assert result.accepted, result.message
    assert result.reason is None
    assert result.faces == 1
    assert result.image_size == (512, 512)
    analysis = result.analysis
    assert analysis is not None
    _check_landmarks_on_face(analysis)
    lm, box = analysis.landmarks, analysis.box
    for i in MOUTH_CORNERS:
        assert box.x <= lm[i, 0] <= box.x + box.w and box.y <= lm[i, 1] <= box.y + box.h
    assert (lm[list(LIPS_INNER), 1] > lm[NOSE_TIP, 1]).all()
    # Iris centres sit inside their eye contours.
    for centre, eye in ((468, RIGHT_EYE), (473, LEFT_EYE)):
        contour = lm[list(eye), :2].astype(np.float32)
        point = (float(lm[centre, 0]), float(lm[centre, 1]))
        assert cv2.pointPolygonTest(contour, point, False) >= 0
    # The nose is the nearest point to the camera among these (z smaller = nearer).
    assert lm[NOSE_TIP, 2] < lm[[33, 263, 61, 291, 152], 2].min()


def test_analyze_matches_check(astronaut_analysis: FaceAnalysis, astronaut: np.ndarray) -> None:
    assert astronaut_analysis.image_size == (512, 512)
    assert astronaut_analysis.faces[0] == astronaut_analysis.box
    assert 90 < astronaut_analysis.box.w < 120
    _check_landmarks_on_face(astronaut_analysis)
    assert verdict_from_analysis(astronaut_analysis).accepted


def test_small_face_is_upscaled_and_large_crop_downscaled(
    analyzer: FaceAnalyzer, astronaut: np.ndarray, astronaut_analysis: FaceAnalysis
) -> None:
    ref = astronaut_analysis.landmarks[:, :2]
    eye_dist = float(np.linalg.norm(ref[33] - ref[263]))
    for size in (192, 1536):  # face about 40 px, and about 310 px (crop over 512)
        scale = size / 512
        img = cv2.resize(astronaut, (size, size), interpolation=cv2.INTER_AREA)
        faces = analyzer.detect(img)
        assert faces, size
        lm = analyzer.landmarks(img, faces[0])
        assert lm is not None, size
        # Same points as on the 512 px image, within 8% of the eye distance.
        err = np.linalg.norm(lm[:, :2] / scale - ref, axis=1)
        assert np.median(err) < 0.08 * eye_dist, (size, np.median(err))


# ---------------------------------------------------------------- head pose


def _rotate(landmarks: np.ndarray, axis: str, degrees: float) -> np.ndarray:
    """Rigid rotation of the point cloud about its centroid (x right, y down, z away)."""
    pts = landmarks.astype(np.float64)
    c = pts.mean(axis=0)
    t = math.radians(degrees)
    cos, sin = math.cos(t), math.sin(t)
    if axis == "y":  # positive: the nose (z < centroid) moves to the image's right
        r = np.array([[cos, 0, -sin], [0, 1, 0], [sin, 0, cos]])
    elif axis == "x":  # positive: the nose moves up the image (looking up)
        r = np.array([[1, 0, 0], [0, cos, sin], [0, -sin, cos]])
    else:  # "z", positive: clockwise on screen (y points down)
        r = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    return ((pts - c) @ r.T + c).astype(np.float32)


@pytest.mark.parametrize("degrees", [40.0, -40.0])
def test_head_pose_yaw_of_rotated_landmarks(
    astronaut_analysis: FaceAnalysis, degrees: float
) -> None:
    base = head_pose(astronaut_analysis.landmarks)
    turned = head_pose(_rotate(astronaut_analysis.landmarks, "y", degrees))
    assert abs(turned.yaw - degrees) < 10.0, turned
    assert abs(turned.yaw - base.yaw - degrees) < 3.0, (base, turned)
    assert abs(turned.pitch) < 15.0 and abs(turned.roll) < 15.0, turned


def test_head_pose_pitch_and_roll_signs(astronaut_analysis: FaceAnalysis) -> None:
    lm = astronaut_analysis.landmarks
    base = head_pose(lm)
    up = head_pose(_rotate(lm, "x", 20.0))
    assert abs(up.pitch - base.pitch - 20.0) < 3.0, (base, up)
    clockwise = head_pose(_rotate(lm, "z", 20.0))
    assert abs(clockwise.roll - base.roll - 20.0) < 1.0, (base, clockwise)
    assert abs(clockwise.yaw - base.yaw) < 1.0 and abs(clockwise.pitch - base.pitch) < 1.0


def test_turned_head_is_refused_as_not_frontal(astronaut_analysis: FaceAnalysis) -> None:
    turned = _rotate(astronaut_analysis.landmarks, "y", 40.0)
    analysis = replace(astronaut_analysis, landmarks=turned, pose=head_pose(turned))
    result = verdict_from_analysis(analysis, DEFAULT_LIMITS)
    assert not result.accepted
    assert result.reason == "not_frontal"
    assert "yaw" in result.message and "35" in result.message
    # A laxer limit lets it through.
    assert verdict_from_analysis(analysis, FaceCheckLimits(max_yaw=60.0)).accepted


def test_head_pose_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError):
        head_pose(np.zeros((68, 2), np.float32))


# ---------------------------------------------------------------- synthetic refusals


def _png(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _too_small(a: np.ndarray) -> np.ndarray:
    return cv2.resize(a, (100, 100), interpolation=cv2.INTER_AREA)


def _wide(a: np.ndarray) -> np.ndarray:
    canvas = np.full((512, 1300, 3), 128, np.uint8)
    canvas[:, 394:906] = a
    return canvas


def _random_bytes(_: np.ndarray) -> bytes:
    return np.random.default_rng(0).bytes(4096)


def _grey(_: np.ndarray) -> np.ndarray:
    return np.full((512, 512, 3), 128, np.uint8)


def _two_copies(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a, a], axis=1)


def _half_off_left(a: np.ndarray) -> np.ndarray:
    # The astronaut's face spans x = 174..278: moving the image 225 px left puts
    # the face centre on the left edge.
    canvas = np.full_like(a, 128)
    canvas[:, : 512 - 225] = a[:, 225:]
    return canvas


def _png_bytes(a: np.ndarray) -> bytes:
    return _png(a)


SYNTHETIC: list[tuple[str, Callable[[np.ndarray], object], FaceCheckLimits, str | None]] = [
    ("downscaled_100px", _too_small, DEFAULT_LIMITS, "image_too_small"),
    ("padded_1300x512", _wide, DEFAULT_LIMITS, "bad_aspect_ratio"),
    ("random_bytes", _random_bytes, DEFAULT_LIMITS, "unreadable_image"),
    ("all_grey", _grey, DEFAULT_LIMITS, "no_face"),
    ("two_side_by_side", _two_copies, DEFAULT_LIMITS, "multiple_faces"),
    ("half_face_off_left", _half_off_left, DEFAULT_LIMITS, "face_cut_off"),
    ("kreado_512px", lambda a: a, KREADO_LIMITS, None),
    (
        "kreado_300px",
        lambda a: cv2.resize(a, (300, 300), interpolation=cv2.INTER_AREA),
        KREADO_LIMITS,
        "image_too_small",
    ),
    ("kling_png_bytes", _png_bytes, KLING_LIMITS, None),
    ("over_max_bytes", _png_bytes, FaceCheckLimits(max_bytes=10_000), "file_too_large"),
    ("over_max_side", lambda a: a, FaceCheckLimits(max_side=500), "image_too_large"),
    ("face_under_fraction", lambda a: a, FaceCheckLimits(min_face_fraction=0.3), "face_too_small"),
    ("border_margin_allows_cut", _half_off_left, FaceCheckLimits(border_margin=0.5), None),
]


@pytest.mark.parametrize(
    ("build", "limits", "reason"),
    [pytest.param(b, lim, r, id=name) for name, b, lim, r in SYNTHETIC],
)
def test_synthetic_portraits(
    analyzer: FaceAnalyzer,
    astronaut: np.ndarray,
    build: Callable[[np.ndarray], object],
    limits: FaceCheckLimits,
    reason: str | None,
) -> None:
    source = build(astronaut.copy())
    result = check_face(source, limits, analyzer=analyzer)  # type: ignore[arg-type]
    assert result.reason == reason, result.message
    assert result.accepted is (reason is None)
    assert result.message
    if reason is not None:
        assert reason in REASONS


def test_bad_sources_never_raise(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    missing = check_face(tmp_path / "missing.png", analyzer=analyzer)
    assert missing.reason == "unreadable_image" and "missing.png" in missing.message
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8not really a jpeg")
    assert check_face(garbage, analyzer=analyzer).reason == "unreadable_image"
    assert check_face(b"", analyzer=analyzer).reason == "unreadable_image"
    assert check_face(np.zeros((10,), np.uint8), analyzer=analyzer).reason == "unreadable_image"
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 2048)
    result = check_face(big, FaceCheckLimits(max_bytes=1024), analyzer=analyzer)
    assert result.reason == "file_too_large"


def test_check_without_analyzer_and_grey_input(astronaut: np.ndarray) -> None:
    grey = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    result = check_face(grey)  # builds and closes its own analyzer
    assert result.accepted, result.message


def test_analyze_raises_no_face(analyzer: FaceAnalyzer) -> None:
    with pytest.raises(FaceCheckError) as info:
        analyzer.analyze(np.full((256, 256, 3), 200, np.uint8))
    assert info.value.code == "no_face"


def test_messages_name_the_numbers(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    small = check_face(_too_small(astronaut), analyzer=analyzer)
    assert "100x100" in small.message and "128" in small.message
    wide = check_face(_wide(astronaut), analyzer=analyzer)
    assert "1300x512" in wide.message and "2.54" in wide.message
    cut = check_face(_half_off_left(astronaut), analyzer=analyzer)
    assert "left" in cut.message and "px" in cut.message


# ---------------------------------------------------------------- serialisation


def test_to_dict_is_json_ready(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    accepted = check_face(astronaut, analyzer=analyzer)
    data = json.loads(json.dumps(accepted.to_dict()))
    assert set(data) == {"accepted", "reason", "message", "image", "face", "pose", "faces"}
    assert data["accepted"] is True and data["reason"] is None
    assert data["image"] == {"width": 512, "height": 512}
    assert set(data["face"]) == {"x", "y", "w", "h", "score"}
    assert set(data["pose"]) == {"yaw", "pitch", "roll"}
    assert data["faces"] == 1

    refused = check_face(_grey(astronaut), analyzer=analyzer)
    data = json.loads(json.dumps(refused.to_dict()))
    assert data["accepted"] is False and data["reason"] == "no_face"
    assert data["face"] is None and data["pose"] is None and data["faces"] == 0

    unreadable = FaceCheckResult(False, "unreadable_image", "x", None, None, None, 0)
    assert json.loads(json.dumps(unreadable.to_dict()))["image"] is None
    box = FaceBox(np.float32(1.5), 2.0, 3.0, 4.0, np.float64(0.9))  # type: ignore[arg-type]
    assert json.dumps(box.to_dict())
    assert json.dumps(HeadPose(np.float32(1.0), 2.0, 3.0).to_dict())  # type: ignore[arg-type]


# ---------------------------------------------------------------- shared media


@pytest.mark.parametrize("name", ACCEPTED_FACES)
def test_shared_faces_accepted(shared_media: Path, analyzer: FaceAnalyzer, name: str) -> None:
    path = shared_media / "faces" / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    result = check_face(path, analyzer=analyzer)
    assert result.accepted, f"{name}: {result.reason}: {result.message}"
    assert result.analysis is not None
    _check_landmarks_on_face(result.analysis, max_yaw=MAX_YAW.get(name, 10.0))


@pytest.mark.parametrize(("name", "reason"), sorted(REJECTED_FACES.items()))
def test_shared_faces_rejected(
    shared_media: Path, analyzer: FaceAnalyzer, name: str, reason: str
) -> None:
    path = shared_media / "faces_rejected" / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    result = check_face(path, analyzer=analyzer)
    assert not result.accepted
    assert result.reason == reason, f"{name}: {result.message}"
    json.dumps(result.to_dict())
