"""The KreadoAI-compatible API (v3), mounted at ``/apis/open``.

A sub-application with its own OpenAPI document (``/apis/open/openapi.json``,
``/apis/open/docs``) and its own envelope: every answer under ``/apis/open``,
an unknown path, an oversized body or a crash included, is KreadoAI's
``{code, message, data, requestId}`` with ``code`` a string ("200" on
success). Authenticate with the ``apiToken`` header set to a facecast API key.
See ``docs/compat/KREADO.md`` for what is supported and what differs.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from facecast import __version__
from facecast.api.compat import kit
from facecast.api.compat.kit import VendorError
from facecast.api.deps import CHECKED_URL
from facecast.service.core import Service

from . import mapper
from .mapper import KreadoError
from .routes import request_id, router

log = logging.getLogger("facecast.api.compat.kreado")

DESCRIPTION = """KreadoAI's API v3 on facecast: change only the host.
Send your facecast API key in the `apiToken` header. Every answer is
`{code, message, data, requestId}`; `code` "200" is success, other codes are
KreadoAI's (10002 parameter error, 10019 too many queued tasks, ...)."""


# KreadoAI's document defines only the envelope's code ("405" expired login, "429", "10001"
# ...) and no HTTP statuses: like Akool, every answer to a routed request is HTTP 200 with
# the outcome in code, so clients that throw on 4xx/5xx still read it. A path or method
# that does not exist keeps its HTTP 404/405. KreadoError.status says what kind of failure
# it was (logs).
WIRE_STATUS = 200


def _envelope(error: VendorError, request: Request | None) -> dict[str, Any]:
    rid = request_id(request) if request is not None else mapper.new_request_id()
    return {"code": error.code, "message": error.message, "data": None, "requestId": rid}


def _routing(request: Request, exc: StarletteHTTPException) -> KreadoError:
    if exc.status_code == 404:
        return KreadoError("400", "Failed: no such endpoint (see /apis/open/docs)", 404)
    if exc.status_code == 405:
        # KreadoAI's own 405 means an expired login; a wrong method is a plain failure
        return KreadoError("400", f"Failed: {request.method} is not allowed here", 405)
    return KreadoError("400" if exc.status_code < 500 else "10001", str(exc.detail),
                       exc.status_code)


DOOR = kit.Door(
    name="KreadoAI", error=KreadoError, envelope=_envelope,
    from_facecast=mapper.from_facecast,
    invalid=lambda exc: mapper.bad(str(exc.errors()[:1])), bad_body=mapper.bad,
    routing=_routing,
    too_large=lambda limit: KreadoError(
        "10007", f"File size is too large: the request body is over {limit} bytes"),
    crash=KreadoError("10001", "Internal system exception; it is logged", 500),
    wire_status=WIRE_STATUS, log=log)


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="facecast: KreadoAI-compatible API (v3)", version=__version__,
                  description=DESCRIPTION, openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  dependencies=CHECKED_URL)
    app.state.service = service
    app.include_router(router)
    kit.install(app, DOOR, service.settings.max_body_bytes)
    return app
