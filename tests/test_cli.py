"""The command line, run as a real process the way a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

# What LiteRT (TensorFlow Lite), absl and libpng print from C++ straight to fd 2.
NATIVE_NOISE = re.compile(r"W0000|absl|libpng|iCCP|TensorFlow Lite|\.cc:\d+\]")


def facecast(*args: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # text mode would turn a bar's carriage returns into newlines: decode by hand
    proc = subprocess.run([sys.executable, "-m", "facecast.cli", *args], capture_output=True,
                          timeout=300, cwd=cwd, env={**os.environ, **(env or {})})
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


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
    # stderr is a pipe here: one short line per stage, no bar redraws, no native chatter
    assert "\r" not in proc.stderr
    assert not NATIVE_NOISE.search(proc.stderr), proc.stderr
    stages = proc.stderr.splitlines()
    assert 2 <= len(stages) <= 20 and all(len(line) < 80 for line in stages), stages
    assert any(line.startswith("rendering (") for line in stages), stages
    with av.open(str(tmp_path / "demo.mp4")) as c:
        assert c.streams.video[0].codec_context.width == 320
        assert c.duration / 1e6 > 3.0


@pytest.mark.parametrize(("args", "env", "shown"), [
    ((), {}, False),
    ((), {"FACECAST_LOG_LEVEL": "info"}, False),
    (("--verbose",), {}, True),
    ((), {"FACECAST_LOG_LEVEL": "debug"}, True),
], ids=["quiet", "info-level", "verbose", "debug-level"])
def test_native_library_warnings_only_when_asked(astronaut_path: Path, args: tuple[str, ...],
                                                 env: dict[str, str], shown: bool) -> None:
    # check-face decodes the astronaut PNG (iCCP chunk) and runs MediaPipe's face models:
    # the same native warnings as a render, in a fraction of the time
    proc = facecast(*args, "check-face", str(astronaut_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accepted"] is True
    assert bool(NATIVE_NOISE.search(proc.stderr)) is shown, proc.stderr
