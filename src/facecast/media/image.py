"""Image decoding to RGB uint8 arrays, with file-size and pixel-size guards."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from facecast.errors import InputError

PathLike = str | os.PathLike[str]

# Beyond this many pixels a decode could exhaust memory (a decompression bomb).
MAX_DECODE_PIXELS = 100_000_000


def load_image(
    source: PathLike | bytes, *, max_bytes: int | None = 50 * 1024 * 1024
) -> np.ndarray:
    """Decode a JPEG/PNG/WebP/BMP/TIFF file (or its bytes) to an HxWx3 RGB uint8 array.

    EXIF orientation is applied. Transparent pixels are composited on white, as
    a viewer would show them. Raises :class:`InputError` with code
    ``file_too_large`` or ``unreadable_image``.
    """
    if isinstance(source, bytes | bytearray):
        data, name = bytes(source), "image"
    else:
        name = Path(source).name
        try:
            size = os.path.getsize(source)
            if max_bytes is not None and size > max_bytes:
                raise InputError(
                    f"image {name!r} is {size / 1e6:.1f} MB, over the "
                    f"{max_bytes / 1e6:.0f} MB limit",
                    code="file_too_large",
                    bytes=size,
                    max_bytes=max_bytes,
                )
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read image {name!r}: {exc}", code="unreadable_image") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(
            f"image is {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit",
            code="file_too_large",
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_DECODE_PIXELS))
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if len(buf) else None
    if img is None or img.size == 0:
        raise InputError(
            f"{name!r} is not a readable image (JPEG, PNG, WebP, BMP or TIFF)",
            code="unreadable_image",
        )
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        # IMREAD_UNCHANGED skips EXIF rotation, but PNG/WebP alpha images rarely carry it.
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        rgb = img[:, :, 2::-1].astype(np.float32)
        return (rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    # Re-decode with IMREAD_COLOR so EXIF orientation is honoured for JPEGs.
    color = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(color, cv2.COLOR_BGR2RGB)
