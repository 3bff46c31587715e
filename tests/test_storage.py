"""Storage backends and the signed file URLs, against real servers on loopback ports.

LocalStorage's URLs are fetched from the files router running in a real uvicorn server;
S3Storage runs against s3rver (npm, ``tests/servers``), an S3-compatible server that checks
presigned URLs' expiry and SigV2 signatures. Without ``tests/servers/node_modules`` (install:
``npm ci --prefix tests/servers``) the S3 tests skip.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from facecast.api.files import files_router
from facecast.service.settings import Settings
from facecast.service.storage import (
    LocalStorage,
    S3Storage,
    Storage,
    StorageMissing,
    check_key,
    open_storage,
)

SERVERS = Path(__file__).resolve().parent / "servers"
S3RVER_CLI = SERVERS / "node_modules" / "s3rver" / "bin" / "s3rver.js"
BUCKET = "facecast-test"
SIGNING_KEY = b"test-signing-key-0123456789abcdef"
# s3rver's built-in account
S3_CREDS = "access_key=S3RVER&secret_key=S3RVER&region=us-east-1"

# 256 distinct bytes, so any wrong offset in a range shows
PAYLOAD = bytes(range(256)) * 40


def _client() -> httpx.Client:
    # loopback only: proxy settings from the environment must not reroute these requests
    return httpx.Client(trust_env=False, timeout=10)


def _with_query(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (or removed where the value is None)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


def _flip(text: str) -> str:
    """``text`` with its last character changed: a minimal tampering."""
    return text[:-1] + ("0" if text[-1] != "0" else "1")


# ---------------------------------------------------------------------------------------------
# servers


class _ThreadedUvicorn(uvicorn.Server):
    """A uvicorn server that says when its startup has finished (or failed)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStorage]:
    """LocalStorage whose URLs are served by the files router in a real uvicorn server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # bound before the server starts: the port is ours, no free-port race
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    storage = LocalStorage(tmp_path_factory.mktemp("served"), SIGNING_KEY,
                           f"http://127.0.0.1:{port}")
    app = FastAPI()
    app.include_router(files_router(storage))
    server = _ThreadedUvicorn(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert server.ready.wait(15), "uvicorn did not finish starting"
    assert server.started, "uvicorn failed to start"
    yield storage
    server.should_exit = True
    thread.join(15)
    sock.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An s3rver on a free loopback port with the test bucket; its endpoint URL."""
    node = shutil.which("node")
    if not S3RVER_CLI.is_file() or node is None:
        pytest.skip("s3rver is not installed: run `npm ci --prefix tests/servers` (needs node)")
    data = tmp_path_factory.mktemp("s3rver")
    # port 0: s3rver binds a free port and prints it, so no other process can take it first
    proc = subprocess.Popen(
        [node, str(S3RVER_CLI), "-d", str(data), "-a", "127.0.0.1", "-p", "0", "--silent",
         "--configure-bucket", BUCKET],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    log: list[str] = []

    def pump() -> None:
        # keeps reading to the end so the pipe never fills and blocks the server
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    endpoint = None
    deadline = time.monotonic() + 30
    try:
        while endpoint is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            # printed once the bucket is configured and the socket listens
            match = re.search(r"S3rver listening on ([\d.]+):(\d+)", line)
            if match:
                endpoint = f"http://{match[1]}:{match[2]}"
        if endpoint is None:
            pytest.fail(f"s3rver did not start; its output:\n{''.join(log)}")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _s3_url(endpoint: str, prefix: str, *extra: str) -> str:
    return "&".join([f"s3://{BUCKET}/{prefix}?endpoint_url={endpoint}", S3_CREDS, *extra])


@pytest.fixture
def s3_prefix() -> str:
    # each test in its own folder of the shared bucket
    return f"t-{uuid.uuid4().hex[:12]}/data"


@pytest.fixture
def s3(s3_endpoint: str, s3_prefix: str) -> S3Storage:
    storage = open_storage(_s3_url(s3_endpoint, s3_prefix), signing_key=SIGNING_KEY,
                           base_url="http://unused")
    assert isinstance(storage, S3Storage)
    return storage


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", SIGNING_KEY, "http://127.0.0.1:9")


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest) -> Storage:
    """Each backend in turn, for the behaviour both must share."""
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------------------------------
# behaviour both backends share


def test_put_bytes_get_exists_size(storage: Storage, tmp_path: Path) -> None:
    storage.put_bytes("jobs/1/1/video.mp4", PAYLOAD, "video/mp4")
    assert storage.exists("jobs/1/1/video.mp4")
    assert storage.size("jobs/1/1/video.mp4") == len(PAYLOAD)
    dest = tmp_path / "out" / "deeper" / "copy.mp4"  # folders are made as needed
    storage.get_to_path("jobs/1/1/video.mp4", dest)
    assert dest.read_bytes() == PAYLOAD


def test_put_file_and_overwrite(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    source.write_bytes(os.urandom(300_000))
    storage.put_file("assets/7/voice.wav", source, "audio/wav")
    assert storage.size("assets/7/voice.wav") == 300_000
    storage.put_bytes("assets/7/voice.wav", b"second version", "audio/wav")
    storage.get_to_path("assets/7/voice.wav", tmp_path / "back.wav")
    assert (tmp_path / "back.wav").read_bytes() == b"second version"


def test_missing_key(storage: Storage, tmp_path: Path) -> None:
    assert not storage.exists("jobs/404/x.mp4")
    assert storage.size("jobs/404/x.mp4") is None
    with pytest.raises(StorageMissing) as info:
        storage.get_to_path("jobs/404/x.mp4", tmp_path / "x.mp4")
    assert info.value.key == "jobs/404/x.mp4"
    assert not (tmp_path / "x.mp4").exists()


def test_delete_is_idempotent(storage: Storage) -> None:
    storage.put_bytes("a/b.txt", b"x", "text/plain")
    storage.delete("a/b.txt")
    assert not storage.exists("a/b.txt")
    storage.delete("a/b.txt")  # again: no error
    storage.delete("never/stored.txt")
    assert not storage.exists("a/b.txt")


def test_delete_prefix_is_a_string_prefix(storage: Storage) -> None:
    keys = ["jobs/1/1/video.mp4", "jobs/1/2/sub/audio.wav", "jobs/12/1/video.mp4",
            "jobs/2/1/video.mp4"]
    for key in keys:
        storage.put_bytes(key, key.encode(), "application/octet-stream")
    assert storage.delete_prefix("jobs/1/") == 2
    assert [storage.exists(k) for k in keys] == [False, False, True, True]
    # without the slash it is a plain string prefix, as S3 defines it: jobs/12 matches
    assert storage.delete_prefix("jobs/1") == 1
    assert [storage.exists(k) for k in keys] == [False, False, False, True]
    assert storage.delete_prefix("jobs/1/") == 0
    assert storage.delete_prefix("nothing/here/") == 0
    assert storage.exists("jobs/2/1/video.mp4")


def test_delete_prefix_refuses_bad_prefixes(storage: Storage) -> None:
    storage.put_bytes("jobs/1/x.txt", b"x", "text/plain")
    # the empty prefix would delete everything: no caller means that
    for prefix in ["", "/", "../", "jobs/../", "a//", "/jobs/"]:
        with pytest.raises(ValueError):
            storage.delete_prefix(prefix)
    assert storage.exists("jobs/1/x.txt")


def test_keys_are_checked_by_both(storage: Storage) -> None:
    with pytest.raises(ValueError):
        storage.put_bytes("../escape.txt", b"x", "text/plain")
    with pytest.raises(ValueError):
        storage.exists("/etc/passwd")
    with pytest.raises(ValueError):
        storage.url("a\\b.txt", 60)


# ---------------------------------------------------------------------------------------------
# LocalStorage


BAD_KEYS = ["", "/abs/path.mp4", "../up.mp4", "a/../b.mp4", "a/./b.mp4", "a\\b.mp4",
            "a//b.mp4", "a/", ".hidden", "a/.facecast-tmp-x", "sp ace.mp4", "ümlaut.mp4",
            "a?b", "a%2Fb", "x" * 1025]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_rejects_bad_keys(local: LocalStorage, key: str) -> None:
    with pytest.raises(ValueError):
        local.path_for(key)
    with pytest.raises(ValueError):
        local.put_bytes(key, b"x", "text/plain")
    with pytest.raises(ValueError):
        local.url(key, 60)
    assert not local.root.exists()  # nothing was written anywhere


@pytest.mark.parametrize("key", ["a.mp4", "jobs/12/3/video.mp4", "A-b_c.d/e.f.g", "x" * 1024])
def test_local_accepts_good_keys(local: LocalStorage, key: str) -> None:
    path = local.path_for(key)
    assert local.root in path.parents
    assert path.relative_to(local.root).as_posix() == key
    assert check_key(key) == key


def test_local_writes_leave_no_temp_files(local: LocalStorage, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(PAYLOAD)
    local.put_file("jobs/5/a.bin", source, "application/octet-stream")
    local.put_bytes("jobs/5/b.bin", b"bee", "application/octet-stream")
    local.get_to_path("jobs/5/a.bin", tmp_path / "got" / "a.bin")
    assert sorted(p.name for p in (local.root / "jobs" / "5").iterdir()) == ["a.bin", "b.bin"]
    assert [p.name for p in (tmp_path / "got").iterdir()] == ["a.bin"]


def test_local_failed_write_keeps_old_file(local: LocalStorage) -> None:
    local.put_bytes("jobs/5/a.txt", b"old", "text/plain")
    with pytest.raises(TypeError):
        # a write that fails half-way: the temp file is opened, then writing raises
        local.put_bytes("jobs/5/a.txt", "not bytes", "text/plain")  # type: ignore[arg-type]
    assert local.path_for("jobs/5/a.txt").read_bytes() == b"old"
    assert [p.name for p in local.path_for("jobs/5/a.txt").parent.iterdir()] == ["a.txt"]


def test_local_reader_never_sees_half_a_file(local: LocalStorage) -> None:
    """Overwrite one key many times while reading it: every read is one whole version."""
    versions = [b"a" * 200_000, b"b" * 200_000]
    path = local.path_for("jobs/9/video.mp4")
    local.put_bytes("jobs/9/video.mp4", versions[0], "video/mp4")
    done = threading.Event()
    seen: list[bytes] = []
    failures: list[str] = []

    def read() -> None:
        while not done.is_set():
            data = path.read_bytes()
            if data not in versions:
                failures.append(f"read {len(data)} bytes starting {data[:1]!r}")
            seen.append(data[:1])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(150):
            local.put_bytes("jobs/9/video.mp4", versions[i % 2], "video/mp4")
    finally:
        done.set()
        reader.join(30)
    assert not failures, failures[:5]
    assert len(seen) > 0


def test_local_delete_prunes_empty_folders(local: LocalStorage) -> None:
    local.put_bytes("jobs/3/1/a.mp4", b"a", "video/mp4")
    local.put_bytes("jobs/3/2/b.mp4", b"b", "video/mp4")
    local.put_bytes("jobs/4/1/c.mp4", b"c", "video/mp4")
    assert local.delete_prefix("jobs/3/") == 2
    assert not (local.root / "jobs" / "3").exists()
    local.delete("jobs/4/1/c.mp4")
    assert not (local.root / "jobs").exists()
    assert local.root.is_dir()  # the root itself stays


def test_local_delete_prefix_skips_writes_in_progress(local: LocalStorage) -> None:
    local.put_bytes("jobs/6/a.mp4", b"a", "video/mp4")
    # what a writer has open at that moment: a temp file not yet moved into place
    in_progress = local.path_for("jobs/6/a.mp4").parent / ".facecast-tmp-abc123"
    in_progress.write_bytes(b"half")
    assert local.delete_prefix("jobs/6/") == 1
    assert in_progress.read_bytes() == b"half"


def test_local_signature_covers_every_field(local: LocalStorage) -> None:
    url = local.url("jobs/1/1/video.mp4", 60, filename="talk.mp4")
    parts = urlsplit(url)
    assert parts.path == "/files/jobs/1/1/video.mp4"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    exp, sig = int(query["exp"]), query["sig"]
    assert query["filename"] == "talk.mp4"
    assert exp - 61 < time.time() < exp - 59  # at least 60 s, rounded up to a second
    assert local.verify("jobs/1/1/video.mp4", exp, sig, "talk.mp4")
    assert not local.verify("jobs/1/1/video.mp4", exp, sig, None)
    assert not local.verify("jobs/1/1/video.mp4", exp, sig, "other.mp4")
    assert not local.verify("jobs/1/1/audio.wav", exp, sig, "talk.mp4")
    assert not local.verify("jobs/1/1/video.mp4", exp + 1, sig, "talk.mp4")
    assert not local.verify("jobs/1/1/video.mp4", exp, _flip(sig), "talk.mp4")
    assert not local.verify("jobs/1/1/video.mp4", exp, "", "talk.mp4")
    # valid signature, but past its expiry
    assert local.signature_valid("jobs/1/1/video.mp4", exp, sig, "talk.mp4")
    assert not local.verify("jobs/1/1/video.mp4", exp, sig, "talk.mp4", now=exp + 1)
    other = LocalStorage(local.root, b"another key", local.base_url)
    assert not other.verify("jobs/1/1/video.mp4", exp, sig, "talk.mp4")


@pytest.mark.parametrize("filename", ["a/b.mp4", 'q"uote.mp4', "line\nbreak.mp4", ""])
def test_local_url_refuses_bad_filenames(local: LocalStorage, filename: str) -> None:
    with pytest.raises(ValueError):
        local.url("jobs/1/v.mp4", 60, filename=filename)


# ---------------------------------------------------------------------------------------------
# opening storage from its URL


def test_open_storage_from_settings_default(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, secret_key="s3cret")
    storage = open_storage(settings.storage, signing_key=settings.signing_key,
                           base_url=settings.base_url)
    assert isinstance(storage, LocalStorage)
    assert isinstance(storage, Storage)
    assert storage.root == tmp_path / "service" / "storage"
    assert storage.url("a.mp4", 60).startswith("http://127.0.0.1:8000/files/a.mp4?exp=")


def test_open_storage_s3_url() -> None:
    storage = open_storage(
        "s3://media-bucket/facecast/prod?endpoint_url=http://127.0.0.1:4569&region=eu-west-1"
        "&access_key=AK&secret_key=SK", signing_key=b"k", base_url="http://x")
    assert isinstance(storage, S3Storage)
    assert isinstance(storage, Storage)
    assert (storage.bucket, storage.prefix) == ("media-bucket", "facecast/prod/")
    assert storage.client.meta.region_name == "eu-west-1"
    # presigning needs no server: the URL is path-style on the custom endpoint
    url = storage.url("jobs/1/v.mp4", 60)
    assert url.startswith("http://127.0.0.1:4569/media-bucket/facecast/prod/jobs/1/v.mp4?")
    assert "X-Amz-Credential=AK%2F" in url


@pytest.mark.parametrize("url", ["file://relative/path", "ftp://x/y", "s3:///prefix",
                                 "s3://b/p?endpoint=http://typo", "/plain/path"])
def test_open_storage_refuses_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        open_storage(url, signing_key=b"k", base_url="http://x")


# ---------------------------------------------------------------------------------------------
# the files router, served by uvicorn


def _error_of(response: httpx.Response) -> dict[str, str]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    return body["error"]


def test_served_full_get_and_head(file_server: LocalStorage) -> None:
    file_server.put_bytes("jobs/20/1/video.mp4", PAYLOAD, "video/mp4")
    url = file_server.url("jobs/20/1/video.mp4", 300)
    with _client() as client:
        response = client.get(url)
        head = client.head(url)
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(PAYLOAD))
    assert "content-disposition" not in response.headers  # no filename signed: inline
    assert re.fullmatch(r"private, max-age=(29\d|300)", response.headers["cache-control"])
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(PAYLOAD))


def test_served_range_requests(file_server: LocalStorage) -> None:
    file_server.put_bytes("jobs/21/1/video.mp4", PAYLOAD, "video/mp4")
    url = file_server.url("jobs/21/1/video.mp4", 300)
    size = len(PAYLOAD)
    with _client() as client:
        middle = client.get(url, headers={"Range": "bytes=10-19"})
        suffix = client.get(url, headers={"Range": "bytes=-16"})
        open_ended = client.get(url, headers={"Range": f"bytes={size - 5}-"})
        beyond = client.get(url, headers={"Range": f"bytes={size + 10}-{size + 20}"})
    assert middle.status_code == 206
    assert middle.content == PAYLOAD[10:20]
    assert middle.headers["content-range"] == f"bytes 10-19/{size}"
    assert middle.headers["content-length"] == "10"
    assert suffix.status_code == 206
    assert suffix.content == PAYLOAD[-16:]
    assert suffix.headers["content-range"] == f"bytes {size - 16}-{size - 1}/{size}"
    assert open_ended.status_code == 206
    assert open_ended.content == PAYLOAD[-5:]
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"


def test_served_download_filename(file_server: LocalStorage) -> None:
    file_server.put_bytes("jobs/22/1/video.mp4", PAYLOAD, "video/mp4")
    with _client() as client:
        plain = client.get(file_server.url("jobs/22/1/video.mp4", 300, filename="talk.mp4"))
        accented = client.get(file_server.url("jobs/22/1/video.mp4", 300,
                                              filename="café talk.mp4"))
    assert plain.status_code == 200
    assert plain.headers["content-disposition"] == 'attachment; filename="talk.mp4"'
    assert accented.status_code == 200
    assert accented.headers["content-disposition"] == \
        "attachment; filename*=utf-8''caf%C3%A9%20talk.mp4"
    assert plain.content == PAYLOAD


def test_served_active_content_is_never_inline(file_server: LocalStorage) -> None:
    file_server.put_bytes("assets/3/page.html", b"<script>alert(1)</script>", "text/html")
    with _client() as client:
        response = client.get(file_server.url("assets/3/page.html", 300))
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="page.html"'
    assert response.headers["x-content-type-options"] == "nosniff"


def test_served_tampered_urls_are_refused(file_server: LocalStorage) -> None:
    file_server.put_bytes("jobs/23/1/video.mp4", PAYLOAD, "video/mp4")
    file_server.put_bytes("jobs/23/1/secret.wav", b"other file", "audio/wav")
    url = file_server.url("jobs/23/1/video.mp4", 300, filename="talk.mp4")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    tampered = [
        _with_query(url, sig=_flip(query["sig"])),
        _with_query(url, exp=str(int(query["exp"]) + 86400)),  # extend the lifetime
        _with_query(url, filename="evil.exe"),
        _with_query(url, filename=None),
        _with_query(url, sig=None),
        _with_query(url, exp="soon"),
        url.replace("video.mp4", "secret.wav"),  # another file with this file's signature
    ]
    with _client() as client:
        assert client.get(url).status_code == 200  # the untouched URL works
        for bad in tampered:
            response = client.get(bad)
            assert response.status_code == 403, bad
            assert _error_of(response)["code"] == "bad_signature", bad
            assert response.content != PAYLOAD


def test_served_expired_url(file_server: LocalStorage) -> None:
    file_server.put_bytes("jobs/24/1/video.mp4", PAYLOAD, "video/mp4")
    with _client() as client:
        response = client.get(file_server.url("jobs/24/1/video.mp4", -60))
    assert response.status_code == 403
    error = _error_of(response)
    assert error["code"] == "link_expired"
    assert "fresh URL" in error["message"]


def test_served_file_removed_by_retention(file_server: LocalStorage) -> None:
    file_server.put_bytes("jobs/25/1/video.mp4", PAYLOAD, "video/mp4")
    url = file_server.url("jobs/25/1/video.mp4", 300)
    with _client() as client:
        assert client.get(url).status_code == 200
        file_server.delete_prefix("jobs/25/")
        response = client.get(url)
    assert response.status_code == 410
    error = _error_of(response)
    assert error["code"] == "file_expired"
    assert "retention" in error["message"]


# ---------------------------------------------------------------------------------------------
# S3Storage's presigned URLs, checked by s3rver


def test_s3_presigned_download(s3: S3Storage, tmp_path: Path) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(PAYLOAD)
    s3.put_file("jobs/30/1/video.mp4", source, "video/mp4")
    head = s3.client.head_object(Bucket=s3.bucket, Key=s3.prefix + "jobs/30/1/video.mp4")
    assert head["ContentType"] == "video/mp4"
    url = s3.url("jobs/30/1/video.mp4", 300, filename="talk.mp4")
    assert "X-Amz-Signature=" in url  # SigV4, the default
    with _client() as client:
        response = client.get(url)
        middle = client.get(url, headers={"Range": "bytes=10-19"})
    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["content-disposition"] == 'attachment; filename="talk.mp4"'
    assert middle.status_code == 206
    assert middle.content == PAYLOAD[10:20]
    assert middle.headers["content-range"] == f"bytes 10-19/{len(PAYLOAD)}"


def test_s3_tampered_presigned_urls_are_refused(s3: S3Storage, s3_endpoint: str,
                                                 s3_prefix: str) -> None:
    """s3rver checks SigV2 signatures only (it accepts any SigV4 signature), so these URLs are
    signed with SigV2 by a second storage over the same bucket and prefix."""
    s3.put_bytes("jobs/31/1/video.mp4", PAYLOAD, "video/mp4")
    s3.put_bytes("jobs/31/1/secret.wav", b"other file", "audio/wav")
    signer = open_storage(_s3_url(s3_endpoint, s3_prefix, "signature_version=s3"),
                          signing_key=SIGNING_KEY, base_url="http://unused")
    url = signer.url("jobs/31/1/video.mp4", 300, filename="talk.mp4")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    tampered = [
        _with_query(url, Signature=_flip(query["Signature"])),
        _with_query(url, Expires=str(int(query["Expires"]) + 86400)),
        _with_query(url, **{"response-content-disposition": 'attachment; filename="x.exe"'}),
        url.replace("video.mp4", "secret.wav"),
    ]
    with _client() as client:
        good = client.get(url)
        assert good.status_code == 200
        assert good.content == PAYLOAD
        for bad in tampered:
            response = client.get(bad)
            assert response.status_code == 403, bad
            assert b"SignatureDoesNotMatch" in response.content, bad


def test_s3_presigned_url_expires(s3: S3Storage) -> None:
    s3.put_bytes("jobs/32/1/video.mp4", PAYLOAD, "video/mp4")
    url = s3.url("jobs/32/1/video.mp4", 2)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    expires_at = signed_at.replace(tzinfo=timezone.utc).timestamp() + int(query["X-Amz-Expires"])
    with _client() as client:
        assert client.get(url).status_code == 200
        # the thing under test is the passing of time itself: wait out the URL's lifetime
        time.sleep(max(0.0, expires_at - time.time()) + 0.1)
        response = client.get(url)
    assert response.status_code == 403
    assert b"Request has expired" in response.content


def test_s3_public_endpoint_in_urls(s3_endpoint: str, s3_prefix: str) -> None:
    public = s3_endpoint.replace("127.0.0.1", "localhost")
    storage = open_storage(_s3_url(s3_endpoint, s3_prefix, f"public_endpoint_url={public}"),
                           signing_key=SIGNING_KEY, base_url="http://unused")
    storage.put_bytes("jobs/33/1/a.json", b'{"ok": true}', "application/json")
    url = storage.url("jobs/33/1/a.json", 60)
    assert url.startswith(f"{public}/{BUCKET}/{s3_prefix}/jobs/33/1/a.json?")
    with _client() as client:
        response = client.get(url)
    assert response.status_code == 200
    assert response.json() == {"ok": True}
