"""Where facecast keeps its own files: ``$FACECAST_HOME`` (default
``~/.local/share/facecast``): cloned voices, extra voices, and the service's
database, queue and storage when it runs on embedded defaults."""

from __future__ import annotations

import os
from pathlib import Path


def facecast_home() -> Path:
    return Path(os.environ.get("FACECAST_HOME") or Path.home() / ".local" / "share" / "facecast")
