"""Composition of the output frame: canvas, background, avatar placement, mask and image layers.

A :class:`Composition` says what the canvas shows besides the talking
portrait: a background (a colour, an image, or a video looped and streamed
frame by frame, each scaled to cover the canvas), whether the portrait keeps
its own background or the person is cut out (person segmentation) and put on
the new one, where the avatar sits and how big it is, an optional circle or
rounded-rectangle mask, and image layers above or below the avatar. These are
the options of KreadoAI's digital-human task (16:9 / 9:16, mask, position,
scale, colour or image background) and of Akool's talking avatar (canvas size,
image elements with position and size, avatar element, colour background).

:class:`Compositor` does the work in two parts. Set-up, once: the avatar
image the animator should animate (the portrait scaled into its box, only the
part that is on the canvas), the person matte (refined and feathered) and the
person's colours carried out past their edge so no old background shows in
soft edges, the anti-aliased mask, the static background with the layers below
the avatar already drawn on it, and each layer's pixels and alpha. Then one
call per frame turns the animator's frame into the canvas frame; only the
avatar's box, the layers' boxes and (for a video) the background frame are
touched, so memory does not grow with the length of the video.

With head motion the person matte moves with the head: the animator's own
head mover warps the matte with exactly the transform it applied to the
frame, so the cut-out edge stays on the moving head's outline.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.media.image import MAX_IMAGE_BYTES
from facecast.render.canvas import MAX_SIDE, blurred_fill, cover_resize
from facecast.rules import MAX_CORNER_RADIUS, MAX_LAYERS, MAX_SCALE, MIN_SCALE

if TYPE_CHECKING:
    from facecast.motion.life import LifeTrack
    from facecast.motion.track import MouthTrack
    from facecast.render.animator import PortraitAnimator
    from facecast.render.head import HeadMover

PathLike = str | os.PathLike[str]
RGB = tuple[int, int, int]
MaskKind = Literal["none", "circle", "rect"]
Anchor = Literal["center", "top_left"]
Units = Literal["fraction", "px"]

MAX_PIXELS = 3840 * 2160  # the largest canvas: 4K UHD, either way round
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif",
                  ".avif"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}
# Segmentation, matte refinement and colour estimation run at this size at most;
# the matte is smooth and the colours at the edge are low-frequency, so nothing is lost.
MATTE_WORK_SIDE = 1024
MIN_FACE_PX = 24  # a face narrower than this on the canvas cannot be animated usefully
EDGE_EASE = 0.04  # moved matte eased into the still one over this fraction of the head region


# --------------------------------------------------------------------------- value types


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
            raise InputError(f"{value!r} is not a colour: use #rrggbb or rgb(r, g, b)",
                             code="bad_color")
    if len(parts) != 3 or not all(0 <= v <= 255 for v in parts):
        raise InputError(f"{value!r} is not a colour: three values 0-255", code="bad_color")
    return parts  # type: ignore[return-value]


def _looks_like_color(text: str) -> bool:
    return bool(_HEX.fullmatch(text.strip()) and text.strip().startswith("#")) or bool(
        _RGB.fullmatch(text.strip()))


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
        raise InputError(f"background {str(value)!r} is neither a colour nor a file",
                         code="bad_background")
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VideoFill(path)
    if suffix in IMAGE_SUFFIXES:
        return ImageFill(path)
    raise InputError(f"background {path.name!r}: use an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
                     f" or a video ({', '.join(sorted(VIDEO_SUFFIXES))})", code="bad_background")


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
            source = ColorFill(parse_color(source)).rgb if _looks_like_color(source) \
                else Path(source)
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
                raise InputError(f"layer {name} {v} is out of range (1 to {4 * MAX_SIDE})",
                                 code="bad_layer")
        if self.z == 0:
            raise InputError("layer z must be negative (below the avatar) or positive (above)",
                             code="bad_layer")
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
            raise InputError("replacing the background needs a background colour, image or "
                             "video", code="bad_composition")
        if self.units not in ("fraction", "px"):
            raise InputError(f"position units {self.units!r}: use fraction or px",
                             code="bad_composition")
        if self.anchor not in ("center", "top_left"):
            raise InputError(f"anchor {self.anchor!r}: use center or top_left",
                             code="bad_composition")
        if len(self.position) != 2 or not all(math.isfinite(v) for v in self.position):
            raise InputError("position needs two finite numbers", code="bad_composition")
        if not MIN_SCALE <= self.scale <= MAX_SCALE:
            raise InputError(f"scale {self.scale} is out of range ({MIN_SCALE:g} to "
                             f"{MAX_SCALE:g})",
                             code="bad_composition")
        if self.avatar_size is not None and not all(8 <= v <= 4 * MAX_SIDE
                                                    for v in self.avatar_size):
            raise InputError(f"avatar size {self.avatar_size} is out of range",
                             code="bad_composition")
        if self.mask not in ("none", "circle", "rect"):
            raise InputError(f"mask {self.mask!r}: use none, circle or rect",
                             code="bad_composition")
        if not 0.0 <= self.corner_radius <= MAX_CORNER_RADIUS:
            raise InputError(f"corner radius {self.corner_radius} is not within "
                             f"0..{MAX_CORNER_RADIUS:g} "
                             "(a fraction of the box's shorter side)", code="bad_composition")
        if len(self.layers) > MAX_LAYERS:
            raise InputError(f"{len(self.layers)} layers; at most {MAX_LAYERS}",
                             code="bad_composition")


def check_canvas(width: int, height: int) -> None:
    """Refuse a canvas H.264 cannot take or that is beyond 4K (InputError ``bad_size``)."""
    if width % 2 or height % 2:
        raise InputError(f"canvas {width}x{height}: both sides must be even", code="bad_size")
    if min(width, height) < 64 or max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise InputError(f"canvas {width}x{height} is out of range (64 px a side, up to "
                         "3840x2160 pixels)", code="bad_size")


def parse_wxh(text: str) -> tuple[int, int]:
    """``"1080x1080"`` -> (1080, 1080) (InputError ``bad_size`` otherwise)."""
    m = re.fullmatch(r"\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*", text)
    if not m:
        raise InputError(f"{text!r} is not a size: use WxH in pixels, e.g. 1080x1080",
                         code="bad_size")
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
    raise InputError(f"position {text!r}: use X,Y in pixels or percentages (50%,60%)",
                     code="bad_composition")


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
    return ImageLayer(source, x=x, y=y, width=size[0] if size else None,
                      height=size[1] if size else None, z=z, opacity=opacity)


# --------------------------------------------------------------------------- image helpers


def _place(image: np.ndarray, sx: float, sy: float, ox: float, oy: float, width: int,
           height: int, *, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` resampled so its pixel corner (x, y) lands at (x*sx + ox, y*sy + oy).

    The output is ``width`` x ``height``; what falls outside ``image`` repeats
    its border.
    """
    if sx < 1.0 or sy < 1.0:
        # Shrinking by interpolation aliases; area-average down first, place after.
        ih, iw = image.shape[:2]
        nw, nh = max(1, round(iw * sx)), max(1, round(ih * sy))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        sx, sy = sx * iw / nw, sy * ih / nh
        interpolation = cv2.INTER_LINEAR
    # Pixel-centre convention, as cv2.resize: dst + 0.5 = (src + 0.5) * s + o.
    m = np.array([[sx, 0.0, ox + 0.5 * sx - 0.5], [0.0, sy, oy + 0.5 * sy - 0.5]], np.float64)
    return cv2.warpAffine(image, m, (width, height), flags=interpolation,
                          borderMode=cv2.BORDER_REPLICATE)


def _load_rgba(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An image file as RGB uint8 plus its alpha (float32 0..1), None when it has none."""
    from facecast.media.image import load_image_alpha

    # load_image_alpha checks the size from the header before decoding (bombs) and
    # applies EXIF orientation to images without alpha.
    return load_image_alpha(path, max_bytes=MAX_IMAGE_BYTES)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Colour guided filter (He, Sun and Tang): ``src`` smoothed so its edges follow ``guide``.

    ``guide`` is HxWx3 float32 in 0..1, ``src`` HxW float32. The 3x3 systems
    are solved in closed form per pixel (a few box filters, no per-pixel solver).
    """
    r = radius
    mi = _box(guide, r)
    mp = _box(src, r)
    cov = _box(guide * src[..., None], r) - mi * mp[..., None]

    def var(i: int, j: int) -> np.ndarray:
        return _box(guide[..., i] * guide[..., j], r) - mi[..., i] * mi[..., j]

    rr, rg, rb = var(0, 0) + eps, var(0, 1), var(0, 2)
    gg, gb, bb = var(1, 1) + eps, var(1, 2), var(2, 2) + eps
    # Inverse of the symmetric covariance matrix by cofactors.
    i_rr, i_rg, i_rb = gg * bb - gb * gb, gb * rb - rg * bb, rg * gb - gg * rb
    i_gg, i_gb, i_bb = rr * bb - rb * rb, rb * rg - rr * gb, rr * gg - rg * rg
    det = rr * i_rr + rg * i_rg + rb * i_rb
    c0, c1, c2 = cov[..., 0], cov[..., 1], cov[..., 2]
    a = np.dstack([(i_rr * c0 + i_rg * c1 + i_rb * c2) / det,
                   (i_rg * c0 + i_gg * c1 + i_gb * c2) / det,
                   (i_rb * c0 + i_gb * c1 + i_bb * c2) / det]).astype(np.float32)
    b = mp - (a * mi).sum(axis=2)
    return (_box(a, r) * guide).sum(axis=2) + _box(b, r)


def refine_matte(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """A segmentation mask (blocky, from a 256 px model) snapped to the image's edges.

    The guided filter moves the soft edge onto the real outline (hair, collar);
    the contrast curve after it removes the faint glow a guided filter leaves
    around the person and keeps a transition of a pixel or two.
    """
    guide = image.astype(np.float32) / 255.0
    radius = max(2, round(max(image.shape[:2]) / 80))
    q = guided_filter(guide, coarse.astype(np.float32), radius, 1e-3)
    return _smoothstep(0.2, 0.8, np.clip(q, 0.0, 1.0)).astype(np.float32)


def _push_pull(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill the whole image from the pixels with weight, by a normalised pyramid."""
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    num, den = image * weight[..., None], weight.astype(np.float32)
    while min(den.shape) > 8:
        levels.append((num, den))
        num, den = cv2.pyrDown(num), cv2.pyrDown(den)
    est = num / np.maximum(den, 1e-6)[..., None]
    for num, den in reversed(levels):
        up = cv2.resize(est, (num.shape[1], num.shape[0]), interpolation=cv2.INTER_LINEAR)
        k = np.clip(den * 4.0, 0.0, 1.0)[..., None]
        est = num / np.maximum(den, 1e-6)[..., None] * k + up * (1.0 - k)
    return est


def foreground_colors(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The person's own colours, also under soft edges and carried past them (uint8 RGB).

    A soft-edge pixel is a mix of person and old background; drawn as it is on
    a new background it leaves a halo of the old one. Where alpha is fairly
    high the mix is solved for the person's colour against an estimate of the
    old background; where it is low, the nearby solid person colour is used.
    """
    img = image.astype(np.float32) / 255.0
    inside = _push_pull(img, (alpha > 0.97).astype(np.float32))
    behind = _push_pull(img, (alpha < 0.03).astype(np.float32))
    a = alpha[..., None]
    solved = np.clip((img - (1.0 - a) * behind) / np.maximum(a, 1e-3), 0.0, 1.0)
    t = _smoothstep(0.15, 0.7, alpha)[..., None]
    fg = np.where(a >= 0.98, img, t * solved + (1.0 - t) * inside)
    return np.clip(fg * 255.0 + 0.5, 0, 255).astype(np.uint8)


def shape_mask(kind: MaskKind, box_w: float, box_h: float, corner_radius: float,
               x0: float, y0: float, width: int, height: int) -> np.ndarray | None:
    """Anti-aliased coverage (float32 0..1) of a circle or rounded rectangle.

    The shape fills a ``box_w`` x ``box_h`` box whose top-left corner is at
    (``x0``, ``y0``) in the coordinates of the ``width`` x ``height`` output
    (the box may be larger than the output). None for ``kind="none"``.
    """
    if kind == "none":
        return None
    hw, hh = box_w / 2.0, box_h / 2.0
    if kind == "circle":
        hw = hh = radius = min(hw, hh)
    else:
        radius = corner_radius * min(box_w, box_h)
    # Signed distance to a rounded box (negative inside), one pixel of ramp across the edge.
    xs = np.abs(np.arange(width, dtype=np.float32) + 0.5 - (x0 + box_w / 2.0)) - (hw - radius)
    ys = np.abs(np.arange(height, dtype=np.float32) + 0.5 - (y0 + box_h / 2.0)) - (hh - radius)
    qx, qy = xs[None, :], ys[:, None]
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    dist = outside + np.minimum(np.maximum(qx, qy), 0.0) - radius
    return np.clip(0.5 - dist, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- drawing


TILE = 32  # blending works on spans of 32x32 tiles that are clear, opaque or mixed


@dataclass(frozen=True)
class _Spans:
    """An alpha map cut into row spans of tiles that are all clear, all opaque or mixed.

    Most of an avatar or a logo is fully opaque or fully clear: copying those
    spans and blending only the mixed ones (the soft outline) costs a fraction
    of blending every pixel, which matters at 4K.
    """

    clear: tuple[tuple[slice, slice], ...]
    solid: tuple[tuple[slice, slice], ...]
    mixed: tuple[tuple[slice, slice], ...]

    @classmethod
    def of(cls, alpha: np.ndarray) -> _Spans:
        h, w = alpha.shape
        ny, nx = -(-h // TILE), -(-w // TILE)
        pad = np.pad(alpha, ((0, ny * TILE - h), (0, nx * TILE - w)), mode="edge")
        tiles = pad.reshape(ny, TILE, nx, TILE)
        kind = np.where(tiles.max(axis=(1, 3)) <= 0.0, 0,
                        np.where(tiles.min(axis=(1, 3)) >= 1.0, 1, 2))
        # Runs of one kind along each tile row; a run with the same columns and kind as
        # one in the row above extends it downwards (a side strip becomes one rectangle).
        done: list[tuple[int, int, int, int, int]] = []  # kind, ty0, ty1, tx0, tx1
        open_runs: dict[tuple[int, int, int], int] = {}  # (kind, tx0, tx1) -> ty0
        for ty in range(ny):
            row = kind[ty]
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
            ends = np.r_[starts[1:], nx]
            runs = {(int(row[a]), int(a), int(b)) for a, b in zip(starts, ends, strict=True)}
            for key in [k for k in open_runs if k not in runs]:
                done.append((key[0], open_runs.pop(key), ty, key[1], key[2]))
            for key in runs:
                open_runs.setdefault(key, ty)
        done += [(k[0], ty0, ny, k[1], k[2]) for k, ty0 in open_runs.items()]
        out: tuple[list[tuple[slice, slice]], ...] = ([], [], [])
        for k, ty0, ty1, tx0, tx1 in sorted(done):
            out[k].append((slice(ty0 * TILE, min(h, ty1 * TILE)),
                           slice(tx0 * TILE, min(w, tx1 * TILE))))
        return cls(tuple(out[0]), tuple(out[1]), tuple(out[2]))


def _blend(dst: np.ndarray, src: np.ndarray, alpha: np.ndarray, spans: _Spans,
           under: np.ndarray | None = None, inv: np.ndarray | None = None) -> None:
    """``dst = alpha * src + (1 - alpha) * under`` (``under`` defaults to ``dst`` itself)."""
    if under is not None:
        for s in spans.clear:
            dst[s] = under[s]
    base = dst if under is None else under
    for s in spans.solid:
        dst[s] = src[s]
    for s in spans.mixed:
        a = alpha[s]
        dst[s] = cv2.blendLinear(src[s], base[s], a, inv[s] if inv is not None else 1.0 - a)


@dataclass
class _Patch:
    """Pixels with optional alpha, drawn at fixed canvas slices."""

    rows: slice
    cols: slice
    rgb: np.ndarray
    alpha: np.ndarray | None  # float32; None: opaque
    inv: np.ndarray | None = None
    spans: _Spans | None = None

    def __post_init__(self) -> None:
        if self.alpha is not None:
            self.inv = 1.0 - self.alpha
            self.spans = _Spans.of(self.alpha)

    def draw(self, canvas: np.ndarray) -> None:
        roi = canvas[self.rows, self.cols]
        if self.alpha is None or self.spans is None:
            roi[:] = self.rgb
        else:
            _blend(roi, self.rgb, self.alpha, self.spans, inv=self.inv)


def _layer_patch(layer: ImageLayer, width: int, height: int) -> _Patch | None:
    """The layer's visible part on a ``width`` x ``height`` canvas (None when off-canvas)."""
    if isinstance(layer.source, Path):
        rgb, alpha = _load_rgba(layer.source)
        ih, iw = rgb.shape[:2]
        lw, lh = layer.width, layer.height
        if lw is None and lh is None:
            lw, lh = iw, ih
        elif lw is None:
            lw = max(1, round(iw * lh / ih))  # type: ignore[operator]
        elif lh is None:
            lh = max(1, round(ih * lw / iw))
    else:
        rgb, alpha = np.array(layer.source, np.uint8).reshape(1, 1, 3), None
        lw, lh = layer.width, layer.height
    assert lw is not None and lh is not None
    x0, y0 = max(layer.x, 0), max(layer.y, 0)
    x1, y1 = min(layer.x + lw, width), min(layer.y + lh, height)
    if x1 <= x0 or y1 <= y0 or layer.opacity == 0.0:
        return None
    sx, sy = lw / rgb.shape[1], lh / rgb.shape[0]
    ox, oy = layer.x - x0, layer.y - y0
    interp = cv2.INTER_CUBIC if min(sx, sy) >= 1.0 else cv2.INTER_LINEAR
    if isinstance(layer.source, Path):
        pix = _place(rgb, sx, sy, ox, oy, x1 - x0, y1 - y0, interpolation=interp)
    else:
        pix = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        pix[:] = layer.source
    a = None
    if alpha is not None:
        a = np.clip(_place(alpha, sx, sy, ox, oy, x1 - x0, y1 - y0), 0.0, 1.0)
    if layer.opacity < 1.0:
        a = (a if a is not None else np.ones(pix.shape[:2], np.float32)) * layer.opacity
    return _Patch(slice(y0, y1), slice(x0, x1), pix, None if a is None else a.astype(np.float32))


class _LoopedVideo:
    """A video's frames on the output frame grid, looped, each scaled to cover the canvas."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        from facecast.media.video_reader import VideoLimits, probe_video

        # the containers and codecs any video input may have; longer and larger files
        limits = VideoLimits(min_seconds=0.0, max_seconds=3600.0, max_bytes=1024 * 2**20)
        self.info = probe_video(path, limits)
        self.path, self.width, self.height, self.fps = path, width, height, fps
        self._frames = self._generate()

    def _generate(self) -> Iterator[np.ndarray]:
        from facecast.media.video_reader import read_frames

        step = 1.0 / max(self.info.fps, 1.0)
        index, offset = 0, 0.0
        while True:
            shown: np.ndarray | None = None
            last_t = 0.0
            with contextlib.closing(read_frames(self.path)) as frames:
                for t, rgb in frames:
                    # Output frames due before this source frame show the one before it.
                    while shown is not None and index / self.fps - offset < t - 0.5 / self.fps:
                        yield shown
                        index += 1
                    shown, last_t = cover_resize(rgb, self.width, self.height), t
            if shown is None:
                raise InputError(f"background video {self.path.name!r} has no frames",
                                 code="unreadable_video")
            end = last_t + step  # the last frame is shown for one source frame's time
            while index / self.fps - offset < end - 0.5 / self.fps:
                yield shown
                index += 1
            offset += end

    def next(self) -> np.ndarray:
        """The next canvas-size background frame (a new array the caller may draw on)."""
        return next(self._frames).copy()

    def close(self) -> None:
        self._frames.close()


# --------------------------------------------------------------------------- compositor


class Compositor:
    """Composes each animator frame onto the canvas that ``composition`` describes.

    Build it from the portrait and its landmarks (photo pixels); animate
    :attr:`avatar` with :attr:`landmarks`, hand the animator's head mover to
    :meth:`follow`, then :meth:`compose` each frame (or use :meth:`frames`).
    """

    def __init__(self, composition: Composition, photo: np.ndarray, landmarks: np.ndarray,
                 width: int, height: int, *, fps: float = 25.0) -> None:
        check_canvas(width, height)
        self.composition = c = composition
        self.width, self.height = width, height
        self._place_avatar(photo, landmarks)
        self._prepare_alpha(photo)
        below = [x for x in c.layers if x.z < 0]
        above = [x for x in c.layers if x.z > 0]
        below.sort(key=lambda x: x.z)
        above.sort(key=lambda x: x.z)
        self._video: _LoopedVideo | None = None
        self._base: np.ndarray | None = None
        self._below: list[_Patch] = []
        bg = c.background
        if isinstance(bg, VideoFill):
            self._video = _LoopedVideo(bg.path, width, height, fps)
            self._below = [p for x in below if (p := _layer_patch(x, width, height))]
        else:
            base = self._static_background(photo)
            for x in below:
                if (p := _layer_patch(x, width, height)) is not None:
                    p.draw(base)  # drawn once: a static background never changes under it
            self._base = base
        self._above = [p for x in above if (p := _layer_patch(x, width, height))]
        self._mover: HeadMover | None = None
        self._matte_buf: np.ndarray | None = None
        self._outside: _Spans | None = None
        self._ease: tuple[np.ndarray, np.ndarray,
                          tuple[tuple[tuple[slice, slice], _Spans], ...]] | None = None

    # ---------------------------------------------------------------- set-up

    def _place_avatar(self, photo: np.ndarray, landmarks: np.ndarray) -> None:
        """The avatar box on the canvas and the part of the scaled portrait inside it."""
        c, width, height = self.composition, self.width, self.height
        ph, pw = photo.shape[:2]
        pts = landmarks[:, :2].astype(np.float64)
        face_lo, face_hi = pts.min(axis=0), pts.max(axis=0)
        if c.avatar_size is None:
            s = min(width / pw, height / ph) * c.scale
            box_w, box_h = pw * s, ph * s
            crop_x = crop_y = 0.0  # the box is the whole scaled portrait
        else:
            box_w, box_h = c.avatar_size[0] * c.scale, c.avatar_size[1] * c.scale
            s = max(box_w / pw, box_h / ph)
            # Cover the box, cropped around the face (a centred crop can cut off the head).
            fx, fy = (face_lo + face_hi) / 2.0 * s
            crop_x = float(np.clip(fx - box_w / 2.0, 0.0, pw * s - box_w))
            crop_y = float(np.clip(fy - box_h / 2.0, 0.0, ph * s - box_h))
        box_w, box_h = round(box_w), round(box_h)
        ax, ay = c.position
        if c.units == "fraction":
            ax, ay = ax * width, ay * height
        if c.anchor == "center":
            ax, ay = ax - box_w / 2.0, ay - box_h / 2.0
        bx, by = round(ax), round(ay)
        # Only the part of the box on the canvas is animated and composed.
        x0, y0 = max(bx, 0), max(by, 0)
        x1, y1 = min(bx + box_w, width), min(by + box_h, height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise InputError("the avatar would be outside the canvas: check its position and "
                             "scale", code="bad_composition")
        self.box = (bx, by, box_w, box_h)
        self.rows, self.cols = slice(y0, y1), slice(x0, x1)
        # photo pixel p -> avatar image pixel p * s + offset
        self._scale = s
        self._offset = (bx - crop_x - x0, by - crop_y - y0)
        aw, ah = x1 - x0, y1 - y0
        interp = cv2.INTER_CUBIC if s >= 1.0 else cv2.INTER_AREA
        self.avatar = _place(photo, s, s, *self._offset, aw, ah, interpolation=interp)
        lm = landmarks.astype(np.float32).copy()
        lm[:, :2] = lm[:, :2] * s + np.asarray(self._offset, np.float32)
        if lm.shape[1] > 2:
            lm[:, 2:] *= s
        self.landmarks = lm
        # The face must show as fully as in the photo (which the face check accepted).
        lo = np.maximum(face_lo, 0.0) * s + self._offset
        hi = np.minimum(face_hi, [pw, ph]) * s + self._offset
        fw = hi[0] - lo[0]
        if lo[0] < -1 or lo[1] < -1 or hi[0] > aw + 1 or hi[1] > ah + 1:
            raise InputError("the face would be cut off by the canvas or the avatar box: "
                             "move or shrink the avatar", code="bad_composition")
        if fw < MIN_FACE_PX:
            raise InputError(f"the face would be {fw:.0f} px wide on the canvas; make the "
                             f"avatar larger (at least {MIN_FACE_PX} px)", code="bad_composition")

    def _prepare_alpha(self, photo: np.ndarray) -> None:
        """The avatar's static alpha: mask shape times the person matte (when cut out)."""
        c = self.composition
        ah, aw = self.avatar.shape[:2]
        bx, by, bw, bh = self.box
        shape = shape_mask(c.mask, bw, bh, c.corner_radius, bx - self.cols.start,
                           by - self.rows.start, aw, ah)
        self._shape = shape
        self._matte: np.ndarray | None = None
        if c.replace_background:
            matte, colors = self._person(photo)
            self._matte = matte
            # The animator gets the person's colours carried past their outline, so
            # the soft edge (and anything the moving head uncovers) shows no old background.
            k = _smoothstep(0.9, 1.0, matte)[..., None]
            self.avatar = (self.avatar * k + colors * (1.0 - k) + 0.5).astype(np.uint8)
            alpha = matte if shape is None else matte * shape
        else:
            alpha = shape
        self._alpha = alpha
        self._inv = None if alpha is None else 1.0 - alpha
        self._spans = None if alpha is None else _Spans.of(alpha)

    def _person(self, photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The refined person matte and foreground colours, on the avatar image's pixels."""
        from facecast.render.head import person_mask

        ph, pw = photo.shape[:2]
        f = min(1.0, MATTE_WORK_SIDE / max(ph, pw))
        work = photo if f == 1.0 else cv2.resize(
            photo, (max(1, round(pw * f)), max(1, round(ph * f))), interpolation=cv2.INTER_AREA)
        f_x, f_y = work.shape[1] / pw, work.shape[0] / ph
        matte = refine_matte(work, person_mask(work))
        colors = foreground_colors(work, matte)
        ah, aw = self.avatar.shape[:2]
        s, (ox, oy) = self._scale, self._offset
        on_avatar = (s / f_x, s / f_y, ox, oy, aw, ah)
        matte = np.clip(_place(matte, *on_avatar), 0.0, 1.0)
        colors = _place(colors, *on_avatar)
        return matte.astype(np.float32), colors

    def _static_background(self, photo: np.ndarray) -> np.ndarray:
        bg, w, h = self.composition.background, self.width, self.height
        if isinstance(bg, ColorFill):
            base = np.empty((h, w, 3), np.uint8)
            base[:] = bg.rgb
            return base
        if isinstance(bg, ImageFill):
            from facecast.media import load_image

            return cover_resize(load_image(bg.path, max_bytes=MAX_IMAGE_BYTES), w, h)
        bx, by, bw, bh = self.box
        if bx <= 0 and by <= 0 and bx + bw >= w and by + bh >= h and self._alpha is None:
            return np.zeros((h, w, 3), np.uint8)  # the avatar covers everything
        return blurred_fill(photo, w, h)

    @property
    def alpha(self) -> np.ndarray | None:
        """The avatar's still coverage on :attr:`avatar`'s pixels (None: fully opaque)."""
        return self._alpha

    # ---------------------------------------------------------------- per frame

    def follow(self, head: HeadMover | None) -> None:
        """Move the person matte with ``head``, the animator's head mover (None: still)."""
        if head is None or self._matte is None:
            self._mover = None
            return
        # The mover's own blend with mask 1 everywhere returns its warp of whatever it is
        # given: run on the matte, that is the matte moved exactly as the frame was.
        mover = copy.copy(head)
        mover.mask = np.ones((1, 1), np.float32)  # broadcasts; a full-size one costs a remap
        mover.plate = np.zeros(head.mask.shape, np.float32)
        self._mover = mover
        self._matte_buf = self._matte.copy()
        # The mover shifts what is inside its region and nothing outside, so where the
        # shoulders (or big hair) cross the region's sides the outline steps by the shift.
        # Against a new background that notch shows: next to those sides the moved
        # composite is cross-faded into the still one (the unmoved avatar through the
        # still matte), which turns the step into a slope with no foreign colour in it.
        r = head.region
        aw = self._matte.shape[1]
        ease = max(4.0, EDGE_EASE * r.width)
        inf = np.float32(np.inf)
        xs = np.arange(r.width, dtype=np.float32) + 0.5
        ys = np.arange(r.height, dtype=np.float32) + 0.5
        left = xs if r.x0 > 0 else np.full_like(xs, inf)
        right = r.width - xs if r.x1 < aw else np.full_like(xs, inf)
        top = ys if r.y0 > 0 else np.full_like(ys, inf)
        dist = np.minimum(np.minimum(left, right)[None, :], top[:, None])
        ramp = np.clip(dist / ease, 0.0, 1.0).astype(np.float32)
        band = _Spans.of(1.0 - ramp)  # the cross-fade touches only tiles near the sides
        outside = self._matte if self._shape is None else self._matte * self._shape
        outside = outside.copy()
        outside[r.slices] = 0.0  # "clear": the still pass leaves the head region alone
        self._outside = _Spans.of(outside)
        still_alpha = self._alpha[r.slices]  # type: ignore[index]
        self._ease = (ramp, 1.0 - ramp,
                      tuple((s, _Spans.of(still_alpha[s])) for s in band.solid + band.mixed))

    def _background(self) -> np.ndarray:
        if self._video is None:
            assert self._base is not None
            return self._base.copy()
        canvas = self._video.next()
        for p in self._below:
            p.draw(canvas)
        return canvas

    def compose(self, frame: np.ndarray, head: np.ndarray | None = None) -> np.ndarray:
        """The canvas frame for one animator ``frame`` rendered with head pose ``head``."""
        canvas = self._background()
        roi = canvas[self.rows, self.cols]
        if self._alpha is None:
            roi[:] = frame
        elif self._mover is None or head is None:
            _blend(roi, frame, self._alpha, self._spans, inv=self._inv)
        else:
            r = self._mover.region
            assert self._ease is not None and self._outside is not None
            # Outside the head region the matte is still; inside, it moves with the head.
            _blend(roi, frame, self._alpha, self._outside, inv=self._inv)
            buf = self._matte_buf
            assert buf is not None and self._matte is not None
            buf[r.slices] = self._matte[r.slices]
            self._mover.apply(buf, *(float(v) for v in head))
            a = buf[r.slices]
            if self._shape is not None:
                a = a * self._shape[r.slices]  # both within 0..1, and so is the warped matte
            dst = roi[r.slices]
            ramp, ramp_inv, ease_spans = self._ease
            under = [dst[s].copy() for s, _ in ease_spans]  # the background, before drawing
            _blend(dst, frame[r.slices], a, _Spans.of(a))
            # Next to the region's sides, cross-fade into the still composite (see follow).
            still_alpha, still_avatar = self._alpha[r.slices], self.avatar[r.slices]
            for (s, sub), still in zip(ease_spans, under, strict=True):
                _blend(still, still_avatar[s], still_alpha[s], sub)
                dst[s] = cv2.blendLinear(dst[s], still, ramp[s], ramp_inv[s])
        for p in self._above:
            p.draw(canvas)
        return canvas

    def frames(self, animator: PortraitAnimator, mouth: MouthTrack, life: LifeTrack
               ) -> Iterator[np.ndarray]:
        """Composed frames at ``mouth.fps`` (as :meth:`PortraitAnimator.frames`, composed)."""
        try:
            for i in range(len(mouth)):
                j = min(i, len(life) - 1)
                head = life.head[j]
                frame = animator.render(mouth.values[i], float(life.blink[j]), head,
                                        None if life.face is None else life.face[j])
                yield self.compose(frame, head)
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading the background video (if any)."""
        if self._video is not None:
            self._video.close()
