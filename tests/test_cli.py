"""The command line, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np


def facecast(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "facecast.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_check_face_accepts_the_astronaut(astronaut_path: Path) -> None:
    proc = facecast("check-face", str(astronaut_path))
    assert proc.returncode == 0, proc.stderr
    verdict = json.loads(proc.stdout)
    assert verdict["accepted"] is True and verdict["reason"] is None
    assert {"x", "y", "w", "h"} <= set(verdict["face"]) and "yaw" in verdict["pose"]


def test_check_face_refuses_with_reason(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((400, 400, 3), 128, np.uint8))
    proc = facecast("check-face", str(grey))
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["reason"] == "no_face"


def test_render_bad_input_is_one_clear_line(tmp_path: Path, astronaut_path: Path) -> None:
    junk = tmp_path / "speech.wav"
    junk.write_bytes(b"RIFF....not really")
    proc = facecast("render", "--photo", str(astronaut_path), "--audio", str(junk),
                    "-o", str(tmp_path / "o.mp4"), "--no-progress")
    assert proc.returncode == 2
    assert "unreadable_audio" in proc.stderr and "speech.wav" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_demo_renders_the_bundled_portrait(tmp_path: Path) -> None:
    proc = facecast("demo", "-o", "demo.mp4", "--size", "320x240", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "demo.mp4" in proc.stdout
    with av.open(str(tmp_path / "demo.mp4")) as c:
        assert c.streams.video[0].codec_context.width == 320
        assert c.duration / 1e6 > 3.0
