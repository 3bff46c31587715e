"""Files that ship inside the package: the demo portrait (public-domain NASA photo)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def asset_path(name: str) -> Path:
    """Absolute path of a bundled asset such as ``astronaut.png``."""
    path = Path(str(files("facecast.assets").joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"facecast asset {name!r} is missing from the installation")
    return path
