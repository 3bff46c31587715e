"""Running one job inside a worker process.

:meth:`JobRunner.run` claims the job, copies its input assets from storage to
a scratch folder, runs the kind's runner with a progress callback, stores the
output files and finishes the job. A heartbeat thread keeps the claim alive
while the runner works; when the job is canceled (or was requeued because
this worker looked dead) the next progress report raises :class:`Abandoned`
and the run stops without writing anything. :class:`Presence` keeps the worker process
itself in the list of workers (:mod:`facecast.service.workers`) on the same kind of
heartbeat thread (:class:`Beat`).
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from facecast.errors import FacecastError
from facecast.service import jobs, workers
from facecast.service.db import Database
from facecast.service.models import Asset, Job
from facecast.service.processes import lower_priority
from facecast.service.runners import KINDS, JobKind, Output, RunContext
from facecast.service.scratch import scratch, sweep
from facecast.service.settings import Settings
from facecast.service.storage import Storage, open_storage

log = logging.getLogger("facecast.worker")


class Abandoned(Exception):
    """This run no longer owns its job (canceled, or requeued after a lost heartbeat)."""


_B = TypeVar("_B", bound="Beat")


class Beat:
    """A daemon thread that calls :meth:`beat` every ``interval`` seconds while the
    ``with`` block runs: a running job's heartbeat, and a worker process's own."""

    def __init__(self, interval: float, name: str) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self: _B) -> _B:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def beat(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a busy database must not kill the worker; retry next beat
                log.exception("%s failed", self._thread.name)


class Heartbeat(Beat):
    """Keeps a claimed job alive and carries progress to the database."""

    def __init__(self, db: Database, settings: Settings, job: Job) -> None:
        super().__init__(settings.heartbeat_s, f"heartbeat-{job.id}")
        self.db, self.settings, self.job_id, self.attempt = db, settings, job.id, job.attempt
        self.lost = False
        self._progress: float | None = None
        self._stage: str | None = None
        self._last_write = 0.0
        self._lock = threading.Lock()

    def beat(self) -> None:
        self._write()

    def _write(self) -> None:
        with self._lock:
            progress, stage = self._progress, self._stage
            self._last_write = time.monotonic()
        if not jobs.heartbeat(self.db, self.job_id, self.attempt, progress=progress,
                              stage=stage):
            self.lost = True

    def progress(self, fraction: float, stage: str) -> None:
        if self.lost:
            raise Abandoned
        with self._lock:
            self._progress = 0.99 * min(max(fraction, 0.0), 1.0)  # 100 % means stored
            self._stage = stage
            due = time.monotonic() - self._last_write >= self.settings.progress_interval_s
        if due:
            self._write()
            if self.lost:
                raise Abandoned


class Presence(Beat):
    """This worker process's row in the list of workers, kept fresh while it runs and
    removed when it stops cleanly (one killed stays, and shows as lost)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(settings.heartbeat_s, "worker-heartbeat")
        self.db, self.settings = db, settings
        self.id: int | None = None
        try:
            self.id = workers.register(db, settings.queue)
        except Exception:  # a worker started before the API migrated the database
            log.warning("not in the list of workers yet (the database is not ready); "
                        "trying again on the next heartbeat", exc_info=True)

    def beat(self) -> None:
        # not written yet, or the row was pruned (this process was stopped for a day)
        if self.id is None or not workers.touch(self.db, self.id):
            self.id = workers.register(self.db, self.settings.queue)

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if self.id is not None:
            workers.unregister(self.db, self.id)


class JobRunner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.db_url)
        self.storage: Storage = open_storage(settings.storage, signing_key=settings.signing_key,
                                             base_url=settings.base_url)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        lower_priority(settings.worker_nice)  # renders yield the CPU to the API's requests
        # a new worker process (Huey restarts one that died): what dead attempts left goes
        sweep(settings.scratch_root)
        self.presence: Presence | None = None  # in the list of workers (consumer processes)

    def start(self) -> None:
        """Enter the list of workers (called when a consumer's worker process starts)."""
        if self.presence is None:
            self.presence = Presence(self.db, self.settings).__enter__()

    def stop(self) -> None:
        """Leave the list of workers (a clean stop)."""
        if self.presence is not None:
            presence, self.presence = self.presence, None
            presence.__exit__(None, None, None)

    def _inputs(self, job: Job, workdir: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        with self.db.session() as session:
            for name, asset_id in (job.params.get("inputs") or {}).items():
                asset = session.get(Asset, asset_id)
                if asset is None or asset.deleted_at is not None:
                    raise FacecastError(f"input {name!r} (asset ast_{asset_id}) no longer exists",
                                        code="input_expired")
                suffix = Path(asset.filename).suffix if asset.filename else ""
                local = workdir / f"in_{name}{suffix}"
                self.storage.get_to_path(asset.storage_key, local)
                out[name] = local
        return out

    def _store(self, job: Job, output: Output) -> dict[str, Any]:
        try:
            return self._store_files(job, output)
        except BaseException:
            # a full disk (or any failure) part way: the files already stored are nobody's
            self.storage.delete_prefix(f"jobs/{job.id}/{job.attempt}/")
            raise

    def _store_files(self, job: Job, output: Output) -> dict[str, Any]:
        files = {}
        for name, (path, content_type) in output.files.items():
            if not path.exists():
                continue
            key = f"jobs/{job.id}/{job.attempt}/{name}{path.suffix}"
            self.storage.put_file(key, path, content_type)
            files[name] = {"key": key, "content_type": content_type,
                           "size": path.stat().st_size, "filename": f"job_{job.id}_{name}"
                           f"{path.suffix}"}
        result: dict[str, Any] = {"files": files, "info": output.info}
        if output.quality is not None:
            result["quality"] = output.quality
        return result

    def run(self, job_id: int) -> None:
        job = jobs.claim(self.db, job_id, self.name)
        if job is None:
            return  # a duplicate wake-up, or the job was canceled meanwhile
        listed = self.presence.id if self.presence is not None else None
        if listed is not None:
            self._note(workers.working, listed, job.id, job.kind)
        succeeded: bool | None = None  # an interrupted run (shutdown) counts as neither
        try:
            succeeded = self._run(job)
        finally:
            if listed is not None:
                self._note(workers.finished, listed, succeeded)

    def _note(self, write: Callable[..., None], *args: object) -> None:
        """Writes to the list of workers; one that fails must not fail the job."""
        try:
            write(self.db, *args)
        except Exception:
            log.exception("the list of workers was not updated")

    def _run(self, job: Job) -> bool | None:
        """Runs a claimed job: True when it succeeded, False when it failed, None when
        this run gave it up (canceled, or taken over by another attempt)."""
        kind = KINDS.get(job.kind)
        if kind is None:
            jobs.finish_failure(self.db, job.id, job.attempt, "unknown_job_kind",
                                f"this worker cannot run {job.kind!r} jobs")
            return False
        log.info("job %s (%s) attempt %s started on %s", job.id, job.kind, job.attempt,
                 self.name)
        with scratch(self.settings.scratch_root, f"job{job.id}-{job.attempt}-") as tmp, \
                Heartbeat(self.db, self.settings, job) as beat:
            try:
                ctx = RunContext(job.id, job.account_id, job.params, {}, Path(tmp),
                                 beat.progress, self.settings,
                                 functools.partial(self._hold, job))
                ctx.inputs = self._inputs(job, ctx.workdir)
                output = kind.run(ctx)
                if beat.lost:
                    raise Abandoned
                result = self._store(job, output)
            except Abandoned:
                log.info("job %s attempt %s abandoned (canceled or requeued)", job.id,
                         job.attempt)
                self._discard(kind, job)
                return None
            except FacecastError as exc:
                jobs.finish_failure(self.db, job.id, job.attempt, exc.code, exc.message)
                return False
            except Exception as exc:
                log.exception("job %s failed", job.id)
                jobs.finish_failure(self.db, job.id, job.attempt, "internal_error",
                                    f"the job failed unexpectedly: {type(exc).__name__}: {exc}")
                return False
        cost = kind.price(self.settings, job.params, output)
        if not jobs.finish_success(self.db, self.settings, job.id, job.attempt, result, cost,
                                   after=kind.on_success):
            # canceled or taken over while storing: its files are nobody's
            self.storage.delete_prefix(f"jobs/{job.id}/{job.attempt}/")
            self._discard(kind, job)
            return None
        log.info("job %s succeeded (cost %s)", job.id, cost)
        return True

    def _hold(self, job: Job, cost: int) -> None:
        if not jobs.hold(self.db, job.id, job.attempt, cost):
            raise Abandoned

    def _discard(self, kind: JobKind, job: Job) -> None:
        """What the kind stored beyond the job's files goes, if the job was canceled; a
        job taken over by another attempt keeps it (that attempt writes the same keys)."""
        if kind.discard is None:
            return
        with self.db.session() as session:
            row = session.get(Job, job.id)
            canceled = row is None or row.status == "canceled"
        if canceled:
            kind.discard(self.storage, job.params)


@functools.cache
def job_runner() -> JobRunner:
    """One runner per worker process (database pool, storage client, niceness)."""
    return JobRunner(Settings())
