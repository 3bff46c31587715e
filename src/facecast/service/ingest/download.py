"""Downloading a URL under a :class:`UrlPolicy`: redirects followed by hand with every
hop checked again, the connection pinned to the checked addresses, a size limit while
streaming and a time limit on the whole download, written all-or-nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from facecast.errors import InputError
from facecast.service.ingest.files import _CHUNK, _atomic_output, _no_file_on_failure, _too_large
from facecast.service.ingest.transport import PinnedBackend, _PinnedTransport
from facecast.service.ingest.url_policy import (
    _DEFAULT_PORTS,
    UrlPolicy,
    _parse_url,
    _resolve_checked,
)

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class DownloadInfo:
    """What :func:`download` fetched. ``content_type`` is the server's claim, unchecked."""

    content_type: str | None
    size: int
    final_url: str
    redirects: int = 0


def download(url: str, dest: Path, policy: UrlPolicy) -> DownloadInfo:
    """Fetch ``url`` into ``dest`` under ``policy``; see the module docstring for the rules.

    Raises :class:`InputError` with code ``bad_url``, ``url_not_allowed``,
    ``download_failed`` (no connection, a non-2xx status, too many redirects),
    ``download_timeout`` or ``file_too_large``. The body is stored as sent
    (``Accept-Encoding: identity`` is asked for); check it with :func:`verify_media`.
    """
    dest = Path(dest)
    with _no_file_on_failure(dest):
        return _download(url, dest, policy)


def _download(url: str, dest: Path, policy: UrlPolicy) -> DownloadInfo:
    first = _parse_url(url)  # refuse a bad URL before anything is created
    deadline = time.monotonic() + policy.timeout_s
    backend = PinnedBackend(deadline)
    headers = {"User-Agent": "facecast-ingest", "Accept": "*/*", "Accept-Encoding": "identity"}
    with (
        httpx.Client(
            transport=_PinnedTransport(backend),
            follow_redirects=False,
            trust_env=False,  # a proxy would resolve the name itself, after our check
            timeout=policy.timeout_s,
            headers=headers,
        ) as client,
        _atomic_output(dest) as out,
    ):
        current, redirects = first, 0
        while True:
            host = current.raw_host.decode("ascii")
            port = current.port or _DEFAULT_PORTS[current.scheme]
            try:
                backend.pin(host, port, _resolve_checked(host, port, policy))
            except InputError as exc:
                if not redirects:
                    raise
                raise InputError(
                    f"the URL redirected elsewhere: {exc.message}",
                    code=exc.code,
                    redirects=redirects,
                    **exc.details,
                ) from exc
            try:
                with client.stream("GET", current) as response:
                    status = response.status_code
                    if status in _REDIRECT_STATUSES and "location" in response.headers:
                        redirects += 1
                        if redirects > policy.max_redirects:
                            raise InputError(
                                f"the URL redirected more than {policy.max_redirects} times "
                                "(a redirect loop?)",
                                code="download_failed",
                                max_redirects=policy.max_redirects,
                            )
                        current = _redirect_target(current, response.headers["location"])
                        continue
                    if not 200 <= status < 300:
                        raise InputError(
                            f"downloading from {host!r} failed: the server answered HTTP {status}",
                            code="download_failed",
                            host=host,
                            status=status,
                        )
                    size = _stream_body(response, out, host, policy.max_bytes, deadline)
                    content_type = response.headers.get("content-type")
                    break
            except httpx.TimeoutException as exc:
                raise InputError(
                    f"downloading from {host!r} took longer than the {policy.timeout_s:g} s limit",
                    code="download_timeout",
                    host=host,
                    timeout_s=policy.timeout_s,
                ) from exc
            except httpx.HTTPError as exc:
                raise InputError(
                    f"downloading from {host!r} failed: {exc}",
                    code="download_failed",
                    host=host,
                ) from exc
    return DownloadInfo(content_type, size, str(current), redirects)


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise InputError(
            f"the URL redirected to an unparsable location: {exc}", code="bad_url"
        ) from exc
    try:
        return _parse_url(str(target))
    except InputError as exc:
        raise InputError(f"the URL redirected elsewhere: {exc.message}", code=exc.code) from exc


def _stream_body(
    response: httpx.Response, out: BinaryIO, host: str, max_bytes: int, deadline: float
) -> int:
    length = response.headers.get("content-length")
    if length is not None and length.strip().isdigit() and int(length) > max_bytes:
        # Refused before a byte of the body is read.
        raise _too_large(f"the file at {host!r}", max_bytes, host=host, bytes=int(length))
    size = 0
    for chunk in response.iter_raw(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(f"the file at {host!r}", max_bytes, host=host)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the download's time limit was reached")
        out.write(chunk)
    return size
