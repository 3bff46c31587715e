"""Akool's authentication: ``x-api-key`` or ``Authorization: Bearer <token>``.

``x-api-key`` is a facecast API key. The bearer token comes from
``POST /api/open/v3/getToken`` with an Akool clientId/clientSecret pair (a
facecast vendor credential, ``POST /api/v1/vendor-credentials {"vendor":
"akool"}``): a JWT signed by this server, carrying the client id and an expiry,
checked on every request together with the pair still being live. When both
headers are sent, Authorization is used and x-api-key is ignored (Akool's rule).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from facecast.api.deps import guarded_auth
from facecast.service.accounts import AuthError, Principal
from facecast.service.core import Service

from .mapper import AkoolError

ALGORITHM = "HS256"
ISSUER = "facecast-akool"
TOKEN_TTL_S = 24 * 3600

_bearer = HTTPBearer(auto_error=False, scheme_name="AkoolToken",
                     description="A token from POST /api/open/v3/getToken")
_api_key = APIKeyHeader(name="x-api-key", auto_error=False, scheme_name="AkoolApiKey",
                        description="A facecast API key")


def _key(service: Service) -> bytes:
    # a key of its own, so a token of this API is never valid anywhere else
    return hmac.new(service.settings.signing_key, b"akool-token", hashlib.sha256).digest()


def issue_token(service: Service, client_id: str | None, client_secret: str | None) -> str:
    if not client_id or not client_secret:
        raise AkoolError(1003, "Parameter error: clientId and clientSecret can not be "
                               "empty", 400)
    try:
        _principal, secret = service.vendor_credential("akool", client_id)
    except AuthError:
        raise AkoolError(1101, "Invalid authorization: unknown clientId or wrong "
                               "clientSecret", 401) from None
    if not hmac.compare_digest(secret.encode(), client_secret.encode()):
        raise AkoolError(1101, "Invalid authorization: unknown clientId or wrong "
                               "clientSecret", 401)
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "sub": client_id, "iat": now, "exp": now + TOKEN_TTL_S},
                      _key(service), algorithm=ALGORITHM)


def verify(service: Service, authorization: str | None, api_key: str | None) -> Principal:
    if authorization and authorization.strip():
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AkoolError(1101, "Invalid authorization: expected 'Bearer <token>'", 401)
        try:
            claims = jwt.decode(token.strip(), _key(service), algorithms=[ALGORITHM],
                                issuer=ISSUER, options={"require": ["exp", "sub", "iss"]})
        except jwt.ExpiredSignatureError:
            raise AkoolError(1101, "The request token has expired: get a new one from "
                                   "getToken", 401) from None
        except jwt.PyJWTError:
            raise AkoolError(1101, "Invalid authorization: not a token from getToken", 401) \
                from None
        try:
            principal, _secret = service.vendor_credential("akool", str(claims["sub"]))
        except AuthError:
            raise AkoolError(1101, "Invalid authorization: the clientId was revoked", 401) \
                from None
        service.check_rate(principal)
        return principal
    if api_key and api_key.strip():
        return service.authenticate(api_key.strip())  # AuthError -> 1101 by the handler
    raise AkoolError(1102, "Authorization cannot be empty: send x-api-key or "
                           "'Authorization: Bearer <token>'", 401)


def get_principal(request: Request,
                  _doc_bearer: Annotated[object, Security(_bearer)],
                  _doc_key: Annotated[object, Security(_api_key)]) -> Principal:
    service: Service = request.app.state.service
    return guarded_auth(request, lambda: verify(service, request.headers.get("authorization"),
                                                request.headers.get("x-api-key")))


Caller = Annotated[Principal, Depends(get_principal)]
