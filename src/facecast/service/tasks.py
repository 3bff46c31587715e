"""Huey tasks. Both the API process (which enqueues) and the worker processes
(which run) import this module; the queue backend comes from the environment
(``FACECAST_QUEUE_URL``), so both sides agree on it."""

from __future__ import annotations

from facecast.service.queue import make_huey
from facecast.service.settings import Settings

huey = make_huey(Settings())


@huey.task()
def run_job(job_id: int) -> None:
    from facecast.service.worker import job_runner

    job_runner().run(job_id)


def enqueue(job_id: int) -> None:
    run_job(job_id)


# Huey calls these in each of its worker processes (never in the API, which only
# enqueues): the process enters the list of workers when it starts and leaves it when it
# stops cleanly.
@huey.on_startup()
def worker_started() -> None:
    from facecast.service.worker import job_runner

    job_runner().start()


@huey.on_shutdown()
def worker_stopped() -> None:
    from facecast.service.worker import job_runner

    job_runner().stop()
