"""Quiet start-up: the native libraries' own stderr chatter hidden from CLI users.

LiteRT (TensorFlow Lite), absl and libpng (through OpenCV) write messages such as
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` and ``libpng warning: iCCP:
known incorrect sRGB profile`` straight to file descriptor 2 from C++.
``GLOG_minloglevel`` and ``TF_CPP_MIN_LOG_LEVEL`` do not reach all of them (absl reads
neither, and libpng has no switch), and Python's ``logging`` never sees them. So for a
command's lifetime fd 2 points at /dev/null while Python's ``sys.stderr`` writes to a
duplicate of the original fd:
facecast's own progress, warnings, errors and tracebacks still reach the user.

``facecast --verbose`` or ``FACECAST_LOG_LEVEL=debug`` leaves stderr alone.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

LOG_LEVEL_ENV = "FACECAST_LOG_LEVEL"

# Only reach what logs through glog/TensorFlow; kept because a child process (the
# service's workers) inherits them, while the fd redirection below stays in this process.
NATIVE_LOG_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}


def verbose_requested(flag: bool) -> bool:
    """Whether native libraries may talk: ``--verbose`` or ``FACECAST_LOG_LEVEL=debug``."""
    return flag or os.environ.get(LOG_LEVEL_ENV, "").strip().lower() == "debug"


def quiet_native_env() -> None:
    """Ask the libraries that honour environment variables to log warnings only."""
    for name, value in NATIVE_LOG_ENV.items():
        os.environ.setdefault(name, value)


def _on_fd2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        # click's CliRunner and pytest's capture give streams with no descriptor
        return False


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point fd 2 at /dev/null, keeping ``sys.stderr`` on the original stream.

    Restores both on exit. Does nothing when fd 2 is closed. Native code's fatal
    messages are hidden too while it is active; ``--verbose`` shows them.
    """
    try:
        saved = os.dup(2)
    except OSError:  # stderr closed (2>&-): nothing to protect
        yield
        return
    original = sys.stderr
    replacement: io.TextIOWrapper | None = None
    if _on_fd2(original):
        original.flush()
        replacement = io.TextIOWrapper(
            io.FileIO(saved, "w", closefd=False),
            encoding=getattr(original, "encoding", None) or "utf-8",
            errors=getattr(original, "errors", None) or "backslashreplace",
            line_buffering=True,
            write_through=True,
        )
        sys.stderr = replacement
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
    finally:
        os.close(devnull)
    try:
        yield
    finally:
        if replacement is not None:
            replacement.flush()
            sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)
