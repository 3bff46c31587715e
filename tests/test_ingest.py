"""Tests of facecast.service.ingest: URL checks, downloads, base64, uploads, media checks.

Downloads go to real HTTP(S) servers on loopback, which the tests allowlist; the
media are real files made with OpenCV, PyAV and facecast.media.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecast.errors import InputError
from facecast.media import Audio, Mp4Writer, write_audio
from facecast.service.ingest import (
    DownloadInfo,
    UrlPolicy,
    check_url,
    decode_base64,
    download,
    save_upload,
    verify_media,
)
from facecast.service.settings import load_settings

ALL_KINDS = {"image", "audio", "video"}

# ------------------------------------------------------------------------------ media


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real media files by name, and broken ones made from them."""
    folder = tmp_path_factory.mktemp("media")
    image = np.zeros((48, 64, 3), np.uint8)
    image[..., 0] = np.arange(64, dtype=np.uint8) * 4
    image[..., 1] = np.arange(48, dtype=np.uint8)[:, None] * 5
    files: dict[str, bytes] = {}
    for ext in ("png", "jpg", "webp"):
        ok, encoded = cv2.imencode(f".{ext}", image)
        assert ok
        files[f"image.{ext}"] = encoded.tobytes()
    t = np.arange(8000) / 16000
    voice = Audio((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000)
    for ext in ("wav", "mp3"):
        files[f"voice.{ext}"] = write_audio(folder / f"voice.{ext}", voice).read_bytes()
    for name, audio in (("clip.mp4", voice), ("silent.mp4", None)):
        with Mp4Writer(folder / name, 64, 48, fps=10, audio=audio) as writer:
            for i in range(10):
                writer.write(np.roll(image, i, axis=1))
        files[name] = (folder / name).read_bytes()
    files["fake.mp3"] = files["image.png"]  # a PNG under an audio name
    files["random.bin"] = np.random.default_rng(7).integers(0, 256, 20_000, np.uint8).tobytes()
    for name in ("image.png", "image.jpg", "voice.wav", "voice.mp3", "clip.mp4"):
        files[f"truncated-{name}"] = files[name][: len(files[name]) // 2]
    return files


# ----------------------------------------------------------------------- HTTP servers

Route = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.log.append((self.path, self.headers.get("Host", "")))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(OSError):  # the client hung up, as refusing clients do
            route(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], routes: dict[str, Route]) -> None:
        super().__init__(address, _Handler)
        self.routes = routes
        self.log: list[tuple[str, str]] = []
        self.stop = threading.Event()  # releases handlers that stall or stream forever

    @property
    def port(self) -> int:
        return self.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.log]


@pytest.fixture
def serve() -> Iterator[Callable[..., _Server]]:
    """Start servers on loopback in threads; all are shut down after the test."""
    servers: list[_Server] = []

    def start(
        routes: dict[str, Route], address: tuple[str, int] = ("127.0.0.1", 0),
        tls: ssl.SSLContext | None = None,
    ) -> _Server:
        server = _Server(address, routes)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        # a short poll keeps shutdown() quick
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop.set()
        server.shutdown()
        server.server_close()


def _body(data: bytes, content_type: str = "application/octet-stream") -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return route


def _redirect(location: str | Callable[[], str], status: int = 302) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", location() if callable(location) else location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return route


def _chunked(chunk: bytes, pause_s: float) -> Route:
    """An endless chunked body: ``chunk`` every ``pause_s`` until the client leaves."""

    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        stop: threading.Event = h.server.stop  # type: ignore[attr-defined]
        while not stop.is_set():
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            h.wfile.flush()
            if pause_s:
                stop.wait(pause_s)  # pacing the trickle, not synchronising

    return route


def _huge_length(h: BaseHTTPRequestHandler) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(10**12))
    h.end_headers()
    h.wfile.write(b"x" * 1000)
    h.close_connection = True


def _stall(h: BaseHTTPRequestHandler) -> None:
    h.server.stop.wait(60)  # type: ignore[attr-defined]


def _slow_headers(h: BaseHTTPRequestHandler) -> None:
    h.wfile.write(b"HTTP/1.1 200 OK\r\n")
    stop: threading.Event = h.server.stop  # type: ignore[attr-defined]
    while not stop.is_set():
        h.wfile.write(b"X")
        h.wfile.flush()
        stop.wait(0.02)


def _status(code: int) -> Route:
    def route(h: BaseHTTPRequestHandler) -> None:
        h.send_error(code)

    return route


@pytest.fixture
def server(serve: Callable[..., _Server], media: dict[str, bytes]) -> _Server:
    routes: dict[str, Route] = {
        "/image.png": _body(media["image.png"], "image/png"),
        "/photo.jpg": _body(media["image.jpg"], "image/jpeg"),
        "/voice.wav": _body(media["voice.wav"], "audio/wav"),
        "/voice.mp3": _body(media["voice.mp3"], "audio/mpeg"),
        "/clip.mp4": _body(media["clip.mp4"], "video/mp4"),
        "/fake.mp3": _body(media["fake.mp3"], "audio/mpeg"),
        "/random.mp4": _body(media["random.bin"], "video/mp4"),
        "/truncated.mp4": _body(media["truncated-clip.mp4"], "video/mp4"),
        "/huge-length": _huge_length,
        "/endless": _chunked(b"x" * 65536, 0),
        "/trickle": _chunked(b"x", 0.02),
        "/stall": _stall,
        "/slow-headers": _slow_headers,
        "/redirect": _redirect("/image.png"),
        "/redirect-301": _redirect("image.png", 301),
        "/loop": _redirect("/loop"),
        "/redirect-to-file": _redirect("file:///etc/passwd"),
        "/status/500": _status(500),
        "/status/404": _status(404),
    }
    for n in range(1, 5):
        routes[f"/chain/{n}"] = _redirect(f"/chain/{n - 1}")
    routes["/chain/0"] = routes["/image.png"]
    started = serve(routes)
    # Absolute, to another name for the same machine (the port is known only now).
    routes["/redirect-to-ip"] = _redirect(lambda: started.url("/image.png"))
    return started


@pytest.fixture
def loopback() -> UrlPolicy:
    """The policy of the tests: loopback 127.0.0.1 allowlisted, short limits."""
    return UrlPolicy(allowlist=("127.0.0.1",), timeout_s=5.0, max_bytes=1024 * 1024)


def _no_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _fails(code: str, call: Callable[[], object]) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    return caught.value


# ------------------------------------------------------------------------- check_url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8080/x.png", "loopback"),
        ("http://LocalHost/x.png", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
        ("http://evil.example@127.0.0.1/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 wrapping 10.0.0.1
        ("http://10.1.2.3/", "private"),
        ("http://172.16.5.4/", "private"),
        ("https://192.168.1.10/", "private"),
        ("http://[fd12:3456::1]/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local (cloud metadata service)"),
        ("http://169.254.1.1/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("http://100.64.0.1/", "non-public"),
    ],
)
def test_check_url_refuses_internal_addresses(url: str, reason: str) -> None:
    error = _fails("url_not_allowed", lambda: check_url(url, UrlPolicy()))
    assert error.details["reason"] == reason
    assert "not allowed" in error.message and error.details["host"] in error.message


def test_check_url_names_the_host_but_not_what_it_resolves_to() -> None:
    error = _fails("url_not_allowed", lambda: check_url("http://localhost/a.png", UrlPolicy()))
    assert error.message == (
        "the host 'localhost' is not allowed: it resolves to a loopback address"
    )
    assert "127.0.0.1" not in str(error.to_dict())


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/photo.jpg",
        "gopher://example.com/",
        "javascript:alert(1)",
        "example.com/photo.jpg",
        "http://",
        "http:///photo.jpg",
        "http://exa mple.com/",
        "http://[::1/",
        "http://example.com:99999/",
        "",
    ],
)
def test_check_url_refuses_malformed_urls_and_other_schemes(url: str) -> None:
    _fails("bad_url", lambda: check_url(url, UrlPolicy(allow_private=True)))


def test_check_url_returns_the_addresses_of_public_hosts() -> None:
    assert check_url("https://93.184.216.34/a.png", UrlPolicy()) == [
        ipaddress.ip_address("93.184.216.34")
    ]
    assert check_url("http://[2606:4700:4700::1111]:8080/", UrlPolicy()) == [
        ipaddress.ip_address("2606:4700:4700::1111")
    ]


def test_allow_private_and_the_allowlist_let_internal_hosts_through() -> None:
    assert check_url("http://127.0.0.1/", UrlPolicy(allow_private=True)) == [
        ipaddress.ip_address("127.0.0.1")
    ]
    nets = UrlPolicy(allowlist=("10.0.0.0/8", "[fd00::]/8"))
    assert check_url("http://10.9.8.7/", nets) == [ipaddress.ip_address("10.9.8.7")]
    assert check_url("http://[fd00::5]/", nets) == [ipaddress.ip_address("fd00::5")]
    _fails("url_not_allowed", lambda: check_url("http://192.168.0.1/", nets))
    # A listed name allows what it resolves to; a listed address allows any name for it.
    assert check_url("http://LocalHost/", UrlPolicy(allowlist=("localhost",)))
    assert check_url("http://localhost/", UrlPolicy(allowlist=("127.0.0.0/8",)))
    _fails("url_not_allowed", lambda: check_url("http://127.0.0.1/", UrlPolicy(
        allowlist=("localhost",))))


def test_every_resolved_address_must_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A name with a public and a private address; only a stand-in resolver gives one on loopback.
    real = socket.getaddrinfo

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host == "mixed.test":
            return real("93.184.216.34", port, *args, **kwargs) + real(
                "10.0.0.7", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    error = _fails("url_not_allowed", lambda: check_url("http://mixed.test/", UrlPolicy()))
    assert error.details["reason"] == "private" and "10.0.0.7" not in error.message


def test_unresolvable_host_is_a_download_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver's "no such name" answer, without waiting on whatever DNS this machine has.
    def resolve(host: str, *args: object, **kwargs: object) -> list:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    error = _fails("download_failed", lambda: check_url("http://no-such-host.example/",
                                                        UrlPolicy()))
    assert error.message == "cannot resolve the host 'no-such-host.example'"


def test_policy_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACECAST_URL_ALLOWLIST", "media.intranet, 10.0.0.0/8")
    settings = load_settings(
        home=tmp_path, allow_private_urls=True, download_timeout_s=3.5,
        max_upload_bytes=1234, download_max_redirects=2,
    )
    assert UrlPolicy.from_settings(settings) == UrlPolicy(
        allow_private=True, allowlist=("media.intranet", "10.0.0.0/8"), timeout_s=3.5,
        max_bytes=1234, max_redirects=2,
    )
    assert UrlPolicy.from_settings(load_settings(home=tmp_path)).allow_private is False


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        UrlPolicy(timeout_s=0)
    with pytest.raises(TypeError):
        UrlPolicy(allowlist="localhost")  # type: ignore[arg-type]


# -------------------------------------------------------------------------- download


@pytest.mark.parametrize(
    ("path", "name", "kind", "content_type"),
    [
        ("/image.png", "image.png", "image", "image/png"),
        ("/photo.jpg", "image.jpg", "image", "image/jpeg"),
        ("/voice.wav", "voice.wav", "audio", "audio/wav"),
        ("/voice.mp3", "voice.mp3", "audio", "audio/mpeg"),
        ("/clip.mp4", "clip.mp4", "video", "video/mp4"),
    ],
)
def test_download_then_verify_real_media(
    server: _Server, loopback: UrlPolicy, media: dict[str, bytes], tmp_path: Path,
    path: str, name: str, kind: str, content_type: str,
) -> None:
    dest = tmp_path / "input"
    info = download(server.url(path), dest, loopback)
    assert info == DownloadInfo(content_type, len(media[name]), server.url(path), 0)
    assert dest.read_bytes() == media[name]
    checked = verify_media(dest, ALL_KINDS)
    assert (checked.kind, checked.content_type, checked.size) == (
        kind, content_type, len(media[name]))
    assert _no_leftovers(tmp_path) == ["input"]


def test_download_sends_the_host_it_was_given(
    serve: Callable[..., _Server], media: dict[str, bytes], tmp_path: Path
) -> None:
    started = serve({"/image.png": _body(media["image.png"])})
    download(started.url("/image.png", host="localhost"), tmp_path / "a",
             UrlPolicy(allowlist=("localhost",)))
    assert started.log == [("/image.png", f"localhost:{started.port}")]


def test_download_refuses_loopback_without_connecting(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "input"
    error = _fails("url_not_allowed", lambda: download(server.url("/image.png"), dest,
                                                       UrlPolicy()))
    assert error.details["reason"] == "loopback"
    assert server.log == []
    assert _no_leftovers(tmp_path) == []


def test_content_type_is_decided_by_decoding_not_by_name_or_header(
    server: _Server, loopback: UrlPolicy, tmp_path: Path
) -> None:
    dest = tmp_path / "voice.mp3"
    info = download(server.url("/fake.mp3"), dest, loopback)
    assert info.content_type == "audio/mpeg"  # what the server claims
    error = _fails("unsupported_media", lambda: verify_media(dest, {"audio"}))
    assert error.details["found"] == "image"
    assert "expected audio" in error.message
    assert verify_media(dest, {"image"}).content_type == "image/png"


@pytest.mark.parametrize(("path", "reason"), [("/random.mp4", "undecodable"),
                                              ("/truncated.mp4", "truncated")])
def test_downloaded_junk_is_refused_by_verification(
    server: _Server, loopback: UrlPolicy, tmp_path: Path, path: str, reason: str
) -> None:
    dest = tmp_path / "clip.mp4"
    download(server.url(path), dest, loopback)
    error = _fails("unsupported_media", lambda: verify_media(dest, ALL_KINDS))
    assert error.details["reason"] == reason


def test_huge_content_length_is_refused_up_front(
    server: _Server, loopback: UrlPolicy, tmp_path: Path
) -> None:
    dest = tmp_path / "input"
    error = _fails("file_too_large", lambda: download(server.url("/huge-length"), dest,
                                                      loopback))
    assert "1 MiB" in error.message
    assert error.details["bytes"] == 10**12
    assert _no_leftovers(tmp_path) == []


def test_endless_body_is_cut_at_the_size_limit(
    server: _Server, tmp_path: Path
) -> None:
    policy = UrlPolicy(allowlist=("127.0.0.1",), max_bytes=300_000, timeout_s=10)
    error = _fails("file_too_large", lambda: download(server.url("/endless"),
                                                      tmp_path / "input", policy))
    assert error.details["max_bytes"] == 300_000
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize("path", ["/trickle", "/stall", "/slow-headers"])
def test_slow_servers_are_cut_off_at_the_total_time_limit(
    server: _Server, tmp_path: Path, path: str
) -> None:
    policy = UrlPolicy(allowlist=("127.0.0.1",), timeout_s=0.5)
    started = time.monotonic()
    error = _fails("download_timeout", lambda: download(server.url(path),
                                                        tmp_path / "input", policy))
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.0
    assert "0.5 s" in error.message
    assert _no_leftovers(tmp_path) == []


def test_redirects_are_followed_to_allowed_hosts(
    server: _Server, loopback: UrlPolicy, media: dict[str, bytes], tmp_path: Path
) -> None:
    info = download(server.url("/redirect"), tmp_path / "a", loopback)
    assert (info.final_url, info.redirects) == (server.url("/image.png"), 1)
    assert (tmp_path / "a").read_bytes() == media["image.png"]
    info = download(server.url("/redirect-301"), tmp_path / "b", loopback)
    assert info.final_url == server.url("/image.png")
    assert server.paths() == ["/redirect", "/image.png", "/redirect-301", "/image.png"]


def test_each_redirect_hop_is_checked_again(server: _Server, tmp_path: Path) -> None:
    # Only the first host is allowlisted; its redirect points at loopback by address.
    policy = UrlPolicy(allowlist=("localhost",))
    error = _fails("url_not_allowed", lambda: download(
        server.url("/redirect-to-ip", host="localhost"), tmp_path / "input", policy))
    assert "redirected" in error.message and error.details["reason"] == "loopback"
    assert server.paths() == ["/redirect-to-ip"]
    assert _no_leftovers(tmp_path) == []


def test_redirect_to_another_scheme_is_refused(
    server: _Server, loopback: UrlPolicy, tmp_path: Path
) -> None:
    error = _fails("bad_url", lambda: download(server.url("/redirect-to-file"),
                                               tmp_path / "input", loopback))
    assert "redirected" in error.message


def test_redirect_loop_and_redirect_limit(server: _Server, tmp_path: Path) -> None:
    policy = UrlPolicy(allowlist=("127.0.0.1",), max_redirects=2)
    error = _fails("download_failed", lambda: download(server.url("/loop"),
                                                       tmp_path / "input", policy))
    assert "more than 2" in error.message
    assert server.paths() == ["/loop"] * 3
    assert download(server.url("/chain/2"), tmp_path / "ok", policy).redirects == 2
    _fails("download_failed", lambda: download(server.url("/chain/3"), tmp_path / "no", policy))
    assert _no_leftovers(tmp_path) == ["ok"]


@pytest.mark.parametrize("status", [500, 404])
def test_error_statuses_are_refused(
    server: _Server, loopback: UrlPolicy, tmp_path: Path, status: int
) -> None:
    dest = tmp_path / "input"
    dest.write_bytes(b"an older file at the same path")
    error = _fails("download_failed", lambda: download(server.url(f"/status/{status}"), dest,
                                                       loopback))
    assert error.details["status"] == status and f"HTTP {status}" in error.message
    assert _no_leftovers(tmp_path) == []


def test_connection_refused_is_a_download_failure(loopback: UrlPolicy, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _fails("download_failed", lambda: download(f"http://127.0.0.1:{port}/a.png",
                                               tmp_path / "input", loopback))
    assert _no_leftovers(tmp_path) == []


def test_connection_goes_to_the_address_that_was_checked(
    serve: Callable[..., _Server], media: dict[str, bytes], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DNS rebinding: the name answers an allowed address to the check, then another one.
    # A stand-in resolver plays the attacker's DNS; both servers are real.
    checked = serve({"/image.png": _body(media["image.png"])})
    try:
        internal = serve({"/image.png": _body(b"internal secret")},
                         address=("127.0.0.2", checked.port))
    except OSError:
        pytest.skip("127.0.0.2 is not available on this machine")
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host == "rebind.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    dest = tmp_path / "input"
    download(f"http://rebind.test:{checked.port}/image.png", dest,
             UrlPolicy(allowlist=("127.0.0.1/32",)))
    assert dest.read_bytes() == media["image.png"]
    assert lookups == ["rebind.test"]
    assert checked.log == [("/image.png", f"rebind.test:{checked.port}")]
    assert internal.log == []


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for the name 'localhost' (no IP address)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("facecast test CA"))
        .issuer_name(name("facecast test CA")).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_https_is_pinned_and_verified_against_the_url_host(
    serve: Callable[..., _Server], media: dict[str, bytes], tmp_path: Path,
    tls_files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca, cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    started = serve({"/image.png": _body(media["image.png"])}, tls=context)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # trust the test CA (httpx honours it)
    dest = tmp_path / "input"
    info = download(started.url("/image.png", host="localhost", scheme="https"), dest,
                    UrlPolicy(allowlist=("localhost",)))
    assert info.size == len(media["image.png"]) and dest.read_bytes() == media["image.png"]
    # Same server by address: the certificate names 'localhost' only, so TLS must fail,
    # which shows the check uses the URL's host even though the socket goes to an address.
    error = _fails("download_failed", lambda: download(
        started.url("/image.png", scheme="https"), tmp_path / "by-ip",
        UrlPolicy(allowlist=("127.0.0.1",))))
    assert "certificate" in error.message.lower()
    assert _no_leftovers(tmp_path) == ["input"]


# ---------------------------------------------------------------------------- base64


def test_base64_standard_urlsafe_wrapped_and_data_uri(
    media: dict[str, bytes], tmp_path: Path
) -> None:
    data = media["image.png"] + bytes(range(256))  # has bytes that encode to + / - _
    encodings = {
        "standard": base64.b64encode(data).decode(),
        "urlsafe-unpadded": base64.urlsafe_b64encode(data).decode().rstrip("="),
        "wrapped": base64.encodebytes(data).decode(),  # 76-char lines
        "data-uri": "data:image/png;base64," + base64.b64encode(data).decode(),
        "bytes": base64.b64encode(data),
    }
    assert "-" in encodings["urlsafe-unpadded"] and "\n" in encodings["wrapped"]
    for label, text in encodings.items():
        dest = tmp_path / label
        assert decode_base64(text, dest, max_bytes=len(data)) == len(data), label
        assert dest.read_bytes() == data, label


def test_base64_data_uri_can_be_refused(media: dict[str, bytes], tmp_path: Path) -> None:
    text = "data:image/png;base64," + base64.b64encode(media["image.png"]).decode()
    dest = tmp_path / "input"
    error = _fails("bad_base64", lambda: decode_base64(text, dest, max_bytes=10**6,
                                                       allow_data_uri=False))
    assert "data: URI" in error.message
    _fails("bad_base64", lambda: decode_base64("data:image/png,%89PNG", dest, max_bytes=10**6))
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("aGVsbG8h!!", "'!'"),
        ("aGVs=bG8h", "padding"),
        ("aGVsbG8hx", "length"),
        ("aGVsbG8h===", "length"),
        ("aGVsbG8hé", "'é'"),
        ("", "empty"),
        ("  \n ", "empty"),
    ],
)
def test_invalid_base64_is_refused(text: str, needle: str, tmp_path: Path) -> None:
    error = _fails("bad_base64", lambda: decode_base64(text, tmp_path / "x", max_bytes=100))
    assert needle in error.message
    assert _no_leftovers(tmp_path) == []


def test_base64_size_limit(tmp_path: Path) -> None:
    assert decode_base64(base64.b64encode(b"x" * 100).decode(), tmp_path / "ok",
                         max_bytes=100) == 100
    error = _fails("file_too_large", lambda: decode_base64(
        base64.b64encode(b"x" * 101).decode(), tmp_path / "big", max_bytes=100))
    assert "100 bytes" in error.message and error.details["bytes"] == 101
    # 3 MB once decoded: refused from its length, before any of it is decoded or written
    error = _fails("file_too_large", lambda: decode_base64("A" * 4_000_000, tmp_path / "huge",
                                                           max_bytes=1024 * 1024))
    assert "1 MiB" in error.message and error.details["bytes"] == 3_000_000
    assert _no_leftovers(tmp_path) == ["ok"]


# ----------------------------------------------------------------------------- upload


class _EndlessZeros(io.RawIOBase):
    """An upload that never ends, counting what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        buffer[:] = bytes(len(buffer))
        self.read_bytes += len(buffer)
        return len(buffer)


def test_save_upload(media: dict[str, bytes], tmp_path: Path) -> None:
    data = media["clip.mp4"]
    assert save_upload(io.BytesIO(data), tmp_path / "up.mp4", max_bytes=len(data)) == len(data)
    assert (tmp_path / "up.mp4").read_bytes() == data
    assert verify_media(tmp_path / "up.mp4", {"video"}).info["has_audio"] is True


def test_save_upload_stops_reading_at_the_limit(tmp_path: Path) -> None:
    stream = _EndlessZeros()
    error = _fails("file_too_large", lambda: save_upload(stream, tmp_path / "up",
                                                         max_bytes=1_000_000))
    assert error.details["max_bytes"] == 1_000_000
    assert 1_000_000 < stream.read_bytes <= 1_000_000 + 1024 * 1024
    assert _no_leftovers(tmp_path) == []


def test_save_upload_wants_a_binary_stream(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        save_upload(io.StringIO("text"), tmp_path / "up", max_bytes=100)  # type: ignore[arg-type]
    assert _no_leftovers(tmp_path) == []


# ------------------------------------------------------------------------ verify_media


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "content_type", "info"),
    [
        ("image.png", "image", "image/png", {"width": 64, "height": 48}),
        ("image.jpg", "image", "image/jpeg", {"width": 64, "height": 48}),
        ("image.webp", "image", "image/webp", {"width": 64, "height": 48}),
        ("voice.wav", "audio", "audio/wav",
         {"duration": 0.5, "sample_rate": 16000, "channels": 1, "codec": "pcm_s16le"}),
        ("voice.mp3", "audio", "audio/mpeg",
         {"duration": 0.5, "sample_rate": 16000, "channels": 1, "codec": "mp3"}),
        ("silent.mp4", "video", "video/mp4",
         {"width": 64, "height": 48, "duration": 1.0, "fps": 10.0, "has_audio": False,
          "codec": "h264"}),
    ],
)
def test_verify_media_reports_what_the_file_is(
    media: dict[str, bytes], tmp_path: Path, name: str, kind: str, content_type: str,
    info: dict[str, object],
) -> None:
    path = _write(tmp_path, "upload.bin", media[name])  # the name says nothing
    result = verify_media(path, ALL_KINDS)
    assert (result.kind, result.content_type, result.info) == (kind, content_type, info)
    assert result.size == len(media[name])
    assert result.sha256 == hashlib.sha256(media[name]).hexdigest()


def test_video_with_sound(media: dict[str, bytes], tmp_path: Path) -> None:
    path = _write(tmp_path, "clip.mp4", media["clip.mp4"])
    video = verify_media(path, {"video"})
    assert video.info["has_audio"] is True and video.info["duration"] >= 1.0
    # Where only audio is wanted, a video's sound track will do; a silent video will not.
    audio = verify_media(path, {"audio"})
    assert (audio.kind, audio.info["sample_rate"], audio.content_type) == (
        "audio", 16000, "video/mp4")
    silent = _write(tmp_path, "silent.mp4", media["silent.mp4"])
    error = _fails("unsupported_media", lambda: verify_media(silent, {"audio"}))
    assert error.details["found"] == "video"


@pytest.mark.parametrize(
    ("name", "accept", "found"),
    [
        ("voice.wav", {"image"}, None),
        ("image.png", {"audio", "video"}, "image"),
        ("voice.mp3", {"video"}, "audio"),
    ],
)
def test_verify_media_refuses_other_kinds(
    media: dict[str, bytes], tmp_path: Path, name: str, accept: set[str], found: str | None
) -> None:
    path = _write(tmp_path, name, media[name])
    error = _fails("unsupported_media", lambda: verify_media(path, accept))
    assert error.details["expected"] == sorted(accept)
    assert error.details.get("found") == found
    assert "expected" in error.message


@pytest.mark.parametrize(
    "name",
    ["truncated-image.png", "truncated-image.jpg", "truncated-voice.wav",
     "truncated-voice.mp3", "truncated-clip.mp4", "random.bin"],
)
def test_verify_media_refuses_truncated_and_random_files(
    media: dict[str, bytes], tmp_path: Path, name: str
) -> None:
    path = _write(tmp_path, name, media[name])
    error = _fails("unsupported_media", lambda: verify_media(path, ALL_KINDS))
    assert error.details["reason"] in {"truncated", "undecodable"}
    if name.endswith(("wav", "mp3", "mp4")):
        assert error.details["reason"] == "truncated"


def test_verify_media_refuses_empty_files_and_playlists(
    media: dict[str, bytes], tmp_path: Path
) -> None:
    _fails("unsupported_media", lambda: verify_media(_write(tmp_path, "e.wav", b""), ALL_KINDS))
    # An HLS playlist would make FFmpeg open the files it names; it must not be parsed.
    target = _write(tmp_path, "voice.wav", media["voice.wav"])
    playlist = _write(tmp_path, "list.m3u8", (
        "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n"
        f"file://{target}\n#EXT-X-ENDLIST\n").encode())
    _fails("unsupported_media", lambda: verify_media(playlist, ALL_KINDS))


def test_verify_media_checks_its_accept_argument(media: dict[str, bytes], tmp_path: Path) -> None:
    path = _write(tmp_path, "a.png", media["image.png"])
    with pytest.raises(ValueError):
        verify_media(path, {"picture"})
    with pytest.raises(ValueError):
        verify_media(path, set())
    assert verify_media(path, "image").kind == "image"  # type: ignore[arg-type]


def test_writers_leave_no_partial_files_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "input"
    dest.write_bytes(b"left from an earlier attempt")
    _fails("bad_base64", lambda: decode_base64("!!!!", dest, max_bytes=10))
    assert not dest.exists()
    assert os.listdir(tmp_path) == []
