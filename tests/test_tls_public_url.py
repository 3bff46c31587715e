"""HTTPS and public URLs: a real ``facecast serve --ssl-certfile/--ssl-keyfile`` with a
self-signed certificate made here, reached over HTTPS with httpx trusting only that
certificate. Links (signed file URLs, voice previews, the result URLs inside Akool's
encrypted callbacks, sent later from no request) start with the scheme and host the client
used; X-Forwarded-Proto/-Host count only from the configured trusted proxies."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from facecast.api.public_base import request_base
from service_support import ServerProcess, WebhookReceiver, service_env, wait_for_job
from test_compat_akool import akool_decrypt

PROXY = "127.0.0.2"  # a loopback address of its own: the trusted proxy's connections


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facecast test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address(PROXY)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, ssl.SSLContext]:
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    return cert, key, ssl.create_default_context(cafile=str(cert))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tls: tuple[Path, Path, ssl.SSLContext]
) -> Iterator[ServerProcess]:
    cert, key, context = tls
    srv = ServerProcess(
        tmp_path_factory.mktemp("tls-home"),
        verify=context,
        args=("--ssl-certfile", str(cert), "--ssl-keyfile", str(key)),
        trusted_proxies=PROXY,
        maintenance_interval_s=0.2,
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.slow
def test_https_only(server: ServerProcess) -> None:
    assert server.url.startswith("https://")
    with server.client() as client:
        assert client.get("/health").status_code == 200
    with pytest.raises(httpx.HTTPError):  # its certificate is no public CA's
        httpx.get(f"{server.url}/health", verify=True)


def links(client: httpx.Client, **headers: str) -> list[str]:
    """Links the service made for one request: library avatars' photos, a voice preview."""
    avatars = client.get("/api/v1/avatars", headers=headers).json()["items"]
    voice = client.get("/api/v1/voices", params={"page_size": 1}, headers=headers).json()
    out = [a["photo_url"] for a in avatars] + [voice["items"][0]["preview_url"]]
    assert len(out) >= 2 and all(out), out
    return out


@pytest.mark.slow
def test_links_follow_the_request(
    server: ServerProcess, tls: tuple[Path, Path, ssl.SSLContext]
) -> None:
    port = server.port
    with server.client() as client:
        got = links(client)
        assert all(u.startswith(f"https://127.0.0.1:{port}/") for u in got), got
        photo = client.get(got[0])  # a signed file URL works over the same HTTPS
        assert photo.status_code == 200 and len(photo.content) > 1000
        got = links(client, Host=f"localhost:{port}")
        assert all(u.startswith(f"https://localhost:{port}/") for u in got), got
        # forwarded headers from a peer that is no trusted proxy are ignored
        got = links(client, **{"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"})
        assert all(u.startswith(f"https://127.0.0.1:{port}/") for u in got), got
    # from the trusted proxy they count
    proxy = httpx.HTTPTransport(local_address=PROXY, verify=tls[2])
    with server.client(transport=proxy) as client:
        got = links(
            client, **{"X-Forwarded-Host": "avatars.example.com", "X-Forwarded-Proto": "https"}
        )
        assert all(u.startswith("https://avatars.example.com/") for u in got), got
        got = links(client)  # no forwarded headers: its own Host
        assert all(u.startswith(f"https://127.0.0.1:{port}/") for u in got), got


@pytest.mark.slow
def test_callback_urls_use_the_creating_requests_host(server: ServerProcess) -> None:
    port = server.port
    with server.client() as admin:
        account = admin.post("/api/v1/accounts", json={"name": "tls", "credits": 100}).json()
    with server.client(account["api_key"]) as native:
        pair = native.post("/api/v1/vendor-credentials", json={"vendor": "akool"}).json()
    with WebhookReceiver() as hooks, server.client(account["api_key"]) as client:
        r = httpx.post(
            f"{server.url}/api/open/v3/audio/create",
            verify=server.verify,
            headers={"x-api-key": account["api_key"], "Host": f"localhost:{port}"},
            json={
                "input_text": "Secure hello.",
                "voice_id": "6889b628662160e2caad5dbc",
                "webhookUrl": hooks.url,
            },
            timeout=120,
        )
        assert r.status_code == 200 and r.json()["code"] == 1000, r.text
        job = f"job_{int(r.json()['data']['_id'], 16)}"
        done = wait_for_job(client, job, timeout=180)
        assert done["status"] == "succeeded", done
        got = hooks.wait_for(
            lambda rs: any(
                akool_decrypt(
                    json.loads(x.body)["dataEncrypt"], pair["client_id"], pair["client_secret"]
                )["status"]
                == 3
                for x in rs
            )
        )
    final = [
        akool_decrypt(json.loads(x.body)["dataEncrypt"], pair["client_id"], pair["client_secret"])
        for x in got
    ]
    url = next(d["url"] for d in final if d["status"] == 3)
    # sent by the maintenance thread, from no request: the base the job was made with
    assert url.startswith(f"https://localhost:{port}/files/"), url


def scope(client: str, headers: dict[str, str], scheme: str = "http") -> dict[str, object]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (client, 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }


@pytest.mark.parametrize(
    ("client", "headers", "scheme", "trusted", "expected"),
    [
        ("10.0.0.9", {"Host": "a.example"}, "https", (), "https://a.example"),
        ("10.0.0.9", {"Host": "a.example:8443"}, "http", (), "http://a.example:8443"),
        (
            "10.0.0.9",
            {"Host": "a.example", "X-Forwarded-Host": "b.example", "X-Forwarded-Proto": "https"},
            "http",
            (),
            "http://a.example",
        ),
        (
            "10.0.0.9",
            {
                "Host": "a.example",
                "X-Forwarded-Host": "b.example, c.example",
                "X-Forwarded-Proto": "https",
            },
            "http",
            ("10.0.0.0/8",),
            "https://b.example",
        ),
        (
            "10.0.0.9",
            {"Host": "a.example", "X-Forwarded-Proto": "gopher"},
            "http",
            ("10.0.0.9",),
            "http://a.example",
        ),
        (
            "192.168.1.1",
            {"Host": "a.example", "X-Forwarded-Host": "b.example"},
            "http",
            ("10.0.0.0/8",),
            "http://a.example",
        ),
        ("::1", {"Host": "[::1]:8000"}, "http", (), "http://[::1]:8000"),
        ("10.0.0.9", {"Host": "bad host/with path"}, "http", (), None),
        ("10.0.0.9", {}, "http", (), None),
    ],
)
def test_request_base(
    client: str,
    headers: dict[str, str],
    scheme: str,
    trusted: tuple[str, ...],
    expected: str | None,
) -> None:
    assert request_base(scope(client, headers, scheme), trusted) == expected


def test_cli_has_the_tls_options(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "facecast.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        env=service_env(tmp_path),
        check=True,
    )
    assert "--ssl-certfile" in out.stdout and "--ssl-keyfile" in out.stdout
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "facecast.cli",
            "serve",
            "--ssl-certfile",
            str(tmp_path / "none.pem"),
        ],
        capture_output=True,
        text=True,
        env=service_env(tmp_path),
    )
    assert missing.returncode == 2 and "none.pem" in missing.stderr
