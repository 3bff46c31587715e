"""The API keeps answering while renders run: the mechanisms behind ``bench_service.py``.

Not timed (the speed bars live in the benchmark): worker processes and every thread of
theirs run at a lower CPU priority than the API, ``--api-workers 2`` answers from two
processes sharing one port, a crowd of status polls that miss the row cache at once
reads the job from the database once, and an API process keeps the objects of its
start-up out of the garbage collector's full collections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import uvicorn

from facecast.api.app import create_app
from facecast.service.accounts import Principal
from facecast.service.core import Service
from facecast.service.models import Job
from facecast.service.settings import Settings
from service_support import ServerProcess, free_port, wait_for_job


def thread_nice_values(pid: int) -> dict[int, int]:
    """thread id -> nice value, for every thread of a process (Linux keeps one per thread)."""
    values = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended in between
            continue
        values[int(task.name)] = int(fields[16])  # field 19 of proc(5); 3 is the first here
    return values


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "home", worker_nice=10).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_workers_and_all_their_threads_run_below_the_api(server: ServerProcess) -> None:
    with server.client() as client:
        r = client.post("/api/v1/speech", json={"text": "Priorities, please."})
        assert r.status_code == 201, r.text
        # after a job the worker has loaded the speech engine and numpy: their thread
        # pools exist (OpenBLAS starts its pool when numpy is imported)
        assert wait_for_job(client, r.json()["id"])["status"] == "succeeded"
    assert server.proc is not None
    api = psutil.Process(server.proc.pid)
    assert set(thread_nice_values(api.pid).values()) == {0}
    workers = api.children(recursive=True)
    assert len(workers) >= 2  # the consumer and its worker process
    for worker in workers:
        nice = thread_nice_values(worker.pid)
        assert nice and set(nice.values()) == {10}, (worker.cmdline(), nice)


def _api_processes(server: ServerProcess) -> list[psutil.Process]:
    """The children of ``facecast serve`` listening on its port."""
    assert server.proc is not None
    found = []
    for child in psutil.Process(server.proc.pid).children():
        listening = [
            c
            for c in child.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
        ]
        if listening:
            found.append(child)
    return found


def _server_side_holders(server: ServerProcess, client_port: int) -> set[int]:
    """Pids of the serve processes holding the server end of one client connection."""
    assert server.proc is not None
    parent = psutil.Process(server.proc.pid)
    return {
        p.pid
        for p in (parent, *parent.children())
        for c in p.net_connections("tcp")
        if c.status == psutil.CONN_ESTABLISHED
        and c.laddr.port == server.port
        and c.raddr
        and c.raddr.port == client_port
    }


def _answered_by(server: ServerProcess, stopped: int) -> int:
    """With API process ``stopped`` halted, the pid of the process that answers a request."""
    os.kill(stopped, signal.SIGSTOP)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        conn.request("GET", "/api/v1/account", headers=headers)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        response.read()
        assert conn.sock is not None  # kept alive: its server end is still open
        holders = _server_side_holders(server, conn.sock.getsockname()[1])
        conn.close()
    finally:
        # uvicorn's supervisor replaces a process silent for 5 s: it may be gone
        with contextlib.suppress(ProcessLookupError):
            os.kill(stopped, signal.SIGCONT)
    assert len(holders) == 1 and stopped not in holders, holders
    return holders.pop()


def test_api_workers_answer_from_two_processes(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "home", args=("--api-workers", "2"), workers=0).start()
    try:
        api = _api_processes(server)
        assert len(api) == 2
        assert server.proc is not None and server.proc.pid not in {p.pid for p in api}
        # one answers while the other is halted, then the other while the first is
        first = _answered_by(server, stopped=api[0].pid)
        second = _answered_by(server, stopped=first)
        assert second != first  # two processes of `serve` answered
    finally:
        assert server.stop() == 0
    for process in api:  # the supervisor stopped its API processes
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


class GatedService(Service):
    """A real Service whose job reads wait until ``polls`` polls have looked in the cache,
    so that they all miss it together however slowly this machine runs."""

    def __init__(self, settings: Settings, polls: int) -> None:
        super().__init__(settings, enqueue=lambda _job_id: None)  # no workers: stays queued
        self.polls, self.looked, self.reads = polls, 0, 0
        self.all_looked = threading.Event()
        self.gate = False
        self._count = threading.Lock()

    def recent_job(self, principal: Principal, job_id: int) -> Job | None:
        self.looked += 1  # on the event loop
        if self.looked >= self.polls:
            self.all_looked.set()
        return super().recent_job(principal, job_id)

    def job(self, principal: Principal, job_id: int) -> Job:
        with self._count:
            self.reads += 1
        if self.gate:
            assert self.all_looked.wait(30), f"only {self.looked} of {self.polls} polls came"
        return super().job(principal, job_id)


@contextlib.contextmanager
def serving(service: Service) -> Iterator[str]:
    """The service's app under uvicorn on a loopback port in a thread; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(service, maintenance=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:  # uvicorn offers no event to wait on
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        service.db.dispose()


def test_polls_missing_the_cache_together_read_the_job_once(tmp_path: Path) -> None:
    polls = 60
    service = GatedService(Settings(home=tmp_path, rate_limit="1000000/second"), polls)
    key = service.bootstrap(previews=False)
    with serving(service) as base:
        headers = {"Authorization": f"Bearer {key}"}
        r = httpx.post(f"{base}/api/v1/speech", json={"text": "Poll me."}, headers=headers)
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        service.reads, service.gate = 0, True

        async def poll_all() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=polls)
            async with httpx.AsyncClient(
                base_url=base, headers=headers, timeout=60, limits=limits
            ) as client:
                return await asyncio.gather(
                    *(client.get(f"/api/v1/jobs/{job_id}") for _ in range(polls))
                )

        answers = asyncio.run(poll_all())
    assert [a.status_code for a in answers] == [200] * polls
    assert {a.json()["id"] for a in answers} == {job_id}
    assert service.reads == 1


def test_the_api_keeps_its_start_up_objects_out_of_the_collector(tmp_path: Path) -> None:
    # a full collection of the ~200,000 objects start-up makes stops every request in
    # the process for about 100 ms; frozen, they are not scanned again
    gc.unfreeze()
    service = Service(Settings(home=tmp_path), enqueue=lambda _job_id: None)
    service.bootstrap(previews=False)
    try:
        with serving(service) as base:
            assert httpx.get(f"{base}/health").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
