"""Image decoding to RGB uint8 arrays, with file-size and pixel-size guards.

Every decode goes through :func:`image_header` first: Pillow's ``Image.open``
is lazy and reads only the header, so the picture's size is known before a
single pixel is decoded and a decompression bomb (a small file that decodes to
gigabytes) is refused with ``image_too_large`` while it is still a few bytes of
header. The pixels are then decoded by OpenCV (JPEG, PNG, WebP, BMP, TIFF) or
by Pillow with ``pillow-heif`` (HEIC/HEIF, AVIF: the formats phones save).
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from facecast.errors import InputError

PathLike = str | os.PathLike[str]

# Beyond this many pixels a decode could exhaust memory (a decompression bomb):
# 100 MP is 300 MB as RGB, more than any camera's photo (a 48 MP phone: 48 MP).
MAX_DECODE_PIXELS = 100_000_000
MAX_IMAGE_BYTES = 50 * 1024 * 1024

# Pillow's format name -> content type, for every format facecast reads.
IMAGE_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a JPEG with extra frames (phones' portrait mode)
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}
IMAGE_FORMATS_TEXT = "JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF or AVIF"
# OpenCV decodes these itself (and applies EXIF orientation); the rest go through Pillow.
_OPENCV_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP"})


EXIF_ORIENTATION = 0x0112
QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class ImageHeader:
    """What an image's header says, before anything is decoded."""

    format: str  # Pillow's name: JPEG, PNG, WEBP, TIFF, BMP, HEIF, AVIF, MPO
    width: int  # as Pillow reports it
    height: int
    # EXIF's orientation turns the picture a quarter when shown (a phone held upright),
    # as load_image turns it
    quarter_turned: bool = False

    @property
    def upright_size(self) -> tuple[int, int]:
        """``(width, height)`` as shown, and as :func:`load_image` returns it."""
        return (self.height, self.width) if self.quarter_turned else (self.width, self.height)

    @property
    def content_type(self) -> str:
        return IMAGE_TYPES[self.format]


@functools.cache
def _pillow_formats() -> tuple[str, ...]:
    """The Pillow format ids of :data:`IMAGE_TYPES` that it can open, after teaching it
    HEIC/HEIF (pillow-heif); AVIF is built into Pillow >= 11.3."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
    Image.init()  # every plugin registered, so their ids can be named
    return tuple(f for f in IMAGE_TYPES if f in Image.OPEN)


def image_header(data: bytes, name: str = "image") -> ImageHeader:
    """The format and size of the image in ``data``, read from its header only.

    Raises :class:`InputError` ``unreadable_image`` (not an image facecast reads)
    or ``image_too_large`` (over :data:`MAX_DECODE_PIXELS`: it is never decoded).
    """
    formats = _pillow_formats()
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 MP on; the limit here is ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # only these formats' parsers see untrusted bytes (Pillow knows dozens)
            with Image.open(io.BytesIO(data), formats=list(formats)) as im:
                fmt, (width, height) = str(im.format), im.size
                # Pillow's TIFF reader already reports a turned TIFF's size upright
                turned = fmt != "TIFF" and _orientation(im) in QUARTER_TURNS
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (at twice its warning size) fired first; it names the pixels.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(name, None, None, int(found.group(1)) if found else None) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InputError(
            f"{name!r} is not a readable image ({IMAGE_FORMATS_TEXT})", code="unreadable_image"
        ) from exc
    if width * height > MAX_DECODE_PIXELS:
        raise _too_large(name, width, height)
    return ImageHeader(fmt, width, height, turned)


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation tag (1 when there is none or it cannot be read), from the
    EXIF block the header holds: never ``im.getexif()``, which decodes a whole PNG to
    look for a block after its pixels (a decompression bomb, decoded)."""
    raw = im.info.get("exif")
    if not isinstance(raw, bytes | bytearray):
        return 1
    try:
        exif = Image.Exif()
        exif.load(bytes(raw))
        value = exif.get(EXIF_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError, KeyError, IndexError):
        return 1  # a broken EXIF block: load_image ignores it too
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _too_large(
    name: str, width: int | None, height: int | None, pixels: int | None = None
) -> InputError:
    if width and height:
        size, details = f"{width}x{height} px", {"width": width, "height": height}
    elif pixels:
        size, details = f"{pixels:,} pixels", {"pixels": pixels}
    else:
        size, details = f"over {MAX_DECODE_PIXELS:,} pixels", {}
    return InputError(
        f"image {name!r} is {size}; at most {MAX_DECODE_PIXELS // 1_000_000} megapixels "
        "can be decoded",
        code="image_too_large",
        max_pixels=MAX_DECODE_PIXELS,
        **details,
    )


def _read(source: PathLike | bytes, max_bytes: int | None) -> tuple[bytes, str]:
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
    return data, name


def load_image_alpha(
    source: PathLike | bytes, *, max_bytes: int | None = MAX_IMAGE_BYTES
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image to its HxWx3 RGB uint8 colours and its alpha (HxW float32 0..1,
    None when it has none). EXIF orientation is applied to images without alpha.

    Raises :class:`InputError` ``file_too_large``, ``image_too_large`` (checked on the
    header, before decoding) or ``unreadable_image``.
    """
    data, name = _read(source, max_bytes)
    header = image_header(data, name)
    unreadable = InputError(
        f"{name!r} is not a readable image ({IMAGE_FORMATS_TEXT})", code="unreadable_image"
    )
    if header.format not in _OPENCV_FORMATS:
        return _decode_pillow(data, unreadable)
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise unreadable
    if img.dtype != np.uint8 and img.ndim == 3 and img.shape[2] == 4:
        img = (img / 257.0).astype(np.uint8)  # 16-bit with alpha: keep the alpha's scale
    elif img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), None
    if img.shape[2] == 4:
        # IMREAD_UNCHANGED skips EXIF rotation, but PNG/WebP alpha images rarely carry it.
        alpha = img[:, :, 3].astype(np.float32) / 255.0
        return np.ascontiguousarray(img[:, :, 2::-1]), alpha
    # Re-decode with IMREAD_COLOR so EXIF orientation is honoured for JPEGs.
    color = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(color, cv2.COLOR_BGR2RGB), None


def _decode_pillow(data: bytes, unreadable: InputError) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_pillow_formats())) as opened:
                im: Image.Image = ImageOps.exif_transpose(opened)
                if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                    rgba = np.asarray(im.convert("RGBA"))
                    alpha = rgba[:, :, 3].astype(np.float32) / 255.0
                    return np.ascontiguousarray(rgba[:, :, :3]), alpha
                return np.ascontiguousarray(np.asarray(im.convert("RGB"))), None
    except (OSError, ValueError, SyntaxError) as exc:
        raise unreadable from exc


def load_image(source: PathLike | bytes, *, max_bytes: int | None = MAX_IMAGE_BYTES) -> np.ndarray:
    """Decode an image file (or its bytes) to an HxWx3 RGB uint8 array.

    JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF and AVIF. EXIF orientation is applied.
    Transparent pixels are composited on white, as a viewer would show them. Raises
    :class:`InputError` with code ``file_too_large``, ``image_too_large`` or
    ``unreadable_image``.
    """
    rgb, alpha = load_image_alpha(source, max_bytes=max_bytes)
    if alpha is None:
        return rgb
    a = alpha[:, :, None]
    return (rgb.astype(np.float32) * a + 255.0 * (1.0 - a)).astype(np.uint8)
