"""A visibly watermarked copy of an MP4 (Kling's ``watermark_info``): a
semi-transparent text mark in a corner, the sound kept, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from facecast.media.audio import load_audio
from facecast.media.colour import video_colour
from facecast.media.video import Mp4Writer
from facecast.media.video_reader import probe_video, read_frames

PathLike = str | os.PathLike[str]


def _mark(width: int, height: int, text: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The mark's RGB and alpha, sized to the frame, and where its top-left goes."""
    scale = max(0.4, min(width, height) / 720)
    thickness = max(1, round(2 * scale))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(4, round(8 * scale))
    h, w = th + base + 2 * pad, tw + 2 * pad
    # Drawn on 8-bit planes (OpenCV 5 draws text on nothing else), then made 0..1.
    outline8 = np.zeros((h, w), np.uint8)
    cv2.putText(outline8, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                thickness + 2, cv2.LINE_AA)  # a dark outline first, then the white text
    text8 = np.zeros((h, w), np.uint8)
    cv2.putText(text8, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness,
                cv2.LINE_AA)
    outline = outline8.astype(np.float32) / 255.0
    alpha = text8.astype(np.float32) / 255.0
    rgb = np.repeat((alpha * 255)[..., None], 3, axis=2)
    a = np.clip(0.55 * np.maximum(alpha, outline), 0, 1)
    x, y = max(0, width - w - pad), max(0, height - h - pad)
    return rgb.astype(np.float32), a[..., None], (x, y)


def add_watermark(source: PathLike, output: PathLike, text: str = "facecast") -> Path:
    """Copy ``source`` to ``output`` with ``text`` in the bottom-right corner."""
    info = probe_video(source)
    audio = load_audio(source) if info.has_audio else None
    rgb, alpha, (x, y) = _mark(info.width, info.height, text)
    h, w = alpha.shape[:2]
    h, w = min(h, info.height - y), min(w, info.width - x)
    with Mp4Writer(output, info.width, info.height, fps=round(info.fps), audio=audio,
                   colour=video_colour(source)) as writer:
        for _t, frame in read_frames(source):
            region = frame[y:y + h, x:x + w].astype(np.float32)
            frame[y:y + h, x:x + w] = (region * (1 - alpha[:h, :w])
                                       + rgb[:h, :w] * alpha[:h, :w]).astype(np.uint8)
            writer.write(frame)
    return Path(output)
