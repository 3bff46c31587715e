"""``GET /api/v1/admin/workers``: the worker processes a real ``facecast serve`` started,
seen idle, busy with a job, idle again with the job counted, lost once killed, and gone
from the list after a clean stop. Real processes, real jobs; every wait polls a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scale_support import ServerMissing, postgres_cluster, redis_server
from service_support import ServerProcess, service_env, wait_for_job

HEARTBEAT_S = 0.25
LEASE_S = 4.0  # FACECAST_LEASE_S: the timeout after which a silent worker shows as lost
# ~60 s of speech: a job that runs long enough to be seen busy, even on a quiet machine
LONG_TEXT = ("The workers of the studio take jobs from the queue one at a time, and each "
             "of them writes down what it is doing, so the operator can see who is busy. "
             ) * 12


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("workers"), workers=1,
                        heartbeat_s=HEARTBEAT_S, lease_s=LEASE_S).start()
    try:
        yield srv
    finally:
        srv.stop()


def workers(admin: httpx.Client) -> list[dict[str, Any]]:
    r = admin.get("/api/v1/admin/workers")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and body["lost_after_s"] == LEASE_S
    return list(body["items"])


def poll(admin: httpx.Client, done: Callable[[list[dict[str, Any]]], bool],
         timeout: float, what: str, interval: float = 0.05) -> list[dict[str, Any]]:
    """The list of workers once ``done`` holds for it; fails with the last one seen."""
    deadline = time.monotonic() + timeout
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = workers(admin)
        if done(seen):
            return seen
        time.sleep(interval)
    raise AssertionError(f"workers did not become {what} in {timeout} s: {seen}")


def test_other_keys_are_refused_and_the_client_lists(server: ServerProcess) -> None:
    from facecast.client import Client
    from facecast.client.errors import PermissionDeniedError

    with server.client() as admin:
        made = admin.post("/api/v1/accounts", json={"name": "user"})
        assert made.status_code == 201, made.text
        with server.client(made.json()["api_key"]) as user:
            r = user.get("/api/v1/admin/workers")
            assert r.status_code == 403
            assert r.json()["error"]["code"] == "forbidden"
            jobs = user.get("/api/v1/admin/jobs")  # the same shape as its sibling's
            assert jobs.status_code == 403 and r.json().keys() == jobs.json().keys()
            assert r.json()["error"].keys() == jobs.json()["error"].keys()
    with Client(server.url, server.admin_key) as client:
        listed = poll_client(client)
        assert listed.lost_after_s == LEASE_S and listed.items[0].id.startswith("wrk_")
    with Client(server.url, made.json()["api_key"]) as client, \
            pytest.raises(PermissionDeniedError):
        client.accounts.workers()


def poll_client(client: Any, timeout: float = 60) -> Any:
    """``accounts.workers()`` once the worker process has registered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = client.accounts.workers()
        if listed.items:
            return listed
        time.sleep(0.05)
    raise AssertionError("no worker registered")


def test_worker_idle_busy_idle_then_lost_and_removed(server: ServerProcess) -> None:
    with server.client() as admin:
        # the embedded worker process registers itself when it starts
        first = poll(admin, lambda ws: len(ws) == 1 and ws[0]["state"] == "idle", 60,
                     "one idle worker")[0]
        assert first["id"].startswith("wrk_") and first["queue"] == "sqlite"
        assert first["pid"] != server.proc.pid  # type: ignore[union-attr]  # a child's
        assert first["job_id"] is None and (first["jobs_done"], first["jobs_failed"]) == (0, 0)

        made = admin.post("/api/v1/speech", json={"text": LONG_TEXT})
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        busy = poll(admin, lambda ws: ws[0]["state"] == "busy", 60, "busy")[0]
        assert busy["id"] == first["id"] and busy["job_id"] == job_id
        assert busy["job_kind"] == "tts"
        assert wait_for_job(admin, job_id)["status"] == "succeeded"
        idle = poll(admin, lambda ws: ws[0]["state"] == "idle", 30, "idle again")[0]
        assert idle["job_id"] is None and (idle["jobs_done"], idle["jobs_failed"]) == (1, 0)
        assert idle["last_seen"] > first["last_seen"]  # its heartbeat keeps it fresh

        # kill -9: no clean stop, so its row stays and turns lost after LEASE_S; Huey
        # starts a new worker process, which registers itself
        os.kill(first["pid"], signal.SIGKILL)
        killed = time.monotonic()
        after = poll(admin, lambda ws: any(w["id"] == first["id"] and w["state"] == "lost"
                                           for w in ws)
                     and any(w["state"] == "idle" and w["pid"] != first["pid"] for w in ws),
                     LEASE_S + 60, "lost plus a new idle one", interval=0.2)
        assert time.monotonic() - killed >= LEASE_S - 1  # not lost before the timeout
        assert len(after) == 2

        metrics = admin.get("/metrics").text
        assert 'facecast_workers{state="lost"} 1.0' in metrics
        assert 'facecast_workers{state="idle"} 1.0' in metrics

    # a clean stop removes the running worker's row; the lost one stays (for a day)
    assert server.stop() == 0
    from facecast.service.db import Database
    from facecast.service.workers import list_workers

    db = Database(f"sqlite:///{Path(server.home) / 'service' / 'facecast.db'}")
    try:
        left = list_workers(db, LEASE_S)
    finally:
        db.dispose()
    assert [w.row.id for w in left] == [int(first["id"].removeprefix("wrk_"))]


def test_standalone_worker_on_redis_and_postgresql(tmp_path: Path) -> None:
    """A ``facecast worker`` on another "machine" (its own home) lists itself in the
    shared PostgreSQL database with its Redis queue, and leaves on a clean stop."""
    with contextlib.ExitStack() as stack:
        try:
            redis = stack.enter_context(redis_server(tmp_path / "redis"))
            postgres = stack.enter_context(postgres_cluster())
        except ServerMissing as exc:
            pytest.skip(f"needs real servers: {exc}")
        shared: dict[str, object] = {"database_url": postgres.url, "queue_url": redis.url,
                                     "storage_url": f"file://{tmp_path / 'storage'}",
                                     "heartbeat_s": HEARTBEAT_S, "lease_s": LEASE_S}
        server = ServerProcess(tmp_path / "api", workers=0, **shared).start()  # migrates
        stack.callback(server.stop)
        (tmp_path / "worker").mkdir()
        with open(tmp_path / "worker" / "worker.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "facecast.cli", "worker"],
                                    env=service_env(tmp_path / "worker", **shared),
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

        def kill_group() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)

        stack.callback(kill_group)
        with server.client() as admin:
            assert workers(admin) == []  # `serve` with no worker processes lists none
            one = poll(admin, lambda ws: len(ws) == 1 and ws[0]["state"] == "idle", 90,
                       "one idle worker")[0]
            assert one["queue"] == "redis" and one["hostname"] == socket.gethostname()
            assert redis.url not in str(one)  # the backend's kind, never its URL
            proc.terminate()  # the consumer stops its worker process, which leaves
            assert proc.wait(30) is not None
            poll(admin, lambda ws: ws == [], 10, "gone after a clean stop")


def test_a_worker_started_before_the_database_is_ready_lists_itself_later(
        tmp_path: Path) -> None:
    """``facecast worker`` may start while the API still migrates a new database: it
    runs on, and its heartbeat writes its row once the table is there."""
    from facecast.service.db import Database
    from facecast.service.settings import Settings
    from facecast.service.worker import Presence
    from facecast.service.workers import list_workers, unregister

    settings = Settings(home=tmp_path, heartbeat_s=3600.0)  # beats by hand below
    db = Database(settings.db_url)
    try:
        presence = Presence(db, settings)  # no tables yet
        assert presence.id is None
        db.migrate()
        presence.beat()
        listed = list_workers(db, settings.lease_s)
        assert [(w.row.id, w.row.pid, w.state) for w in listed] == [
            (presence.id, os.getpid(), "idle")]
        assert presence.id is not None
        unregister(db, presence.id)  # pruned while it was stopped: the next beat writes it again
        presence.beat()
        assert [w.row.id for w in list_workers(db, settings.lease_s)] == [presence.id]
    finally:
        db.dispose()
