"""Tests of facecast.speech.preview: a voice's sample clip, made once and then cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from facecast.media import load_audio
from facecast.speech.preview import preview


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACECAST_HOME", str(tmp_path))
    return tmp_path


def test_preview_is_made_once_then_cached(home: Path) -> None:
    path = preview(None)  # the default voice
    assert path.parent == home / "previews"
    assert path.suffix == ".mp3"
    audio = load_audio(path)
    assert 0.5 < audio.duration < 10.0  # "Hello! This is how I sound."
    made = path.stat().st_mtime_ns
    assert preview(None) == path
    assert path.stat().st_mtime_ns == made  # served from the cache, not made again
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


@pytest.mark.parametrize(
    ("voice", "name"), [("espeak:de", "espeak_gmw_de.mp3"), ("espeak:gmw/de", "espeak_gmw_de.mp3")]
)
def test_preview_file_is_named_flat_after_the_voice(home: Path, voice: str, name: str) -> None:
    # ids hold ":" and "/": the cache is one flat folder, by the canonical id
    path = preview(voice)
    assert path == home / "previews" / name
    assert load_audio(path).duration > 0.5
