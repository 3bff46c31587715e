"""``facecast serve``: the whole service on one machine.

Migrates the database, creates the first admin key on first start, starts
the worker consumer as a child process (unless ``workers`` is 0, for
machines where ``facecast worker`` runs elsewhere), then serves HTTP with
uvicorn until Ctrl-C / SIGTERM, and stops the workers. Jobs that were
running when it stopped are requeued when it (or another server) runs again.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable

from facecast.service.scratch import sweep
from facecast.service.settings import Settings


def start_workers(settings: Settings) -> subprocess.Popen[bytes] | None:
    if settings.workers <= 0:
        return None
    return subprocess.Popen([sys.executable, "-m", "facecast.service.consumer",
                             "--die-with-parent"], env=os.environ.copy())


def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    import uvicorn

    from facecast.api.app import create_app
    from facecast.service.core import Service

    service = Service(settings)
    sweep(settings.scratch_root)  # what work killed before this start left behind
    first_key = service.bootstrap()
    workers = start_workers(settings)
    try:
        app = create_app(service)
        announce(f"facecast {settings.base_url} (API docs at {settings.base_url}/docs; "
                 f"data in {settings.service_dir}; {settings.workers} worker process(es))")
        if first_key:
            announce(f"first start: admin API key (shown once, keep it): {first_key}")
        # forwarded headers are believed from FACECAST_TRUSTED_PROXIES only (api/public_base.py),
        # not from uvicorn's default of any loopback peer
        config = uvicorn.Config(app, host=settings.host, port=settings.port,
                                log_level="warning", access_log=False, proxy_headers=False,
                                ssl_certfile=settings.ssl_certfile,
                                ssl_keyfile=settings.ssl_keyfile)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after stopping
            uvicorn.Server(config).run()
    finally:
        if workers is not None:
            workers.terminate()
            try:
                workers.wait(timeout=15)
            except subprocess.TimeoutExpired:
                workers.kill()
        service.db.dispose()
