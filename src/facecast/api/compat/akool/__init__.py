"""The Akool-compatible v3 open API (``/api/open/v3``): talking avatar, talking
photo, audio (TTS and clone), avatars, voices and getToken.

A sub-application mounted at ``/api/open/v3`` with its own OpenAPI document
(``/api/open/v3/openapi.json``, ``/api/open/v3/docs``) and its own envelope:
every answer under the prefix, an unknown path or a crash included, is Akool's
``{code, msg[, data]}``. Callbacks are registered as the ``akool`` webhook
format: Akool's encrypted ``{signature, dataEncrypt, timestamp, nonce}``,
encrypted with the account's Akool client secret. See ``docs/compat/AKOOL.md``.
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
from facecast.service import webhooks
from facecast.service.core import Service
from facecast.service.models import WebhookDelivery

from . import crypto, mapper
from .mapper import AkoolError
from .routes import router

log = logging.getLogger("facecast.api.compat.akool")

DESCRIPTION = """Akool's v3 open API on facecast: change only the base URL.
Authenticate with `x-api-key: <facecast API key>` or `Authorization: Bearer <token>`
(from `POST /api/open/v3/getToken {clientId, clientSecret}`; make the pair with
`POST /api/v1/vendor-credentials {"vendor": "akool"}`). Every answer is
`{code, msg, data}`; `code` 1000 is success."""


# Akool answers every request it routes with HTTP 200 and the outcome in ``code`` ("if the
# value of the response code is not equal to 1000, the request is failed or wrong"); clients
# that throw on a 4xx/5xx status would never read it. Only a path or method that does not
# exist keeps its HTTP 404/405. AkoolError.status says what kind of failure it was (logs).
WIRE_STATUS = 200
ROUTING_STATUSES = (404, 405)


def error_response(error: AkoolError, routing: bool = False) -> JSONResponse:
    return JSONResponse({"code": error.code, "msg": error.message},
                        status_code=error.status if routing else WIRE_STATUS,
                        headers=error.headers)


async def _akool_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AkoolError)
    return error_response(exc)


async def _facecast_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacecastError)
    error = mapper.from_facecast(exc)
    if error.status >= 500:
        log.error("unexpected service error %s: %s", exc.code, exc.message)
    return error_response(error)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(mapper.bad("the request body is not valid JSON"))
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('body', 'query'))}"
                f": {e.get('msg', 'invalid')}" for e in errors]
    message = problems[0] if problems else "invalid request"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return error_response(mapper.bad(message))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        error = AkoolError(404, 1008, "The content you get does not exist: no such endpoint "
                                      "(see /api/open/v3/docs)")
    elif exc.status_code == 405:
        error = AkoolError(405, 1003, f"Parameter error: {request.method} is not allowed here",
                           dict(exc.headers or {}))
    elif (failure := body_failure(request, exc)) is not None:
        error = mapper.bad(f"{failure[1]} [{failure[0]}]")
    else:
        error = AkoolError(exc.status_code, 1003 if exc.status_code < 500 else 1015,
                           str(exc.detail))
    return error_response(error, routing=exc.status_code in ROUTING_STATUSES)


class CatchAll:
    """Answers an unexpected exception with Akool's envelope (code 1015) instead of
    letting it reach the parent app, which would log it a second time."""

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
            log.exception("unhandled error in the Akool API")
            if started:
                raise
            response = JSONResponse({"code": 1015, "msg": "server internal error, please try "
                                     "again later; it is logged"}, status_code=WIRE_STATUS)
            await response(scope, receive, send)


class JsonBody:
    """Reads a body without a JSON content type as JSON: Akool's own Python sample sends
    ``json.dumps(...)`` with no Content-Type, and its Java samples label JSON text/plain."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            kind = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
            if kind in (b"", b"text/plain"):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


class MissingCredential(RuntimeError):
    """The account has no live Akool pair to encrypt the callback with."""


def _callback_encoder(service: Service) -> webhooks.Encoder:
    def encode(delivery: WebhookDelivery, _secret: str) -> tuple[bytes, dict[str, str]]:
        # Akool's callbacks are encrypted with the Akool client secret, not the account's
        # webhook secret; a pair revoked after the job was made fails the delivery (it is
        # recorded, and not retried) rather than send the data in clear
        pair = service.vendor_secret(delivery.account_id, "akool")
        if pair is None:
            raise MissingCredential(f"account {delivery.account_id} has no live akool "
                                    "credential to encrypt the callback with")
        client_id, secret = pair
        body = crypto.envelope(mapper.callback_data(service, delivery), client_id, secret)
        return webhooks.standard_body(body), {"content-type": "application/json"}

    return encode


def create_app(service: Service) -> FastAPI:
    app = FastAPI(title="facecast: Akool-compatible v3 API", version=__version__,
                  description=DESCRIPTION, openapi_url="/openapi.json", docs_url="/docs",
                  redoc_url=None,
                  dependencies=CHECKED_URL)
    app.state.service = service
    app.add_exception_handler(AkoolError, _akool_error)
    app.add_exception_handler(FacecastError, _facecast_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(router)
    app.add_middleware(JsonBody)  # type: ignore[arg-type]
    app.add_middleware(CatchAll)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes,  # type: ignore[arg-type]
                       respond=lambda limit: JSONResponse(
                           {"code": 1003, "msg": f"Parameter error: the request body is over "
                                                 f"{limit} bytes"}, status_code=WIRE_STATUS))
    webhooks.register_format("akool", _callback_encoder(service))
    return app
