"""How the service's child processes behave: they end with their parent and renders run
at a lower CPU priority than the API.

Used by the Huey consumer and its worker processes, the library-preview process and the
API processes under ``serve --api-workers``; it imports nothing of the service, so each
of them can use it without an import cycle.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to signal this process when its parent dies (no orphans after kill -9)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def lower_priority(nice: int) -> None:
    """Run every thread of this process at CPU priority ``nice`` or lower, and so every
    thread and process it starts from now on (they inherit their creator's value).

    Linux keeps a nice value per thread: ``os.nice()`` changes only the calling thread, and
    a thread pool already running (OpenBLAS starts one when numpy is imported) would go
    on at the API's priority, so each thread is set. Never raises a priority.
    """
    if nice <= 0:
        return
    tasks = Path("/proc/self/task")
    tids = [int(tid) for tid in os.listdir(tasks)] if tasks.is_dir() else [0]
    for tid in tids:
        with contextlib.suppress(OSError):  # a thread that ended in between
            if os.getpriority(os.PRIO_PROCESS, tid) < nice:
                os.setpriority(os.PRIO_PROCESS, tid, nice)
