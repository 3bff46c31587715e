"""The ``facecast`` command's exit: what is alive when a command returns is frozen out
of Python's last garbage collections (they walked every MediaPipe, SciPy and PyAV object
once more, seconds on a loaded machine, after the video was already written)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import facecast

# Registered before the command's own handler, so it runs after it (atexit is LIFO).
_PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count(), flush=True))
from facecast.cli import main
main(sys.argv[1:])
"""


def test_a_command_freezes_what_is_alive_before_the_interpreter_ends() -> None:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(Path(facecast.__file__).parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _PROBE, "voices"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    frozen = [line for line in done.stdout.splitlines() if line.startswith("frozen ")]
    assert frozen and int(frozen[-1].split()[1]) > 10_000, done.stdout[-500:]
