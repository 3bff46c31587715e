"""Request dependencies shared by the routes: the service and the caller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facecast.errors import NotFoundError
from facecast.service.accounts import AuthError, Principal
from facecast.service.core import Service

T = TypeVar("T")

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


def parse_id(prefix: str, value: str, what: str) -> int:
    """``job_12`` -> 12; anything else is a 404 naming what was asked for."""
    head, _, number = value.partition("_")
    if head != prefix or not number.isdigit() or len(number) > 18:
        raise NotFoundError(f"no {what} with id {value!r}", code=f"{what.replace(' ', '_')}"
                            "_not_found")
    return int(number)
