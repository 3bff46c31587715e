"""BlazeFace face detection (short and full range) on LiteRT, as mediapipe 0.10.21 ran it.

Reproduces MediaPipe's ``FaceDetectionShortRange`` / ``FaceDetectionFullRange``
graphs: the whole image letterboxed into the model's square input (values in
[-1, 1], black bars), SSD anchors, box and keypoint decoding, sigmoid scores,
weighted non-maximum suppression, and the projection back to the image. The
options are those of ``modules/face_detection/face_detection_{short,full}_range.pbtxt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facecast.face.litert import as_rgb_u8, image_to_tensor, shared_model

__all__ = ["FULL_RANGE_MIN_SCORE", "SHORT_RANGE_MIN_SCORE", "Detection", "FaceDetector"]


@dataclass(frozen=True)
class _Spec:
    model: str
    size: int
    strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score: float


# Anchor layouts and score thresholds of the two models (the graphs' options). The
# threshold is fixed per model: mediapipe 0.10.21's FaceDetection solution passes
# its min_detection_confidence as a graph option that the model's node options
# override, so 0.6 (full range) and 0.5 (short range) were always in force.
FULL_RANGE_MIN_SCORE = 0.6
SHORT_RANGE_MIN_SCORE = 0.5
_SPECS = {
    "short": _Spec("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 1.0,
                   SHORT_RANGE_MIN_SCORE),
    "full": _Spec("face_detection_full_range_sparse.tflite", 192, (4,), 0.0,
                  FULL_RANGE_MIN_SCORE),
}
_SCORE_CLIP = 100.0  # raw scores are clipped to +-100 before the sigmoid
_NMS_IOU = 0.3  # weighted NMS merges boxes overlapping more than this
_NUM_KEYPOINTS = 6  # right eye, left eye, nose tip, mouth, right ear, left ear


@dataclass(frozen=True)
class Detection:
    """One face in normalised image coordinates (fractions of width and height)."""

    xmin: float
    ymin: float
    width: float
    height: float
    score: float
    keypoints: np.ndarray  # (6, 2) normalised x, y

    def to_pixels(self, w: int, h: int) -> tuple[float, float, float, float]:
        return (self.xmin * w, self.ymin * h, self.width * w, self.height * h)


def ssd_anchor_centres(size: int, strides: tuple[int, ...], interpolated: float) -> np.ndarray:
    """(N, 2) anchor centres (x, y), normalised, in the model's output order.

    MediaPipe's SsdAnchorsCalculator with fixed-size anchors: consecutive layers of
    one stride share a grid; each layer adds one anchor per cell, plus one more when
    an interpolated scale is asked for. Anchor sizes are all 1, so only the centres
    matter.
    """
    centres: list[np.ndarray] = []
    layer = 0
    n = len(strides)
    while layer < n:
        per_cell = 0
        last = layer
        while last < n and strides[last] == strides[layer]:
            per_cell += 1 + (1 if interpolated > 0 else 0)
            last += 1
        grid = math.ceil(size / strides[layer])
        ys, xs = np.mgrid[0:grid, 0:grid]
        cells = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(cells, per_cell, axis=0))
        layer = last
    return np.concatenate(centres).astype(np.float32)


def _weighted_nms(
    boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-maximum suppression (IoU over 0.3).

    The best-scoring box and every remaining box overlapping it are merged into
    their score-weighted mean (box corners and keypoints); the merged detection
    keeps the best score. Boxes are (xmin, ymin, xmax, ymax).
    """
    order = np.argsort(-scores, kind="stable")
    out: list[tuple[np.ndarray, np.ndarray, float]] = []
    remaining = order
    while remaining.size:
        top = remaining[0]
        b, t = boxes[remaining], boxes[top]
        ix = np.clip(np.minimum(b[:, 2], t[2]) - np.maximum(b[:, 0], t[0]), 0, None)
        iy = np.clip(np.minimum(b[:, 3], t[3]) - np.maximum(b[:, 1], t[1]), 0, None)
        inter = ix * iy
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        top_area = (t[2] - t[0]) * (t[3] - t[1])
        union = area + top_area - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
        merge = iou > _NMS_IOU
        members = remaining[merge]
        w = scores[members].astype(np.float64)
        total = float(w.sum())
        box = (boxes[members] * w[:, None]).sum(axis=0) / total
        kps = (keypoints[members] * w[:, None, None]).sum(axis=0) / total
        out.append((box, kps, float(scores[top])))
        if members.size == 0:  # cannot happen (a box overlaps itself); guards the loop
            break
        remaining = remaining[~merge]
    return out


class FaceDetector:
    """Faces in an RGB image, best first (``range_``: "short" within about 2 m of the
    camera, "full" up to about 5 m). Not thread-safe."""

    def __init__(self, range_: str = "full", min_score: float | None = None) -> None:
        spec = _SPECS[range_]
        self.range = range_
        self.min_score = spec.min_score if min_score is None else float(min_score)
        self._spec = spec
        self._model = shared_model(spec.model)
        self._anchors = ssd_anchor_centres(
            spec.size, spec.strides, spec.interpolated_scale_aspect_ratio
        )

    def detect(self, image_rgb: np.ndarray) -> list[Detection]:
        img = as_rgb_u8(image_rgb)
        h, w = img.shape[:2]
        size = self._spec.size
        # The whole image, padded to a square with black bars (keep_aspect_ratio).
        side = float(max(w, h))
        rect = (w / 2.0, h / 2.0, side, side, 0.0)
        tensor = image_to_tensor(img, rect, (size, size), (-1.0, 1.0), border_zero=True)
        out = self._model.run({next(iter(self._model.inputs)): tensor})
        raw_boxes, raw_scores = self._split_outputs(out)
        clipped = np.clip(raw_scores.astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-clipped))
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw = raw_boxes[keep] / np.float32(size)
        anchors = self._anchors[keep]
        cx = raw[:, 0] + anchors[:, 0]
        cy = raw[:, 1] + anchors[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        kps = raw[:, 4 : 4 + 2 * _NUM_KEYPOINTS].reshape(-1, _NUM_KEYPOINTS, 2) + anchors[:, None]
        found = _weighted_nms(boxes, kps, scores[keep])
        # Tensor space -> image: the tensor covers the side x side square centred on
        # the image (no rotation), so the map is a scale and a shift per axis.
        sx, sy = side / w, side / h
        ox, oy = 0.5 - sx / 2.0, 0.5 - sy / 2.0
        dets = []
        for box, kp, score in found:
            x0, y0 = box[0] * sx + ox, box[1] * sy + oy
            x1, y1 = box[2] * sx + ox, box[3] * sy + oy
            kpts = np.column_stack([kp[:, 0] * sx + ox, kp[:, 1] * sy + oy]).astype(np.float32)
            dets.append(Detection(float(x0), float(y0), float(x1 - x0), float(y1 - y0),
                                  score, kpts))
        return dets

    def _split_outputs(self, out: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        boxes = scores = None
        for value in out.values():
            if value.shape[-1] == 16:
                boxes = value.reshape(-1, 16)
            else:
                scores = value.reshape(-1)
        assert boxes is not None and scores is not None
        return boxes, scores

    def __repr__(self) -> str:
        return f"FaceDetector(range_={self.range!r}, min_score={self.min_score})"

