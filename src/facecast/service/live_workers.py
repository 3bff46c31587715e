"""Live workers and the live sessions placed on them, in the database.

A live worker (``facecast live-worker``, or the one ``facecast serve`` starts beside
several API processes) writes its row when it starts (:func:`register`): its private RPC
address and how many sessions its CPU carries. Its heartbeat (:func:`beat`) touches the
row and writes what the API needs of each session it runs (viewers, seconds streamed,
last activity). A session's slot on a worker is claimed with a conditional UPDATE
(:func:`claim`: ``sessions < capacity``), so API processes placing sessions at once never
overfill a worker, and given back exactly once, by the one UPDATE that ends the session
(:func:`finish`). A worker silent for ``Settings.lease_s`` is lost (:func:`lost`): the
API's reaper ends its sessions (``worker_lost``) and charges them no further.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facecast.service.db import Database, rowcount
from facecast.service.models import LiveSessionRow, LiveWorker, utcnow

OPEN = ("starting", "live")  # a session in either holds its worker's slot
# a lost worker's row stays this long for the operator to see (as the job workers' do)
LOST_KEPT_S = 24 * 3600.0


def register(db: Database, rpc_url: str, capacity: int) -> int:
    """This live worker's row (and long-lost rows go); returns its id."""
    with db.session() as session:
        session.execute(delete(LiveWorker).where(
            LiveWorker.last_seen < utcnow() - timedelta(seconds=LOST_KEPT_S)))
        row = LiveWorker(hostname=socket.gethostname(), pid=os.getpid(), rpc_url=rpc_url,
                         capacity=capacity, sessions=0)
        session.add(row)
        session.flush()
        return row.id


def unregister(db: Database, worker_id: int) -> None:
    with db.session() as session:
        session.execute(delete(LiveWorker).where(LiveWorker.id == worker_id))


@dataclass(frozen=True)
class Report:
    """What a worker says of one session it runs, at each heartbeat."""

    stream_id: str
    viewers: int
    media_seconds: float
    last_activity: datetime


def beat(db: Database, worker_id: int, reports: list[Report]) -> dict[str, str]:
    """The heartbeat: the row touched, each session's state written. Returns the sessions
    of this worker ended meanwhile by someone else, or whose row is gone (id -> reason),
    for the worker to close; raises LookupError when the worker's own row is gone
    (pruned after being lost)."""
    with db.session() as session:
        if not rowcount(session.execute(update(LiveWorker).where(LiveWorker.id == worker_id)
                                        .values(last_seen=utcnow()))):
            raise LookupError(f"live worker {worker_id} is not registered")
        for r in reports:
            session.execute(update(LiveSessionRow).where(
                LiveSessionRow.id == r.stream_id, LiveSessionRow.status.in_(OPEN)).values(
                viewers=r.viewers, media_seconds=r.media_seconds,
                last_activity=r.last_activity))
        ids = [r.stream_id for r in reports]
        rows = session.execute(select(LiveSessionRow.id, LiveSessionRow.status,
                                      LiveSessionRow.ended_reason).where(
            LiveSessionRow.id.in_(ids))).all() if ids else []
    ended = {sid: reason or "ended" for sid, status, reason in rows if status == "ended"}
    # no row: the API gave up on it while it started here (a timeout) and dropped it
    ended.update({sid: "start_failed" for sid in set(ids) - {row[0] for row in rows}})
    return ended


def alive_after(lease_s: float) -> datetime:
    """Workers seen since this are alive."""
    return utcnow() - timedelta(seconds=lease_s)


def claim(db: Database, lease_s: float) -> LiveWorker | None:
    """A slot on the least-loaded live worker with room, or None. Each try is one
    conditional UPDATE, so two API processes can never both take a worker's last slot."""
    with db.session() as session:
        rows = session.scalars(select(LiveWorker).where(
            LiveWorker.last_seen >= alive_after(lease_s),
            LiveWorker.sessions < LiveWorker.capacity)).all()
    # the most room first (as a share of each worker's capacity), then the oldest
    for row in sorted(rows, key=lambda w: (w.sessions / max(1, w.capacity), w.id)):
        with db.session() as session:
            won = rowcount(session.execute(update(LiveWorker).where(
                LiveWorker.id == row.id, LiveWorker.sessions < LiveWorker.capacity)
                .values(sessions=LiveWorker.sessions + 1)))
        if won:
            return row
    return None


def release(session: Session, worker_id: int) -> None:
    """Give a slot back (in the transaction that ended or dropped its session)."""
    session.execute(update(LiveWorker).where(LiveWorker.id == worker_id,
                                             LiveWorker.sessions > 0)
                    .values(sessions=LiveWorker.sessions - 1))


def finish(db: Database, stream_id: str, reason: str) -> bool:
    """End a session's row once: True for the one caller whose UPDATE ended it (and gave
    its slot back), False when it had ended already."""
    with db.session() as session:
        row = session.get(LiveSessionRow, stream_id)
        if row is None:
            return False
        won = rowcount(session.execute(update(LiveSessionRow).where(
            LiveSessionRow.id == stream_id, LiveSessionRow.status.in_(OPEN)).values(
            status="ended", ended_at=utcnow(), ended_reason=reason[:200])))
        if won:
            release(session, row.worker_id)
        return bool(won)


def lost(db: Database, lease_s: float) -> list[str]:
    """The open sessions of workers silent for ``lease_s`` (or whose row is gone)."""
    with db.session() as session:
        alive = select(LiveWorker.id).where(LiveWorker.last_seen >= alive_after(lease_s))
        return list(session.scalars(select(LiveSessionRow.id).where(
            LiveSessionRow.status.in_(OPEN), LiveSessionRow.worker_id.not_in(alive))).all())


def capacity(db: Database, lease_s: float) -> int:
    """Sessions the live workers alive now carry, all together."""
    with db.session() as session:
        return int(session.scalar(select(func.coalesce(func.sum(LiveWorker.capacity), 0))
                                  .where(LiveWorker.last_seen >= alive_after(lease_s))) or 0)
