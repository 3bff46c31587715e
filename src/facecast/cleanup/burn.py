"""Burning subtitles and a logo into a video, with the ground truth kept: test media.

Cleanup is judged against the picture before anything was burned in, so the
tests and benchmarks make their own dirty videos: outlined white subtitles in
several languages that change every few seconds, and a semi-transparent
corner logo. :class:`Burner` knows, for every time, which pixels it covered
and how. :func:`moving_scene` makes a clip whose picture keeps moving (a pan
over the packaged astronaut photo) for tests that need no outside media.

The font is DejaVu Sans Bold, packaged in ``facecast/assets/fonts`` (it was read from
matplotlib's data while mediapipe brought matplotlib in); it covers Latin, Greek and
Cyrillic scripts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np

from facecast.cleanup.io import CleanWriter, SourcePacket, YuvFrame, read_source

PathLike = str | os.PathLike[str]

LINES: dict[str, list[str]] = {
    "en": ["Welcome back to our weekly update", "Thank you all for watching today",
           "We have news about the project", "Let us look at the numbers"],
    "de": ["Willkommen zurück zu unserer Sendung", "Die Ergebnisse sind überraschend gut",
           "Wir sprechen über die Zukunft"],
    "es": ["Gracias por acompañarnos hoy", "La economía crece este año"],
    "fr": ["Nous allons parler de l'avenir", "Les résultats sont très bons"],
    "ru": ["Добро пожаловать на нашу передачу", "Спасибо за внимание"],
    "el": ["Καλώς ήρθατε στην εκπομπή", "Ευχαριστούμε πολύ"],
    "pl": ["Dziękujemy za uwagę", "Zaczynamy nowy rozdział"],
}


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    language: str = "en"


def default_cues(duration: float, *, seed: int = 0, gap_every: int = 4,
                 languages: Sequence[str] = tuple(LINES)) -> list[Cue]:
    """Lines that change every 2-3 s over ``duration``, cycling languages, with an
    occasional short gap so some frames carry no subtitle."""
    rng = np.random.default_rng(seed)
    cues: list[Cue] = []
    t = 0.3
    i = 0
    while t < duration - 0.5:
        lang = languages[i % len(languages)]
        options = LINES[lang]
        text = options[int(rng.integers(len(options)))]
        length = float(rng.uniform(2.0, 3.0))
        end = min(duration, t + length)
        cues.append(Cue(round(t, 3), round(end, 3), text, lang))
        t = end + (0.6 if (i + 1) % gap_every == 0 else 0.0)
        i += 1
    return cues


def font_path() -> Path:
    from facecast.assets import asset_path
    from facecast.captions.burn import FONT

    return asset_path(FONT)


@lru_cache(maxsize=16)
def _font(size: int):  # -> ImageFont.FreeTypeFont
    from PIL import ImageFont

    return ImageFont.truetype(str(font_path()), size)


@dataclass
class Layer:
    """An RGBA picture placed at ``x, y``: ``rgb`` float32, ``alpha`` float32 in [0, 1]."""

    x: int
    y: int
    rgb: np.ndarray
    alpha: np.ndarray

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.alpha.shape
        return self.x, self.y, self.x + w, self.y + h

    def mask(self, width: int, height: int, threshold: float = 0.02) -> np.ndarray:
        """Where this layer covers a ``width x height`` frame."""
        out = np.zeros((height, width), bool)
        x1, y1, x2, y2 = self.box
        out[y1:y2, x1:x2] = self.alpha > threshold
        return out

    def blend(self, frame: np.ndarray) -> None:
        """Lay this layer over an RGB uint8 frame, in place."""
        x1, y1, x2, y2 = self.box
        region = frame[y1:y2, x1:x2].astype(np.float32)
        a = self.alpha[..., None]
        frame[y1:y2, x1:x2] = np.clip(region * (1 - a) + self.rgb * a + 0.5, 0, 255
                                      ).astype(np.uint8)


def text_layer(text: str, size: int, *, fill: tuple[int, int, int] = (255, 255, 255),
               outline: tuple[int, int, int] = (0, 0, 0), outline_px: int = 2,
               opacity: float = 1.0, frame: bool = False) -> Layer:
    """``text`` drawn at ``size`` px with an outline (and a rounded frame around it)."""
    from PIL import Image, ImageDraw

    font = _font(size)
    pad = outline_px + 2 + (size // 3 if frame else 0)
    left, top, right, bottom = font.getbbox(text, stroke_width=outline_px)
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.text((pad - left, pad - top), text, font=font, fill=(*fill, 255),
              stroke_width=outline_px, stroke_fill=(*outline, 255))
    if frame:
        line = max(2, size // 10)
        draw.rounded_rectangle((line // 2, line // 2, w - 1 - line // 2, h - 1 - line // 2),
                               radius=size // 3, outline=(*fill, 255), width=line)
    rgba = np.asarray(image, dtype=np.float32)
    return Layer(0, 0, rgba[..., :3].copy(), rgba[..., 3] / 255.0 * opacity)


@dataclass
class BurnSpec:
    """What to burn: subtitle cues, a logo, their sizes (``None``: from the frame height)."""

    cues: list[Cue] = field(default_factory=list)
    logo_text: str | None = "facecast"
    logo_opacity: float = 0.5
    logo_corner: str = "top-right"
    font_px: int | None = None
    bottom_margin: float = 0.06  # of the frame height, below the last subtitle line


class Burner:
    """Subtitles and logo for a ``width x height`` video, with the truth of what they covered."""

    def __init__(self, width: int, height: int, spec: BurnSpec) -> None:
        self.width, self.height, self.spec = width, height, spec
        self.font_px = spec.font_px or max(10, round(0.05 * height))
        self.outline_px = max(1, round(self.font_px / 12))
        self._cue_layers: dict[int, Layer] = {}
        self.logo: Layer | None = None
        if spec.logo_text:
            size = max(9, round(0.045 * height))
            logo = text_layer(spec.logo_text, size, outline_px=0, opacity=spec.logo_opacity,
                              frame=True)
            lh, lw = logo.alpha.shape
            margin = max(4, round(0.03 * height))
            right = "right" in spec.logo_corner
            bottom = "bottom" in spec.logo_corner
            logo.x = width - lw - margin if right else margin
            logo.y = height - lh - margin if bottom else margin
            self.logo = logo

    def cue_at(self, t: float) -> int | None:
        for i, cue in enumerate(self.spec.cues):
            if cue.start <= t < cue.end:
                return i
        return None

    def subtitle(self, t: float) -> Layer | None:
        """The subtitle layer shown at ``t`` seconds (None between lines)."""
        i = self.cue_at(t)
        if i is None:
            return None
        if i not in self._cue_layers:
            text = self.spec.cues[i].text
            size = self.font_px
            layer = text_layer(text, size, outline_px=self.outline_px)
            # Shrink lines that would not fit across the frame.
            while layer.alpha.shape[1] > 0.94 * self.width and size > 8:
                size = int(size * 0.9)
                layer = text_layer(text, size, outline_px=self.outline_px)
            lh, lw = layer.alpha.shape
            layer.x = (self.width - lw) // 2
            layer.y = self.height - lh - round(self.spec.bottom_margin * self.height)
            self._cue_layers[i] = layer
        return self._cue_layers[i]

    def subtitle_band(self) -> tuple[int, int, int, int]:
        """The smallest box holding every subtitle line (the true subtitle area)."""
        boxes = [self.subtitle(c.start).box for c in self.spec.cues]  # type: ignore[union-attr]
        if not boxes:
            return 0, 0, 0, 0
        arr = np.array(boxes)
        return (int(arr[:, 0].min()), int(arr[:, 1].min()), int(arr[:, 2].max()),
                int(arr[:, 3].max()))

    def apply(self, frame: np.ndarray, t: float) -> np.ndarray:
        """``frame`` (RGB uint8) with the subtitle of ``t`` and the logo burned in (a copy)."""
        out = frame.copy()
        sub = self.subtitle(t)
        if sub is not None:
            sub.blend(out)
        if self.logo is not None:
            self.logo.blend(out)
        return out

    def mask(self, t: float, *, subtitles: bool = True, logo: bool = True) -> np.ndarray:
        """Pixels covered at ``t``."""
        out = np.zeros((self.height, self.width), bool)
        sub = self.subtitle(t) if subtitles else None
        if sub is not None:
            out |= sub.mask(self.width, self.height)
        if logo and self.logo is not None:
            out |= self.logo.mask(self.width, self.height)
        return out


def _rgb(frame: YuvFrame) -> np.ndarray:
    h, w = frame.shape
    return frame.crop_rgb(0, 0, w, h)


def burn_video(source: PathLike, output: PathLike, spec: BurnSpec, *, crf: int = 16) -> Burner:
    """Write ``source`` with ``spec`` burned in to ``output`` (same timing, audio copied)."""
    from facecast.media.video_reader import probe_video

    info = probe_video(source)
    burner = Burner(info.width, info.height, spec)
    with CleanWriter(output, source, crf=crf) as writer:
        for item in read_source(source):
            if isinstance(item, SourcePacket):
                writer.copy(item)
                continue
            burned = burner.apply(_rgb(item), item.time)
            item.paste_rgb(0, 0, burned, np.ones(burned.shape[:2], bool))
            writer.write(item)
    return burner


def grainy_copy(source: PathLike, output: PathLike, *, sigma: float = 10.0,
                seconds: float | None = None, seed: int = 0, crf: int = 16) -> Path:
    """``source`` with film grain (Gaussian, ``sigma`` grey levels, new in every frame) on
    its luma, cut to its first ``seconds``; the audio is copied."""
    rng = np.random.default_rng(seed)
    with CleanWriter(output, source, crf=crf) as writer:
        for item in read_source(source):
            if isinstance(item, SourcePacket):
                writer.copy(item)
                continue
            if seconds is not None and item.time >= seconds:
                continue
            grain = rng.normal(0.0, sigma, item.y.shape)
            item.y[:] = np.clip(item.y + grain + 0.5, 0, 255).astype(np.uint8)
            writer.write(item)
    return Path(output)


def high_contrast_picture(width: int, height: int, *, seed: int = 0) -> np.ndarray:
    """Black and white blocks and bars of many sizes on black (RGB): the background on
    which the least error in taking a white logo off shows."""
    rng = np.random.default_rng(seed)
    picture = np.zeros((height, width, 3), np.uint8)
    for _ in range(max(1, width * height // 500)):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(3, 40)), int(rng.integers(3, 40))
        picture[y:y + h, x:x + w] = 255 if rng.random() < 0.5 else 0
    return picture


def moving_scene(output: PathLike, *, width: int = 320, height: int = 240, seconds: float = 6.0,
                 fps: int = 25, speed: float = 12.0, audio: bool = True, crf: int = 16,
                 seed: int = 0, picture: np.ndarray | None = None) -> Path:
    """A clip panning across the packaged astronaut photo (``speed`` px/s), with a tone.

    The picture moves under any overlay, as in a handheld or panning shot;
    ``speed=0`` gives a still shot with only sensor-like noise. ``picture`` (RGB)
    pans instead of the photo.
    """
    from facecast.assets import asset_path
    from facecast.media import load_image

    photo = load_image(asset_path("astronaut.png")) if picture is None else picture
    scale = max((width + speed * seconds + 8) / photo.shape[1], (height + 8) / photo.shape[0])
    big = cv2.resize(photo, None, fx=scale * 1.05, fy=scale * 1.05, interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.part")
    n = round(seconds * fps)
    with av.open(str(tmp), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"crf": str(crf),
                                                                   "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, fps)
        astream = None
        if audio:
            astream = container.add_stream("aac", rate=48_000, layout="mono")
            astream.time_base = Fraction(1, 48_000)
        for i in range(n):
            x = speed * i / fps
            # Sub-pixel pan by an affine warp: smooth motion, like a real camera move.
            m = np.array([[1, 0, -x], [0, 0.0 + 1, -2.0]], np.float32)
            frame = cv2.warpAffine(big, m, (width, height), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REFLECT)
            noise = rng.normal(0, 1.5, frame.shape).astype(np.float32)
            frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in video.encode(vf):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if astream is not None:
            total = round(seconds * 48_000)
            tt = np.arange(total) / 48_000.0
            tone = (0.2 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = tone[start:start + 1024]
                af = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
                af.sample_rate = 48_000
                af.pts = start
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    os.replace(tmp, output)
    return output
