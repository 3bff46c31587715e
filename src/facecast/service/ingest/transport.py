"""The pinned HTTP client: an httpcore network backend that connects only to addresses
already checked by the URL policy (no second DNS lookup, so no DNS rebinding; TLS with
SNI and certificate checks against the URL's host), with one deadline over a whole
download rather than per read, and httpx's errors mapped to facecast's.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx

from facecast.service.ingest.url_policy import IPAddress

# Most specific first: httpcore's errors as the httpx errors callers expect.
_ERROR_MAP: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
)


def _time_left(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """The timeout for one socket operation: never past the download's deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the download's time limit was reached")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the download's deadline.

    httpx's timeouts apply to each operation, so a server that trickles a byte
    at a time (in headers or body) would never trip them; clamping each
    operation to the time left bounds the whole exchange.
    """

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(
            max_bytes, _time_left(self._deadline, timeout, httpcore.ReadTimeout)
        )

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(self._deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context,
            server_hostname,
            _time_left(self._deadline, timeout, httpcore.ConnectTimeout),
        )
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects only to addresses that were checked for the host, never resolving again."""

    def __init__(self, deadline: float) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadline = deadline
        self._pins: dict[tuple[str, int], list[IPAddress]] = {}

    def pin(self, host: str, port: int, addresses: list[IPAddress]) -> None:
        self._pins[(host, port)] = addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        addresses = self._pins.get((host, port))
        if not addresses:
            # Every hop is checked and pinned before it is requested; anything else is a bug,
            # and connecting to a name nobody checked is exactly what this class prevents.
            raise httpcore.ConnectError(f"no checked address for {host!r}")
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=_time_left(self._deadline, timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectTimeout:
                raise
            except httpcore.ConnectError as exc:
                error = exc  # the next address of the same host may answer
                continue
            return _DeadlineStream(stream, self._deadline)
        assert error is not None
        raise error

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except (
        httpcore.TimeoutException,
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.UnsupportedProtocol,
    ) as exc:
        for source, target in _ERROR_MAP:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise httpx.TransportError(str(exc)) from exc


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def shared_ssl_context() -> ssl.SSLContext:
    """One TLS context for every connection: building one loads the CA bundle (~0.1 s of CPU).

    Kept per value of $SSL_CERT_FILE / $SSL_CERT_DIR, which httpx honours.
    """
    return _ssl_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.cache
def _ssl_context(_cert_file: str | None, _cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context()


class _PinnedTransport(httpx.BaseTransport):
    """An httpx transport over a connection pool that uses :class:`PinnedBackend`.

    httpx's own transport does not take a network backend, so this is its
    request/response mapping with that one change.
    """

    def __init__(self, backend: PinnedBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            # certifi's CAs, or $SSL_CERT_FILE / $SSL_CERT_DIR when set (as httpx does)
            ssl_context=shared_ssl_context(),
            network_backend=backend,
            retries=0,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,  # type: ignore[arg-type]
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()
