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
import signal
import sys

from facecast.service.settings import Settings

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to signal this process when its parent dies (no orphans after kill -9)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def run_consumer(workers: int | None = None) -> None:
    from facecast.service.tasks import huey

    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    consumer = huey.create_consumer(workers=workers or max(1, settings.workers),
                                    worker_type="process", periodic=False,
                                    check_worker_health=True, health_check_interval=1.0)
    consumer.run()


if __name__ == "__main__":
    if "--die-with-parent" in sys.argv:
        die_with_parent()
    run_consumer()
