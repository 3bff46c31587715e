"""The built-in library portraits: public-domain pictures that ship inside installed
packages, so nothing is downloaded (the NASA astronaut Eileen Collins in facecast itself,
scikit-image's copy only if it differs, Grace Hopper (matplotlib's sample-data copy,
packaged in facecast)), each
with its metadata and, for known pictures, the face box the check finds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _astronaut() -> Path:
    from facecast.assets import asset_path

    return asset_path("astronaut.png")


def _grace_hopper() -> Path:
    from facecast.assets import asset_path

    return asset_path("grace_hopper.jpg")


def _skimage_astronaut() -> Path:
    """scikit-image's bundled NASA portrait, when installed and not facecast's own photo
    (it is the same picture in the versions seen so far: then it is left out)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise OSError("scikit-image is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png"
    if not path.is_file():
        raise OSError("scikit-image ships no astronaut.png")
    if _same_picture(path, _astronaut()):
        raise OSError("scikit-image's astronaut is facecast's own portrait")
    return path


def _same_picture(a: Path, b: Path) -> bool:
    import cv2
    import numpy as np

    # colour, not IMREAD_GRAYSCALE: libpng applies one file's colour profile to grey reads
    ia, ib = cv2.imread(str(a), cv2.IMREAD_COLOR), cv2.imread(str(b), cv2.IMREAD_COLOR)
    if ia is None or ib is None:
        return False
    small = [
        cv2.resize(i, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32) for i in (ia, ib)
    ]
    return float(np.abs(small[0] - small[1]).mean()) < 3.0


@dataclass(frozen=True)
class BuiltIn:
    key: str
    name: str
    gender: str
    age: str
    style: str
    region: str
    tags: tuple[str, ...]
    path: Callable[[], Path]
    content_type: str
    # the face box as the face check finds it: known pictures need no face model at start
    face: tuple[float, float, float, float] | None = None


BUILTINS = (
    BuiltIn(
        "eileen_collins",
        "Eileen Collins",
        "female",
        "adult",
        "professional",
        "western",
        ("photo", "professional", "space"),
        _astronaut,
        "image/png",
        (173.7, 67.8, 103.9, 103.9),
    ),
    BuiltIn(
        "grace_hopper",
        "Grace Hopper",
        "female",
        "senior",
        "professional",
        "western",
        ("photo", "professional", "senior"),
        _grace_hopper,
        "image/jpeg",
        (165.9, 128.4, 200.4, 200.4),
    ),
    BuiltIn(
        "nasa_astronaut",
        "NASA Astronaut",
        "female",
        "adult",
        "professional",
        "western",
        ("photo", "professional", "space"),
        _skimage_astronaut,
        "image/png",
    ),
)
