"""The address policy for untrusted URLs: http(s) only, and no private, loopback,
link-local, reserved or multicast address (cloud metadata addresses included) unless
the operator allow-lists it. :func:`check_url` resolves a host once and checks every
address it gets; the caller connects only to those (see :mod:`.transport`).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from facecast.errors import InputError

if TYPE_CHECKING:
    from facecast.service.settings import Settings


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_MAX_URL_CHARS = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NO_BRACKETS = str.maketrans("", "", "[]")
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", re.IGNORECASE)


# DNS64 gateways map every IPv4 address into this prefix: judge the embedded address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class UrlPolicy:
    """What :func:`check_url` and :func:`download` let through.

    ``allowlist`` holds hostnames (``intranet.example``) and IP networks
    (``10.1.0.0/16``, ``127.0.0.1``) that are allowed even though they are
    private. A listed hostname allows whatever it resolves to; a network allows
    the addresses inside it, whatever name led there.
    """

    allow_private: bool = False
    allowlist: tuple[str, ...] = ()
    timeout_s: float = 30.0
    max_bytes: int = 50 * 1024 * 1024
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.allowlist, str):
            raise TypeError("allowlist must be a sequence of hosts or networks, not one string")
        # A list would make the policy unhashable (the parsed allowlist is cached by value).
        object.__setattr__(self, "allowlist", tuple(self.allowlist))
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {self.max_bytes}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be 0 or more, got {self.max_redirects}")

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        return cls(
            allow_private=settings.allow_private_urls,
            allowlist=tuple(settings.url_allowlist),
            timeout_s=settings.download_timeout_s,
            max_bytes=settings.max_upload_bytes,
            max_redirects=settings.download_max_redirects,
        )


@dataclass(frozen=True)
class _AllowRules:
    names: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def allows_host(self, host: str) -> bool:
        return host in self.names

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


@functools.lru_cache(maxsize=64)
def _allow_rules(allowlist: tuple[str, ...]) -> _AllowRules:
    names: set[str] = set()
    networks = []
    for entry in allowlist:
        entry = entry.strip()
        if not entry:
            continue
        try:
            # "[fd00::]/8" as well as "fd00::/8"
            networks.append(ipaddress.ip_network(entry.translate(_NO_BRACKETS), strict=False))
            continue
        except ValueError:
            pass
        names.add(_normal_host(entry))
    return _AllowRules(frozenset(names), tuple(networks))


def _normal_host(host: str) -> str:
    """Lower-case ASCII (IDNA) form without a trailing dot, as URLs carry it."""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _blocked_reason(address: IPAddress) -> str | None:
    """Why ``address`` must not be fetched from, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address reach that address: judge it instead.
        if address.ipv4_mapped is not None:
            return _blocked_reason(address.ipv4_mapped)
        if address in _NAT64:
            return _blocked_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and (reason := _blocked_reason(address.sixtofour)):
            return reason
        if address.is_site_local:
            return "site-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address in _METADATA_ADDRESSES:
        return "link-local (cloud metadata service)"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "non-public"
    return None


def _parse_url(url: str) -> httpx.URL:
    if not isinstance(url, str) or not url.strip():
        raise InputError("the URL is empty", code="bad_url")
    if len(url) > _MAX_URL_CHARS:
        raise InputError(f"the URL is longer than {_MAX_URL_CHARS} characters", code="bad_url")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:  # IDNA failures are ValueErrors
        raise InputError(f"the URL cannot be parsed: {exc}", code="bad_url") from exc
    if parsed.scheme not in _DEFAULT_PORTS:
        scheme = f"{parsed.scheme}:" if parsed.scheme else "no scheme"
        raise InputError(
            f"only http and https URLs are accepted, not {scheme}",
            code="bad_url",
            scheme=parsed.scheme,
        )
    if not parsed.raw_host:
        raise InputError("the URL has no host", code="bad_url")
    host = parsed.raw_host.decode("ascii")
    if not _HOSTNAME.fullmatch(host):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise InputError(
                f"the URL's host {parsed.host!r} is not a valid hostname", code="bad_url"
            ) from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise InputError(f"the URL's port {parsed.port} is out of range", code="bad_url")
    return parsed


def _resolve_checked(host: str, port: int, policy: UrlPolicy) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses, or refuse if any is not allowed.

    Every address must pass, not just one: a name with one public and one
    private address could otherwise be steered to the private one.
    """
    rules = _allow_rules(policy.allowlist)
    name = _normal_host(host)
    try:
        literal: IPAddress | None = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        literal = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InputError(
            f"cannot resolve the host {host!r}", code="download_failed", host=host
        ) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]))
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # one form, so allowlist networks match either
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise InputError(f"cannot resolve the host {host!r}", code="download_failed", host=host)
    if policy.allow_private or rules.allows_host(name):
        return addresses
    for address in addresses:
        if rules.allows_address(address):
            continue
        reason = _blocked_reason(address)
        if reason is not None:
            # Name only the host the caller gave: what it resolves to stays internal.
            verb = "is" if literal is not None else "resolves to"
            raise InputError(
                f"the host {host!r} is not allowed: it {verb} a {reason} address",
                code="url_not_allowed",
                host=host,
                reason=reason,
            )
    return addresses


def check_url(url: str, policy: UrlPolicy) -> list[IPAddress]:
    """Check that ``url`` may be fetched and return the addresses its host resolves to.

    Raises :class:`InputError` with code ``bad_url`` (unparsable, not http(s), no
    host), ``url_not_allowed`` (some address is private, loopback, link-local,
    unspecified, reserved or multicast and neither ``allow_private`` nor the
    allowlist lets it through) or ``download_failed`` (the host does not resolve).
    """
    parsed = _parse_url(url)
    host = parsed.raw_host.decode("ascii")
    return _resolve_checked(host, parsed.port or _DEFAULT_PORTS[parsed.scheme], policy)
