"""KreadoAI's API authentication: the ``apiToken`` header carries a facecast API key.

A missing or unknown token is answered with KreadoAI's code 405 ("login has
expired, please log in again"), the only authentication code its table has.
The service counts the request against the account's rate limit once the key
is known.
"""

from __future__ import annotations

from fastapi import Request

from facecast.api.deps import guarded_auth
from facecast.service.accounts import AuthError, Principal
from facecast.service.core import Service

from .mapper import KreadoError

HEADER = "apiToken"


def principal_of(request: Request) -> Principal:
    return guarded_auth(request, lambda: _principal(request))


def _principal(request: Request) -> Principal:
    service: Service = request.app.state.service
    token = (request.headers.get(HEADER) or "").strip()
    if not token:
        raise KreadoError("405", "To ensure account security, login has expired. Please log "
                                 "in again (send your API key in the apiToken header)", 401)
    try:
        return service.authenticate(token)
    except AuthError:
        raise KreadoError("405", "To ensure account security, login has expired. Please log "
                                 "in again (the apiToken is unknown or revoked)", 401) from None
