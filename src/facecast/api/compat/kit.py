"""What every vendor-compatible door shares: the vendor error base, the table-driven
mapping of facecast errors to vendor codes, the exception handlers and the catch-all
middleware.

A vendor package brings only its own values: a :class:`VendorError` subclass, an
:class:`ErrorTable` (facecast error code or class -> HTTP status + vendor code) and a
:class:`Door` (its envelope and the errors it answers with for unreadable requests,
unknown paths, oversized bodies and crashes). :func:`install` wires the handlers.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facecast.api.errors import body_failure, lookup
from facecast.api.limits import BodyLimit
from facecast.errors import FacecastError, LimitError

log = logging.getLogger("facecast.api.compat")

# Paths or methods that do not exist keep their HTTP status even where a vendor answers
# everything it routes with HTTP 200
ROUTING_STATUSES = (404, 405)


class VendorError(Exception):
    """A refusal in a vendor's terms: the vendor's ``code``, a ``message``, the HTTP
    ``status`` (sent as is by vendors whose documents use HTTP statuses, else only what
    kind of failure it was, for logs) and extra ``headers``."""

    default_status = 400

    def __init__(self, code: Any, message: str, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.headers = code, message, headers
        self.status = self.default_status if status is None else status
        # the old argument orders put the vendor code here: refuse them loudly
        if not 100 <= self.status <= 599:
            raise ValueError(f"{self.status} is not an HTTP status")


@dataclass(frozen=True)
class ErrorTable:
    """How a vendor names facecast's errors: ``by_code`` first (a facecast code ->
    ``(HTTP status, vendor code)``), then the first ``by_class`` entry the error is an
    instance of, else ``failure`` (not the caller's fault: the message keeps no reason
    code and gets ``failure_prefix``)."""

    by_code: Mapping[str, tuple[int, Any]]
    by_class: Sequence[tuple[type[Exception] | tuple[type[Exception], ...], tuple[int, Any]]]
    failure: tuple[int, Any]
    failure_prefix: str = ""

    def translate(self, exc: FacecastError, *, overrides: Mapping[str, tuple[int, Any]] = {},
                  failure: Any = None) -> tuple[int, Any, str, dict[str, str] | None]:
        """``(status, vendor code, message, headers)`` for ``exc``. ``overrides`` are
        per-operation codes for some facecast codes, ``failure`` a per-operation
        failure code."""
        default = self.failure if failure is None else (self.failure[0], failure)
        status, code = overrides.get(exc.code) or lookup(exc, self.by_code, self.by_class,
                                                          default)
        headers = None
        if status == 429 and isinstance(exc, LimitError) and exc.retry_after is not None:
            headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        # the caller's errors keep facecast's reason code in brackets, so clients (and
        # people) can tell the rules apart
        message = (f"{self.failure_prefix}{exc.message}" if status >= 500
                   else f"{exc.message} [{exc.code}]")
        return status, code, message, headers


def problems(errors: Sequence[Mapping[str, Any]]) -> str:
    """A request validation failure in one line: the first problem, and how many more."""
    found = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p not in ('body', 'query'))}"
             f": {e.get('msg', 'invalid')}" for e in errors]
    message = found[0] if found else "invalid request"
    if len(found) > 1:
        message += f" (and {len(found) - 1} more)"
    return message


@dataclass(frozen=True)
class Door:
    """One vendor API's error behaviour.

    ``envelope(error, request)`` is the answer body (``request`` is None for a crash
    or an oversized body); ``wire_status`` is the HTTP status of every routed answer
    (None: the error's own status); ``from_facecast`` maps service errors; ``invalid``
    answers a request validation failure, ``bad_body(message)`` a body that could not
    be read, ``routing(request, exc)`` any other HTTP error of the framework,
    ``too_large(limit)`` an oversized body; ``crash`` an unexpected exception."""

    name: str
    error: type[VendorError]
    envelope: Callable[[VendorError, Request | None], dict[str, Any]]
    from_facecast: Callable[[FacecastError], VendorError]
    invalid: Callable[[RequestValidationError], VendorError]
    bad_body: Callable[[str], VendorError]
    routing: Callable[[Request, StarletteHTTPException], VendorError]
    too_large: Callable[[int], VendorError]
    crash: VendorError
    wire_status: int | None = None
    log: logging.Logger = field(default=log)

    def response(self, error: VendorError, request: Request | None,
                 routing: bool = False) -> JSONResponse:
        status = error.status if routing or self.wire_status is None else self.wire_status
        return JSONResponse(self.envelope(error, request), status_code=status,
                            headers=error.headers)


class CatchAll:
    """Answers an unexpected exception with the door's crash envelope. Starlette's own
    handler for ``Exception`` re-raises after answering, which in a mounted app would
    reach the parent app and be logged a second time as an ASGI crash."""

    def __init__(self, app: ASGIApp, door: Door) -> None:
        self.app, self.door = app, door

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
            self.door.log.exception("unhandled error in the %s API", self.door.name)
            if started:
                raise
            await self.door.response(self.door.crash, None)(scope, receive, send)


def install(app: FastAPI, door: Door, max_body_bytes: int) -> None:
    """The door's exception handlers, catch-all and body limit, on its sub-application
    (call after the other middleware: the catch-all and limit must be outermost)."""

    async def vendor_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VendorError)
        return door.response(exc, request)

    async def facecast_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FacecastError)
        error = door.from_facecast(exc)
        if error.status >= 500:
            door.log.error("unexpected service error %s: %s", exc.code, exc.message)
        return door.response(error, request)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return door.response(door.invalid(exc), request)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code not in ROUTING_STATUSES and \
                (failure := body_failure(request, exc)) is not None:
            error = door.bad_body(f"{failure[1]} [{failure[0]}]")
        else:
            error = door.routing(request, exc)
        return door.response(error, request, routing=exc.status_code in ROUTING_STATUSES)

    app.add_exception_handler(door.error, vendor_error)
    app.add_exception_handler(FacecastError, facecast_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(CatchAll, door=door)  # type: ignore[arg-type]
    app.add_middleware(BodyLimit, limit=max_body_bytes,  # type: ignore[arg-type]
                       respond=lambda limit: door.response(door.too_large(limit), None))
