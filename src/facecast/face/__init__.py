"""Faces in portraits: detection, 478-point mesh, head pose, and the portrait check.

``analysis`` wraps mediapipe (detector, then mesh on a crop) and hands back
full-image landmarks; ``check`` decides whether a portrait is usable and names
the reason when it is not.
"""

from facecast.face.analysis import (
    FACE_OVAL,
    LEFT_EYE,
    LEFT_IRIS,
    LIPS_INNER,
    LIPS_OUTER,
    NOSE_TIP,
    NUM_LANDMARKS,
    RIGHT_EYE,
    RIGHT_IRIS,
    FaceAnalysis,
    FaceAnalyzer,
    FaceBox,
    HeadPose,
    head_pose,
)
from facecast.face.check import (
    DEFAULT_LIMITS,
    KLING_LIMITS,
    KREADO_LIMITS,
    REASONS,
    FaceCheckLimits,
    FaceCheckResult,
    check_face,
    verdict_from_analysis,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FACE_OVAL",
    "KLING_LIMITS",
    "KREADO_LIMITS",
    "LEFT_EYE",
    "LEFT_IRIS",
    "LIPS_INNER",
    "LIPS_OUTER",
    "NOSE_TIP",
    "NUM_LANDMARKS",
    "REASONS",
    "RIGHT_EYE",
    "RIGHT_IRIS",
    "FaceAnalysis",
    "FaceAnalyzer",
    "FaceBox",
    "FaceCheckLimits",
    "FaceCheckResult",
    "HeadPose",
    "check_face",
    "head_pose",
    "verdict_from_analysis",
]
