"""Request dependencies shared by the routes: the service and the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from facecast.errors import NotFoundError
from facecast.service.accounts import Principal
from facecast.service.core import Service

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
    return service.authenticate(bearer.credentials if bearer else header)


ServiceDep = Annotated[Service, Depends(get_service)]
Caller = Annotated[Principal, Depends(get_principal)]


def parse_id(prefix: str, value: str, what: str) -> int:
    """``job_12`` -> 12; anything else is a 404 naming what was asked for."""
    head, _, number = value.partition("_")
    if head != prefix or not number.isdigit() or len(number) > 18:
        raise NotFoundError(f"no {what} with id {value!r}", code=f"{what.replace(' ', '_')}"
                            "_not_found")
    return int(number)
