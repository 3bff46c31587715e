"""The worker side: a Huey consumer whose worker processes run jobs.

``facecast serve`` starts one as a child process; ``facecast worker`` runs one
on any machine that shares the database, queue and storage URLs. Huey
restarts a worker process that died; the job it was running is requeued by
the reaper once its heartbeat is stale.
"""

from __future__ import annotations

import logging
import sys

from facecast.service.processes import die_with_parent, lower_priority
from facecast.service.settings import Settings


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
