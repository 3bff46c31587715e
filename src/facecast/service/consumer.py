"""The worker side: a Huey consumer whose worker processes run jobs.

``facecast serve`` starts one as a child process; ``facecast worker`` runs one
on any machine that shares the database, queue and storage URLs. Huey
restarts a worker process that died; the job it was running is requeued by
the reaper once its heartbeat is stale.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

from facecast.service.settings import Settings

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


def run_consumer(workers: int | None = None) -> None:
    settings = Settings()
    # before the queue and the job code are imported (and start threads), so the consumer,
    # its worker processes and every thread of theirs yield the CPU to the API's requests
    lower_priority(settings.worker_nice)
    from facecast.service.tasks import huey

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    consumer = huey.create_consumer(workers=workers or max(1, settings.workers),
                                    worker_type="process", periodic=False,
                                    check_worker_health=True, health_check_interval=1.0)
    consumer.run()


if __name__ == "__main__":
    if "--die-with-parent" in sys.argv:
        die_with_parent()
    run_consumer()
