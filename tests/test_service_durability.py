"""Durability with real processes: kill -9 a worker mid-render, kill -9 the whole
server mid-render, run out of attempts, and let results expire. Every job must
end succeeded (retried) or failed with a clear code, none stays running, none is
lost, and no credit is booked twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service_support import ServerProcess, wait_for_job

# end-to-end: a real server process rendering media
pytestmark = pytest.mark.slow

LONG_TEXT = ("A long sentence, spoken slowly, keeps the renderer busy for a while. "
             "Then another one follows it, so that there is time to pull the plug. ") * 2

FAST_RECOVERY = {"heartbeat_s": 0.3, "lease_s": 2.5, "maintenance_interval_s": 0.2}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(home, **FAST_RECOVERY)
    srv.start()
    yield srv
    srv.stop()


def job_row(home: Path, job_id: str) -> dict[str, object]:
    with sqlite3.connect(home / "service" / "facecast.db") as db:
        db.row_factory = sqlite3.Row
        row = db.execute("SELECT * FROM jobs WHERE id = ?", (int(job_id.removeprefix("job_")),))
        return dict(row.fetchone())


def charges(client: httpx.Client, job_id: str) -> list[dict[str, object]]:
    ledger = client.get("/api/v1/account/ledger", params={"page_size": 100}).json()["items"]
    return [e for e in ledger if e["job_id"] == job_id and e["kind"] == "charge"]


def start_long_render(client: httpx.Client) -> str:
    avatar = client.get("/api/v1/avatars").json()["items"][0]["id"]
    r = client.post("/api/v1/talking-photos", json={"avatar_id": avatar, "text": LONG_TEXT})
    assert r.status_code == 201, r.text
    job = r.json()["id"]
    # rendering frames (not just loading models): past the speech stage
    wait_for_job(client, job, until={"running"}, timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = client.get(f"/api/v1/jobs/{job}").json()
        assert state["status"] == "running", state
        if state["progress"] >= 10:
            return job
        time.sleep(0.05)
    raise AssertionError("the render never got going")


def test_worker_killed_mid_render_is_retried_and_charged_once(
        server: ServerProcess, home: Path) -> None:
    with server.client() as client:
        job = start_long_render(client)
        worker = str(job_row(home, job)["worker"])
        pid = int(worker.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)
        done = wait_for_job(client, job, timeout=240)
        assert done["status"] == "succeeded", done
        assert done["attempts"] == 2
        assert str(job_row(home, job)["worker"]) != worker  # a new worker process ran it
        assert [c["amount"] for c in charges(client, job)] == [-done["cost"]]
        assert httpx.get(done["result"]["files"]["video"]["url"]).content[4:8] == b"ftyp"


def test_whole_server_killed_mid_render_recovers_on_restart(home: Path) -> None:
    first = ServerProcess(home, **FAST_RECOVERY).start()
    try:
        with first.client() as client:
            job = start_long_render(client)
            queued = client.post("/api/v1/speech", json={"text": "Waiting in the queue."})
            assert queued.status_code == 201
    finally:
        first.kill9()  # the API, the consumer and its worker, all at once
    assert job_row(home, job)["status"] == "running"  # as the crash left it

    second = ServerProcess(home, port=first.port, **FAST_RECOVERY)
    second.admin_key = first.admin_key
    second.start()
    try:
        with second.client() as client:
            done = wait_for_job(client, job, timeout=240)
            assert done["status"] == "succeeded", done
            assert done["attempts"] == 2
            tts = wait_for_job(client, queued.json()["id"], timeout=120)
            assert tts["status"] == "succeeded", tts
            assert [c["amount"] for c in charges(client, job)] == [-done["cost"]]
            assert len(charges(client, tts["id"])) == 1
            listed = client.get("/api/v1/jobs").json()
            assert listed["total"] == 2
            assert {j["status"] for j in listed["items"]} == {"succeeded"}
    finally:
        second.stop()


def test_a_job_whose_workers_keep_dying_fails_with_a_clear_code(home: Path) -> None:
    srv = ServerProcess(home, max_attempts=1, **FAST_RECOVERY).start()
    try:
        with srv.client() as client:
            job = start_long_render(client)
            os.kill(int(str(job_row(home, job)["worker"]).rsplit(":", 1)[1]), signal.SIGKILL)
            done = wait_for_job(client, job, timeout=120)
            assert done["status"] == "failed"
            assert done["error"]["code"] == "worker_lost"
            assert "stopped" in done["error"]["message"]
            assert done["cost"] is None and charges(client, job) == []
            assert client.get("/api/v1/account").json()["held"] == 0
    finally:
        srv.stop()


def test_results_expire_and_say_so(home: Path) -> None:
    srv = ServerProcess(home, result_ttl_s=1.5, retention_interval_s=0.2,
                        maintenance_interval_s=0.1).start()
    try:
        with srv.client() as client:
            job = wait_for_job(client, client.post("/api/v1/speech",
                                                   json={"text": "Short lived."}).json()["id"])
            assert job["status"] == "succeeded"
            url = job["result"]["files"]["audio"]["url"]
            assert httpx.get(url).status_code == 200
            expired = wait_for_job(client, job["id"], until={"expired"}, timeout=30)
            assert expired["result"] is None
            assert expired["error"]["code"] == "result_expired"
            gone = httpx.get(url)
            assert gone.status_code in (403, 410)
            assert gone.json()["error"]["code"] in ("file_expired", "link_expired")
            assert not list((home / "service" / "storage" / "jobs").glob("*/*/*"))
    finally:
        srv.stop()
