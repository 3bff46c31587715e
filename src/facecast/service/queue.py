"""The work queue: Huey on SQLite (embedded) or on Redis (distributed).

The queue only carries job ids; the Job row is the truth (see
:mod:`facecast.service.jobs`). Which backend is used follows
``Settings.queue`` (``sqlite:///path`` or ``redis://host:port/db``).
"""

from __future__ import annotations

from huey import Huey, RedisHuey, SqliteHuey

from facecast.service.settings import Settings


def make_huey(settings: Settings) -> Huey:
    url = settings.queue
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("facecast", url=url, results=False, utc=True)
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        settings.service_dir.mkdir(parents=True, exist_ok=True)
        # no fsync per message: the Job row is the truth, and the reaper re-sends a
        # wake-up lost in a crash; fsync made every job creation wait ~7 ms
        return SqliteHuey("facecast", filename=path, results=False, utc=True, timeout=30,
                          fsync=False)
    raise ValueError(f"FACECAST_QUEUE_URL must be sqlite:///path or redis://..., not {url!r}")
