"""``client.jobs``: one job, the list, cancel, delete, waiting for the end and downloading
its result files."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from facecast.api.native.wire import DeliveryList, JobKind, JobList, JobOut, JobStatus
from facecast.client import _config
from facecast.client._plan import Fetch, Pause, Plan, body, call, no_content, segment
from facecast.client._resource import M, Resource, operation
from facecast.client.errors import JobFailedError, WaitTimeoutError

JobRef = str | JobOut  # a job or its id
Progress = Callable[[float, str], None]  # fraction 0..1, stage: as the local pipeline's

FINISHED = frozenset({"succeeded", "failed", "canceled", "expired"})


def job_id(job: JobRef) -> str:
    return segment(job if isinstance(job, str) else job.id)


class Jobs(Resource[M]):
    @operation
    def get(self, job: JobRef) -> Plan[JobOut]:
        """The job now (status, progress, stage, result with fresh signed URLs)."""
        return (yield from call("GET", f"/jobs/{job_id(job)}", JobOut))

    @operation
    def get_by_external_id(self, external_id: str) -> Plan[JobOut]:
        """The job created with your ``external_id``."""
        return (yield from call("GET", f"/jobs/external/{segment(external_id)}", JobOut))

    @operation
    def list(self, *, kind: JobKind | None = None, status: JobStatus | None = None,
             created_after: datetime | None = None, created_before: datetime | None = None,
             page: int | None = None, page_size: int | None = None) -> Plan[JobList]:
        """Your jobs, newest first, filtered and paged."""
        params = body(kind=kind, status=status, page=page, page_size=page_size,
                      created_after=created_after and created_after.isoformat(),
                      created_before=created_before and created_before.isoformat())
        return (yield from call("GET", "/jobs", JobList, params=params))

    @operation
    def cancel(self, job: JobRef) -> Plan[JobOut]:
        """Cancel a queued or running job (costs nothing); a finished one: ConflictError
        ``job_not_cancelable``."""
        return (yield from call("POST", f"/jobs/{job_id(job)}/cancel", JobOut))

    @operation
    def delete(self, job: JobRef) -> Plan[None]:
        """Delete a finished job and its files; an active one: ConflictError ``job_active``."""
        yield from no_content("DELETE", f"/jobs/{job_id(job)}")

    @operation
    def deliveries(self, job: JobRef, *, page: int | None = None,
                   page_size: int | None = None) -> Plan[DeliveryList]:
        """The webhook deliveries about the job."""
        return (yield from call("GET", f"/jobs/{job_id(job)}/deliveries", DeliveryList,
                                params=body(page=page, page_size=page_size)))

    @operation
    def wait(self, job: JobRef, *, progress: Progress | None = None,
             timeout: float | None = None, poll_interval: float = _config.POLL_INTERVAL_S,
             raise_on_failure: bool = True) -> Plan[JobOut]:
        """Poll until the job has finished and return it.

        ``progress(fraction, stage)`` is called whenever the job's progress or stage
        changes (fraction 0..1; stage ``queued`` until a worker starts it, then the
        renderer's; the last call is ``(1.0, "done")`` on success).
        ``timeout`` (seconds): :class:`WaitTimeoutError` past it. A job that failed, was
        canceled or expired raises :class:`JobFailedError` (its ``code`` the job's)
        unless ``raise_on_failure`` is False.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[int, str] | None = None
        while True:
            current = yield from call("GET", f"/jobs/{job_id(job)}", JobOut)
            # a queued job has no stage yet: its status says where it is
            stage = current.stage or current.status
            if progress is not None and (current.progress, stage) != seen:
                seen = (current.progress, stage)
                progress(current.progress / 100, stage)
            if current.status in FINISHED:
                if raise_on_failure and current.status != "succeeded":
                    raise JobFailedError(current)
                return current
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    assert timeout is not None
                    raise WaitTimeoutError(current, timeout)
                yield Pause(min(poll_interval, left))
            else:
                yield Pause(poll_interval)

    @operation
    def download(self, job: JobRef, path: str | os.PathLike[str], *,
                 file: str | None = None) -> Plan[Path]:
        """Write one result file of a succeeded job to ``path`` (whole, or not at all) and
        return the path. ``file``: its name in ``result.files`` (``video``, ``visemes``,
        ``audio``, ``timings``, ...); default the job's main one (the first listed)."""
        current = job if isinstance(job, JobOut) else None
        if current is None or _expired(current):
            current = yield from call("GET", f"/jobs/{job_id(job)}", JobOut)
        if current.status != "succeeded" or current.result is None:
            raise JobFailedError(current) if current.status in FINISHED else \
                ValueError(f"{current.id} is {current.status}: no result to download yet")
        files = current.result.files
        name = file or next(iter(files))
        if name not in files:
            raise KeyError(f"{current.id} has no file {name!r} (it has {', '.join(files)})")
        return (yield Fetch(files[name].url, Path(path)))


def _expired(job: JobOut) -> bool:
    """Whether a result URL of ``job`` expires within a minute (fetch the job again)."""
    if job.result is None:
        return True
    now = datetime.now(timezone.utc).timestamp()
    return any(f.url_expires_at.timestamp() - now < 60 for f in job.result.files.values())
