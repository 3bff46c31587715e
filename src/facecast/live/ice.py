"""Where a session (and facecast's own viewer) can be reached: the host addresses ICE offers.

aioice leaves 127.0.0.1 out of its host candidates. On a machine whose only interface is
loopback (a container without a network, a CI sandbox) it would then offer nothing, and
no viewer, not even one on the same machine, could connect. There, and only there,
loopback is offered: the viewers such a machine can have are on itself.
"""

from __future__ import annotations

from collections.abc import Callable

LOOPBACK = "127.0.0.1"

HostAddresses = Callable[[bool, bool], list[str]]


def with_loopback_fallback(find: HostAddresses) -> HostAddresses:
    """``find`` (aioice's host address lookup), answering loopback when it finds nothing."""
    if getattr(find, "loopback_fallback", False):
        return find

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = find(use_ipv4, use_ipv6)
        return found if found or not use_ipv4 else [LOOPBACK]

    host_addresses.loopback_fallback = True  # type: ignore[attr-defined]
    return host_addresses


def offer_loopback_when_alone() -> None:
    """Install :func:`with_loopback_fallback` in aioice (idempotent); call before gathering."""
    import aioice.ice

    # a module global that Connection.gather_candidates looks up at each call
    find = with_loopback_fallback(aioice.ice.get_host_addresses)
    aioice.ice.get_host_addresses = find  # type: ignore[assignment]
