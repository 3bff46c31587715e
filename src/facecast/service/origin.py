"""The public base URL of the links the service hands out (signed result URLs, voice
previews, the URLs inside callbacks), for the request being answered.

``FACECAST_PUBLIC_URL`` fixes it. Without it, the API sets each request's own base here
(:class:`facecast.api.public_base.PublicBase`), so a client that reached the service as
``https://avatars.example.com`` gets links it can fetch, not the internal
``http://127.0.0.1:8000``. A job remembers the base of the request that made it, for the
callbacks sent later from no request at all.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("facecast_public_base", default=None)


def current() -> str | None:
    """The base URL of the request being answered, or None outside one (or when the
    public URL is configured, which then always applies)."""
    return _current.get()


def base(default: str) -> str:
    """The base URL for a link made now: the request's, else ``default``."""
    return _current.get() or default


@contextlib.contextmanager
def serving(url: str | None) -> Iterator[None]:
    """Links made inside the block start with ``url`` (None: the configured default)."""
    token = _current.set(url)
    try:
        yield
    finally:
        _current.reset(token)
