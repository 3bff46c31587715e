"""The 478-point face mesh (attention model) on LiteRT, in image and video modes.

Reproduces mediapipe 0.10.21's ``FaceMesh(refine_landmarks=True)``:

* ``FaceLandmarkCpu``: the face's rotated square crop warped to 192x192 (values in
  [0, 1], edge pixels repeated), the attention landmark model, the face-presence
  score (sigmoid of the face flag) against ``min_tracking_confidence``, the mesh
  refined with the lips, eyes and irises, and the projection back to the image.
  The model ships split at its three MediaPipe custom ops
  (``tools/split_face_landmark_model.py``); the ops run here in numpy, written from
  MediaPipe's Apache-2.0 kernels (``mediapipe/util/tflite/operations``).
* ``FaceLandmarkFrontCpu``: the short-range detector finds faces; in video mode the
  crop of each face comes from its landmarks in the previous frame instead, and the
  detector runs again only while fewer faces than ``max_faces`` are followed (a face
  is dropped when its presence score falls under the threshold).

Landmarks come back normalised (x, y as fractions of the image width and height, z
in units of the image width), as mediapipe's ``NormalizedLandmarkList``.
"""

from __future__ import annotations

import math

import numpy as np

from facecast.face.detector import Detection, FaceDetector
from facecast.face.litert import (
    NormRect,
    as_rgb_u8,
    image_to_tensor,
    rect_from_box,
    shared_model,
)

__all__ = ["FaceLandmarker", "FaceMesh", "detection_to_roi", "landmarks_to_roi"]

_MODEL = "face_landmark_with_attention.part{}.tflite"
_INPUT = 192  # the landmark model's input side
_MESH_POINTS = 468
_ASSOCIATION_IOU = 0.5  # a detection this close to a followed face is that face

# Landmarks2TransformMatrix options of the three crops (read from the model's custom
# options): the two landmarks that set the crop's rotation and the landmarks whose
# rotated bounding box sets its centre and size.
_LIPS = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407,
)  # fmt: skip
_LEFT_EYE = (
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
    35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
    156, 70, 63, 105, 66, 107, 55, 193,
)  # fmt: skip
_RIGHT_EYE = (
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
)  # fmt: skip
# (landmarks input, matrix output, crop output, rotation landmarks, subset)
_CROPS = (
    ("multiply_by_constant", "landmarks_to_transform_matrix_v2",
     "transform_tensor_bilinear_v2", (61, 291), _LIPS),
    ("multiply_by_constant_2", "landmarks_to_transform_matrix_v2_1",
     "transform_tensor_bilinear_v2_1", (33, 133), _LEFT_EYE),
    ("multiply_by_constant_4", "landmarks_to_transform_matrix_v2_2",
     "transform_tensor_bilinear_v2_2", (362, 263), _RIGHT_EYE),
)  # fmt: skip
_CROP_SIDE = 16  # each crop is 16x16 cells of the 48x48 feature map
_CROP_SCALE = 1.5
_FEATURES = "p_re_lu_3"
_FEATURE_SIDE = 48  # the feature map the crops are taken from is 48x48
# Crop cell coordinates, row-major (x varies fastest).
_GRID_Y, _GRID_X = (g.ravel() for g in np.mgrid[0:_CROP_SIDE, 0:_CROP_SIDE].astype(np.float32))
# TransformLandmarks: (landmarks input, matrix input, output)
_BACK = (
    ("reshape_1", "multiply_by_constant_1", "transform_landmarks_v2"),
    ("reshape_3", "multiply_by_constant_3", "transform_landmarks_v2_1"),
    ("reshape_4", "multiply_by_constant_3", "transform_landmarks_v2_2"),
    ("reshape_6", "multiply_by_constant_5", "transform_landmarks_v2_3"),
    ("reshape_7", "multiply_by_constant_5", "transform_landmarks_v2_4"),
)
# Refinement (tensors_to_face_landmarks_with_attention.pbtxt): which mesh points the
# region landmarks replace (x, y only; their z stays the mesh's).
_IRIS_LEFT = (468, 469, 470, 471, 472)
_IRIS_RIGHT = (473, 474, 475, 476, 477)
_REFINE = (
    ("output_lips", _LIPS),
    ("output_left_eye", _LEFT_EYE),
    ("output_right_eye", _RIGHT_EYE),
    ("output_left_iris", _IRIS_LEFT),
    ("output_right_iris", _IRIS_RIGHT),
)
# An iris's depth is the mean depth of its eye's contour (first 16 eye points).
_IRIS_DEPTH_FROM = ((_IRIS_LEFT, _LEFT_EYE[:16]), (_IRIS_RIGHT, _RIGHT_EYE[:16]))


def _landmarks_to_matrix(
    lm: np.ndarray, rotation_idx: tuple[int, int], subset: tuple[int, ...]
) -> np.ndarray:
    """Landmarks2TransformMatrix (v2): the 4x4 map from crop cells to feature-map
    cells for the region whose landmarks are ``subset``, turned so that the two
    ``rotation_idx`` landmarks are level. ``lm`` is (468, 3) in feature-map units."""
    left, right = lm[rotation_idx[0]], lm[rotation_idx[1]]
    rot = 0.0 - math.atan2(float(right[1] - left[1]), float(right[0] - left[0]))
    pts = lm[list(subset), :2].astype(np.float64)
    c, s = math.cos(rot), math.sin(rot)
    rx = c * pts[:, 0] - s * pts[:, 1]
    ry = s * pts[:, 0] + c * pts[:, 1]
    x0, x1, y0, y1 = float(np.min(rx)), float(np.max(rx)), float(np.min(ry)), float(np.max(ry))
    crop_w, crop_h = x1 - x0, y1 - y0
    mx, my = (x1 + x0) / 2.0, (y1 + y0) / 2.0
    # Back through the inverse rotation: the region's centre in feature-map units.
    cx = math.cos(-rot) * mx - math.sin(-rot) * my
    cy = math.sin(-rot) * mx + math.cos(-rot) * my
    r = -rot
    shift = np.array([[1, 0, 0, cx], [0, 1, 0, cy], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)
    turn = np.array(
        [[math.cos(r), -math.sin(r), 0, 0], [math.sin(r), math.cos(r), 0, 0],
         [0, 0, 1, 0], [0, 0, 0, 1]], np.float64,
    )  # fmt: skip
    sx = _CROP_SCALE * crop_w / _CROP_SIDE
    sy = _CROP_SCALE * crop_h / _CROP_SIDE
    scale = np.diag([sx, sy, 1.0, 1.0])
    half = -_CROP_SIDE / 2.0
    shift2 = np.array([[1, 0, 0, half], [0, 1, 0, half], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)
    return (shift @ turn @ scale @ shift2).astype(np.float32)


def _transform_tensor_bilinear(features: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """TransformTensorBilinear (v2): the 16x16 crop of the (48, 48, C) feature map
    through ``matrix``, sampled at cell centres, zero outside the map.

    ``features`` may come with a one-cell zero border already (50, 50, C; see
    :func:`_zero_border`), which is how the kernel reads neighbours past the edge.
    """
    if features.shape[0] == _FEATURE_SIDE:
        features = _zero_border(features)
    fh, fw = features.shape[0] - 2, features.shape[1] - 2
    m = matrix.astype(np.float32)
    # Align-corners correction of the v2 kernel: sample at cell centres.
    tx = m[0, 3] + m[0, 0] * 0.5 + m[0, 1] * 0.5 - 0.5
    ty = m[1, 3] + m[1, 0] * 0.5 + m[1, 1] * 0.5 - 0.5
    x = m[0, 0] * _GRID_X + m[0, 1] * _GRID_Y + tx
    y = m[1, 0] * _GRID_X + m[1, 1] * _GRID_Y + ty
    inside = (x >= 0) & (x <= fw - 1) & (y >= 0) & (y <= fh - 1)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    # Index into the bordered map: neighbour (r, c) of the map is (r + 1, c + 1) there.
    stride = fw + 2
    xi = np.clip(x0.astype(np.int64), -1, fw) + 1
    yi = np.clip(y0.astype(np.int64), -1, fh) + 1
    idx = np.where(inside, yi * stride + xi, 0)
    flat = features.reshape(-1, features.shape[2])
    q11, q21 = flat[idx], flat[idx + 1]
    q12, q22 = flat[idx + stride], flat[idx + stride + 1]
    upper = (1.0 - fx) * q11 + fx * q21
    lower = (1.0 - fx) * q12 + fx * q22
    out = fy * lower + (1.0 - fy) * upper
    out[~inside] = 0.0
    return out.reshape(1, _CROP_SIDE, _CROP_SIDE, -1).astype(np.float32, copy=False)


def _zero_border(features: np.ndarray) -> np.ndarray:
    """The (H, W, C) map inside a one-cell border of zeros."""
    h, w, c = features.shape
    out = np.zeros((h + 2, w + 2, c), np.float32)
    out[1:-1, 1:-1] = features
    return out


def _transform_landmarks(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """TransformLandmarks (v2): (1, N, 2) crop-cell landmarks through the 4x4 matrix."""
    m = matrix.reshape(4, 4)
    p = points.reshape(-1, 2)
    x = m[0, 0] * p[:, 0] + m[0, 1] * p[:, 1] + m[0, 3]
    y = m[1, 0] * p[:, 0] + m[1, 1] * p[:, 1] + m[1, 3]
    return np.stack([x, y], axis=1)[None].astype(np.float32)


def detection_to_roi(det: Detection, w: int, h: int) -> NormRect:
    """The landmark model's crop for a detection (face_detection_front_detection_to_roi):
    the box level on the eyes (keypoints 0 and 1)."""
    x0, y0 = det.keypoints[0]
    x1, y1 = det.keypoints[1]
    return rect_from_box(
        det.xmin + det.width / 2.0, det.ymin + det.height / 2.0, det.width, det.height,
        (float(x0) * w, float(y0) * h), (float(x1) * w, float(y1) * h), w, h,
    )


def landmarks_to_roi(points: np.ndarray, w: int, h: int) -> NormRect:
    """The next frame's crop from this frame's landmarks (face_landmark_landmarks_to_roi):
    their bounding box, level on the outer eye corners (33 -> 263)."""
    xy = points[:, :2]
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    a, b = points[33], points[263]
    return rect_from_box(
        float(x0 + x1) / 2.0, float(y0 + y1) / 2.0, float(x1 - x0), float(y1 - y0),
        (float(a[0]) * w, float(a[1]) * h), (float(b[0]) * w, float(b[1]) * h), w, h,
    )


class FaceLandmarker:
    """The attention landmark model on one crop (FaceLandmarkCpu). Not thread-safe."""

    def __init__(self) -> None:
        self._parts = [shared_model(_MODEL.format(k)) for k in (1, 2, 3)]

    def raw(self, tensor: np.ndarray) -> tuple[np.ndarray, float]:
        """Landmarks (478, 3) in input-tensor pixels (0..192) and the face-presence
        score for a (1, 192, 192, 3) input in [0, 1]."""
        p1, p2, p3 = self._parts
        env: dict[str, np.ndarray] = {"input_1": tensor}
        env.update(p1.run(env))
        features = _zero_border(env[_FEATURES][0])
        for lm_name, mat_name, crop_name, rot_idx, subset in _CROPS:
            matrix = _landmarks_to_matrix(env[lm_name].reshape(-1, 3), rot_idx, subset)
            env[mat_name] = matrix[None]
            env[crop_name] = _transform_tensor_bilinear(features, matrix)
        env.update(p2.run({k: env[k] for k in p2.inputs}))
        for pts_name, mat_name, out_name in _BACK:
            env[out_name] = _transform_landmarks(env[pts_name], env[mat_name])
        env.update(p3.run({k: env[k] for k in p3.inputs}))
        mesh = env["output_mesh_identity"].reshape(_MESH_POINTS, 3).astype(np.float64)
        pts = np.zeros((478, 3), np.float64)
        pts[:_MESH_POINTS] = mesh
        for name, idx in _REFINE:
            pts[list(idx), :2] = env[name].reshape(-1, 2)
        for iris, contour in _IRIS_DEPTH_FROM:
            pts[list(iris), 2] = pts[list(contour), 2].mean()
        flag = float(env["conv_faceflag"].reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-max(min(flag, 80.0), -80.0)))
        return pts, presence

    def landmarks(self, image: np.ndarray, roi: NormRect) -> tuple[np.ndarray, float]:
        """Normalised (478, 3) landmarks of the face in ``roi`` and its presence score."""
        h, w = image.shape[:2]
        tensor = image_to_tensor(
            image, roi.to_pixels(w, h), (_INPUT, _INPUT), (0.0, 1.0), border_zero=False
        )
        pts, presence = self.raw(tensor)
        # LandmarkProjectionCalculator: crop-normalised -> image-normalised.
        x = pts[:, 0] / _INPUT - 0.5
        y = pts[:, 1] / _INPUT - 0.5
        c, s = math.cos(roi.rotation), math.sin(roi.rotation)
        out = np.empty_like(pts)
        out[:, 0] = (c * x - s * y) * roi.width + roi.x_center
        out[:, 1] = (s * x + c * y) * roi.height + roi.y_center
        out[:, 2] = pts[:, 2] / _INPUT * roi.width
        return out, presence


def _iou(a: NormRect, b: NormRect) -> float:
    ax0, ay0 = a.x_center - a.width / 2, a.y_center - a.height / 2
    bx0, by0 = b.x_center - b.width / 2, b.y_center - b.height / 2
    ix = max(0.0, min(ax0 + a.width, bx0 + b.width) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + a.height, by0 + b.height) - max(ay0, by0))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


class FaceMesh:
    """mediapipe's ``FaceMesh(refine_landmarks=True)`` on LiteRT. Not thread-safe.

    ``process`` returns one (478, 3) normalised landmark array per face found. With
    ``static_image_mode=False`` (video), faces are followed from frame to frame as
    mediapipe does: see the module docstring.
    """

    def __init__(
        self,
        static_image_mode: bool = False,
        max_num_faces: int = 1,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
    ) -> None:
        self.static_image_mode = bool(static_image_mode)
        self.max_num_faces = int(max_num_faces)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self._detector = FaceDetector("short", min_score=min_detection_confidence)
        self._landmarker = FaceLandmarker()
        self._prev: list[NormRect] = []
        self.last_detections: list[Detection] = []

    def reset(self) -> None:
        """Forget the faces followed so far (the next frame is searched afresh)."""
        self._prev = []

    def process(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        img = as_rgb_u8(image_rgb)
        h, w = img.shape[:2]
        prev = [] if self.static_image_mode else self._prev
        self.last_detections = []
        if len(prev) >= self.max_num_faces:
            rects = list(prev)
        else:
            dets = self._detector.detect(img)[: self.max_num_faces]
            self.last_detections = dets
            rects = []
            # AssociationNormRectCalculator: a followed face wins over a detection of it.
            for r in [detection_to_roi(d, w, h) for d in dets] + list(prev):
                rects = [q for q in rects if _iou(q, r) <= _ASSOCIATION_IOU]
                rects.append(r)
        faces: list[np.ndarray] = []
        next_rects: list[NormRect] = []
        for roi in rects:
            pts, presence = self._landmarker.landmarks(img, roi)
            if presence < self.min_tracking_confidence:
                continue
            faces.append(pts.astype(np.float32))
            next_rects.append(landmarks_to_roi(pts, w, h))
        self._prev = next_rects
        return faces

    def close(self) -> None:
        self._prev = []

    def __enter__(self) -> FaceMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
