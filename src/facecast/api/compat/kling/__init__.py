"""The Kling-compatible avatar API (``/v1/videos/avatar/image2video``).

A sub-application mounted at ``/v1`` with its own OpenAPI document
(``/v1/openapi.json``, ``/v1/docs``) and its own error envelope: every
answer under ``/v1``, an unknown path or a crash included, is Kling's
``{code, message, request_id[, data]}``. Kling callbacks are registered as the
``kling`` webhook format, rendered at send time so their URLs are fresh.
See ``docs/compat/KLING.md`` for what is supported and what differs.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facecast import __version__
from facecast.api.errors import body_failure
from facecast.api.limits import BodyLimit
from facecast.api.wire import CHECKED_URL
from facecast.errors import FacecastError
from facecast.service import webhooks
from facecast.service.core import Service
from facecast.service.models import WebhookDelivery

from . import mapper
from .mapper import KlingError
from .routes import request_id, router

log = logging.getLogger("facecast.api.compat.kling")

DESCRIPTION = """Kling's avatar (image2video) API on facecast: change only the base URL.
Authenticate with `Authorization: Bearer <JWT>` signed HS256 with your secret key
(`iss` = access key, `exp`, `nbf`); make the pair with
`POST /api/v1/vendor-credentials {"vendor": "kling"}`. Every answer is
`{code, message, request_id, data}`; `code` 0 is success."""

METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def error_response(request: Request, error: KlingError) -> JSONResponse:
    return JSONResponse({"code": error.code, "message": error.message,
                         "request_id": request_id(request)},
                        status_code=error.status, headers=error.headers)


async def _kling_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KlingError)
    return error_response(request, exc)


async def _facecast_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacecastError)
    error = mapper.from_facecast(exc)
    if error.status >= 500:
        log.error("unexpected service error %s: %s", exc.code, exc.message)
    return error_response(request, error)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(request, KlingError(400, 1200, "the request body is not valid "
                                                             "JSON"))
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('body', 'query'))}"
                f": {e.get('msg', 'invalid')}" for e in errors]
    message = problems[0] if problems else "invalid request"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return error_response(request, KlingError(400, 1200, f"invalid request parameters: "
                                                         f"{message}"))


def _allowed(request: Request) -> str:
    routes = request.app.router.routes
    return ", ".join(m for m in METHODS if any(
        r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error = KlingError(404, 1202, "the requested method is invalid: no such endpoint "
                                      "(see /v1/docs)")
    elif exc.status_code == 405:
        error = KlingError(405, 1202, f"the requested method is invalid: {request.method} is "
                                      "not allowed here", {"Allow": _allowed(request)})
    elif (failure := body_failure(request, exc)) is not None:
        error = KlingError(400, 1200, f"{failure[1]} [{failure[0]}]")
    else:
        error = KlingError(exc.status_code, 1200 if exc.status_code < 500 else 5000,
                           str(exc.detail))
    return error_response(request, error)


class CatchAll:
    """Answers an unexpected exception with Kling's 5000 envelope. Starlette's own
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
            log.exception("unhandled error in the Kling API")
            if started:
                raise
            response = JSONResponse({"code": 5000, "message": "server internal error; it is "
                                     "logged", "request_id": mapper.new_request_id()},
                                    status_code=500)
            await response(scope, receive, send)


def _callback_encoder(service: Service) -> webhooks.Encoder:
    def encode(delivery: WebhookDelivery, secret: str) -> tuple[bytes, dict[str, str]]:
        # Kling posts the query's data object itself; the Standard Webhooks headers are
        # extra, for receivers that want to verify the sender
        body = webhooks.standard_body(mapper.callback_body(service, delivery))
        return body, webhooks.standard_headers(delivery.msg_id, body, secret)

    return encode


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="facecast: Kling-compatible avatar API", version=__version__,
                  description=DESCRIPTION, openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  dependencies=CHECKED_URL)
    app.state.service = service
    app.add_exception_handler(KlingError, _kling_error)
    app.add_exception_handler(FacecastError, _facecast_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(router)
    app.add_middleware(CatchAll)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes,  # type: ignore[arg-type]
                       respond=lambda limit: JSONResponse(
                           {"code": 1201, "message": f"the request body is over {limit} bytes",
                            "request_id": uuid.uuid4().hex}, status_code=413))
    webhooks.register_format("kling", _callback_encoder(service))
    return app
