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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from facecast import __version__
from facecast.api.compat import kit
from facecast.api.compat.kit import VendorError
from facecast.api.deps import CHECKED_URL
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


def _envelope(error: VendorError, request: Request | None) -> dict[str, Any]:
    rid = request_id(request) if request is not None else mapper.new_request_id()
    return {"code": error.code, "message": error.message, "request_id": rid}


def _invalid(exc: RequestValidationError) -> KlingError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return KlingError(1200, "the request body is not valid JSON", 400)
    return KlingError(1200, f"invalid request parameters: {kit.problems(errors)}", 400)


def _allowed(request: Request) -> str:
    routes = request.app.router.routes
    return ", ".join(m for m in METHODS if any(
        r.matches({**request.scope, "method": m})[0] == Match.FULL for r in routes))


def _routing(request: Request, exc: StarletteHTTPException) -> KlingError:
    if exc.status_code == 404:
        return KlingError(1202, "the requested method is invalid: no such endpoint "
                                "(see /v1/docs)", 404)
    if exc.status_code == 405:
        return KlingError(1202, f"the requested method is invalid: {request.method} is "
                                "not allowed here", 405, {"Allow": _allowed(request)})
    return KlingError(1200 if exc.status_code < 500 else 5000, str(exc.detail),
                      exc.status_code)


DOOR = kit.Door(
    name="Kling", error=KlingError, envelope=_envelope, from_facecast=mapper.from_facecast,
    invalid=_invalid, bad_body=lambda message: KlingError(1200, message, 400),
    routing=_routing,
    too_large=lambda limit: KlingError(1201, f"the request body is over {limit} bytes", 413),
    crash=KlingError(5000, "server internal error; it is logged", 500), log=log)


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
    app.include_router(router)
    kit.install(app, DOOR, service.settings.max_body_bytes)
    webhooks.register_format("kling", _callback_encoder(service))
    return app
