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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from facecast import __version__
from facecast.api.compat import kit
from facecast.api.compat.kit import VendorError
from facecast.api.deps import CHECKED_URL
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


def _envelope(error: VendorError, _request: Request | None) -> dict[str, Any]:
    return {"code": error.code, "msg": error.message}


def _invalid(exc: RequestValidationError) -> AkoolError:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return mapper.bad("the request body is not valid JSON")
    return mapper.bad(kit.problems(errors))


def _routing(request: Request, exc: StarletteHTTPException) -> AkoolError:
    if exc.status_code == 404:
        return AkoolError(1008, "The content you get does not exist: no such endpoint "
                                "(see /api/open/v3/docs)", 404)
    if exc.status_code == 405:
        return AkoolError(1003, f"Parameter error: {request.method} is not allowed here",
                          405, dict(exc.headers or {}))
    return AkoolError(1003 if exc.status_code < 500 else 1015, str(exc.detail),
                      exc.status_code)


DOOR = kit.Door(
    name="Akool", error=AkoolError, envelope=_envelope, from_facecast=mapper.from_facecast,
    invalid=_invalid, bad_body=mapper.bad, routing=_routing,
    too_large=lambda limit: mapper.bad(f"the request body is over {limit} bytes"),
    crash=AkoolError(1015, "server internal error, please try again later; it is logged", 500),
    wire_status=WIRE_STATUS, log=log)


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
    app.include_router(router)
    app.add_middleware(JsonBody)  # type: ignore[arg-type]
    kit.install(app, DOOR, service.settings.max_body_bytes)
    webhooks.register_format("akool", _callback_encoder(service))
    return app
