"""What a composed frame shows, as values: the canvas, the background (a colour, an image,
or a looped video), the avatar's place, scale and mask, and image layers above or below
it; with the parsers of their text forms (colours, ``WxH``, positions, layers) that the
CLI, the service and the vendor mappers share. :mod:`facecast.render.compose` draws it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from facecast.errors import InputError
from facecast.render.canvas import MAX_SIDE
from facecast.rules import MAX_CORNER_RADIUS, MAX_LAYERS, MAX_SCALE, MIN_SCALE

PathLike = str | os.PathLike[str]
RGB = tuple[int, int, int]


MaskKind = Literal["none", "circle", "rect"]


Anchor = Literal["center", "top_left"]


Units = Literal["fraction", "px"]
MAX_PIXELS = 3840 * 2160  # the largest canvas: 4K UHD, either way round
IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}


@dataclass(frozen=True)
class ColorFill:
    """A solid colour (RGB 0-255)."""

    rgb: RGB


@dataclass(frozen=True)
class ImageFill:
    """An image file, scaled to cover the canvas and centre-cropped."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))


@dataclass(frozen=True)
class VideoFill:
    """A video file, looped, streamed frame by frame and scaled to cover the canvas."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))


Background = ColorFill | ImageFill | VideoFill
BackgroundLike = Background | RGB | str | os.PathLike[str]

_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_RGB = re.compile(r"(?:rgb\s*\()?\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)?", re.I)


def parse_color(value: str | RGB) -> RGB:
    """``#0f0``, ``#00ff00``, ``00ff00``, ``rgb(0, 255, 0)``, ``0,255,0`` or a tuple -> RGB."""
    if isinstance(value, tuple | list):
        parts = tuple(int(v) for v in value)
    else:
        text = value.strip()
        if m := _HEX.fullmatch(text):
            digits = m.group(1)
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            parts = tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
        elif m := _RGB.fullmatch(text):
            parts = tuple(int(g) for g in m.groups())
        else:
            raise InputError(
                f"{value!r} is not a colour: use #rrggbb or rgb(r, g, b)", code="bad_color"
            )
    if len(parts) != 3 or not all(0 <= v <= 255 for v in parts):
        raise InputError(f"{value!r} is not a colour: three values 0-255", code="bad_color")
    return parts  # type: ignore[return-value]


def _looks_like_color(text: str) -> bool:
    return bool(_HEX.fullmatch(text.strip()) and text.strip().startswith("#")) or bool(
        _RGB.fullmatch(text.strip())
    )


def parse_background(value: BackgroundLike) -> Background:
    """A colour (hex, ``rgb(...)`` or a tuple), an image path or a video path -> Background.

    Files are told apart by their suffix; the file must exist.
    """
    if isinstance(value, ColorFill | ImageFill | VideoFill):
        return value
    if isinstance(value, tuple | list):
        return ColorFill(parse_color(value))  # type: ignore[arg-type]
    if isinstance(value, str) and _looks_like_color(value):
        return ColorFill(parse_color(value))
    path = Path(value)
    if not path.is_file():
        raise InputError(
            f"background {str(value)!r} is neither a colour nor a file", code="bad_background"
        )
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VideoFill(path)
    if suffix in IMAGE_SUFFIXES:
        return ImageFill(path)
    raise InputError(
        f"background {path.name!r}: use an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
        f" or a video ({', '.join(sorted(VIDEO_SUFFIXES))})",
        code="bad_background",
    )


@dataclass(frozen=True)
class ImageLayer:
    """An image (or a solid colour rectangle) drawn on the canvas, above or below the avatar.

    ``x``, ``y``: its top-left corner in canvas pixels (it may hang off the
    canvas). ``width`` / ``height``: its size in pixels; give one to keep the
    image's aspect, neither for its own size (a colour needs both). ``z``: the
    avatar is at 0; negative layers go below it, positive above; equal ``z``
    keep their list order. The image's own alpha (PNG, WebP) is kept and
    multiplied by ``opacity``.
    """

    source: Path | RGB | str  # a str is a #colour or a path; stored as Path or RGB
    x: int = 0
    y: int = 0
    width: int | None = None
    height: int | None = None
    z: int = 1
    opacity: float = 1.0

    def __post_init__(self) -> None:
        source = self.source
        if isinstance(source, str):
            source = (
                ColorFill(parse_color(source)).rgb if _looks_like_color(source) else Path(source)
            )
        elif isinstance(source, os.PathLike):
            source = Path(source)
        else:
            source = parse_color(source)
        object.__setattr__(self, "source", source)
        if isinstance(source, Path) and not source.is_file():
            raise InputError(f"layer image {str(source)!r} does not exist", code="bad_layer")
        if not isinstance(source, Path) and (self.width is None or self.height is None):
            raise InputError("a colour layer needs a width and a height", code="bad_layer")
        for name in ("width", "height"):
            v = getattr(self, name)
            if v is not None and not 1 <= v <= 4 * MAX_SIDE:
                raise InputError(
                    f"layer {name} {v} is out of range (1 to {4 * MAX_SIDE})", code="bad_layer"
                )
        if self.z == 0:
            raise InputError(
                "layer z must be negative (below the avatar) or positive (above)", code="bad_layer"
            )
        if not 0.0 <= self.opacity <= 1.0:
            raise InputError(f"layer opacity {self.opacity} is not within 0..1", code="bad_layer")


@dataclass(frozen=True)
class Composition:
    """How the canvas is composed around the talking portrait.

    - ``canvas``: (width, height) in pixels, even, up to 3840x2160 pixels in
      all (either way round); None takes the render's size/aspect options.
    - ``background``: a :class:`ColorFill`, :class:`ImageFill` or
      :class:`VideoFill` (a colour string, RGB tuple or file path is converted);
      None keeps today's look: the portrait's blurred copy fills what the
      avatar leaves uncovered.
    - ``replace_background``: cut the person out of the portrait and put them
      on ``background`` (which must then be given).
    - ``position``, ``units``, ``anchor``: where the avatar goes; by default
      its centre sits at the canvas centre. ``units="fraction"`` gives x, y as
      fractions of the canvas width and height, ``"px"`` in pixels;
      ``anchor="top_left"`` places the avatar box's top-left corner there
      (Akool's offset_x/offset_y).
    - ``scale``: the avatar's size relative to the portrait fitted whole into
      the canvas (KreadoAI's ``resize``), or to ``avatar_size`` when given.
    - ``avatar_size``: (width, height) of the avatar's box in pixels (Akool's
      element width/height); the portrait covers the box, cropped around the
      face. None: the box is the whole portrait.
    - ``mask``: "none", "circle" (the largest circle in the box) or "rect"
      (the box, with ``corner_radius`` as a fraction 0..0.5 of its shorter
      side); edges are anti-aliased.
    - ``layers``: image layers (:class:`ImageLayer`), at most 16.
    """

    canvas: tuple[int, int] | None = None
    background: BackgroundLike | None = None  # stored as ColorFill | ImageFill | VideoFill
    replace_background: bool = False
    position: tuple[float, float] = (0.5, 0.5)
    units: Units = "fraction"
    anchor: Anchor = "center"
    scale: float = 1.0
    avatar_size: tuple[int, int] | None = None
    mask: MaskKind = "none"
    corner_radius: float = 0.0
    layers: tuple[ImageLayer, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.background is not None:
            object.__setattr__(self, "background", parse_background(self.background))
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.canvas is not None:
            w, h = (int(v) for v in self.canvas)
            check_canvas(w, h)
            object.__setattr__(self, "canvas", (w, h))
        if self.replace_background and self.background is None:
            raise InputError(
                "replacing the background needs a background colour, image or video",
                code="bad_composition",
            )
        if self.units not in ("fraction", "px"):
            raise InputError(
                f"position units {self.units!r}: use fraction or px", code="bad_composition"
            )
        if self.anchor not in ("center", "top_left"):
            raise InputError(
                f"anchor {self.anchor!r}: use center or top_left", code="bad_composition"
            )
        if len(self.position) != 2 or not all(math.isfinite(v) for v in self.position):
            raise InputError("position needs two finite numbers", code="bad_composition")
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise InputError(
                f"scale {self.scale} is out of range ({MIN_SCALE:g} to {MAX_SCALE:g})",
                code="bad_composition",
            )
        if self.avatar_size is not None and not all(
            8 <= v <= 4 * MAX_SIDE for v in self.avatar_size
        ):
            raise InputError(
                f"avatar size {self.avatar_size} is out of range", code="bad_composition"
            )
        if self.mask not in ("none", "circle", "rect"):
            raise InputError(
                f"mask {self.mask!r}: use none, circle or rect", code="bad_composition"
            )
        if not 0.0 <= self.corner_radius <= MAX_CORNER_RADIUS:
            raise InputError(
                f"corner radius {self.corner_radius} is not within 0..{MAX_CORNER_RADIUS:g} "
                "(a fraction of the box's shorter side)",
                code="bad_composition",
            )
        if len(self.layers) > MAX_LAYERS:
            raise InputError(
                f"{len(self.layers)} layers; at most {MAX_LAYERS}", code="bad_layer"
            )


def check_canvas(width: int, height: int) -> None:
    """Refuse a canvas H.264 cannot take or that is beyond 4K (InputError ``bad_size``)."""
    if width % 2 or height % 2:
        raise InputError(f"canvas {width}x{height}: both sides must be even", code="bad_size")
    if min(width, height) < 64 or max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputError(
            f"canvas {width}x{height} is out of range (64 px a side, up to 3840x2160 pixels)",
            code="bad_size",
        )


def parse_wxh(text: str) -> tuple[int, int]:
    """``"1080x1080"`` -> (1080, 1080) (InputError ``bad_size`` otherwise)."""
    m = re.fullmatch(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*", text)
    if not m:
        raise InputError(
            f"{text!r} is not a size: use WxH in pixels, e.g. 1080x1080", code="bad_size"
        )
    return int(m.group(1)), int(m.group(2))


def parse_position(text: str) -> tuple[tuple[float, float], Units]:
    """``"960,540"`` (pixels) or ``"50%,60%"`` (of the canvas) -> ((x, y), units)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) == 2 and all(p.endswith("%") for p in parts):
            return (float(parts[0][:-1]) / 100.0, float(parts[1][:-1]) / 100.0), "fraction"
        if len(parts) == 2 and not any(p.endswith("%") for p in parts):
            return (float(parts[0]), float(parts[1])), "px"
    except ValueError:
        pass
    raise InputError(
        f"position {text!r}: use X,Y in pixels or percentages (50%,60%)", code="bad_composition"
    )


def parse_layer(text: str) -> ImageLayer:
    """``PATH@X,Y[,WxH][,below|above][,opacity=O]`` -> ImageLayer (PATH may be a #colour)."""
    source, at, spec = text.rpartition("@")
    fields = [f.strip() for f in spec.split(",")]
    usage = f"layer {text!r}: use PATH@X,Y[,WxH][,below][,opacity=O]"
    if not at or not source or len(fields) < 2:
        raise InputError(usage, code="bad_layer")
    try:
        x, y = int(fields[0]), int(fields[1])
        size: tuple[int, int] | None = None
        z, opacity = 1, 1.0
        for f in fields[2:]:
            key = f.lower()
            if key in ("below", "above"):
                z = -1 if key == "below" else 1
            elif key.startswith("opacity="):
                opacity = float(key.split("=", 1)[1])
            else:
                size = parse_wxh(f)
    except (ValueError, InputError):
        raise InputError(usage, code="bad_layer") from None
    return ImageLayer(
        source,
        x=x,
        y=y,
        width=size[0] if size else None,
        height=size[1] if size else None,
        z=z,
        opacity=opacity,
    )
