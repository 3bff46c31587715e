"""Taking in media from untrusted callers: by URL, as base64, or as an uploaded file.

The HTTP service accepts portraits, speech and videos three ways, and this module
turns each into a file on disk that is known to be what it claims to be:

* :func:`download` fetches a URL under a :class:`UrlPolicy`: http(s) only, no
  private, loopback, link-local, reserved or multicast addresses (unless allowed),
  redirects followed by hand with every hop checked again, a size limit enforced
  while streaming and a time limit on the whole download, not on each read.
* :func:`decode_base64` and :func:`save_upload` write inline data and uploads
  under the same size limit.
* :func:`verify_media` decides what a file is by decoding it (OpenCV for images,
  PyAV for audio and video), never by its name or a Content-Type header, and
  refuses random bytes, the wrong kind of media and truncated files.

Every writer is all-or-nothing: it writes to a temporary name beside ``dest`` and
renames it on success; on any failure ``dest`` does not exist afterwards.

DNS rebinding: the address check and the connection use the same DNS answer.
:func:`download` resolves each hop's host once, checks every address, and the
HTTP client's network layer then connects only to those checked addresses (it
never resolves the name again). This holds for https as well: the TCP connection
goes to a checked address and TLS runs over it with SNI and certificate
verification against the hostname from the URL, so a rebound name gains an
attacker nothing. The client ignores proxy environment variables, since a proxy
would make its own DNS lookup. The DNS lookup itself is not covered by the time
limit (the system resolver applies its own timeouts).
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import hashlib
import ipaddress
import os
import re
import secrets
import socket
import ssl
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

import av
import httpcore
import httpx

from facecast.errors import InputError
from facecast.media.image import IMAGE_FORMATS_TEXT, load_image

if TYPE_CHECKING:
    from facecast.service.settings import Settings

__all__ = [
    "DownloadInfo",
    "MediaInfo",
    "UrlPolicy",
    "check_url",
    "decode_base64",
    "download",
    "save_upload",
    "verify_media",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MEDIA_KINDS = frozenset({"image", "audio", "video"})

_CHUNK = 256 * 1024
_MAX_URL_CHARS = 8192
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_METADATA_ADDRESSES = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NO_BRACKETS = str.maketrans("", "", "[]")
_HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", re.IGNORECASE)
# DNS64 gateways map every IPv4 address into this prefix: judge the embedded address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


# --------------------------------------------------------------------------- URL policy


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


# ------------------------------------------------------------------- pinned HTTP client


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


# ---------------------------------------------------------------------------- writing


def _size_text(n: int) -> str:
    mib = 1024 * 1024
    if n >= mib:
        return f"{n / mib:g} MiB" if n % mib == 0 else f"{n / mib:.1f} MiB"
    return f"{n} bytes"


def _too_large(what: str, max_bytes: int, **details: Any) -> InputError:
    return InputError(
        f"{what} is larger than the {_size_text(max_bytes)} limit",
        code="file_too_large",
        max_bytes=max_bytes,
        **details,
    )


@contextlib.contextmanager
def _no_file_on_failure(dest: Path) -> Iterator[None]:
    """On any failure remove ``dest``: no half-written file, nor an older one that a
    retry could mistake for this input."""
    try:
        yield
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``dest`` and rename it there on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    try:
        with open(tmp, "xb") as out:
            yield out
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


_URLSAFE = str.maketrans("-_", "+/")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def decode_base64(
    data: str | bytes, dest: Path, *, max_bytes: int, allow_data_uri: bool = True
) -> int:
    """Decode base64 ``data`` into ``dest`` and return the decoded size.

    Accepts the standard and URL-safe alphabets, with or without ``=`` padding,
    with whitespace anywhere (line-wrapped base64). A ``data:...;base64,``
    prefix is accepted only when ``allow_data_uri``. The decoded size is worked
    out from the length and checked before anything is decoded. Raises
    :class:`InputError` with code ``bad_base64`` or ``file_too_large``.
    """
    dest = Path(dest)
    with _no_file_on_failure(dest):
        return _decode_base64(data, dest, max_bytes, allow_data_uri)


def _decode_base64(data: str | bytes, dest: Path, max_bytes: int, allow_data_uri: bool) -> int:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("ascii")
        except UnicodeDecodeError as exc:
            raise InputError("base64 data contains non-ASCII bytes", code="bad_base64") from exc
    text = data.lstrip()
    if text[:5].lower() == "data:":
        if not allow_data_uri:
            raise InputError(
                "a data: URI is not accepted here: send the bare base64 string",
                code="bad_base64",
            )
        comma = text.find(",", 0, 1024)
        if comma < 0:
            raise InputError("the data: URI has no ',' before its data", code="bad_base64")
        if not text[5:comma].strip().lower().endswith(";base64"):
            raise InputError("the data: URI is not base64 (no ';base64')", code="bad_base64")
        text = text[comma + 1 :]
    compact = "".join(text.split())
    if "-" in compact or "_" in compact:
        compact = compact.translate(_URLSAFE)
    body = compact.rstrip("=")
    padding = len(compact) - len(body)
    if not body:
        raise InputError("the base64 data is empty", code="bad_base64")
    if bad := _NOT_BASE64.search(body):
        char = bad.group()
        problem = "'=' padding inside the data" if char == "=" else f"the character {char!r}"
        raise InputError(f"invalid base64: {problem}", code="bad_base64")
    if len(body) % 4 == 1 or padding > 2 or (padding and (len(body) + padding) % 4):
        raise InputError("invalid base64: the length or padding is wrong", code="bad_base64")
    size = len(body) * 3 // 4  # exact for valid base64 without its padding
    if size > max_bytes:
        raise _too_large("the base64 data", max_bytes, bytes=size)
    body += "=" * (-len(body) % 4)
    step = 4 * 65536  # whole quanta, so each piece decodes on its own
    with _atomic_output(dest) as out:
        for start in range(0, len(body), step):
            try:
                out.write(binascii.a2b_base64(body[start : start + step]))
            except binascii.Error as exc:
                raise InputError(f"invalid base64: {exc}", code="bad_base64") from exc
    return size


class SupportsRead(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def save_upload(stream: SupportsRead, dest: Path, *, max_bytes: int) -> int:
    """Copy a binary upload stream into ``dest`` and return its size.

    Stops reading as soon as ``max_bytes`` is passed (code ``file_too_large``).
    """
    size = 0
    dest = Path(dest)
    with _no_file_on_failure(dest), _atomic_output(dest) as out:
        while chunk := stream.read(_CHUNK):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"the upload stream must give bytes, not {type(chunk).__name__}")
            size += len(chunk)
            if size > max_bytes:
                raise _too_large("the upload", max_bytes)
            out.write(chunk)
    return size


# ---------------------------------------------------------------------- verification


@dataclass(frozen=True)
class MediaInfo:
    """What a verified file is.

    ``info`` holds, for an image: ``width``, ``height``; for audio: ``duration``
    (s), ``sample_rate``, ``channels``, ``codec``; for video: ``width``,
    ``height``, ``duration``, ``fps``, ``has_audio``, ``codec``.
    """

    kind: str
    content_type: str
    size: int
    sha256: str
    info: dict[str, Any]


_IMAGE_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
)
# ISO base-media files (HEIF, AVIF, and MP4 too) start with an ftyp box: its major
# brand tells a photo from a video.
_HEIF_BRANDS = {
    b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
    b"hevc": "image/heic", b"hevx": "image/heic", b"mif1": "image/heic", b"msf1": "image/heic",
    b"avif": "image/avif", b"avis": "image/avif",
}
_EXPECTED = {
    "image": f"an image ({IMAGE_FORMATS_TEXT})",
    "audio": "audio",
    "video": "a video",
}
# Only these demuxers may parse untrusted files: playlists (HLS, concat) and the like
# would make FFmpeg open further files or URLs named inside the upload.
_AV_OPTIONS = {
    "format_whitelist": "wav,mp3,flac,ogg,aiff,aac,mov,matroska,avi",
    "protocol_whitelist": "file",
}
# Containers whose stated duration comes from their headers; with the others it
# is an estimate (from the bit rate or the end of the file) and proves nothing.
_HEADER_DURATION_FORMATS = ("mov", "matroska", "flac", "avi")
_WEBM_CODECS = frozenset({"vp8", "vp9", "av1", "opus", "vorbis"})
_MAX_VIDEO_PIXELS = 100_000_000


def _image_type(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[head[8:12]]
    for magic, content_type in _IMAGE_MAGIC:
        if head.startswith(magic):
            return content_type
    return None


def _unsupported(accept: Collection[str], reason: str, why: str, **details: Any) -> InputError:
    names = [_EXPECTED[kind] for kind in ("image", "audio", "video") if kind in accept]
    expected = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return InputError(
        f"unsupported media: expected {expected}, but {why}",
        code="unsupported_media",
        expected=sorted(accept),
        reason=reason,
        **details,
    )


def verify_media(path: Path, accept: Collection[str]) -> MediaInfo:
    """Decode ``path`` and say what it is, refusing anything not of a kind in ``accept``.

    Images must be JPEG, PNG, WebP, BMP, TIFF, HEIC/HEIF or AVIF and decode (their
    size is read from the header first: ``image_too_large`` beyond it); audio and
    video must be in a common container (WAV, MP3, FLAC, Ogg, AIFF, AAC, MP4/MOV/M4A,
    Matroska/WebM, AVI) and decode with PyAV. A video with sound is accepted as
    audio when only audio is. Files shorter than their headers say are refused as
    truncated. Raises :class:`InputError` with code ``unsupported_media``.
    """
    kinds = {accept} if isinstance(accept, str) else set(accept)
    if not kinds or not kinds <= MEDIA_KINDS:
        raise ValueError(f"accept must be a non-empty subset of {sorted(MEDIA_KINDS)}")
    path = Path(path)
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        head = f.read(64)
        f.seek(0)
        while block := f.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    if size == 0:
        raise _unsupported(kinds, "empty", "the file is empty")
    image_type = _image_type(head)
    if image_type is not None:
        if "image" not in kinds:
            raise _unsupported(
                kinds, "wrong_kind", f"it is an image ({image_type})", found="image"
            )
        try:
            pixels = load_image(path, max_bytes=None)
        except InputError as exc:
            if exc.code == "image_too_large":  # a decompression bomb: refused on its header
                raise
            raise _unsupported(
                kinds, "undecodable", f"it looks like {image_type} but does not decode "
                "(corrupt or truncated)",
            ) from exc
        height, width = pixels.shape[:2]
        return MediaInfo(
            "image", image_type, size, digest.hexdigest(), {"width": width, "height": height}
        )
    if not kinds & {"audio", "video"}:
        raise _unsupported(kinds, "undecodable", f"it is not a {IMAGE_FORMATS_TEXT} file")
    kind, content_type, info = _probe_av(path, kinds)
    return MediaInfo(kind, content_type, size, digest.hexdigest(), info)


def _probe_av(path: Path, kinds: set[str]) -> tuple[str, str, dict[str, Any]]:
    try:
        container = av.open(str(path), options=dict(_AV_OPTIONS), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise _unsupported(
            kinds, "undecodable", "it is not a readable audio or video file"
        ) from exc
    with container:
        try:
            return _analyse_av(container, path, kinds)
        except (av.error.FFmpegError, ValueError) as exc:  # a codec PyAV cannot open or run
            raise _unsupported(kinds, "undecodable", f"it does not decode: {exc}") from exc


def _analyse_av(container: Any, path: Path, kinds: set[str]) -> tuple[str, str, dict[str, Any]]:
    videos = [
        s for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic  # cover art
    ]
    audios = list(container.streams.audio)
    if videos and "video" in kinds:
        kind, main = "video", videos[0]
    elif audios and "audio" in kinds:
        kind, main = "audio", audios[0]
    else:
        found = "video" if videos else "audio" if audios else None
        why = {
            "video": "it is a video",
            "audio": "it holds only audio",
            None: "it has no audio or video stream",
        }[found]
        raise _unsupported(kinds, "wrong_kind", why, found=found)
    codec = main.codec_context
    if kind == "video" and not (0 < codec.width * codec.height <= _MAX_VIDEO_PIXELS):
        raise _unsupported(kinds, "undecodable", f"its frame size {codec.width}x{codec.height} "
                           "is out of range")
    streams = [*videos, *audios]
    spans, decoded = _demux(container, streams, main, kind)
    if main.index not in spans or not decoded:
        raise _unsupported(kinds, "undecodable", f"its {kind} stream holds no decodable data")
    _check_complete(container, path, streams, spans, kinds)
    start = min(s for s, _ in spans.values())
    end = max(e for _, e in spans.values())
    if kind == "audio":
        if not codec.sample_rate:
            raise _unsupported(kinds, "undecodable", "its sample rate is unknown")
        info: dict[str, Any] = {
            "duration": round(decoded / codec.sample_rate, 3),
            "sample_rate": codec.sample_rate,
            "channels": codec.channels,
            "codec": _codec_name(main),
        }
    else:
        rate = main.average_rate or main.guessed_rate
        info = {
            "width": codec.width,
            "height": codec.height,
            "duration": round(end - start, 3),
            "fps": round(float(rate), 3) if rate else None,
            "has_audio": any(a.index in spans for a in audios),
            "codec": _codec_name(main),
        }
    return kind, _av_content_type(container, bool(videos), streams), info


def _demux(
    container: Any, streams: list[Any], main: Any, kind: str
) -> tuple[dict[int, tuple[float, float]], int]:
    """Read every packet (for lengths) and decode the main stream.

    Returns each stream's (first, last) time in seconds and, for audio, the
    number of samples decoded; for video, the number of frames decoded, where
    the first one is enough to show that the codec works.
    """
    spans: dict[int, tuple[float, float]] = {}
    decoded = 0
    for packet in container.demux(*streams):
        if packet.pts is not None and packet.time_base is not None:
            first = float(packet.pts * packet.time_base)
            last = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            old = spans.get(packet.stream.index)
            spans[packet.stream.index] = (
                (first, last) if old is None else (min(old[0], first), max(old[1], last))
            )
        # Decoding all of a video would take as long as rendering it; its first frame shows
        # the codec works, while every packet is still read to find truncation.
        if packet.stream.index == main.index and packet.size and (kind == "audio" or not decoded):
            for frame in packet.decode():
                decoded += frame.samples if kind == "audio" else 1
    if kind == "audio" or not decoded:
        for frame in main.codec_context.decode(None):  # flush delayed frames
            decoded += frame.samples if kind == "audio" else 1
    return spans, decoded


def _check_complete(
    container: Any,
    path: Path,
    streams: list[Any],
    spans: dict[int, tuple[float, float]],
    kinds: set[str],
) -> None:
    """Refuse a file that holds clearly less media than its headers announce."""
    fmt = container.format.name
    stated: list[tuple[float, float]] = []  # (stated, present) seconds
    present_all = max(e for _, e in spans.values()) - min(s for s, _ in spans.values())
    if fmt == "wav":
        wav = _wav_stated_duration(path)
        if wav is not None:
            stated.append((wav, present_all))
    elif fmt.startswith(_HEADER_DURATION_FORMATS) or (fmt == "mp3" and _mp3_has_toc(path)):
        for stream in streams:
            if stream.duration and stream.time_base:
                span = spans.get(stream.index, (0.0, 0.0))
                stated.append((float(stream.duration * stream.time_base), span[1] - span[0]))
        if not stated and container.duration:
            stated.append((container.duration / 1_000_000, present_all))
    for should, present in stated:
        # Encoder delay and edit lists shift a few packets; truncation loses far more.
        if present < should - max(0.1, 0.05 * should):
            raise _unsupported(
                kinds,
                "truncated",
                f"it is truncated: it should last {should:.2f} s, only {present:.2f} s is there",
            )


def _wav_stated_duration(path: Path) -> float | None:
    """The length the RIFF header announces (FFmpeg quietly clamps it to the file)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        while len(header := f.read(8)) == 8:
            chunk_id, chunk_size = header[:4], int.from_bytes(header[4:], "little")
            if chunk_id == b"fmt ":
                fmt = f.read(chunk_size)
                byte_rate = int.from_bytes(fmt[8:12], "little") if len(fmt) >= 12 else 0
                f.seek(chunk_size & 1, os.SEEK_CUR)
            elif chunk_id == b"data":
                # Streaming writers leave 0 or a huge placeholder where the size goes.
                if not byte_rate or chunk_size == 0 or chunk_size >= 0x7FFF0000:
                    return None
                return chunk_size / byte_rate
            else:
                f.seek(chunk_size + (chunk_size & 1), os.SEEK_CUR)
    return None


def _mp3_has_toc(path: Path) -> bool:
    """True when the first MP3 frame carries a Xing/Info/VBRI header with the length.

    Without one FFmpeg estimates the duration from the bit rate, which says
    nothing about truncation (and is wrong for VBR files).
    """
    with open(path, "rb") as f:
        head = f.read(10)
        offset = 0
        if head[:3] == b"ID3" and len(head) == 10:
            tag_size = 0
            for byte in head[6:10]:  # "syncsafe": 7 bits a byte
                tag_size = (tag_size << 7) | (byte & 0x7F)
            offset = 10 + tag_size + (10 if head[5] & 0x10 else 0)
        f.seek(offset)
        frame = f.read(256)
    return any(tag in frame for tag in (b"Xing", b"Info", b"VBRI"))


def _av_content_type(container: Any, has_video: bool, streams: list[Any]) -> str:
    fmt = container.format.name
    family = "video" if has_video else "audio"
    if fmt.startswith("mov"):
        brand = str(container.metadata.get("major_brand", "")).strip().lower()
        if brand == "qt":
            return "video/quicktime"
        return f"{family}/mp4"
    if fmt.startswith("matroska"):
        codecs = {_codec_name(s) for s in streams}
        return f"{family}/webm" if codecs <= _WEBM_CODECS else f"{family}/x-matroska"
    simple = {
        "wav": "audio/wav",
        "mp3": "audio/mpeg",
        "flac": "audio/flac",
        "aiff": "audio/aiff",
        "aac": "audio/aac",
        "avi": "video/x-msvideo",
        "ogg": f"{family}/ogg",
    }
    return simple.get(fmt, "application/octet-stream")


def _codec_name(stream: Any) -> str:
    # The format's name (mp3), not the decoder's (mp3float).
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)
