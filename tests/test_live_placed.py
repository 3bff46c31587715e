"""Live streams placed on a live worker (issue #16, "sessions are placed on worker
machines like jobs"): real processes on loopback, no mocks.

Two API servers share one database: ``a``, the app in this process (placement on
workers, so it runs no session itself; a test can run its reaper's round at a chosen
time), and ``b``, a real ``facecast serve`` with two API processes, whose live worker
(its child, ``facecast.api.live_worker``) runs every session, at most one at a time. A
stream opened through one is watched (aiortc over WHEP), spoken to, followed (server-sent
events) and ended through the other; a full worker refuses (``capacity_reached``); a
worker killed outright stops heartbeating, and its stream ends (``worker_lost``) and is
charged no further, and serve starts its live worker again."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import select

from facecast.service.models import LiveWorker
from live_support import Events, LiveServer, Viewer, live_server, wait_for, wav_base64
from service_support import ServerProcess

API = "/api/v1"
SMALL = {"size": "256x256"}  # the picture is not looked at: less CPU
LEASE_S = 5.0  # a worker silent this long is lost (short here; 30 s by default)
BEAT_S = 0.5


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, ServerProcess]]:
    home = tmp_path_factory.mktemp("placed")
    with live_server(home, live_placement="workers", lease_s=LEASE_S,
                     heartbeat_s=BEAT_S) as a:
        b = ServerProcess(home, api_workers=2, workers=0, live_max_sessions=1,
                          heartbeat_s=BEAT_S, lease_s=LEASE_S, rate_limit="1000/second")
        b.start()
        try:
            wait_for(lambda: a.service.live.capacity() == 1, 90, "the live worker to register",
                     0.1)
            yield a, b
        finally:
            b.stop()


@pytest.fixture(scope="module")
def avatar(pair: tuple[LiveServer, ServerProcess]) -> str:
    a, _ = pair
    return str(httpx.get(f"{a.url}{API}/avatars", headers=a.headers()).json()["items"][0]["id"])


def create(url: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    return httpx.post(f"{url}{API}/streams", json=body, headers=headers, timeout=120)


def get(url: str, stream_id: str, headers: dict[str, str]) -> dict[str, Any]:
    r = httpx.get(f"{url}{API}/streams/{stream_id}", headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def sessions(process: psutil.Process) -> list[psutil.Process]:
    """A process's running live sessions: its children spawned by multiprocessing (not
    the resource tracker it starts with the first)."""
    found = []
    for child in process.children():
        with contextlib.suppress(psutil.Error):  # ended meanwhile (a zombie, or gone)
            if child.status() != psutil.STATUS_ZOMBIE and \
                    "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def ended(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def worker_pid(a: LiveServer) -> int:
    """The pid of the live worker registered last (a lost one's row stays a while)."""
    with a.service.db.session() as session:
        return int(session.scalars(select(LiveWorker.pid).order_by(LiveWorker.id.desc())
                                   .limit(1)).one())


def test_any_api_process_answers_any_stream(pair: tuple[LiveServer, ServerProcess],
                                            avatar: str, tmp_path: Path) -> None:
    a, b = pair
    headers = a.headers()
    r = create(a.url, headers, avatar_id=avatar, **SMALL)
    assert r.status_code == 201, r.text
    live = r.json()
    sid = live["id"]
    assert live["status"] == "live" and live["minutes_charged"] == 1
    # the session runs on the live worker, not in either API server
    worker = psutil.Process(worker_pid(a))
    assert worker.pid not in {b.proc.pid if b.proc else 0, os.getpid()}
    assert len(sessions(worker)) == 1 and not sessions(psutil.Process())

    events = Events(f"{b.url}{API}/streams/{sid}/events", headers)
    viewer = Viewer()
    try:
        # WHEP through b with the signed URL a handed out: the worker's answer
        r = viewer.connect(live["whep_url"].replace(a.url, b.url))
        assert r.status_code == 201, r.text
        assert r.text.startswith("v=0") and "a=candidate" in r.text
        assert r.headers["Location"].startswith(f"{API}/streams/{sid}/whep/")
        wait_for(lambda: viewer.video_frames >= 10 and viewer.audio_frames >= 10, 30,
                 "video and audio frames from the live worker")
        r = httpx.post(f"{b.url}{API}/streams/{sid}/speak", headers=headers,
                       json={"text": "Hello from the other API process."})
        assert r.status_code == 202, r.text
        said = r.json()["id"]
        events.wait("utterance_started", utterance_id=said)
        assert events.wait("word", utterance_id=said)["word"]
        events.wait("utterance_ended", utterance_id=said)
        # audio: decoded in b's process, streamed on to the worker as it is decoded
        r = httpx.post(f"{b.url}{API}/streams/{sid}/speak", headers=headers,
                       json={"audio": {"base64": wav_base64(tmp_path, seconds=1.0)}})
        assert r.status_code == 202, r.text
        events.wait("utterance_ended", utterance_id=r.json()["id"])
        r = httpx.post(f"{a.url}{API}/streams/{sid}/interrupt", headers=headers)
        assert r.status_code == 200 and r.json()["stream_id"] == sid, r.text
        # what the worker's heartbeat reports, read through either server
        seen = wait_for(lambda: (x := get(a.url, sid, headers))["viewers"] == 1
                        and x["media_seconds"] > 0 and x, 10, "the heartbeat's report")
        assert seen["status"] == "live"
        assert [s["id"] for s in httpx.get(f"{b.url}{API}/streams",
                                           headers=headers).json()["items"]] == [sid]
        metrics = httpx.get(f"{b.url}/metrics").text
        assert 'facecast_live_sessions{of="open"} 1.0' in metrics
        assert 'facecast_live_sessions{of="capacity"} 1.0' in metrics

        # the worker is full: placement refuses, whichever server is asked
        r = create(b.url, headers, avatar_id=avatar, **SMALL)
        assert r.status_code == 503 and r.json()["error"]["code"] == "capacity_reached", r.text
        assert "Retry-After" in r.headers

        # the viewer leaves through b; the stream ends through a
        resource = f"{b.url}{viewer.resource}"
        assert httpx.delete(resource, headers=headers).status_code == 200
        assert get(a.url, sid, headers)["viewers"] == 0
        wait_for(lambda: viewer.hung_up, 15, "the viewer's connection to be ended")
        assert httpx.delete(resource, headers=headers).json()["error"]["code"] == \
            "viewer_not_found"
        r = httpx.delete(f"{a.url}{API}/streams/{sid}", headers=headers, timeout=30)
        assert r.status_code == 200 and r.json()["ended_reason"] == "deleted", r.text
        assert events.wait("closed")["reason"] == "deleted"
        assert events.ended.wait(10)
        assert events.ids == sorted(events.ids)
        # the worker's backlog, relayed: a reconnect gets what came after its last id
        again = Events(f"{a.url}{API}/streams/{sid}/events",
                       {**headers, "Last-Event-ID": str(events.ids[-2])})
        assert again.ended.wait(10) and again.types() == ["closed"]
        again.close()
        r = httpx.get(f"{b.url}{API}/streams/{sid}/events",
                      headers={**headers, "Last-Event-ID": str(events.ids[-1])})
        assert r.status_code == 204, r.text
        wait_for(lambda: not sessions(worker), 15, "the session's process to end")
        assert a.service.live.open_count() == 0
    finally:
        viewer.close()
        events.close()


@pytest.mark.parametrize("reason", ["idle", "max_duration"])
def test_the_reaper_ends_idle_and_expired_streams_on_their_worker(
        pair: tuple[LiveServer, ServerProcess], avatar: str, reason: str) -> None:
    """The API's reaper, reading the table, ends a placed stream that sat idle or ran out
    its time: ``closed`` with that reason reaches the followers through the other API
    server, the session's process on the worker ends, and its slot is free again."""
    a, b = pair
    headers = a.headers()
    r = create(b.url, headers, avatar_id=avatar, **SMALL)
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    worker = psutil.Process(worker_pid(a))
    (session,) = sessions(worker)
    settings = a.service.settings
    after = (settings.live_idle_timeout_s if reason == "idle"
             else settings.live_max_duration_s)
    assert settings.live_idle_timeout_s < settings.live_max_duration_s  # idle comes first
    events = Events(f"{b.url}{API}/streams/{sid}/events", headers)
    try:
        a.service.live.tick(now=time.time() + after + 1)
        assert events.wait("closed")["reason"] == reason
        seen = get(b.url, sid, headers)
        assert seen["status"] == "ended" and seen["ended_reason"] == reason
        wait_for(lambda: ended(session), 15, "the session's process to end")
    finally:
        events.close()
    wait_for(lambda: a.service.live.capacity() - a.service.live.open_count() == 1, 15,
             "the worker's slot to be free")


def test_a_lost_worker_ends_its_streams(pair: tuple[LiveServer, ServerProcess],
                                        avatar: str) -> None:
    """Last (it kills the live worker): the worker stops heartbeating; its stream ends
    with ``worker_lost``, and no minute is charged after; serve starts a new live worker."""
    a, b = pair
    price = a.service.settings.live_price_per_minute
    key = a.account(credits=5 * price)
    headers = a.headers(key)
    r = create(b.url, headers, avatar_id=avatar, **SMALL)  # the slot the last test freed
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    # minute 2 is due a minute on: charged once, however many reapers run the round
    started = time.time()
    for _ in range(2):
        a.service.live.tick(now=started + 61)
    assert get(b.url, sid, headers)["minutes_charged"] == 2
    assert a.balance(key) == 3 * price

    events = Events(f"{b.url}{API}/streams/{sid}/events", headers)
    try:
        worker = psutil.Process(worker_pid(a))
        (session,) = sessions(worker)
        os.kill(worker.pid, signal.SIGKILL)
        closed = events.wait("closed", timeout=LEASE_S + 20)
        assert closed["reason"] == "worker_lost"
        seen = get(a.url, sid, headers)
        assert seen["status"] == "ended" and seen["ended_reason"] == "worker_lost"
        wait_for(lambda: ended(session), 15, "the session's process to end with its worker")
    finally:
        events.close()
    # ten minutes on, nothing more is charged
    a.service.live.tick(now=time.time() + 600)
    assert get(a.url, sid, headers)["minutes_charged"] == 2 and a.balance(key) == 3 * price
    r = httpx.get(f"{a.url}{API}/account/ledger", headers=headers)
    assert [e["amount"] for e in r.json()["items"] if e["kind"] == "charge"] == [-price] * 2
    # serve starts its live worker again, which takes streams as the first did
    wait_for(lambda: a.service.live.capacity() == 1 and worker_pid(a) != worker.pid, 60,
             "serve to start its live worker again", 0.1)
    new = psutil.Process(worker_pid(a))
    assert new.ppid() == b.proc.pid  # type: ignore[union-attr]
    r = create(a.url, a.headers(), avatar_id=avatar, **SMALL)
    assert r.status_code == 201, r.text
    r = httpx.delete(f"{b.url}{API}/streams/{r.json()['id']}", headers=a.headers())
    assert r.status_code == 200 and r.json()["ended_reason"] == "deleted", r.text


def test_claims_at_once_never_overfill_a_worker(tmp_path: Path) -> None:
    """Thirty-two placements at once on a worker with room for two: two win, whatever the
    order (each claim is one conditional UPDATE); a slot given back is claimed again."""
    from concurrent.futures import ThreadPoolExecutor

    from facecast.service import live_workers
    from facecast.service.db import Database

    db = Database(f"sqlite:///{tmp_path / 'claims.db'}")
    db.migrate()
    try:
        worker = live_workers.register(db, "http://127.0.0.1:9", capacity=2)
        with ThreadPoolExecutor(32) as pool:
            won = [w for w in pool.map(lambda _: live_workers.claim(db, 60.0), range(32)) if w]
        assert [w.id for w in won] == [worker] * 2
        with db.session() as session:
            assert session.get(LiveWorker, worker).sessions == 2  # type: ignore[union-attr]
            live_workers.release(session, worker)
        assert live_workers.claim(db, 60.0) is not None
        assert live_workers.claim(db, 60.0) is None
        live_workers.unregister(db, worker)  # no worker at all: nothing to claim
        assert live_workers.claim(db, 60.0) is None
    finally:
        db.dispose()
