"""The client's request layer, shared by the sync and the async client (no I/O here).

An operation is written once, as a *plan*: a generator that yields the steps it needs
(:class:`Call` an API route, :class:`Fetch` a result file, :class:`Pause`) and gets each
step's outcome back, returning its typed result. ``Client`` runs a plan with blocking
I/O, ``AsyncClient`` with ``await`` (``_transport.py``); what a step means, how an
answer becomes a model or an error, and when to retry are decided here, for both::

    def get(self, job):
        response = yield Call("GET", f"/jobs/{job}")
        return JobOut.model_validate(response.json())
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from facecast.client import _config
from facecast.client.errors import APIStatusError, status_error_class

T = TypeVar("T")


@dataclass(frozen=True)
class Upload:
    """A file sent as multipart ``field``; ``open`` gives a fresh stream for each attempt
    (a retry sends the whole file again)."""

    filename: str
    open: Callable[[], IO[bytes]]
    content_type: str = "application/octet-stream"
    field: str = "file"


@dataclass(frozen=True)
class Call:
    """One API request: ``path`` below ``prefix`` (the native API's), query ``params``, a
    ``json`` body or an ``upload``. Its outcome is the (successful) ``httpx.Response``."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    upload: Upload | None = None
    prefix: str = _config.API_PREFIX


@dataclass(frozen=True)
class Fetch:
    """A signed result URL, streamed to ``dest`` (written whole or not at all); its
    outcome is ``dest``. Sent without the API key: the signature is the permission, and a
    presigned S3 URL refuses a request that also carries an Authorization header."""

    url: str
    dest: Path


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` (``time.sleep`` or ``asyncio.sleep``); outcome None."""

    seconds: float


Step = Call | Fetch | Pause
Plan = Generator[Step, Any, T]


def segment(value: str) -> str:
    """One path segment: an id or external id can hold no '/' or '?' of its own."""
    return quote(value, safe="")


def parsed(response: httpx.Response, into: type[T]) -> T:
    """The answer's JSON as ``into`` (a wire model, or e.g. ``list[KeyOut]``)."""
    return _adapter(into).validate_json(response.content)


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(into: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(into)
    if adapter is None:
        adapter = _ADAPTERS[into] = TypeAdapter(into)
    return adapter


def call(method: str, path: str, into: type[T], **kwargs: Any) -> Plan[T]:
    """A plan of one request whose answer is ``into``."""
    response = yield Call(method, path, **kwargs)
    return parsed(response, into)


def no_content(method: str, path: str, **kwargs: Any) -> Plan[None]:
    yield Call(method, path, **kwargs)


def body(**fields: Any) -> dict[str, Any]:
    """A request body of the fields given: None means "the API's default", so it is left
    out and the server's own default (written once, in facecast.rules) applies."""
    return {k: v for k, v in fields.items() if v is not None}


def listed(items: Iterable[T] | None) -> list[T] | None:
    """A sequence argument as the JSON list (None stays None: the API's default)."""
    return None if items is None else list(items)


# -- answers -----------------------------------------------------------------------------


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def status_error(response: httpx.Response) -> APIStatusError:
    """The exception for an error answer, from the API's envelope
    ``{"error": {"code", "message", "details"}}`` (any other body: ``http_error``)."""
    code, message, details = "http_error", response.reason_phrase or "error", None
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details")
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()
        if text:
            message = text[:500]
    cls = status_error_class(response.status_code)
    return cls(message, code=code, status_code=response.status_code, response=response,
               retry_after=retry_after(response),
               details=details if isinstance(details, dict) else None)


@dataclass
class RetryPolicy:
    """When and how long to wait before trying a request again."""

    max_retries: int = _config.MAX_RETRIES
    statuses: frozenset[int] = field(default=_config.RETRY_STATUSES)

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0), or
        None: do not retry. ``response`` None means the connection failed before any
        answer (nothing reached the server, so any method may be sent again)."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in self.statuses:
                return None
            after = retry_after(response)
            if after is not None:
                return after if after <= _config.MAX_RETRY_AFTER_S else None
        backoff = min(_config.RETRY_BASE_S * 2 ** attempt, _config.RETRY_MAX_S)
        return backoff * random.uniform(0.75, 1.25)  # spread clients that failed together

    def may_resend(self, method: str, exc: httpx.TransportError) -> bool:
        """Whether a request that failed with ``exc`` may be sent again: one that never
        reached the server always; one cut off after it was sent only when reading
        (GET), as a create might have been done."""
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout
                                | httpx.PoolTimeout)
        return never_sent or method == "GET"
