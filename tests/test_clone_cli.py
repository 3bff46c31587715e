"""Cloned voices through the command line: create, list, speak, render, rename, delete."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facecast.media import write_audio
from facecast.speech import synthesize
from facecast.speech.synth import _shift_pitch


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facecast.cli", *args], capture_output=True,
                          text=True, timeout=600, env=env)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "FACECAST_HOME": str(tmp_path / "home")}


@pytest.fixture()
def sample(tmp_path: Path) -> Path:
    """A speaker unlike the base voice: piper speech shifted down five semitones."""
    speech = synthesize("The north wind and the sun were disputing which was the stronger, "
                        "when a traveller came along wrapped in a warm cloak.")
    return write_audio(tmp_path / "me.wav", _shift_pitch(speech.audio, -5.0))


def test_clone_lifecycle(env: dict[str, str], sample: Path, tmp_path: Path,
                         astronaut_path: Path) -> None:
    made = run(env, "clone-voice", "--sample", str(sample), "--name", "Me")
    assert made.returncode == 0, made.stderr
    voice_id = re.search(r"(clone:clone-[0-9a-f]+)", made.stdout).group(1)

    listed = json.loads(run(env, "voices", "--custom", "--json").stdout)
    assert [v["id"] for v in listed["items"]] == [voice_id]
    assert listed["items"][0]["name"] == "Me" and listed["items"][0]["engine"] == "clone"

    spoken = run(env, "tts", "--text", "Hello from my own voice.", "--voice", voice_id,
                 "-o", str(tmp_path / "c.wav"))
    assert spoken.returncode == 0, spoken.stderr
    timings = json.loads((tmp_path / "c.timings.json").read_text())
    assert timings["voice"] == voice_id and len(timings["words"]) == 5

    video = run(env, "render", "--photo", str(astronaut_path), "--text", "Hi there.",
                "--voice", voice_id, "--size", "256x256", "-o", str(tmp_path / "v.mp4"),
                "--no-progress")
    assert video.returncode == 0, video.stderr
    assert "mouth from phonemes" in video.stdout

    assert run(env, "voice", "rename", voice_id, "Still me").returncode == 0
    listed = json.loads(run(env, "voices", "--custom", "--json").stdout)
    assert listed["items"][0]["name"] == "Still me"

    assert run(env, "voice", "delete", voice_id).returncode == 0
    gone = run(env, "tts", "--text", "Hello.", "--voice", voice_id, "-o",
               str(tmp_path / "d.wav"))
    assert gone.returncode == 2 and "unknown_voice" in gone.stderr
    assert not (tmp_path / "d.wav").exists()


def test_clone_refuses_bad_samples(env: dict[str, str], tmp_path: Path) -> None:
    import numpy as np

    from facecast.media import Audio

    short = write_audio(tmp_path / "short.wav", Audio(np.zeros(8000, np.float32), 16000))
    proc = run(env, "clone-voice", "--sample", str(short), "--name", "x")
    assert proc.returncode == 2 and "sample_too_short" in proc.stderr
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3 not really an mp3" * 10)
    proc = run(env, "clone-voice", "--sample", str(junk), "--name", "x")
    assert proc.returncode == 2 and "unreadable_audio" in proc.stderr
    listed = json.loads(run(env, "voices", "--custom", "--json").stdout)
    assert listed["total"] == 0
