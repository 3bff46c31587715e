"""Colour metadata of videos, and RGB <-> YUV with the matrix and range a video is tagged with.

A video's YUV samples mean nothing without its tags: the matrix (BT.601,
BT.709, BT.2020...), the range (limited 16-235 or full 0-255), and the
primaries and transfer a player hands to the display. Players convert with
the tagged matrix and range and guess (FFmpeg: BT.601, limited) when there are
none. Every output made from a video keeps the source's tags and converts
with the same matrix, so parts of a frame that were not edited look as they
did; a render from a photo is tagged BT.709 (sRGB's primaries and transfer).

Numbers are FFmpeg's ``AVCOL_*`` codes, as PyAV's frames and codec contexts
carry them (``colorspace``, ``color_primaries``, ``color_trc``, ``color_range``).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

PathLike = str | os.PathLike[str]

UNSPECIFIED = 2  # AVCOL_SPC / _PRI / _TRC_UNSPECIFIED
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2  # AVCOL_RANGE_*

# Luma weights (Kr, Kb) per AVCOL_SPC matrix code; anything else (unspecified included) is
# decoded as BT.601 by FFmpeg and most players, so it is converted as BT.601 here too.
_BT601 = (0.299, 0.114)
_WEIGHTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: _BT601,  # BT.470BG
    6: _BT601,  # SMPTE 170M
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
    10: (0.2627, 0.0593),  # BT.2020 constant luminance (converted as non-constant)
}
# AVCOL matrix code -> swscale's colourspace (SWS_CS_*); the rest it converts as BT.601.
_SWSCALE = {1: 1, 4: 4, 7: 7, 9: 9, 10: 9}


@functools.cache
def _matrices(weights: tuple[float, float], full_range: bool) -> tuple[np.ndarray, np.ndarray]:
    kr, kb = weights
    kg = 1.0 - kr - kb
    m = np.array(
        [
            [kr, kg, kb],
            [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5],
            [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)],
        ]
    )
    off = np.array([0.0 if full_range else 16.0, 128.0, 128.0])
    if not full_range:
        m = m * np.array([[219.0], [224.0], [224.0]]) / 255.0
    inv = np.linalg.inv(m)
    forward = np.hstack([m, off[:, None]]).astype(np.float32)
    return forward, np.hstack([inv, (-inv @ off)[:, None]]).astype(np.float32)


@dataclass(frozen=True)
class Colour:
    """A video's colour tags: matrix, primaries, transfer (AVCOL codes) and range."""

    matrix: int = UNSPECIFIED
    primaries: int = UNSPECIFIED
    transfer: int = UNSPECIFIED
    range: int = RANGE_UNSPECIFIED

    @property
    def full_range(self) -> bool:
        return self.range == RANGE_FULL

    @classmethod
    def of(cls, obj: Any) -> Colour:
        """The tags of a PyAV frame or codec context (absent attributes: unspecified)."""

        def code(name: str, default: int) -> int:
            value = getattr(obj, name, None)
            return default if value is None else int(value)

        rng = code("color_range", RANGE_UNSPECIFIED)
        fmt = getattr(obj, "format", None) or getattr(obj, "pix_fmt", None)
        name = getattr(fmt, "name", fmt) or ""
        if rng == RANGE_UNSPECIFIED and str(name).startswith("yuvj"):
            rng = RANGE_FULL  # the deprecated "j" pixel formats are full range by definition
        return cls(
            code("colorspace", UNSPECIFIED),
            code("color_primaries", UNSPECIFIED),
            code("color_trc", UNSPECIFIED),
            rng,
        )

    def tag(self, obj: Any) -> None:
        """Write these tags onto a PyAV frame or codec context."""
        obj.colorspace = self.matrix
        obj.color_primaries = self.primaries
        obj.color_trc = self.transfer
        obj.color_range = self.range

    @property
    def luma_weights(self) -> np.ndarray:
        """R, G, B weights of this matrix's luma (float32): the luma a player shows, free of
        the chroma that 4:2:0 shares between four pixels (BT.601's weights on a BT.709 video
        mix chroma into it)."""
        kr, kb = _WEIGHTS.get(self.matrix, _BT601)
        return np.array([kr, 1.0 - kr - kb, kb], np.float32)

    def _matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """RGB -> YUV and YUV -> RGB as 3x4 float32 matrices (offsets in the last column)."""
        return _matrices(_WEIGHTS.get(self.matrix, _BT601), self.full_range)

    @property
    def _opencv_i420(self) -> bool:
        # OpenCV's I420 conversions are BT.601 limited range, and several times faster.
        return not self.full_range and _WEIGHTS.get(self.matrix, _BT601) == _BT601

    def rgb_to_yuv(self, rgb: np.ndarray, sub: int = 2) -> tuple[np.ndarray, ...]:
        """HxWx3 uint8 RGB -> ``(y, u, v)`` planes, chroma subsampled by ``sub`` (2 or 1)."""
        h, w = rgb.shape[:2]
        if sub == 2 and self._opencv_i420:
            i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).ravel()
            q = (h // 2) * (w // 2)
            return (
                i420[: h * w].reshape(h, w),
                i420[h * w : h * w + q].reshape(h // 2, w // 2),
                i420[h * w + q :].reshape(h // 2, w // 2),
            )
        # cv2.transform has a fast path only for 3 channels out: convert all of it at full
        # size, then average the chroma 2x2 (INTER_AREA at exactly half size).
        yuv = cv2.transform(rgb, self._matrices()[0])
        y = cv2.extractChannel(yuv, 0)
        if sub == 2:
            yuv = cv2.resize(yuv, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        return y, cv2.extractChannel(yuv, 1), cv2.extractChannel(yuv, 2)

    def rgb_to_i420(self, rgb: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB (even sides) -> the (H*3/2)xW planar array of a yuv420p frame."""
        if self._opencv_i420:
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
        y, u, v = self.rgb_to_yuv(rgb, 2)
        return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, rgb.shape[1])

    def yuv_to_rgb(self, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``(y, u, v)`` planes (chroma full size or half in each direction) -> RGB uint8."""
        h, w = y.shape
        if self._opencv_i420 and u.shape == (h // 2, w // 2) and h % 2 == 0 and w % 2 == 0:
            i420 = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, w)
            return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
        if u.shape != (h, w):
            # Each chroma sample over its 2x2 pixels: the exact inverse of the 2x2 average
            # rgb_to_yuv takes, so decoding and re-encoding keeps the chroma as it was.
            u = cv2.resize(u, (w, h), interpolation=cv2.INTER_NEAREST)
            v = cv2.resize(v, (w, h), interpolation=cv2.INTER_NEAREST)
        return cv2.transform(cv2.merge([y, u, v]), self._matrices()[1])

    def frame_to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """A decoded frame as HxWx3 uint8 RGB, converted with this matrix and range.

        8-bit 4:2:0 and 4:4:4 frames (nearly all H.264) go through :meth:`yuv_to_rgb`, so a
        frame decoded here and encoded by :meth:`rgb_to_yuv` comes back almost bit for bit
        (swscale's default path loses about 15 dB of luma on full-range input); other
        formats through swscale with the tagged matrix and range.
        """
        fmt, h, w = frame.format.name, frame.height, frame.width
        if fmt in ("yuv420p", "yuvj420p") and h % 2 == 0 and w % 2 == 0:
            planar = frame.to_ndarray()  # (h * 3 / 2) x w: the I420 layout OpenCV takes
            if self._opencv_i420:
                return cv2.cvtColor(planar, cv2.COLOR_YUV2RGB_I420)
            flat = planar.ravel()
            q = (h // 2) * (w // 2)
            return self.yuv_to_rgb(
                flat[: h * w].reshape(h, w),
                flat[h * w : h * w + q].reshape(h // 2, w // 2),
                flat[h * w + q :].reshape(h // 2, w // 2),
            )
        if fmt in ("yuv444p", "yuvj444p"):
            planes = frame.to_ndarray()
            return self.yuv_to_rgb(planes[0], planes[1], planes[2])
        return frame.reformat(
            format="rgb24",
            src_colorspace=_SWSCALE.get(self.matrix, 5),
            src_color_range=self.range or RANGE_LIMITED,
            dst_color_range=RANGE_FULL,
        ).to_ndarray()


BT709 = Colour(matrix=1, primaries=1, transfer=1, range=RANGE_LIMITED)


def video_colour(path: PathLike) -> Colour:
    """The colour tags of a video file's first video stream (unspecified where unreadable)."""
    try:
        with av.open(str(Path(path))) as container:
            if not container.streams.video:
                return Colour()
            stream = container.streams.video[0]
            colour = Colour.of(stream.codec_context)
            # Some muxers carry the tags only in the bitstream: the first frame has them.
            if colour == Colour() or colour.range == RANGE_UNSPECIFIED:
                for frame in container.decode(stream):
                    return Colour.of(frame)
            return colour
    except (av.error.FFmpegError, OSError, ValueError):
        return Colour()
