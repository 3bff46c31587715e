"""Find the face in a portrait and describe it: box, 478 mesh landmarks and head pose.

MediaPipe's face models do the work, run by facecast itself on LiteRT
(:mod:`facecast.face.detector`, :mod:`facecast.face.landmarks`): the full-range
face detector finds every face in the whole image, then the face mesh runs on a
square crop around the chosen face, because the mesh's own short-range detector
misses faces that are small in the frame. Landmarks come back in full-image pixels so the rest of
facecast never deals with crops.

Landmark side convention (mediapipe's): ``LEFT_EYE`` is the subject's left eye,
which is on the image's right for a face looking at the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from facecast.errors import FaceCheckError
from facecast.face.detector import FULL_RANGE_MIN_SCORE

__all__ = [
    "FACE_OVAL",
    "LEFT_EYE",
    "LEFT_IRIS",
    "LIPS_INNER",
    "LIPS_OUTER",
    "NOSE_TIP",
    "NUM_LANDMARKS",
    "RIGHT_EYE",
    "RIGHT_IRIS",
    "FaceAnalysis",
    "FaceAnalyzer",
    "FaceBox",
    "HeadPose",
    "head_pose",
]

NUM_LANDMARKS = 478

# Closed contours walked from mediapipe's FACEMESH_* connection sets (the sets are
# unordered edges; tests/test_face.py checks these loops against them). Every loop
# runs counter-clockwise as seen in the image for an upright face: lips and eyes
# start at their image-left corner and follow the lower edge first, the oval starts
# at the top of the forehead and goes down the image-left side. The first point is
# not repeated at the end.
LIPS_OUTER: tuple[int, ...] = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375,
    291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
)  # fmt: skip
LIPS_INNER: tuple[int, ...] = (
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324,
    308, 415, 310, 311, 312, 13, 82, 81, 80, 191,
)  # fmt: skip
LEFT_EYE: tuple[int, ...] = (
    362, 382, 381, 380, 374, 373, 390, 249,
    263, 466, 388, 387, 386, 385, 384, 398,
)  # fmt: skip
RIGHT_EYE: tuple[int, ...] = (
    33, 7, 163, 144, 145, 153, 154, 155,
    133, 173, 157, 158, 159, 160, 161, 246,
)  # fmt: skip
FACE_OVAL: tuple[int, ...] = (
    10, 109, 67, 103, 54, 21, 162, 127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148,
    152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356, 389, 251, 284, 332, 297, 338,
)  # fmt: skip
# Iris rings, in mediapipe's order (refine_landmarks=True adds points 468..477;
# 468 and 473 are the right and left iris centres).
LEFT_IRIS: tuple[int, ...] = (474, 475, 476, 477)
RIGHT_IRIS: tuple[int, ...] = (469, 470, 471, 472)
NOSE_TIP = 1

# Landmarks used for the head pose: symmetric (subject-right, subject-left) pairs
# give the face's left-right axis, forehead to chin its up-down axis.
_POSE_PAIRS = ((33, 263), (133, 362), (234, 454), (61, 291), (127, 356))
_FOREHEAD, _CHIN = 10, 152
# On mediapipe's canonical face the forehead (10) and chin (152) line is upright
# within a degree, but the mesh's predicted depth leans it: faces that look at the
# camera read as looking down by about 7 degrees on average (measured on six
# portraits and two talking-head videos, spread about 7 degrees from person to
# person). head_pose turns the face axes back by this much, so that pitch 0 means
# "level with the camera".
_PITCH_OFFSET = 7.0

# Crop around the detector box for the mesh: the mesh's internal detector wants the
# face to fill about half the crop. Later factors are retries when it finds nothing.
_CROP_FACTORS = (1.8, 2.4, 1.4)
_MESH_MIN_FACE_PX = 192  # mediapipe's mesh input is 192x192: do not feed it less
_MESH_MAX_CROP_PX = 512  # bigger crops only cost time
# Border added on each side (fraction of the long side) for the second detection try.
_RETRY_PAD = 0.25
_PAD_RGB = (128, 128, 128)


@dataclass(frozen=True)
class FaceBox:
    """A detected face in full-image pixels; it may extend past the image border."""

    x: float
    y: float
    w: float
    h: float
    score: float

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def to_dict(self) -> dict[str, float]:
        return {
            "x": round(float(self.x), 2),
            "y": round(float(self.y), 2),
            "w": round(float(self.w), 2),
            "h": round(float(self.h), 2),
            "score": round(float(self.score), 4),
        }


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees; 0, 0, 0 is a face looking straight at the camera.

    ``yaw > 0``: the nose points towards the image's right (the subject turned to
    their own left). ``pitch > 0``: looking up. ``roll > 0``: the head is tilted
    clockwise as seen in the image.
    """

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict[str, float]:
        return {
            "yaw": round(float(self.yaw), 2),
            "pitch": round(float(self.pitch), 2),
            "roll": round(float(self.roll), 2),
        }


@dataclass
class FaceAnalysis:
    """Everything known about the chosen face of one image."""

    image_size: tuple[int, int]  # (width, height)
    box: FaceBox  # the chosen (largest) face
    # (478, 3) float32: x, y in full-image pixels; z in the same pixel scale
    # (mediapipe's relative depth times the crop width), smaller = nearer the camera.
    landmarks: np.ndarray
    pose: HeadPose
    faces: list[FaceBox] = field(default_factory=list)  # every face, largest first


def head_pose(landmarks: np.ndarray) -> HeadPose:
    """Head pose from the 3D mesh points (x right, y down, z away from the camera).

    Builds orthonormal face axes: left-right from symmetric landmark pairs, and
    up-down from forehead to chin made orthogonal to it. Mesh z is on the same
    scale as x and y (weak perspective), so the axes form the head's rotation
    ``R``, which is split as ``R = Rz(roll) Ry(-yaw) Rx(-pitch)`` in camera axes:
    roll is applied last, so tilting the head in the image plane changes roll only.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] != 3:
        raise ValueError(f"head_pose needs (478, 3) landmarks, got {pts.shape}")
    right = np.array([i for i, _ in _POSE_PAIRS])
    left = np.array([j for _, j in _POSE_PAIRS])
    x_axis = (pts[left] - pts[right]).sum(axis=0)  # towards the subject's left
    x_axis /= np.linalg.norm(x_axis) + 1e-12
    down = pts[_CHIN] - pts[_FOREHEAD]
    y_axis = down - x_axis * float(down @ x_axis)
    y_axis /= np.linalg.norm(y_axis) + 1e-12
    z_axis = np.cross(x_axis, y_axis)  # into the scene: the back of the head
    rot = np.column_stack([x_axis, y_axis, z_axis]) @ _PITCH_CORRECTION
    yaw = math.degrees(math.asin(float(np.clip(rot[2, 0], -1.0, 1.0))))
    pitch = -math.degrees(math.atan2(rot[2, 1], rot[2, 2]))
    # With y pointing down, a positive angle here is clockwise on screen.
    roll = math.degrees(math.atan2(rot[1, 0], rot[0, 0]))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)


def _rot_x(degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


# Undo the mesh's lean (see _PITCH_OFFSET) in the face's own frame, so that it
# does not leak into yaw when the head is rolled.
_PITCH_CORRECTION = _rot_x(-_PITCH_OFFSET)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Contiguous HxWx3 uint8 RGB from grey, RGB or RGBA input."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating) and img.size and float(np.nanmax(img)) <= 1.0:
            img = img * 255.0
        img = np.clip(np.nan_to_num(img), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {np.asarray(image).shape}")
    return np.ascontiguousarray(img)


def _square_crop(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The square [x0, x0+side) x [y0, y0+side), zero-padded where it leaves the image."""
    h, w = image.shape[:2]
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x0 + side, w), min(y0 + side, h)
    if ix1 <= ix0 or iy1 <= iy0:
        return np.zeros((side, side, 3), np.uint8)
    crop = image[iy0:iy1, ix0:ix1]
    pad = (iy0 - y0, y0 + side - iy1, ix0 - x0, x0 + side - ix1)
    if any(pad):
        crop = cv2.copyMakeBorder(crop, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return np.ascontiguousarray(crop)


class FaceAnalyzer:
    """Holds the face models; reuse one instance for many images/frames. Not thread-safe."""

    def __init__(self, min_detection_confidence: float = FULL_RANGE_MIN_SCORE) -> None:
        # Imported here: loading the models (LiteRT) must not be paid by the contour
        # constants above.
        from facecast.face.detector import FaceDetector
        from facecast.face.landmarks import FaceMesh

        self.min_detection_confidence = float(min_detection_confidence)
        self._detector = FaceDetector("full", min_score=self.min_detection_confidence)
        # The crop holds the face we chose, so the mesh's own detector can be lenient.
        self._mesh = FaceMesh(
            static_image_mode=True, max_num_faces=1, min_detection_confidence=0.3
        )
        self._closed = False

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._mesh.close()

    def detect(self, image_rgb: np.ndarray) -> list[FaceBox]:
        """Every face in the image, largest first, in full-image pixels.

        When nothing is found, detection runs once more on the image framed by a
        grey border, which finds faces that the image edge cuts through.
        """
        img = _as_rgb(image_rgb)
        faces = self._detect(img, pad=0)
        if not faces:
            # The detector misses faces that the image edge cuts through (from about
            # a third of the face outside). Framed by a plain border it finds many of
            # them, so the face check can say "cut off" rather than "no face".
            faces = self._detect(img, pad=round(_RETRY_PAD * max(img.shape[:2])))
        faces.sort(key=lambda b: b.w * b.h, reverse=True)
        return faces

    def _detect(self, img: np.ndarray, pad: int) -> list[FaceBox]:
        if pad > 0:
            img = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=_PAD_RGB)
        h, w = img.shape[:2]
        faces: list[FaceBox] = []
        for det in self._detector.detect(img):
            if det.width <= 0 or det.height <= 0:
                continue
            faces.append(
                FaceBox(
                    x=det.xmin * w - pad,
                    y=det.ymin * h - pad,
                    w=det.width * w,
                    h=det.height * h,
                    score=det.score,
                )
            )
        return faces

    def landmarks(self, image_rgb: np.ndarray, box: FaceBox) -> np.ndarray | None:
        """The 478 mesh points of the face in ``box`` in full-image pixels, or None.

        The mesh runs on a square crop (the box enlarged about 1.8x, padded with
        black where it leaves the image), scaled so the face is at least 192 px wide
        and the crop at most 512 px. A few other crop sizes are tried if the mesh
        finds nothing; a mesh whose nose is not inside the box is discarded, since
        then it found some other face in the crop.
        """
        img = _as_rgb(image_rgb)
        cx, cy = box.center
        size = max(box.w, box.h, 1.0)
        for factor in _CROP_FACTORS:
            side = max(round(size * factor), 8)
            x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
            crop = _square_crop(img, x0, y0, side)
            if size < _MESH_MIN_FACE_PX:
                scale = _MESH_MIN_FACE_PX / size
            elif side > _MESH_MAX_CROP_PX:
                scale = _MESH_MAX_CROP_PX / side
            else:
                scale = 1.0
            if scale != 1.0:
                target = max(round(side * scale), 1)
                interp = cv2.INTER_CUBIC if scale > 1.0 else cv2.INTER_AREA
                crop = cv2.resize(crop, (target, target), interpolation=interp)
            found = self._mesh.process(crop)
            if not found:
                continue
            pts = found[0].astype(np.float64)
            if pts.shape[0] != NUM_LANDMARKS:
                continue
            # Normalised crop coordinates -> full-image pixels (the crop is square, so
            # x, y and z all scale by its side in full-image pixels).
            pts *= side
            pts[:, 0] += x0
            pts[:, 1] += y0
            nx, ny = pts[NOSE_TIP, 0], pts[NOSE_TIP, 1]
            if not (box.x <= nx <= box.x + box.w and box.y <= ny <= box.y + box.h):
                continue
            return pts.astype(np.float32)
        return None

    def analyze(self, image_rgb: np.ndarray) -> FaceAnalysis:
        """Detect, choose the largest face, mesh it and estimate its pose.

        Raises :class:`FaceCheckError` with code ``no_face`` when no face is found or
        the mesh finds no landmarks on it.
        """
        img = _as_rgb(image_rgb)
        h, w = img.shape[:2]
        faces = self.detect(img)
        if not faces:
            raise FaceCheckError(f"no face found in the {w}x{h} image", code="no_face")
        box = faces[0]
        pts = self.landmarks(img, box)
        if pts is None:
            raise FaceCheckError(
                f"a face-like region was found at x={box.x:.0f}, y={box.y:.0f} "
                f"({box.w:.0f} px wide) but no facial landmarks could be placed on it",
                code="no_face",
            )
        return FaceAnalysis(
            image_size=(w, h), box=box, landmarks=pts, pose=head_pose(pts), faces=faces
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"FaceAnalyzer(min_detection_confidence={self.min_detection_confidence}, {state})"
