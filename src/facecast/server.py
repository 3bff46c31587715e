"""``facecast serve``: the whole service on one machine.

Migrates the database, creates the first admin key on first start, starts
the worker consumer as a child process (unless ``workers`` is 0, for
machines where ``facecast worker`` runs elsewhere), then serves HTTP with
uvicorn until Ctrl-C / SIGTERM, and stops the workers. Jobs that were
running when it stopped are requeued when it (or another server) runs again.
A child that dies meanwhile (killed, out of memory) is started again
(:class:`Children`): its jobs are requeued and its live streams end as ``worker_lost``,
as they would on another machine, and the service keeps its workers.

With ``api_workers`` above 1, several API processes (uvicorn's supervisor, one listening
socket shared by all) answer requests, and this process only supervises them and runs
the upkeep thread (reaper, webhooks, retention) once for all of them. Live streams are
then placed on live workers (any API process answers for any stream), and a live worker
runs here as a child too (``FACECAST_LIVE_LOCAL_WORKER=false``: only on other machines).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from facecast.service.scratch import sweep
from facecast.service.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from facecast.service.core import Service


def start_workers(settings: Settings) -> subprocess.Popen[bytes] | None:
    if settings.workers <= 0:
        return None
    return subprocess.Popen([sys.executable, "-m", "facecast.service.consumer",
                             "--die-with-parent"], env=os.environ.copy())


def start_live_worker(settings: Settings) -> subprocess.Popen[bytes] | None:
    """A live worker on this machine, when live streams are placed on live workers (as
    they are with several API processes) and none is said to run elsewhere only."""
    if not (settings.live_placed and settings.live_local_worker):
        return None
    return subprocess.Popen([sys.executable, "-m", "facecast.api.live_worker",
                             "--die-with-parent"], env=os.environ.copy())


def _stop(child: subprocess.Popen[bytes] | None) -> None:
    if child is None:
        return
    child.terminate()
    try:
        child.wait(timeout=15)
    except subprocess.TimeoutExpired:
        child.kill()


log = logging.getLogger("facecast.serve")

CHECK_S = 1.0  # how often the children are looked at
RESTART_WAIT_S = (1.0, 60.0)  # the wait before a restart: first, and at most (doubling
# while a child keeps dying within STABLE_S of its start, so a broken one does not spin)
STABLE_S = 30.0


@dataclass
class _Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes] | None]
    proc: subprocess.Popen[bytes]
    started: float
    wait_s: float = RESTART_WAIT_S[0]
    due: float | None = None  # when it is started again, once seen dead
    restarts: int = 0


@dataclass
class Children:
    """serve's child processes (the job consumer, the live worker), each started again
    when it dies: after ``RESTART_WAIT_S[0]``, doubling up to ``RESTART_WAIT_S[1]`` while
    it keeps dying young."""

    _children: list[_Child] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def add(self, name: str, start: Callable[[], subprocess.Popen[bytes] | None]) -> bool:
        """Start one (``start`` returns None where it is not wanted); True if started."""
        proc = start()
        if proc is not None:
            self._children.append(_Child(name, start, proc, time.monotonic()))
        return proc is not None

    def watch(self) -> None:
        self._thread = threading.Thread(target=self._run, name="facecast-serve-children",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more restarts; then each child is stopped, in reverse order of start."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        for child in reversed(self._children):
            _stop(child.proc)

    def _run(self) -> None:
        while not self._stopping.wait(CHECK_S):
            for child in self._children:
                self._check(child, time.monotonic())

    def _check(self, child: _Child, now: float) -> None:
        code = child.proc.poll()
        if code is None:
            return
        if child.due is None:
            if now - child.started >= STABLE_S:
                child.wait_s = RESTART_WAIT_S[0]
            child.due = now + child.wait_s
            log.warning("facecast serve: the %s (pid %d) exited with code %s; starting it "
                        "again in %.0f s", child.name, child.proc.pid, code, child.wait_s)
            child.wait_s = min(2 * child.wait_s, RESTART_WAIT_S[1])
            return
        if now < child.due:
            return
        proc = child.start()
        if proc is not None:
            child.proc, child.started, child.due = proc, now, None
            child.restarts += 1


def api_process_app() -> FastAPI:
    """The app of one of several API processes: uvicorn's factory, called in each child."""
    from facecast.api.app import create_app
    from facecast.service.core import Service
    from facecast.service.processes import die_with_parent

    die_with_parent()  # the supervisor killed outright must not leave API processes serving
    return create_app(Service(Settings()), maintenance=False)  # the supervisor runs it


def _serve_api_processes(service: Service, settings: Settings) -> None:
    import uvicorn

    from facecast.service.maintenance import Maintenance

    upkeep = Maintenance(service.db, service.storage, settings, service.enqueue)
    upkeep.start()
    try:
        # uvicorn binds the socket here, spawns the processes (each builds its app with
        # api_process_app), restarts one that dies and stops them all on Ctrl-C / SIGTERM
        uvicorn.run("facecast.server:api_process_app", factory=True, host=settings.host,
                    port=settings.port, workers=settings.api_workers, log_level="warning",
                    access_log=False, proxy_headers=False, ssl_certfile=settings.ssl_certfile,
                    ssl_keyfile=settings.ssl_keyfile)
    finally:
        upkeep.stop()


def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    import uvicorn

    from facecast.api.app import create_app
    from facecast.service.core import Service

    service = Service(settings)
    sweep(settings.scratch_root)  # what work killed before this start left behind
    first_key = service.bootstrap()
    children = Children()
    children.add("job worker consumer", lambda: start_workers(settings))
    live_worker = children.add("live worker", lambda: start_live_worker(settings))
    children.watch()
    try:
        announce(f"facecast {settings.base_url} (API docs at {settings.base_url}/docs; "
                 f"data in {settings.service_dir}; {settings.api_workers} API process(es), "
                 f"{settings.workers} worker process(es)"
                 + (", a live worker" if live_worker else "") + ")")
        if first_key:
            announce(f"first start: admin API key (shown once, keep it): {first_key}")
        if settings.api_workers > 1:
            _serve_api_processes(service, settings)
            return
        app = create_app(service)
        # forwarded headers are believed from FACECAST_TRUSTED_PROXIES only (api/public_base.py),
        # not from uvicorn's default of any loopback peer
        config = uvicorn.Config(app, host=settings.host, port=settings.port,
                                log_level="warning", access_log=False, proxy_headers=False,
                                ssl_certfile=settings.ssl_certfile,
                                ssl_keyfile=settings.ssl_keyfile)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after stopping
            uvicorn.Server(config).run()
    finally:
        children.stop()  # the live worker's sessions end (shutdown) before the API goes
        service.db.dispose()
