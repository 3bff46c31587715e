"""The life of a job: create, claim, heartbeat, finish, cancel, delete, reap.

The Job row is the truth; the queue only carries wake-ups (``job id``), so a
lost or duplicated message is harmless: a worker first *claims* the job with
a conditional UPDATE (queued -> running, attempt + 1) and every later write
is conditioned on that attempt still being the current one. A worker that dies
stops heartbeating; :func:`reap` then requeues the job (or fails it with
``worker_lost`` after ``max_attempts`` runs). Success, the credit charge and
the webhook events are written in one transaction, and the ledger's unique
(job, kind) constraint makes a second charge for the same job impossible.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facecast.errors import ConflictError, LimitError, NotFoundError
from facecast.service import webhooks
from facecast.service.accounts import Principal, book, lock_account
from facecast.service.db import Database, rowcount
from facecast.service.models import Account, Job, utcnow
from facecast.service.settings import Settings

log = logging.getLogger("facecast.jobs")

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "canceled", "expired")
STATUSES = ACTIVE + TERMINAL

Enqueue = Callable[[int], None]
_ACCOUNT_STRIPES = tuple(threading.Lock() for _ in range(64))


@dataclass(frozen=True)
class NewJob:
    """What an API asks for; the service decides whether it may run."""

    kind: str
    params: dict[str, Any]
    cost_estimate: int
    queue_group: str = "video"  # jobs of one group share the per-account queue cap
    external_id: str | None = None
    callback_url: str | None = None
    origin: str = "native"
    extra: dict[str, Any] | None = None


def _now() -> datetime:
    return utcnow()


def job_event_data(job: Job) -> dict[str, Any]:
    """The job as webhook ``data``: what changed, without the result URLs (they expire)."""
    return {
        "id": f"job_{job.id}", "kind": job.kind, "status": job.status,
        "progress": round(job.progress * 100), "external_id": job.external_id,
        "error": ({"code": job.error_code, "message": job.error_message}
                  if job.error_code else None),
        "cost": job.cost,
    }


def _event(session: Session, job: Job) -> None:
    webhooks.queue_job_event(session, job, f"job.{job.status}", job_event_data(job))


def queue_cap(settings: Settings, principal: Principal, group: str) -> int:
    if group == "text_removal":
        return settings.max_queued_text_removal
    return principal.max_queued_jobs or settings.max_queued_jobs


def create_job(db: Database, settings: Settings, principal: Principal, new: NewJob,
               enqueue: Enqueue) -> tuple[Job, bool]:
    """Persist and enqueue a job; returns ``(job, created)``.

    With an ``external_id`` already used by this account, the existing job is
    returned (``created`` False) and nothing else happens. Refusals (queue
    full, not enough credits) create nothing.
    """
    # requests of one process for one account queue here first: a thread waiting on a
    # Python lock wakes as soon as it is free, one waiting on SQLite's lock polls with
    # growing sleeps (the database lock below still orders processes and machines)
    with _ACCOUNT_STRIPES[principal.account_id % len(_ACCOUNT_STRIPES)], \
            db.session() as session:
        if new.external_id is not None:
            existing = _by_external_id(session, principal.account_id, new.external_id)
            if existing is not None:
                return existing, False
        # the account is held from here to the commit: concurrent creates take turns, so
        # none can spend credits (or queue places) another has just counted as free
        lock_account(session, principal.account_id)
        group = Job.extra["queue_group"].as_string()  # one expression: PostgreSQL matches it
        active = session.execute(
            select(group, func.count())
            .where(Job.account_id == principal.account_id, Job.status.in_(ACTIVE))
            .group_by(group)).all()
        in_group = sum(n for group, n in active if (group or "video") == new.queue_group)
        cap = queue_cap(settings, principal, new.queue_group)
        if in_group >= cap:
            raise LimitError(
                f"this account already has {in_group} unfinished {new.queue_group} jobs "
                f"(the limit is {cap}); wait for one to finish",
                code="too_many_queued_jobs", limit=cap)
        check_credits(session, principal.account_id, new.cost_estimate)
        now = _now()
        job = Job(account_id=principal.account_id, kind=new.kind, origin=new.origin,
                  status="queued", params=new.params, cost_estimate=new.cost_estimate,
                  external_id=new.external_id, callback_url=new.callback_url,
                  extra={**(new.extra or {}), "queue_group": new.queue_group},
                  created_at=now, enqueued_at=now)
        session.add(job)
        try:
            session.flush()
        except IntegrityError:
            # another request with the same external_id won the race: return its job
            session.rollback()
            with db.session() as again:
                existing = _by_external_id(again, principal.account_id, new.external_id or "")
            if existing is None:
                raise
            return existing, False
    _enqueue_safely(enqueue, job.id)
    return job, True


def check_credits(session: Session, account_id: int, needed: int,
                  except_job: int | None = None, what: str = "this job") -> None:
    """Refuse ``needed`` credits unless the balance less what unfinished jobs hold (but
    ``except_job``) covers them. The caller holds the account (:func:`lock_account`);
    ``what`` names the spender in the refusal (a live stream's minute spends too)."""
    where = [Job.account_id == account_id, Job.status.in_(ACTIVE)]
    if except_job is not None:
        where.append(Job.id != except_job)
    held = int(session.scalar(select(func.coalesce(func.sum(Job.cost_estimate), 0))
                              .where(*where)) or 0)
    balance = int(session.scalar(select(Account.balance).where(Account.id == account_id)) or 0)
    if needed > balance - held:
        raise LimitError(
            f"not enough credits: {what} needs {needed}, the balance is {balance} with "
            f"{held} held by unfinished jobs", code="insufficient_credits", needed=needed,
            available=balance - held)


def _by_external_id(session: Session, account_id: int, external_id: str) -> Job | None:
    return session.scalar(select(Job).where(Job.account_id == account_id,
                                            Job.external_id == external_id,
                                            Job.deleted_at.is_(None)))


def _enqueue_safely(enqueue: Enqueue, job_id: int) -> None:
    # The row is committed: if the queue is unreachable now, the reaper enqueues it later.
    try:
        enqueue(job_id)
    except Exception:
        log.exception("could not enqueue job %s; the reaper will retry", job_id)


MAX_ID = 2**63 - 1  # ids past a signed BIGINT exist nowhere (and would overflow the query)


def get_job(db: Database, account_id: int | None, job_id: int) -> Job:
    if not 0 < job_id <= MAX_ID:
        raise NotFoundError(f"no job with id job_{job_id}", code="job_not_found")
    with db.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.deleted_at is not None or (
                account_id is not None and job.account_id != account_id):
            raise NotFoundError(f"no job with id job_{job_id}", code="job_not_found")
        return job


def get_by_external_id(db: Database, account_id: int, external_id: str) -> Job:
    with db.session() as session:
        job = _by_external_id(session, account_id, external_id)
    if job is None:
        raise NotFoundError(f"no job with external id {external_id!r}", code="job_not_found")
    return job


def list_jobs(db: Database, account_id: int | None, *, kinds: Iterable[str] | None = None,
              status: str | None = None, origin: str | None = None,
              created_after: datetime | None = None, created_before: datetime | None = None,
              offset: int = 0, limit: int = 20) -> tuple[list[Job], int]:
    """A page of the account's jobs (every account's: None), newest first, and the total
    that match."""
    where: list[ColumnElement[bool]] = [Job.deleted_at.is_(None)]
    if account_id is not None:
        where.append(Job.account_id == account_id)
    if kinds:
        where.append(Job.kind.in_(list(kinds)))
    if status:
        where.append(Job.status == status)
    if origin:
        where.append(Job.origin == origin)
    if created_after:
        where.append(Job.created_at >= created_after)
    if created_before:
        where.append(Job.created_at < created_before)
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
        rows = session.scalars(select(Job).where(*where)
                               .order_by(Job.created_at.desc(), Job.id.desc())
                               .offset(offset).limit(limit)).all()
    return list(rows), total


def cancel_job(db: Database, account_id: int, job_id: int) -> Job:
    """Queued jobs stop at once; a running job's worker notices at its next heartbeat."""
    with db.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.account_id != account_id or job.deleted_at is not None:
            raise NotFoundError(f"no job with id job_{job_id}", code="job_not_found")
        if job.status not in ACTIVE:
            raise ConflictError(f"job job_{job_id} is already {job.status}",
                                code="job_not_cancelable", status=job.status)
        job.status = "canceled"
        job.finished_at = _now()
        job.error_code = "canceled"
        job.error_message = "canceled by the caller"
        session.flush()
        _event(session, job)
        return job


def delete_job(db: Database, account_id: int, job_id: int) -> Job:
    """Marks a finished job deleted (its files are removed by the caller).

    The row stays for the ledger's sake but is gone from every API.
    """
    with db.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.account_id != account_id or job.deleted_at is not None:
            raise NotFoundError(f"no job with id job_{job_id}", code="job_not_found")
        if job.status in ACTIVE:
            raise ConflictError(f"job job_{job_id} is {job.status}: cancel it first",
                                code="job_active", status=job.status)
        job.deleted_at = _now()
        job.external_id = None  # free for a new job (the unique index counts deleted rows)
        return job


# ---- worker side ----------------------------------------------------------------------------


def claim(db: Database, job_id: int, worker: str) -> Job | None:
    """queued -> running for this worker; None when someone else has it or it ended."""
    now = _now()
    with db.session() as session:
        done = session.execute(
            update(Job).where(Job.id == job_id, Job.status == "queued",
                              Job.deleted_at.is_(None))
            .values(status="running", attempt=Job.attempt + 1, worker=worker,
                    heartbeat_at=now, started_at=func.coalesce(Job.started_at, now),
                    stage="starting"))
        if rowcount(done) != 1:
            return None
        job = session.get(Job, job_id)
        assert job is not None
        _event(session, job)
        return job


def heartbeat(db: Database, job_id: int, attempt: int, *, progress: float | None = None,
              stage: str | None = None) -> bool:
    """Touch the job (and record progress); False when this run no longer owns it."""
    values: dict[str, Any] = {"heartbeat_at": _now()}
    if progress is not None:
        values["progress"] = min(max(progress, 0.0), 1.0)
    if stage is not None:
        values["stage"] = stage[:64]
    with db.session() as session:
        done = session.execute(update(Job).where(Job.id == job_id, Job.attempt == attempt,
                                                 Job.status == "running").values(**values))
        return rowcount(done) == 1


def hold(db: Database, job_id: int, attempt: int, cost: int) -> bool:
    """Hold ``cost`` credits for a running job instead of its estimate, once its real
    price is known (e.g. its speech was synthesised) and before the work that costs.

    Raises ``insufficient_credits`` when the balance less what the account's other
    unfinished jobs hold does not cover it; False when this run no longer owns the job.
    A lower price frees the difference at once.
    """
    with db.session() as session:
        account_id = session.scalar(select(Job.account_id).where(Job.id == job_id))
        if account_id is None:
            return False
        lock_account(session, account_id)
        job = session.scalar(select(Job).where(Job.id == job_id, Job.attempt == attempt,
                                               Job.status == "running"))
        if job is None:
            return False
        if cost > job.cost_estimate:
            check_credits(session, account_id, cost, except_job=job_id)
        job.cost_estimate = cost
    return True


def finish_success(db: Database, settings: Settings, job_id: int, attempt: int,
                   result: dict[str, Any], cost: int,
                   after: Callable[[Session, Job], None] | None = None) -> bool:
    """Succeeded + charge + events in one transaction; False if the run was superseded.

    The charge is at most what the job holds: the holds of an account's unfinished jobs
    never exceed its balance, so no charge can take the balance below zero.
    """
    now = _now()
    with db.session() as session:
        account_id = session.scalar(select(Job.account_id).where(Job.id == job_id))
        if account_id is None:
            return False
        lock_account(session, account_id)
        held = session.scalar(select(Job.cost_estimate).where(Job.id == job_id)) or 0
        cost = min(cost, int(held))
        done = session.execute(
            update(Job).where(Job.id == job_id, Job.attempt == attempt, Job.status == "running")
            .values(status="succeeded", progress=1.0, stage="done", result=result, cost=cost,
                    finished_at=now, expires_at=now + timedelta(seconds=settings.result_ttl_s)))
        if rowcount(done) != 1:
            return False
        job = session.get(Job, job_id)
        assert job is not None
        if cost:
            book(session, job.account_id, -cost, kind="charge", job_id=job.id,
                 note=f"{job.kind} job_{job.id}")
        if after is not None:
            after(session, job)
        _event(session, job)
    return True


def finish_failure(db: Database, job_id: int, attempt: int | None, code: str,
                   message: str) -> bool:
    """Failed with a machine-readable code; costs nothing. ``attempt`` None: any run."""
    where = [Job.id == job_id, Job.status.in_(ACTIVE)]
    if attempt is not None:
        where += [Job.attempt == attempt, Job.status == "running"]
    with db.session() as session:
        done = session.execute(update(Job).where(*where).values(
            status="failed", error_code=code, error_message=message[:2000],
            finished_at=_now(), stage="failed"))
        if rowcount(done) != 1:
            return False
        job = session.get(Job, job_id)
        assert job is not None
        _event(session, job)
    return True


def reap(db: Database, settings: Settings, enqueue: Enqueue) -> dict[str, int]:
    """Requeue or fail jobs whose worker died; re-send wake-ups for forgotten queued jobs."""
    now = _now()
    stale = now - timedelta(seconds=settings.lease_s)
    counts = {"requeued": 0, "failed": 0, "rewoken": 0}
    to_enqueue: list[int] = []
    with db.session() as session:
        dead = session.execute(select(Job.id, Job.attempt).where(
            Job.status == "running", Job.heartbeat_at < stale)).all()
        for job_id, attempt in dead:
            if attempt >= settings.max_attempts:
                continue  # failed below, with its own event
            done = session.execute(
                update(Job).where(Job.id == job_id, Job.attempt == attempt,
                                  Job.status == "running")
                .values(status="queued", worker=None, enqueued_at=now, progress=0.0,
                        stage="requeued after its worker stopped"))
            if rowcount(done) == 1:
                counts["requeued"] += 1
                to_enqueue.append(job_id)
        forgotten = session.execute(select(Job.id).where(
            Job.status == "queued",
            Job.enqueued_at < now - timedelta(seconds=settings.requeue_after_s))).scalars().all()
        for job_id in forgotten:
            session.execute(update(Job).where(Job.id == job_id).values(enqueued_at=now))
            counts["rewoken"] += 1
            to_enqueue.append(job_id)
    for job_id, attempt in dead:
        if attempt >= settings.max_attempts and finish_failure(
                db, job_id, attempt, "worker_lost",
                f"the worker running this job stopped {attempt} times; giving up"):
            counts["failed"] += 1
    for job_id in to_enqueue:
        _enqueue_safely(enqueue, job_id)
    return counts


def active_counts(db: Database) -> dict[str, int]:
    with db.session() as session:
        rows = session.execute(select(Job.status, func.count()).where(Job.status.in_(ACTIVE))
                               .group_by(Job.status)).all()
    return {status: n for status, n in rows}
