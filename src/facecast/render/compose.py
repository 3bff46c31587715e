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

The value types and their parsers are in :mod:`facecast.render.composition`, the image
helpers (matte refinement, edge colours, masks) in :mod:`facecast.render.matte`.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.media.image import MAX_IMAGE_BYTES
from facecast.render.canvas import blurred_fill, cover_resize
from facecast.render.composition import (  # the public ones re-exported: see __all__
    RGB,
    Anchor,
    Background,
    BackgroundLike,
    ColorFill,
    Composition,
    ImageFill,
    ImageLayer,
    MaskKind,
    VideoFill,
    check_canvas,
    parse_background,
    parse_color,
    parse_layer,
    parse_position,
    parse_wxh,
)
from facecast.render.matte import (
    _load_rgba,
    _place,
    _smoothstep,
    foreground_colors,
    guided_filter,
    refine_matte,
    shape_mask,
)

if TYPE_CHECKING:
    from facecast.motion.life import LifeTrack
    from facecast.motion.track import MouthTrack
    from facecast.render.animator import PortraitAnimator
    from facecast.render.head import HeadMover


# The compositor, and the value types and helpers that moved to their own modules
# (importers of this module keep working).
__all__ = [
    "RGB",
    "Anchor",
    "Background",
    "BackgroundLike",
    "ColorFill",
    "Composition",
    "Compositor",
    "ImageFill",
    "ImageLayer",
    "MaskKind",
    "VideoFill",
    "check_canvas",
    "foreground_colors",
    "guided_filter",
    "parse_background",
    "parse_color",
    "parse_layer",
    "parse_position",
    "parse_wxh",
    "refine_matte",
    "shape_mask",
]

# Segmentation, matte refinement and colour estimation run at this size at most;
# the matte is smooth and the colours at the edge are low-frequency, so nothing is lost.
MATTE_WORK_SIDE = 1024
MIN_FACE_PX = 24  # a face narrower than this on the canvas cannot be animated usefully
EDGE_EASE = 0.04  # moved matte eased into the still one over this fraction of the head region


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

    def _generate(self) -> Generator[np.ndarray, None, None]:
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
            assert self._spans is not None  # set with the alpha
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
