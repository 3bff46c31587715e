"""The FastAPI application: native API, signed file URLs, health, and (mounted
as sub-applications with their own error envelopes and OpenAPI documents) the
vendor-compatible APIs."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from facecast import __version__
from facecast.api.deps import CHECKED_URL
from facecast.api.errors import ERROR_RESPONSES, error_response, install_error_handlers
from facecast.api.limits import BodyLimit
from facecast.api.native.routes import account, jobs, library, streams
from facecast.api.native.wire import Health
from facecast.api.public_base import PublicBase
from facecast.service.core import Service
from facecast.service.jobs import active_counts
from facecast.service.maintenance import Maintenance

DESCRIPTION = """Self-hosted talking-avatar videos. Every call but `/health` needs an API key
(`Authorization: Bearer <key>` or `X-API-Key`). Work is asynchronous: a create call answers
with a job; poll `GET /api/v1/jobs/{id}` or give a `callback_url`. Errors are
`{"error": {"code", "message", "details"}}`."""


def create_app(service: Service, *, maintenance: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        upkeep = Maintenance(service.db, service.storage, service.settings, service.enqueue)
        if maintenance:
            upkeep.start()
        service.live.start()  # its sessions are this process's children: its own reaper
        # what start-up made (some 200,000 objects: the app, the libraries) lives as long
        # as the process; out of the collector's reach, a full collection scans only what
        # came later instead of stopping every request in the process for about 100 ms
        gc.freeze()
        try:
            yield
        finally:
            service.live.stop()  # every live session ends with the server
            if maintenance:
                upkeep.stop()

    app = FastAPI(title="facecast", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, responses=ERROR_RESPONSES,
                  dependencies=CHECKED_URL)
    app.state.service = service
    app.state.job_reads = {}  # status-poll reads in flight (api.native.routes.jobs)
    install_error_handlers(app)
    for module in (jobs, library, account, streams):
        app.include_router(module.router)

    @app.get("/health", response_model=Health, tags=["health"], responses={},
             summary="Liveness, with the number of unfinished jobs (no key needed)")
    def health() -> Health:
        counts = active_counts(service.db)
        return Health(status="ok", version=__version__, queued=counts.get("queued", 0),
                      running=counts.get("running", 0))

    from facecast.console import mount_console

    mount_console(app, service)  # the web console at /

    from facecast.api.compat import mount_compat
    from facecast.service.storage import LocalStorage

    if isinstance(service.storage, LocalStorage):
        from facecast.api.files import files_router

        app.include_router(files_router(service.storage))
    mounted = mount_compat(app, service)
    from facecast.api.metrics import install_metrics

    install_metrics(app, service)  # its request timer innermost: it reads the matched route
    if service.settings.public_url is None:  # links follow each request's scheme and host
        app.add_middleware(PublicBase,  # type: ignore[arg-type]
                           trusted=tuple(service.settings.trusted_proxies))
    # each vendor API answers an oversized body in its own envelope
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes,  # type: ignore[arg-type]
                       respond=lambda limit: error_response(
                           413, "payload_too_large", f"the request body is over the {limit} "
                           "byte limit"), skip_prefixes=tuple(mounted))
    return app
