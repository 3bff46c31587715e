"""The packaged face models on Google's LiteRT runtime, and the image geometry they share.

facecast ships the ``.tflite`` files that mediapipe 0.10.21's wheel carried
(``facecast/face/models``, see PROVENANCE.md there) and runs them with
``ai-edge-litert``. This module loads a model, runs it with named inputs and
outputs, and holds what the detector, the landmark model and the segmenter all
need from MediaPipe's graphs: the normalised rotated rectangle (``NormRect``) and
the ``ImageToTensorCalculator`` crop (a perspective warp of a rotated rectangle
into the model's input, bilinear, as MediaPipe's OpenCV converter does it).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import cv2
import numpy as np

__all__ = [
    "MODEL_THREADS",
    "ROI_SCALE",
    "NormRect",
    "TfliteModel",
    "image_to_tensor",
    "model_path",
    "rect_from_box",
    "shared_model",
]

# Interpreter threads per model: one keeps the two cores free for the rest of a
# render (decode, warps) and measured as fast as two on these small models.
MODEL_THREADS = 1


# The face crop for the landmark model: 1.5x the face box (or the last frame's
# landmark box), square on its long side (RectTransformationCalculator options).
ROI_SCALE = 1.5


def model_path(name: str) -> str:
    """Path of a packaged model file (``facecast/face/models/<name>``)."""
    ref = resources.files("facecast.face") / "models" / name
    return str(ref)


@cache
def _interpreter_class() -> Any:
    # Imported on first use: the contour constants of facecast.face must not pay for it.
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter


class TfliteModel:
    """One ``.tflite`` model with its inputs and outputs addressed by tensor name."""

    def __init__(self, name: str, threads: int = MODEL_THREADS) -> None:
        interpreter = _interpreter_class()(model_path=model_path(name), num_threads=threads)
        interpreter.allocate_tensors()
        self.name = name
        self._it = interpreter
        self.inputs = {d["name"]: d for d in interpreter.get_input_details()}
        self.outputs = {d["name"]: d for d in interpreter.get_output_details()}

    def input_shape(self, name: str | None = None) -> tuple[int, ...]:
        key = name if name is not None else next(iter(self.inputs))
        return tuple(int(v) for v in self.inputs[key]["shape"])

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Set the named inputs (all of them), invoke, return every output by name."""
        for key, detail in self.inputs.items():
            value = np.ascontiguousarray(feeds[key], dtype=np.float32)
            self._it.set_tensor(detail["index"], value.reshape(detail["shape"]))
        self._it.invoke()
        return {key: self._it.get_tensor(d["index"]) for key, d in self.outputs.items()}

    def __repr__(self) -> str:
        return f"TfliteModel({self.name!r})"


_LOADED = threading.local()


def shared_model(name: str) -> TfliteModel:
    """This thread's instance of a packaged model, loaded on first use.

    Loading one (the interpreter and its XNNPACK plan) takes tens of milliseconds, and
    facecast builds face analysers, trackers and segmenters per portrait and per
    video. An interpreter must not run in two threads at once, but one thread may
    share it between any number of detectors and meshes: each ``run`` sets every
    input and reads every output before it returns, and the models keep no state.
    """
    cache: dict[str, TfliteModel] | None = getattr(_LOADED, "models", None)
    if cache is None:
        cache = _LOADED.models = {}
    model = cache.get(name)
    if model is None:
        model = cache[name] = TfliteModel(name)
    return model


@dataclass(frozen=True)
class NormRect:
    """MediaPipe's NormalizedRect: centre and size as fractions of the image, rotation
    in radians (clockwise as seen in the image, since y points down)."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0

    def to_pixels(self, w: int, h: int) -> tuple[float, float, float, float, float]:
        return (
            self.x_center * w,
            self.y_center * h,
            self.width * w,
            self.height * h,
            self.rotation,
        )


def normalize_radians(angle: float) -> float:
    """The angle folded into [-pi, pi) (MediaPipe's NormalizeRadians)."""
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def rect_from_box(
    cx: float, cy: float, bw: float, bh: float,
    start: tuple[float, float], end: tuple[float, float], w: int, h: int,
) -> NormRect:
    """DetectionsToRects + RectTransformation as the face graphs set them: the
    normalised box centred at (cx, cy), turned so the ``start`` -> ``end`` pixel
    vector is level, grown to a square on its long side (in pixels), times 1.5."""
    rotation = normalize_radians(0.0 - math.atan2(-(end[1] - start[1]), end[0] - start[0]))
    long_side = max(bw * w, bh * h)
    return NormRect(cx, cy, long_side / w * ROI_SCALE, long_side / h * ROI_SCALE, rotation)


def image_to_tensor(
    image: np.ndarray,
    rect: tuple[float, float, float, float, float],
    size: tuple[int, int],
    value_range: tuple[float, float],
    border_zero: bool,
) -> np.ndarray:
    """The rotated pixel rectangle ``(cx, cy, w, h, rotation)`` of an RGB uint8 image
    warped to a ``size = (width, height)`` float tensor (1, H, W, 3) in ``value_range``.

    As MediaPipe's ImageToTensorCalculator (OpenCV converter): the rectangle's
    corners map onto the tensor's corners by a perspective transform, sampled
    bilinearly in uint8; outside the image the border is black (``border_zero``) or
    the edge pixels repeated.
    """
    cx, cy, rw, rh, rot = rect
    out_w, out_h = size
    src = cv2.boxPoints(((cx, cy), (rw, rh), math.degrees(rot))).astype(np.float32)
    dst = np.array([[0, out_h], [0, 0], [out_w, 0], [out_w, out_h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    border = cv2.BORDER_CONSTANT if border_zero else cv2.BORDER_REPLICATE
    warped = cv2.warpPerspective(
        image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=border,
        borderValue=(0, 0, 0),
    )
    lo, hi = value_range
    tensor = warped.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    return tensor[None]


def as_rgb_u8(image: np.ndarray) -> np.ndarray:
    """A contiguous HxWx3 uint8 view of an RGB image (the models' input)."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {img.shape} {img.dtype}")
    return np.ascontiguousarray(img)
