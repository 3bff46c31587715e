"""Shared fixtures: real media from the package and, when present, ../shared/media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """The folder of real test media beside the checkout; tests using it skip without it."""
    if not SHARED_MEDIA.is_dir():
        pytest.skip("../shared/media is not present")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    """The public-domain NASA portrait that ships with the package (512x512)."""
    from facecast.assets import asset_path

    return asset_path("astronaut.png")


@pytest.fixture(scope="session")
def astronaut(astronaut_path: Path) -> np.ndarray:
    from facecast.media import load_image

    return load_image(astronaut_path)
