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

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facecast import __version__
from facecast.api.errors import body_failure
from facecast.api.limits import BodyLimit
from facecast.api.wire import CHECKED_URL
from facecast.errors import FacecastError
from facecast.service.core import Service

from . import mapper
from .mapper import KreadoError
from .routes import request_id, router

log = logging.getLogger("facecast.api.compat.kreado")

DESCRIPTION = """KreadoAI's API v3 on facecast: change only the host.
Send your facecast API key in the `apiToken` header. Every answer is
`{code, message, data, requestId}`; `code` "200" is success, other codes are
KreadoAI's (10002 parameter error, 10019 too many queued tasks, ...)."""


def _body(code: str, message: str, rid: str) -> dict[str, object]:
    return {"code": code, "message": message, "data": None, "requestId": rid}


# KreadoAI's document defines only the envelope's code ("405" expired login, "429", "10001"
# ...) and no HTTP statuses: like Akool, every answer to a routed request is HTTP 200 with
# the outcome in code, so clients that throw on 4xx/5xx still read it. A path or method
# that does not exist keeps its HTTP 404/405. KreadoError.status says what kind of failure
# it was (logs).
WIRE_STATUS = 200
ROUTING_STATUSES = (404, 405)


def error_response(request: Request, error: KreadoError, routing: bool = False) -> JSONResponse:
    return JSONResponse(_body(error.code, error.message, request_id(request)),
                        status_code=error.status if routing else WIRE_STATUS,
                        headers=error.headers)


async def _kreado_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KreadoError)
    return error_response(request, exc)


async def _facecast_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacecastError)
    error = mapper.from_facecast(exc)
    if error.status >= 500:
        log.error("unexpected service error %s: %s", exc.code, exc.message)
    return error_response(request, error)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(request, mapper.bad(str(exc.errors()[:1])))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error = KreadoError("400", "Failed: no such endpoint (see /apis/open/docs)", 404)
    elif exc.status_code == 405:
        # KreadoAI's own 405 means an expired login; a wrong method is a plain failure
        error = KreadoError("400", f"Failed: {request.method} is not allowed here", 405)
    elif (failure := body_failure(request, exc)) is not None:
        error = mapper.bad(f"{failure[1]} [{failure[0]}]")
    else:
        error = KreadoError("400" if exc.status_code < 500 else "10001", str(exc.detail),
                            exc.status_code)
    return error_response(request, error, routing=exc.status_code in ROUTING_STATUSES)


class CatchAll:
    """Answers an unexpected exception with KreadoAI's 10001 envelope. Starlette's own
    handler for ``Exception`` re-raises after answering, which in a mounted app would
    reach the parent app and be logged a second time as an ASGI crash."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error in the KreadoAI API")
            if started:
                raise
            response = JSONResponse(_body("10001", "Internal system exception; it is logged",
                                          mapper.new_request_id()), status_code=WIRE_STATUS)
            await response(scope, receive, send)


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="facecast: KreadoAI-compatible API (v3)", version=__version__,
                  description=DESCRIPTION, openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  dependencies=CHECKED_URL)
    app.state.service = service
    app.add_exception_handler(KreadoError, _kreado_error)
    app.add_exception_handler(FacecastError, _facecast_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(router)
    app.add_middleware(CatchAll)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes,  # type: ignore[arg-type]
                       respond=lambda limit: JSONResponse(
                           _body("10007", f"File size is too large: the request body is over "
                                          f"{limit} bytes", mapper.new_request_id()),
                           status_code=WIRE_STATUS))
    return app
