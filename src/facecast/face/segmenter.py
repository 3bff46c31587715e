"""Person/background segmentation (MediaPipe selfie segmentation, general model) on LiteRT.

Reproduces mediapipe 0.10.21's ``SelfieSegmentation(model_selection=0)`` graph: the
image stretched to the model's 256x256 input (values in [0, 1]), the model's
person probability, and the mask resized back to the image bilinearly.
"""

from __future__ import annotations

import cv2
import numpy as np

from facecast.face.litert import as_rgb_u8, image_to_tensor, shared_model

__all__ = ["SelfieSegmenter"]

_MODEL = "selfie_segmentation.tflite"
_SIZE = 256


class SelfieSegmenter:
    """Soft person mask of an RGB image. Not thread-safe."""

    def __init__(self) -> None:
        self._model = shared_model(_MODEL)

    def mask(self, image_rgb: np.ndarray) -> np.ndarray:
        """float32 HxW, 1 on the person, 0 on the background."""
        img = as_rgb_u8(image_rgb)
        h, w = img.shape[:2]
        # The whole image, stretched (keep_aspect_ratio is off for this model).
        tensor = image_to_tensor(
            img, (w / 2.0, h / 2.0, float(w), float(h), 0.0), (_SIZE, _SIZE), (0.0, 1.0),
            border_zero=True,
        )
        out = next(iter(self._model.run({next(iter(self._model.inputs)): tensor}).values()))
        small = out.reshape(_SIZE, _SIZE).astype(np.float32)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    def close(self) -> None:
        """Nothing to release (kept for the ``with`` form)."""

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
