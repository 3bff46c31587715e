"""Shared fixtures: real media from the package and, when present, ../shared/media."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from app_support import App

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


@pytest.fixture(scope="module")
def landmarks(astronaut: np.ndarray) -> np.ndarray:
    """The astronaut's 478 face-mesh landmarks (pixels), as the face check finds them."""
    from facecast.face import check_face

    verdict = check_face(astronaut)
    assert verdict.accepted and verdict.analysis is not None
    return verdict.analysis.landmarks


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The whole HTTP app in-process over a temp-dir service (see ``app_support``): one per
    test module; tests make their own accounts."""
    # imported here: a session of engine tests never loads the web stack
    from app_support import app_in

    with app_in(tmp_path_factory.mktemp("app")) as made:
        yield made
