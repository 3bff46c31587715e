"""The list of worker processes, kept in the database for the admin page.

Each worker process (the children of ``facecast serve``'s consumer, or of a
``facecast worker`` on another machine) writes its row when it starts
(:func:`register`), touches ``last_seen`` on a heartbeat, records the job it runs and
how the job ended, and removes its row when it stops cleanly. A row whose
``last_seen`` is older than ``Settings.lease_s`` is *lost*: the same timeout after
which the reaper takes a running job back from a silent worker, so a worker is never
shown alive while its job is requeued, nor lost while its job is still its own.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update

from facecast.service.db import Database, rowcount
from facecast.service.models import Worker, utcnow

WorkerState = Literal["idle", "busy", "lost"]

# a lost worker's row stays this long for the operator to see, then a starting worker
# removes it (a worker on a machine that is gone never removes its own)
LOST_KEPT_S = 24 * 3600.0


def queue_backend(queue_url: str) -> str:
    """The queue's kind, never its URL (a Redis URL may carry a password)."""
    return "redis" if queue_url.startswith(("redis://", "rediss://", "unix://")) else "sqlite"


def register(db: Database, queue_url: str) -> int:
    """This process's row (and old lost rows go); returns its id."""
    with db.session() as session:
        session.execute(delete(Worker).where(
            Worker.last_seen < utcnow() - timedelta(seconds=LOST_KEPT_S)))
        row = Worker(hostname=socket.gethostname(), pid=os.getpid(),
                     queue=queue_backend(queue_url))
        session.add(row)
        session.flush()
        return row.id


def touch(db: Database, worker_id: int) -> bool:
    """The heartbeat: False when the row is gone (then the caller writes it again)."""
    with db.session() as session:
        return rowcount(session.execute(update(Worker).where(Worker.id == worker_id)
                                        .values(last_seen=utcnow()))) > 0


def working(db: Database, worker_id: int, job_id: int, kind: str) -> None:
    with db.session() as session:
        session.execute(update(Worker).where(Worker.id == worker_id).values(
            job_id=job_id, job_kind=kind, last_seen=utcnow()))


def finished(db: Database, worker_id: int, succeeded: bool | None) -> None:
    """The job ended: counted as done (True), failed (False) or neither (None: canceled
    or taken over by another attempt)."""
    values: dict[str, object] = {"job_id": None, "job_kind": None, "last_seen": utcnow()}
    if succeeded is True:
        values["jobs_done"] = Worker.jobs_done + 1
    elif succeeded is False:
        values["jobs_failed"] = Worker.jobs_failed + 1
    with db.session() as session:
        session.execute(update(Worker).where(Worker.id == worker_id).values(**values))


def unregister(db: Database, worker_id: int) -> None:
    with db.session() as session:
        session.execute(delete(Worker).where(Worker.id == worker_id))


@dataclass(frozen=True)
class WorkerView:
    row: Worker
    state: WorkerState


def state_of(row: Worker, now: datetime, lost_after_s: float) -> WorkerState:
    if now - row.last_seen > timedelta(seconds=lost_after_s):
        return "lost"
    return "busy" if row.job_id is not None else "idle"


def list_workers(db: Database, lost_after_s: float) -> list[WorkerView]:
    """Every worker, the longest-running first, each with its state."""
    with db.session() as session:
        rows = session.scalars(select(Worker).order_by(Worker.started_at, Worker.id)).all()
    now = utcnow()
    return [WorkerView(row, state_of(row, now, lost_after_s)) for row in rows]
