"""Background upkeep of a running service, in a thread of ``facecast serve``:
requeue jobs whose worker died, deliver due webhooks, and expire old results
and uploads. Every step is safe to run from several servers at once (claims
are conditional UPDATEs)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select, update

from facecast.service import jobs, webhooks
from facecast.service.db import Database, rowcount
from facecast.service.models import Asset, Job, utcnow
from facecast.service.scratch import sweep
from facecast.service.settings import Settings
from facecast.service.storage import Storage

log = logging.getLogger("facecast.maintenance")


def expire(db: Database, storage: Storage) -> dict[str, int]:
    """Results and uploads past their time are deleted; their jobs say ``expired``."""
    now = utcnow()
    counts = {"jobs": 0, "assets": 0}
    with db.session() as session:
        job_ids = session.scalars(select(Job.id).where(
            Job.status == "succeeded", Job.expires_at < now)).all()
        asset_rows = session.execute(select(Asset.id, Asset.storage_key).where(
            Asset.deleted_at.is_(None), Asset.expires_at < now)).all()
    for job_id in job_ids:
        storage.delete_prefix(f"jobs/{job_id}/")
        with db.session() as session:
            done = session.execute(update(Job).where(Job.id == job_id, Job.status == "succeeded")
                                   .values(status="expired", stage="result expired"))
            counts["jobs"] += rowcount(done)
    for asset_id, key in asset_rows:
        storage.delete(key)
        with db.session() as session:
            session.execute(update(Asset).where(Asset.id == asset_id).values(deleted_at=now))
        counts["assets"] += 1
    return counts


class Maintenance:
    def __init__(self, db: Database, storage: Storage, settings: Settings,
                 enqueue: Callable[[int], None]) -> None:
        self.db, self.storage, self.settings, self.enqueue = db, storage, settings, enqueue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="facecast-maintenance",
                                        daemon=True)
        self._last_retention = 0.0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def tick(self) -> None:
        reaped = jobs.reap(self.db, self.settings, self.enqueue)
        if reaped["requeued"] or reaped["failed"]:
            log.warning("jobs whose worker stopped: %s", reaped)
        webhooks.dispatch_due(self.db, self.settings)
        if time.monotonic() - self._last_retention >= self.settings.retention_interval_s:
            self._last_retention = time.monotonic()
            expire(self.db, self.storage)
            sweep(self.settings.scratch_root)  # scratch of workers and requests that died

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.maintenance_interval_s):
            try:
                self.tick()
            except Exception:  # keep going: one bad round must not stop the upkeep
                log.exception("maintenance round failed")
