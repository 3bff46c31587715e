"""``facecast serve``: the whole service on one machine.

Migrates the database, creates the first admin key on first start, starts
the worker consumer as a child process (unless ``workers`` is 0, for
machines where ``facecast worker`` runs elsewhere), then serves HTTP with
uvicorn until Ctrl-C / SIGTERM, and stops the workers. Jobs that were
running when it stopped are requeued when it (or another server) runs again.

With ``api_workers`` above 1, several API processes (uvicorn's supervisor, one listening
socket shared by all) answer requests, and this process only supervises them and runs
the upkeep thread (reaper, webhooks, retention) once for all of them. Live streams are
then placed on live workers (any API process answers for any stream), and a live worker
runs here as a child too (``FACECAST_LIVE_LOCAL_WORKER=false``: only on other machines).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
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
    workers = start_workers(settings)
    live_worker = start_live_worker(settings)
    try:
        announce(f"facecast {settings.base_url} (API docs at {settings.base_url}/docs; "
                 f"data in {settings.service_dir}; {settings.api_workers} API process(es), "
                 f"{settings.workers} worker process(es)"
                 + (", a live worker" if live_worker is not None else "") + ")")
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
        _stop(live_worker)  # its sessions end (shutdown) before the API goes
        _stop(workers)
        service.db.dispose()
