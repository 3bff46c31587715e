"""Each request's own base URL (scheme and host) for the links made while it is answered,
used when ``FACECAST_PUBLIC_URL`` is not set (see :mod:`facecast.service.origin`).

The scheme is the connection's (``https`` behind ``facecast serve --ssl-certfile``) and
the host its ``Host`` header. ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` count only
when the connection comes from one of ``FACECAST_TRUSTED_PROXIES``: from anyone else they
would let a caller point the links in its callbacks at a host of its choosing.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from starlette.types import ASGIApp, Receive, Scope, Send

from facecast.service.origin import serving

# a Host header as URLs carry it: a name or an IPv4 address, or [IPv6], and a port
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


@functools.lru_cache(maxsize=16)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(entry.strip(), strict=False) for entry in trusted if entry.strip()
    )


def is_trusted(address: str | None, trusted: tuple[str, ...]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(trusted))


def _first(value: str | None) -> str | None:
    # "a, b": the proxy nearest the client wrote the first value
    return value.split(",")[0].strip() if value else None


def request_base(scope: Scope, trusted: tuple[str, ...]) -> str | None:
    """``scheme://host[:port]`` of an HTTP request, or None when its Host is unusable."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    scheme, host = scope.get("scheme", "http"), headers.get("host")
    client = scope.get("client")
    if is_trusted(client[0] if client else None, trusted):
        proto = (_first(headers.get("x-forwarded-proto")) or "").lower()
        scheme = proto if proto in ("http", "https") else scheme
        host = _first(headers.get("x-forwarded-host")) or host
    if not host or not _HOST.fullmatch(host):
        return None
    return f"{scheme}://{host}"


class PublicBase:
    """ASGI middleware: links made while a request is answered start with its base URL."""

    def __init__(self, app: ASGIApp, trusted: tuple[str, ...] = ()) -> None:
        self.app, self.trusted = app, trusted
        _networks(trusted)  # a bad entry fails at start, not on a request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with serving(request_base(scope, self.trusted)):
            await self.app(scope, receive, send)
