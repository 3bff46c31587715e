"""The Python client (``facecast.client``) against a real ``facecast serve`` on loopback:
typed results, media from paths, bytes, file objects and asset ids, waiting with
progress, downloads, the jobs resource, errors with the API's codes, idempotent creates,
webhook signatures from a real delivery, the async client; retries against a loopback
server that answers 429 / 503 first."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import inspect
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from facecast import errors as local
from facecast.api.native import wire
from facecast.client import (
    APIConnectionError,
    AssetOut,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    Client,
    ConflictError,
    JobOut,
    NotFoundError,
    RateLimitError,
    ServerError,
    WebhookMessage,
    WebhookVerificationError,
    verify_webhook,
)
from facecast.client.resources import Avatars, Cleanups, Dubs, Speech, TalkingPhotos, Voices
from facecast.media import Audio, write_audio
from service_support import LoopbackServer, ServerProcess, WebhookReceiver

pytestmark = pytest.mark.slow  # a real server process rendering media


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("service"), maintenance_interval_s=0.1)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[Client]:
    """A client of a fresh account (made through the admin API, by the client too)."""
    with Client(server.url, server.admin_key) as admin:
        account = admin.accounts.create("client tests", credits=1000)
    with Client(server.url, account.api_key) as made:
        yield made


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """A 256 px portrait (the astronaut's head and shoulders) and 1.5 s of voiced sound:
    small renders."""
    folder = tmp_path_factory.mktemp("media")
    face = astronaut[0:256, 128:384]
    cv2.imwrite(str(folder / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    t = np.arange(int(1.5 * 16000)) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_audio(folder / "speech.wav", Audio(voiced.astype(np.float32), 16000))
    return folder


def test_talking_photo_from_a_path_waits_with_progress_and_downloads(
        client: Client, media: Path, tmp_path: Path) -> None:
    job = client.talking_photos.create(photo=media / "face.png", audio=str(media / "speech.wav"),
                                       seed=2)
    assert isinstance(job, JobOut) and job.status in ("queued", "running")
    seen: list[tuple[float, str]] = []
    done = client.jobs.wait(job, progress=lambda fraction, stage: seen.append((fraction, stage)),
                            poll_interval=0.2, timeout=300)
    assert done.status == "succeeded" and done.result is not None
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and len(seen) >= 2, seen
    assert seen[-1] == (1.0, "done")
    assert done.result.info["width"] == 256 and done.result.files["video"].size > 0

    out = client.jobs.download(done, tmp_path / "deep" / "out.mp4")
    assert out == tmp_path / "deep" / "out.mp4"
    assert out.read_bytes() == httpx.get(done.result.files["video"].url).content
    # by id, another file; nothing else is left in the folder (written whole, then renamed)
    visemes = client.jobs.download(job.id, tmp_path / "deep" / "v.json", file="visemes")
    assert json.loads(visemes.read_bytes())
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.mp4", "v.json"]
    with pytest.raises(KeyError, match="no file 'nope'"):
        client.jobs.download(done, tmp_path / "x", file="nope")


def test_media_from_bytes_file_objects_and_asset_ids(client: Client, media: Path) -> None:
    photo = (media / "face.png").read_bytes()
    with open(media / "speech.wav", "rb") as audio:
        from_bytes = client.talking_photos.create(photo=photo, audio=audio, size="128x128")
    asset = client.assets.upload(media / "face.png")
    assert isinstance(asset, AssetOut) and asset.kind == "image"
    from_id = client.talking_photos.create(photo=asset.id, text="Hello there.",
                                           size="128x128")
    # the bytes went up as an asset of their own, byte for byte
    uploaded = client.assets.get(from_bytes.input["photo_asset_id"])
    assert uploaded.sha256 == hashlib.sha256(photo).hexdigest()
    assert from_id.input["photo_asset_id"] == asset.id
    for job in (from_bytes, from_id):
        done = client.jobs.wait(job, poll_interval=0.2, timeout=300)
        assert done.status == "succeeded" and done.result is not None
        assert done.result.info["width"] == 128


def test_jobs_list_get_cancel_delete(client: Client, media: Path) -> None:
    # one worker: the speech job queues behind the render
    render = client.talking_photos.create(photo=media / "face.png",
                                          audio=media / "speech.wav", size="128x128")
    speech = client.speech.create("Wait for your turn.")
    with pytest.raises(ConflictError) as active:
        client.jobs.delete(render)
    assert active.value.code == "job_active" and active.value.status_code == 409
    canceled = client.jobs.cancel(speech.id)
    assert canceled.status == "canceled"
    with pytest.raises(ConflictError) as finished:
        client.jobs.cancel(speech)
    assert finished.value.code == "job_not_cancelable"
    assert client.jobs.get(speech.id).status == "canceled"

    listed = client.jobs.list(kind="tts", page_size=100)
    assert speech.id in [j.id for j in listed.items]
    assert all(j.kind == "tts" for j in listed.items) and isinstance(listed, wire.JobList)
    assert [j.id for j in client.jobs.list(status="canceled").items] == [speech.id]

    client.jobs.delete(speech)
    with pytest.raises(NotFoundError) as gone:
        client.jobs.get(speech)
    assert gone.value.code == "job_not_found"
    assert isinstance(gone.value, local.NotFoundError)  # caught like the engine's errors
    assert client.jobs.wait(render, poll_interval=0.2, timeout=300).status == "succeeded"


def test_errors_carry_the_api_code(server: ServerProcess, client: Client, media: Path) -> None:
    with Client(server.url, "fc_not_a_key") as stranger, \
            pytest.raises(AuthenticationError) as auth:
        stranger.jobs.list()
    assert (auth.value.code, auth.value.status_code) == ("invalid_api_key", 401)

    with pytest.raises(BadRequestError) as bad:
        client.talking_photos.create(photo=media / "face.png", text="Hi.", size="huge")
    assert bad.value.code == "bad_size" and "huge" in bad.value.message
    assert isinstance(bad.value, local.InputError)
    with pytest.raises(BadRequestError) as invalid:
        client.speech.create("Hi.", rate=9)
    assert invalid.value.code == "invalid_request" and invalid.value.status_code == 422
    assert invalid.value.details["errors"]
    with pytest.raises(BadRequestError) as no_face:
        client.avatars.create("noise", photo=np.zeros(1).tobytes() + b"\x89PNG")
    assert no_face.value.code in ("unsupported_media", "unreadable_image")


def test_external_id_makes_creates_idempotent(client: Client) -> None:
    first = client.speech.create("Once only.", external_id="order-17/a")
    again = client.speech.create("Once only.", external_id="order-17/a")
    assert again.id == first.id
    assert client.jobs.get_by_external_id("order-17/a").id == first.id
    assert client.jobs.wait(first, poll_interval=0.2, timeout=120).status == "succeeded"


def test_verify_webhook_accepts_a_real_delivery_and_rejects_a_tampered_one(
        client: Client) -> None:
    with WebhookReceiver() as receiver:
        endpoint = client.webhooks.create(receiver.url + "/hook", events=["webhook.test"])
        assert endpoint.secret.startswith("whsec_")
        client.webhooks.test(endpoint)
        got = receiver.wait_for(lambda r: len(r) >= 1)[0]
    message = verify_webhook(got.body, got.headers, endpoint.secret)
    assert isinstance(message, WebhookMessage) and message.type == "webhook.test"

    tampered = got.body.replace(b"webhook.test", b"webhook.tost")
    with pytest.raises(WebhookVerificationError) as bad:
        verify_webhook(tampered, got.headers, endpoint.secret)
    assert bad.value.code == "invalid_webhook"
    other = client.webhooks.create(receiver.url + "/other")
    with pytest.raises(WebhookVerificationError):
        verify_webhook(got.body, got.headers, other.secret)
    client.webhooks.delete(endpoint)
    client.webhooks.delete(other)


def test_async_client_mirrors_the_sync_one(server: ServerProcess, client: Client,
                                           tmp_path: Path) -> None:
    key = client.account.create_key("async").key

    async def scenario() -> tuple[JobOut, list[float], Path]:
        seen: list[float] = []
        async with AsyncClient(server.url, key) as aclient:
            job = await aclient.speech.create("Asynchronous hello.", format="wav")
            done = await aclient.jobs.wait(job, progress=lambda f, _s: seen.append(f),
                                           poll_interval=0.2, timeout=120)
            path = await aclient.jobs.download(done, tmp_path / "hello.wav")
            with pytest.raises(NotFoundError) as missing:
                await aclient.jobs.get("job_999999")
            assert missing.value.code == "job_not_found"
        return done, seen, path

    done, seen, path = asyncio.run(scenario())
    assert done.status == "succeeded" and seen[-1] == 1.0 and seen == sorted(seen)
    assert done.result is not None
    assert path.read_bytes()[:4] == b"RIFF"
    assert path.stat().st_size == done.result.files["audio"].size


def test_environment_defaults(server: ServerProcess, client: Client,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    key = client.account.create_key("env").key
    monkeypatch.setenv("FACECAST_BASE_URL", server.url)
    monkeypatch.setenv("FACECAST_API_KEY", key)
    with Client() as from_env:
        assert from_env.health().status == "ok"
        assert from_env.account.get().name == "client tests"
    monkeypatch.delenv("FACECAST_BASE_URL")
    with pytest.raises(ValueError, match="FACECAST_BASE_URL"):
        Client()


# -- retries, against a scripted loopback server -----------------------------------------


class Scripted(LoopbackServer):
    """Answers GET /health with the next (status, headers) of ``script``, then 200."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script = list(script)
        self.times: list[float] = []
        lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    owner.times.append(time.monotonic())
                    status, headers = owner.script.pop(0) if owner.script else (200, {})
                if status == 200:
                    data = json.dumps({"status": "ok", "version": "x", "queued": 0,
                                       "running": 0}).encode()
                else:
                    data = json.dumps({"error": {"code": "rate_limited" if status == 429
                                                 else "unavailable",
                                                 "message": "later"}}).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(Handler)


def test_retries_wait_for_retry_after() -> None:
    with Scripted([(429, {"Retry-After": "1"})]) as srv, Client(srv.url, "fc_x") as client:
        assert client.health().status == "ok"
    assert len(srv.times) == 2
    assert srv.times[1] - srv.times[0] >= 1.0  # it waited as told


def test_retries_give_up_after_max_retries() -> None:
    script = [(503, {"Retry-After": "0"})] * 3
    with Scripted(script) as srv, Client(srv.url, "fc_x", max_retries=2) as client, \
            pytest.raises(ServerError) as failed:
        client.health()
    assert len(srv.times) == 3 and failed.value.status_code == 503
    assert failed.value.code == "unavailable"


def test_a_long_retry_after_is_left_to_the_caller() -> None:
    with Scripted([(429, {"Retry-After": "3600"})]) as srv, \
            Client(srv.url, "fc_x") as client, pytest.raises(RateLimitError) as limited:
        client.health()
    assert len(srv.times) == 1
    assert limited.value.code == "rate_limited" and limited.value.retry_after == 3600
    assert isinstance(limited.value, local.LimitError)


def test_a_server_that_is_not_there() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens on it once closed
    started = time.monotonic()
    with Client(f"http://127.0.0.1:{port}", "fc_x", max_retries=1) as client, \
            pytest.raises(APIConnectionError) as refused:
        client.jobs.list()
    assert refused.value.code == "connection_error" and str(port) in refused.value.message
    assert time.monotonic() - started >= 0.3  # one retry after the first backoff


def test_async_retries_wait_for_retry_after() -> None:
    async def health(url: str) -> str:
        async with AsyncClient(url, "fc_x") as client:
            return (await client.health()).status

    with Scripted([(429, {"Retry-After": "1"})]) as srv:
        assert asyncio.run(health(srv.url)) == "ok"
    assert len(srv.times) == 2 and srv.times[1] - srv.times[0] >= 1.0


# -- the client's shape --------------------------------------------------------------------

MEDIA_ARGS = {"photo", "audio", "video", "sample", "composition"}


@pytest.mark.parametrize(("method", "model"), [
    (TalkingPhotos.create, wire.TalkingPhotoCreate),
    (Dubs.create, wire.DubCreate),
    (Cleanups.create, wire.CleanupCreate),
    (Speech.create, wire.SpeechCreate),
    (Voices.clone, wire.VoiceCloneCreate),
    (Avatars.create, wire.AvatarCreate),
])
def test_create_methods_take_every_field_of_the_wire_request(method: Any, model: Any) -> None:
    # a field added to the API's request model is missed here until the client takes it
    params = set(method.__signature__.parameters)  # the method as both clients show it
    assert params == set(model.model_fields), params ^ set(model.model_fields)


def test_sync_and_async_methods_share_signatures() -> None:
    sync, aio = Client("http://127.0.0.1:1", "k"), AsyncClient("http://127.0.0.1:1", "k")
    method = sync.talking_photos.create
    amethod = aio.talking_photos.create
    assert not inspect.iscoroutinefunction(method) and inspect.iscoroutinefunction(amethod)
    assert inspect.signature(method) == inspect.signature(amethod)
    assert "photo" in inspect.signature(method).parameters
    assert "self" not in inspect.signature(method).parameters
    assert method.__doc__ and method.__doc__ == amethod.__doc__
    sync.close()
    asyncio.run(aio.close())


def test_importing_the_client_loads_no_server_or_engine() -> None:
    code = ("import sys, facecast.client; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "httpx" in loaded and "pydantic" in loaded
    assert not loaded & {"fastapi", "starlette", "sqlalchemy", "numpy", "av", "cv2",
                         "ai_edge_litert", "huey", "uvicorn"}, loaded
