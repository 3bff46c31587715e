"""Request dependencies shared by the routes: the service, the caller (failed
authentications throttled per client address), and the ingest threads that calls which
may download URL inputs run in."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from anyio.lowlevel import RunVar
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facecast.characters import check_characters
from facecast.errors import NotFoundError
from facecast.service.accounts import AuthError, Principal
from facecast.service.core import Service

T = TypeVar("T")

# Calls that may download URL inputs run in a thread pool of their own, apart from the
# request threads (anyio's 40): a download from a slow server holds one of these until it
# ends (service.assets.DownloadSlots caps how many at once, FACECAST_MAX_DOWNLOADS), never
# a thread the other requests need. Past the pool's size such calls wait, holding no thread.
INGEST_THREADS = 64
_ingest_limiter: RunVar[CapacityLimiter] = RunVar("facecast_ingest_limiter")

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: <API key>")


# async: FastAPI runs sync dependencies in a thread pool, a hop that costs more than
# the work (a cached key lookup and an in-memory rate count)
async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Principal:
    service: Service = request.app.state.service
    key = bearer.credentials if bearer else header
    return guarded_auth(request, lambda: service.authenticate(key))


async def given_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> str | None:
    """The API key the request carries, if any (routes that also take other credentials,
    such as a live stream's signed token, check it themselves)."""
    return bearer.credentials if bearer else header


async def in_ingest_threads(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in an ingest thread (see INGEST_THREADS)."""
    try:
        limiter = _ingest_limiter.get()
    except LookupError:  # one pool per event loop, made on first use
        limiter = CapacityLimiter(INGEST_THREADS)
        _ingest_limiter.set(limiter)
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                          limiter=limiter)


def ingesting(route: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """A synchronous route whose inputs may be URLs, run in an ingest thread rather than a
    request thread. FastAPI reads the route's parameters from the signature given here,
    with its annotations already resolved in the route's own module."""

    @functools.wraps(route)
    async def run(*args: Any, **kwargs: Any) -> T:
        return await in_ingest_threads(route, *args, **kwargs)

    hints = typing.get_type_hints(route, include_extras=True)
    signature = inspect.signature(route)
    run.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation))
                    for p in signature.parameters.values()],
        return_annotation=hints.get("return", signature.return_annotation))
    return run


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def guarded_auth(request: Request, attempt: Callable[[], T]) -> T:
    """Run one authentication ``attempt`` (every API's: keys, tokens, signatures) for the
    request's client address: refused with ``rate_limited`` while the address has failed
    too often, and counted as a failure when it ends in a 401 (facecast's
    :class:`AuthError` or a vendor error with ``status`` 401)."""
    service: Service = request.app.state.service
    address = client_address(request)
    service.check_address(address)
    try:
        return attempt()
    except Exception as exc:
        if isinstance(exc, AuthError) or getattr(exc, "status", None) == 401:
            service.auth_failed(address)
        raise


ServiceDep = Annotated[Service, Depends(get_service)]
Caller = Annotated[Principal, Depends(get_principal)]
GivenKey = Annotated[str | None, Depends(given_key)]


def parse_id(prefix: str, value: str, what: str) -> int:
    """``job_12`` -> 12; anything else is a 404 naming what was asked for."""
    head, _, number = value.partition("_")
    if head != prefix or not number.isdigit() or len(number) > 18:
        raise NotFoundError(f"no {what} with id {value!r}", code=f"{what.replace(' ', '_')}"
                            "_not_found")
    return int(number)


def _checked_url_values(request: Request) -> None:
    for name, value in request.query_params.multi_items():
        check_characters(value, name)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_characters(value, name)


# every app's dependency: query and path values follow the same rule as body text
# (facecast.api.wire.CheckedText applies it to bodies)
CHECKED_URL = [Depends(_checked_url_values)]
