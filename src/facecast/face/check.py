"""Decide whether a portrait can be animated, and say why not when it cannot.

:func:`check_face` runs the checks in a fixed order, cheapest first, and stops at
the first failure: file and decode, image size and aspect ratio, face detection
(none or several), face cut off by the border, face too small, landmarks, head
pose. Every refusal carries a stable reason code and a message with the numbers
that failed, so the CLI, the service and the vendor-compatible APIs can show it.
Bad input never raises: it comes back as ``accepted=False``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facecast.errors import InputError
from facecast.face.analysis import (
    FaceAnalysis,
    FaceAnalyzer,
    FaceBox,
    HeadPose,
    _as_rgb,
    head_pose,
)
from facecast.media.image import load_image

__all__ = [
    "DEFAULT_LIMITS",
    "KLING_LIMITS",
    "KREADO_LIMITS",
    "REASONS",
    "FaceCheckLimits",
    "FaceCheckResult",
    "check_face",
    "verdict_from_analysis",
]

# Every reason code check_face can return, in the order the checks run.
REASONS: tuple[str, ...] = (
    "unreadable_image",
    "file_too_large",
    "image_too_small",
    "image_too_large",
    "bad_aspect_ratio",
    "no_face",
    "multiple_faces",
    "face_cut_off",
    "face_too_small",
    "not_frontal",
)

# Detector boxes are float; this much overflow is rounding, not a cut-off face.
_BORDER_SLACK_PX = 0.5


@dataclass(frozen=True)
class FaceCheckLimits:
    """What a usable portrait must satisfy; sizes in pixels, angles in degrees."""

    min_side: int = 128
    max_side: int = 4096
    max_bytes: int = 10 * 1024 * 1024
    min_aspect: float = 1 / 2.5  # width / height
    max_aspect: float = 2.5
    min_face_px: int = 64  # face box width
    min_face_fraction: float = 0.0  # face width / image short side; 0 = off
    max_yaw: float = 35.0
    max_pitch: float = 30.0
    max_roll: float = 35.0
    # The face box may not extend past the image by more than this fraction of its size.
    border_margin: float = 0.0
    # Another face at least this fraction of the largest one's width => multiple faces.
    second_face_ratio: float = 0.4


DEFAULT_LIMITS = FaceCheckLimits()
# Kreado's published photo rules: 360..4000 px per side, at most 10 MB.
KREADO_LIMITS = FaceCheckLimits(min_side=360, max_side=4000, max_bytes=10 * 1024 * 1024)
# Kling's: at least 300 px per side, aspect 1:2.5..2.5:1, at most 10 MB.
KLING_LIMITS = FaceCheckLimits(
    min_side=300, min_aspect=1 / 2.5, max_aspect=2.5, max_bytes=10 * 1024 * 1024
)


@dataclass
class FaceCheckResult:
    """The verdict; ``reason`` is one of :data:`REASONS`, or None when accepted.

    ``faces`` counts every face the detector found, including small background
    faces that do not count as a second person.
    """

    accepted: bool
    reason: str | None
    message: str
    image_size: tuple[int, int] | None  # (width, height)
    box: FaceBox | None
    pose: HeadPose | None
    faces: int
    analysis: FaceAnalysis | None = None  # kept out of to_dict: it holds arrays

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no numpy types)."""
        image = None
        if self.image_size is not None:
            image = {"width": int(self.image_size[0]), "height": int(self.image_size[1])}
        return {
            "accepted": bool(self.accepted),
            "reason": self.reason,
            "message": self.message,
            "image": image,
            "face": self.box.to_dict() if self.box is not None else None,
            "pose": self.pose.to_dict() if self.pose is not None else None,
            "faces": int(self.faces),
        }


def _refuse(
    reason: str,
    message: str,
    image_size: tuple[int, int] | None = None,
    *,
    box: FaceBox | None = None,
    pose: HeadPose | None = None,
    faces: int = 0,
    analysis: FaceAnalysis | None = None,
) -> FaceCheckResult:
    return FaceCheckResult(False, reason, message, image_size, box, pose, faces, analysis)


def _size_verdict(width: int, height: int, limits: FaceCheckLimits) -> FaceCheckResult | None:
    size = (width, height)
    if min(width, height) < limits.min_side:
        return _refuse(
            "image_too_small",
            f"the image is {width}x{height} px; each side must be at least {limits.min_side} px",
            size,
        )
    if max(width, height) > limits.max_side:
        return _refuse(
            "image_too_large",
            f"the image is {width}x{height} px; each side must be at most {limits.max_side} px",
            size,
        )
    aspect = width / height
    if not limits.min_aspect - 1e-9 <= aspect <= limits.max_aspect + 1e-9:
        return _refuse(
            "bad_aspect_ratio",
            f"the image is {width}x{height} px, an aspect ratio of {aspect:.2f}:1; it must "
            f"be between {limits.min_aspect:.2f}:1 and {limits.max_aspect:.2f}:1 "
            f"(width:height)",
            size,
        )
    return None


def _faces_verdict(
    width: int, height: int, faces: list[FaceBox], limits: FaceCheckLimits
) -> FaceCheckResult | None:
    """Refusals that need only the detector boxes: none, several, cut off, too small."""
    size = (width, height)
    if not faces:
        return _refuse("no_face", f"no face was found in the {width}x{height} image", size)
    box = faces[0]
    significant = [f for f in faces if f.w >= limits.second_face_ratio * box.w]
    if len(significant) > 1:
        widths = ", ".join(f"{f.w:.0f}" for f in significant)
        return _refuse(
            "multiple_faces",
            f"found {len(significant)} faces of similar size (widths {widths} px); the "
            f"photo must show exactly one person",
            size,
            box=box,
            faces=len(faces),
        )

    overflow = {
        "left": max(0.0, -box.x),
        "right": max(0.0, box.x + box.w - width),
        "top": max(0.0, -box.y),
        "bottom": max(0.0, box.y + box.h - height),
    }
    cut = []
    for side, px in overflow.items():
        extent = box.w if side in ("left", "right") else box.h
        if px > limits.border_margin * extent + _BORDER_SLACK_PX:
            cut.append(f"{side} edge by {px:.0f} px ({100.0 * px / extent:.0f}% of the face)")
    if cut:
        return _refuse(
            "face_cut_off",
            f"the face is cut off by the image border: its box (x={box.x:.0f}, "
            f"y={box.y:.0f}, {box.w:.0f}x{box.h:.0f} px) extends past the "
            f"{' and '.join(cut)}",
            size,
            box=box,
            faces=len(faces),
        )

    if box.w < limits.min_face_px:
        return _refuse(
            "face_too_small",
            f"the face is {box.w:.0f} px wide; it must be at least {limits.min_face_px} px "
            f"wide (use a closer or larger photo)",
            size,
            box=box,
            faces=len(faces),
        )
    fraction = box.w / min(width, height)
    if limits.min_face_fraction > 0 and fraction < limits.min_face_fraction:
        return _refuse(
            "face_too_small",
            f"the face is {box.w:.0f} px wide, {100 * fraction:.0f}% of the image's "
            f"shorter side; it must be at least {100 * limits.min_face_fraction:.0f}%",
            size,
            box=box,
            faces=len(faces),
        )
    return None


def _pose_verdict(pose: HeadPose, limits: FaceCheckLimits) -> str | None:
    over = []
    for name, value, limit, hint in (
        ("yaw", pose.yaw, limits.max_yaw, "turned sideways"),
        ("pitch", pose.pitch, limits.max_pitch, "tilted up or down"),
        ("roll", pose.roll, limits.max_roll, "tilted sideways"),
    ):
        if abs(value) > limit:
            over.append(f"{hint} ({name} {value:+.0f}°, limit ±{limit:.0f}°)")
    if not over:
        return None
    return "the face does not look at the camera: the head is " + "; ".join(over)


def verdict_from_analysis(
    analysis: FaceAnalysis, limits: FaceCheckLimits = DEFAULT_LIMITS
) -> FaceCheckResult:
    """Judge an existing analysis: image size, faces, border, face size and pose.

    The pose is taken from ``analysis.pose`` as given (it is not recomputed).
    """
    width, height = analysis.image_size
    faces = analysis.faces or [analysis.box]
    refused = _size_verdict(width, height, limits) or _faces_verdict(width, height, faces, limits)
    if refused is not None:
        refused.analysis = analysis
        return refused
    box, pose = analysis.box, analysis.pose
    message = _pose_verdict(pose, limits)
    if message is not None:
        return _refuse(
            "not_frontal",
            message,
            (width, height),
            box=box,
            pose=pose,
            faces=len(faces),
            analysis=analysis,
        )
    return FaceCheckResult(
        accepted=True,
        reason=None,
        message=(
            f"one face, {box.w:.0f} px wide, facing the camera (yaw {pose.yaw:+.0f}°, "
            f"pitch {pose.pitch:+.0f}°, roll {pose.roll:+.0f}°)"
        ),
        image_size=(width, height),
        box=box,
        pose=pose,
        faces=len(faces),
        analysis=analysis,
    )


def _decode(
    source: str | os.PathLike[str] | bytes | np.ndarray, limits: FaceCheckLimits
) -> np.ndarray | FaceCheckResult:
    """The RGB image, or the refusal saying why it cannot be had."""
    try:
        if isinstance(source, np.ndarray):
            return _as_rgb(source)
        if isinstance(source, bytearray | memoryview):
            source = bytes(source)
        if not isinstance(source, str | bytes | os.PathLike):
            return _refuse(
                "unreadable_image",
                f"cannot read an image from a {type(source).__name__}; pass a path, "
                f"bytes or an RGB array",
            )
        return load_image(source, max_bytes=limits.max_bytes)
    except InputError as exc:
        known = ("file_too_large", "unreadable_image", "image_too_large")
        reason = exc.code if exc.code in known else None
        return _refuse(reason or "unreadable_image", exc.message)
    except (ValueError, TypeError, OSError, cv2.error) as exc:
        return _refuse("unreadable_image", f"the image cannot be decoded: {exc}")


def check_face(
    source: str | os.PathLike[str] | bytes | np.ndarray,
    limits: FaceCheckLimits = DEFAULT_LIMITS,
    analyzer: FaceAnalyzer | None = None,
) -> FaceCheckResult:
    """Check a portrait (path, encoded bytes, or HxWx3 RGB array) against ``limits``.

    Pass a shared ``analyzer`` when checking many images: building one costs more
    than checking an image. Never raises for bad input.
    """
    image = _decode(source, limits)
    if isinstance(image, FaceCheckResult):
        return image
    height, width = image.shape[:2]
    refused = _size_verdict(width, height, limits)
    if refused is not None:
        return refused

    own = analyzer is None
    fa = FaceAnalyzer() if analyzer is None else analyzer
    try:
        faces = fa.detect(image)
        refused = _faces_verdict(width, height, faces, limits)
        if refused is not None:
            return refused
        box = faces[0]
        landmarks = fa.landmarks(image, box)
    finally:
        if own:
            fa.close()
    if landmarks is None:
        return _refuse(
            "no_face",
            f"a face-like region was found ({box.w:.0f} px wide at x={box.x:.0f}, "
            f"y={box.y:.0f}) but no facial landmarks could be placed on it",
            (width, height),
            box=box,
            faces=len(faces),
        )
    analysis = FaceAnalysis(
        image_size=(width, height),
        box=box,
        landmarks=landmarks,
        pose=head_pose(landmarks),
        faces=faces,
    )
    return verdict_from_analysis(analysis, limits)
