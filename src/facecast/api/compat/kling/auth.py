"""Kling's API authentication: ``Authorization: Bearer <JWT>``.

A Kling client signs a JWT itself (HS256, ``iss`` = its access key, ``exp``
and usually ``nbf``) with its secret key; the pair is a facecast vendor
credential (``POST /api/v1/vendor-credentials {"vendor": "kling"}``). The
signature is verified before any claim is believed, and the request is
counted against the account's rate limit only once the token is proven, so
forged tokens naming someone's access key cannot use up their limit.
"""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer

from facecast.api.deps import guarded_auth
from facecast.service.accounts import AuthError, Principal
from facecast.service.core import Service

from .mapper import KlingError

ALGORITHM = "HS256"
# allowed clock difference for exp and nbf (Kling's own sample backdates nbf by 5 s)
LEEWAY_S = 5

# only for the OpenAPI document: the header is read and judged below
_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT", scheme_name="KlingJWT",
                     description="A JWT signed HS256 with your secret key: iss = access key, "
                                 "exp (required), nbf")


def _invalid(why: str) -> KlingError:
    return KlingError(1002, f"Authorization is invalid: {why}", 401)


def verify(service: Service, header: str | None) -> Principal:
    """The caller behind an ``Authorization`` header, or a KlingError (1000-1004)."""
    if not header or not header.strip():
        raise KlingError(1001, "Authorization is empty: send 'Authorization: Bearer "
                               "<JWT>'", 401)
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid("expected 'Bearer <JWT>'")
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _invalid("not a JWT") from None
    if algorithm != ALGORITHM:
        raise _invalid(f"the token must be signed with {ALGORITHM}, not {algorithm!r}")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise _invalid("the token has no iss (your access key)")
    try:
        principal, secret = service.vendor_credential("kling", issuer)
    except AuthError:
        raise KlingError(1000, "Authentication failed: unknown or revoked access key", 401) \
            from None
    try:
        jwt.decode(token, secret, algorithms=[ALGORITHM], issuer=issuer, leeway=LEEWAY_S,
                   options={"require": ["exp", "iss"]})
    except jwt.InvalidSignatureError:
        raise KlingError(1000, "Authentication failed: the signature does not match "
                               "the access key's secret key", 401) from None
    except jwt.ExpiredSignatureError:
        raise KlingError(1004, "Authorization has expired (exp is past)", 401) from None
    except jwt.ImmatureSignatureError:
        raise KlingError(1003, "Authorization is not yet valid (nbf is in the future)", 401) \
            from None
    except jwt.PyJWTError as exc:
        raise _invalid(str(exc)) from None
    service.check_rate(principal)  # only now: the signature is good
    return principal


def get_principal(request: Request, _doc: Annotated[object, Security(_scheme)]) -> Principal:
    service: Service = request.app.state.service
    return guarded_auth(request, lambda: verify(service, request.headers.get("authorization")))


Caller = Annotated[Principal, Depends(get_principal)]
