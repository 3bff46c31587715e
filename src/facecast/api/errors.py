"""The native API's error objects and the exception handlers that produce them.

Every error answer is ``{"error": {"code", "message", "details"?}}`` with the
HTTP status that fits it; the codes are the same ``FacecastError.code`` values
the engine and service raise, so a client can branch on them. No request, how
ever malformed, gets a bare 500 or FastAPI's default shapes.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, get_route_path

from facecast.errors import (
    ConflictError,
    FacecastError,
    FaceCheckError,
    ForbiddenError,
    InputError,
    LimitError,
    NotFoundError,
)
from facecast.service.accounts import AuthError

log = logging.getLogger("facecast.api")

STATUS_BY_CODE = {
    "forbidden": 403,
    "rate_limited": 429,
    "too_many_queued_jobs": 429,
    "insufficient_credits": 402,
    "file_too_large": 413,
    "payload_too_large": 413,
    "storage_full": 507,  # the service's disk is full: not the caller's fault, worth a retry
    "too_many_streams": 429,  # live streams: the account's cap
    "too_many_viewers": 429,
    "too_many_utterances": 429,
    "capacity_reached": 503,  # live streams: this machine's CPU is taken; retry later
    "live_unavailable": 503,
    "live_failed": 503,  # a live session's process did not start or answer in time
    "unsupported_media_type": 415,  # WHEP: an offer that is not application/sdp
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in (
        (400, "Bad input"), (401, "Missing or invalid API key"), (402, "Not enough credits"),
        (403, "Not allowed"), (404, "Not found"), (409, "Conflicts with the current state"),
        (413, "Too large"), (422, "Invalid request or failed face check"),
        (429, "Rate limit or queue cap reached"),
        (503, "No capacity for another live stream now"), (507, "The service's storage is full"))
}


# the status of each kind of error, the first class an error is an instance of
STATUS_BY_CLASS: tuple[tuple[type[Exception], int], ...] = (
    (AuthError, 401), (NotFoundError, 404), (ConflictError, 409), (FaceCheckError, 422),
    (LimitError, 429), (ForbiddenError, 403), (InputError, 400))

_T = TypeVar("_T")


def lookup(exc: FacecastError, by_code: Mapping[str, _T],
           by_class: Iterable[tuple[type[Exception] | tuple[type[Exception], ...], _T]],
           default: _T) -> _T:
    """What a table says about ``exc``: its code's entry, else the first class entry it is
    an instance of, else ``default``. The native API and every vendor door map errors so."""
    if exc.code in by_code:
        return by_code[exc.code]
    return next((value for kind, value in by_class if isinstance(exc, kind)), default)


def status_for(exc: FacecastError) -> int:
    return lookup(exc, STATUS_BY_CODE, STATUS_BY_CLASS, 500)


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(details, custom_encoder={bytes: lambda b: f"<{len(b)} bytes>"})


async def _facecast_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FacecastError)
    status = status_for(exc)
    if status >= 500:
        log.error("unexpected service error %s: %s", exc.code, exc.message)
    headers = None
    if isinstance(exc, LimitError) and exc.retry_after is not None:
        headers = {"Retry-After": str(int(exc.retry_after))}
    return error_response(status, exc.code, exc.message, _jsonable(exc.details) or None,
                          headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    problems = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                 "problem": e.get("msg", "invalid")} for e in errors]
    first = problems[0] if problems else {"field": "", "problem": "invalid"}
    message = f"{first['field'] or 'request'}: {first['problem']}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more)"
    return error_response(422, "invalid_request", message, {"errors": problems})


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


@functools.lru_cache(maxsize=256)
def _template(path: str) -> re.Pattern[str]:
    return re.compile("".join(r"[^/]+" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[^}]+\})", path)))


def _allowed_methods(request: Request) -> str | None:
    """The methods of the request's path, for ``Allow`` (Starlette names only those of the
    first route that matched: GET for GET + DELETE /jobs/{job_id}). A documented path gives
    its documented methods, a concrete one before a templated one (``/assets/import`` before
    ``/assets/{asset_id}``), as OpenAPI matches; any other path, the methods routed there."""
    path = get_route_path(request.scope)
    openapi = getattr(request.app, "openapi", None)
    paths: dict[str, dict[str, Any]] = openapi().get("paths", {}) if openapi else {}
    documented = [t for t in paths if _template(t).fullmatch(path)]
    if documented:
        best = min(documented, key=lambda t: t.count("{"))
        return ", ".join(sorted(m.upper() for m in paths[best] if m.upper() in _METHODS))
    router = request.scope.get("router")
    routes = [r for r in getattr(router, "routes", ()) if isinstance(r, BaseRoute)]
    allowed = [method for method in _METHODS
               if any(r.matches({**request.scope, "method": method})[0] == Match.FULL
                      for r in routes)]
    return ", ".join(allowed) or None


def why_unparsable(cause: BaseException | None) -> str:
    """What was wrong with a request body the JSON parser gave up on, in words."""
    if isinstance(cause, UnicodeDecodeError):
        return f"it is not valid UTF-8 (byte 0x{cause.object[cause.start]:02x} at {cause.start})"
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        # Python refuses to convert integers over sys.get_int_max_str_digits() digits
        return f"a number has over {sys.get_int_max_str_digits()} digits"
    return str(cause) if cause is not None else "it could not be parsed"


def body_failure(request: Request, exc: StarletteHTTPException) -> tuple[str, str] | None:
    """``(code, message)`` when ``exc`` is the framework's bare 400 for a body it could not
    parse (JSON that is not UTF-8, nested too deeply or with a too long number; a broken
    multipart or form body), else None. Every API answers these in its own envelope."""
    if exc.status_code != 400:
        return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        # Starlette names multipart limits in the detail; parser errors are the cause
        reason = str(exc.__cause__) if exc.__cause__ is not None else str(exc.detail)
        return "invalid_request", f"the {kind} body could not be read: {reason}"
    return "malformed_json", f"the request body is not valid JSON: {why_unparsable(exc.__cause__)}"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if (failure := body_failure(request, exc)) is not None:
        return error_response(400, *failure)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "http_error")
    message = {404: "no such endpoint: see /docs",
               405: "this method is not allowed on this endpoint"}.get(
        exc.status_code, str(exc.detail))
    headers = exc.headers
    if exc.status_code == 405 and (allow := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allow}
    return error_response(exc.status_code, code, message, headers=headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error happened; it is logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FacecastError, _facecast_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
