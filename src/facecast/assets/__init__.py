"""Files that ship inside the package: the demo portrait (public-domain NASA photo), a
second built-in portrait (Grace Hopper, public-domain U.S. Navy photo, the copy
matplotlib 3.x ships as ``mpl-data/sample_data/grace_hopper.jpg``: 61,306 bytes, sha256
``a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130``), fonts and mouth
samples (each folder with its licence or provenance)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def asset_path(name: str) -> Path:
    """Absolute path of a bundled asset such as ``astronaut.png``."""
    path = Path(str(files("facecast.assets").joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"facecast asset {name!r} is missing from the installation")
    return path
