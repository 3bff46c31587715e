"""The native REST API end to end: a real `facecast serve` (API + worker process +
SQLite + local storage) on loopback, real renders, real webhooks to a receiver."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from facecast.media import Audio, write_audio
from service_support import ServerProcess, WebhookReceiver, file_server, wait_for_job

# end-to-end: a real server process rendering media
pytestmark = pytest.mark.slow

NewAccount = Callable[..., httpx.Client]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("service"), heartbeat_s=0.5, lease_s=10,
                        maintenance_interval_s=0.1, webhook_retry_delays="0.2,0.4")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    assert server.admin_key and server.admin_key.startswith("fc_")
    with server.client() as client:
        yield client


@pytest.fixture
def new_account(server: ServerProcess, admin: httpx.Client) -> Iterator[NewAccount]:
    """Makes accounts (through the admin API) and gives a client for each."""
    clients: list[httpx.Client] = []

    def make(credits: int = 1000, **limits: object) -> httpx.Client:
        r = admin.post("/api/v1/accounts", json={"name": "tester", "credits": credits, **limits})
        assert r.status_code == 201, r.text
        client = server.client(r.json()["api_key"])
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory, astronaut_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("media")
    (folder / "face.png").write_bytes(astronaut_path.read_bytes())
    t = np.arange(int(2.5 * 16000)) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_audio(folder / "speech.wav", Audio(voiced.astype(np.float32), 16000))
    (folder / "notes.txt").write_text("this is not a picture\n" * 50)
    return folder


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def decode_duration(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        return float(container.duration or 0) / 1e6


def builtin_avatar(client: httpx.Client) -> str:
    items = client.get("/api/v1/avatars", params={"custom": False}).json()["items"]
    return items[0]["id"]


def test_health_needs_no_key_and_everything_else_does(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    r = httpx.get(f"{server.url}/api/v1/jobs")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = httpx.get(f"{server.url}/api/v1/jobs", headers={"Authorization": "Bearer fc_nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.get(f"{server.url}/api/v1/jobs", headers={"X-API-Key": server.admin_key or ""})
    assert r.status_code == 200
    r = httpx.get(f"{server.url}/api/v1/nothing-here", headers={"X-API-Key": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "/api/v1/talking-photos" in httpx.get(f"{server.url}/openapi.json").json()["paths"]


def test_tts_job_result_ledger_and_signed_urls(new_account: NewAccount) -> None:
    client = new_account(credits=50)
    r = client.post("/api/v1/speech", json={"text": "Good morning. The service works.",
                                            "format": "wav", "rate": 1.1})
    assert r.status_code == 201, r.text
    assert r.headers["Location"].endswith(r.json()["id"])
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 100 and job["cost"] == job["cost_estimate"] == 1
    audio = job["result"]["files"]["audio"]
    data = httpx.get(audio["url"]).content
    assert len(data) == audio["size"] and data[:4] == b"RIFF"
    assert abs(decode_duration(data) - job["result"]["info"]["duration"]) < 0.05
    timings = httpx.get(job["result"]["files"]["timings"]["url"]).json()
    assert [w["word"].lower().strip(".,") for w in timings["words"]][:2] == ["good", "morning"]

    part = httpx.get(audio["url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    tampered = audio["url"].replace("sig=", "sig=0")
    r = httpx.get(tampered)
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"

    account = client.get("/api/v1/account").json()
    assert account["balance"] == 49 and account["held"] == 0
    ledger = client.get("/api/v1/account/ledger").json()["items"]
    assert [(e["kind"], e["amount"], e["job_id"]) for e in ledger] == [
        ("charge", -1, job["id"]), ("grant", 50, None)]


def test_talking_photo_from_upload_and_base64(new_account: NewAccount, media_dir: Path) -> None:
    client = new_account()
    with open(media_dir / "face.png", "rb") as fh:
        r = client.post("/api/v1/assets", files={"file": ("face.png", fh, "image/png")})
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["kind"] == "image" and photo["info"]["width"] == 512
    r = client.post("/api/v1/talking-photos", json={
        "photo": {"asset_id": photo["id"]},
        "audio": {"base64": b64(media_dir / "speech.wav"), "filename": "speech.wav"},
        "size": "256x256", "seed": 3})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    info = job["result"]["info"]
    assert (info["width"], info["height"]) == (256, 256)
    video = httpx.get(job["result"]["files"]["video"]["url"]).content
    assert video[4:8] == b"ftyp"
    assert abs(decode_duration(video) - 2.5) < 0.15
    assert job["cost"] == 3  # 2.5 s at 1 credit a started second
    listed = client.get("/api/v1/jobs", params={"kind": "talking_photo"}).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]] and listed["total"] == 1


def test_talking_photo_speaks_a_tts_result_with_a_watermarked_copy(
        new_account: NewAccount) -> None:
    client = new_account()
    speech = wait_for_job(client, client.post("/api/v1/speech", json={
        "text": "First the voice, then the face."}).json()["id"])
    r = client.post("/api/v1/talking-photos", json={
        "avatar_id": builtin_avatar(client), "audio": {"job_result": f"{speech['id']}/audio"},
        "size": "256x256", "quality": "pro", "watermark": True})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    files = job["result"]["files"]
    plain = httpx.get(files["video"]["url"]).content
    marked = httpx.get(files["watermarked"]["url"]).content
    assert marked[4:8] == b"ftyp" and marked != plain
    assert abs(decode_duration(marked) - speech["result"]["info"]["duration"]) < 0.1
    r = client.post("/api/v1/talking-photos", json={
        "avatar_id": builtin_avatar(client), "audio": {"job_result": f"{job['id']}/nothing"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "result_not_ready"


def test_talking_photo_by_url_with_avatar_text_and_callback(
        new_account: NewAccount, media_dir: Path) -> None:
    client = new_account()
    secret = client.get("/api/v1/account").json()["webhook_secret"]
    with file_server(media_dir) as files, WebhookReceiver() as receiver:
        r = client.post("/api/v1/talking-photos", json={
            "photo": {"url": f"{files.url}/face.png"}, "text": "Hello from a photo.",
            "callback_url": f"{receiver.url}/hook", "external_id": "order-17"})
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["id"])
        assert job["status"] == "succeeded", job
        assert job["result"]["info"]["mouth_source"] == "phonemes"
        got = receiver.wait_for(lambda rs: any(b"job.succeeded" in x.body for x in rs))
    events = []
    for req in got:
        payload = Webhook(secret).verify(req.body, req.headers)  # raises if the signature is bad
        assert payload["data"]["id"] == job["id"]
        events.append(payload["type"])
    assert events[0] == "job.running" and events[-1] == "job.succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got[-1].body.replace(b"succeeded", b"failed"), got[-1].headers)
    deliveries = client.get(f"/api/v1/jobs/{job['id']}/deliveries").json()["items"]
    assert {d["status"] for d in deliveries} == {"succeeded"}

    again = client.post("/api/v1/talking-photos", json={
        "photo": {"url": f"{files.url}/face.png"}, "text": "Something else.",
        "external_id": "order-17"})
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    assert client.get("/api/v1/jobs/external/order-17").json()["id"] == job["id"]


def test_account_webhook_endpoint_filters_events_and_retries(new_account: NewAccount) -> None:
    client = new_account()
    with WebhookReceiver(statuses=[500]) as receiver:
        r = client.post("/api/v1/webhooks", json={"url": f"{receiver.url}/e",
                                                  "events": ["job.succeeded"]})
        assert r.status_code == 201, r.text
        endpoint = r.json()
        assert endpoint["secret"].startswith("whsec_")
        job = client.post("/api/v1/speech", json={"text": "Webhook test."}).json()
        wait_for_job(client, job["id"])
        got = receiver.wait_for(lambda rs: len(rs) >= 2)  # a 500, then the retry
    bodies = [Webhook(endpoint["secret"]).verify(x.body, x.headers) for x in got]
    assert {b["type"] for b in bodies} == {"job.succeeded"}
    assert got[0].headers["webhook-id"] == got[1].headers["webhook-id"]  # same message
    deliveries = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries").json()["items"]
    assert deliveries[0]["status"] == "succeeded" and deliveries[0]["attempts"] == 2
    assert [a["status_code"] for a in deliveries[0]["attempts_log"]] == [500, 200]


def test_refused_inputs_create_nothing(new_account: NewAccount, media_dir: Path) -> None:
    client = new_account()
    avatar = builtin_avatar(client)
    cases = [
        ({"photo": {"base64": "@@@not base64@@@"}, "text": "Hi."}, 400, "bad_base64"),
        ({"photo": {"base64": b64(media_dir / "notes.txt")}, "text": "Hi."}, 400,
         "unsupported_media"),
        ({"photo": {"url": "http://169.254.169.254/latest/meta-data"}, "text": "Hi."}, 400,
         "url_not_allowed"),
        ({"avatar_id": avatar, "text": "Hi.", "size": "huge"}, 400, "bad_size"),
        ({"avatar_id": avatar, "text": "Hi.", "voice": "espeak:klingon"}, 400, "unknown_voice"),
        ({"avatar_id": avatar}, 400, "bad_request"),
        ({"avatar_id": "av_999", "text": "Hi."}, 404, "avatar_not_found"),
        ({"avatar_id": avatar, "text": "Hi.", "fps": "fast"}, 422, "invalid_request"),
        ({"avatar_id": avatar, "text": "Hi.", "colour": "red"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        r = client.post("/api/v1/talking-photos", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (body, r.text)
    r = client.post("/api/v1/talking-photos", content=b'{"text": ',
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    assert client.get("/api/v1/jobs").json()["total"] == 0
    assert client.get("/api/v1/assets").json()["total"] == 0


def test_custom_avatar_passes_or_fails_the_face_check(new_account: NewAccount,
                                                      media_dir: Path) -> None:
    client = new_account()
    r = client.post("/api/v1/avatars", json={"name": "Me",
                                             "photo": {"base64": b64(media_dir / "face.png")}})
    assert r.status_code == 201, r.text
    avatar = r.json()
    assert avatar["custom"] and avatar["status"] == "ready" and avatar["face"]["accepted"]
    blank = np.full((600, 600, 3), 128, np.uint8)
    _, png = cv2.imencode(".png", blank)
    r = client.post("/api/v1/avatars", json={
        "name": "Nobody", "photo": {"base64": base64.b64encode(png.tobytes()).decode()}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_face"
    ids = [a["id"] for a in client.get("/api/v1/avatars", params={"custom": True})
           .json()["items"]]
    assert ids == [avatar["id"]]
    assert client.get("/api/v1/assets").json()["total"] == 1  # the refused photo was not kept

    verdict = client.post("/api/v1/face-check", json={
        "photo": {"base64": base64.b64encode(png.tobytes()).decode()}}).json()
    assert verdict["accepted"] is False and verdict["reason"] == "no_face"
    verdict = client.post("/api/v1/face-check", json={
        "photo": {"base64": b64(media_dir / "face.png")}, "profile": "kreado"}).json()
    assert verdict["accepted"] is True and verdict["faces"] == 1
    assert client.get("/api/v1/assets").json()["total"] == 1  # checks keep nothing


def test_queue_cap_credits_rate_limit_and_cancel(new_account: NewAccount) -> None:
    client = new_account(credits=1000, max_queued_jobs=2)
    avatar = builtin_avatar(client)
    long_text = "This sentence keeps the worker busy for a while. " * 6
    first = client.post("/api/v1/talking-photos", json={"avatar_id": avatar, "text": long_text})
    second = client.post("/api/v1/talking-photos", json={"avatar_id": avatar, "text": long_text})
    assert first.status_code == second.status_code == 201
    r = client.post("/api/v1/talking-photos", json={"avatar_id": avatar, "text": long_text})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_queued_jobs"
    assert client.get("/api/v1/jobs").json()["total"] == 2
    for job in (first.json(), second.json()):
        r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "canceled"
    r = client.post(f"/api/v1/jobs/{first.json()['id']}/cancel")
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_not_cancelable"
    assert client.get("/api/v1/account").json()["credits_spent"] == 0

    poor = new_account(credits=3)
    r = poor.post("/api/v1/talking-photos", json={"avatar_id": avatar, "text": long_text})
    assert r.status_code == 402 and r.json()["error"]["code"] == "insufficient_credits"
    assert poor.get("/api/v1/jobs").json()["total"] == 0

    limited = new_account(rate_limit="3/minute")
    codes = [limited.get("/api/v1/account").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = limited.get("/api/v1/account")
    assert r.json()["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1


def test_keys_revocation_and_account_isolation(new_account: NewAccount,
                                              server: ServerProcess) -> None:
    alice, bob = new_account(), new_account()
    job = alice.post("/api/v1/speech", json={"text": "Private words."}).json()
    r = bob.get(f"/api/v1/jobs/{job['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "job_not_found"
    assert bob.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 404

    created = alice.post("/api/v1/keys", json={"name": "ci"}).json()
    assert created["key"].startswith("fc_") and created["prefix"] == created["key"][:10]
    with server.client(created["key"]) as second:
        assert second.get(f"/api/v1/jobs/{job['id']}").status_code == 200
        listed = alice.get("/api/v1/keys").json()
        assert all("key" not in k for k in listed) and len(listed) == 2
        assert alice.delete(f"/api/v1/keys/{created['id']}").json()["revoked_at"]
        r = second.get("/api/v1/account")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = bob.post("/api/v1/accounts", json={"name": "sneaky"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    wait_for_job(alice, job["id"])

    made = alice.post("/api/v1/vendor-credentials", json={"vendor": "kling"})
    assert made.status_code == 201, made.text
    pair = made.json()
    assert pair["client_id"].startswith("kl_") and len(pair["client_secret"]) >= 40
    listed = alice.get("/api/v1/vendor-credentials").json()
    assert [c["client_id"] for c in listed] == [pair["client_id"]]
    assert all("client_secret" not in c for c in listed)
    with sqlite3.connect(server.home / "service" / "facecast.db") as db:
        stored = db.execute("SELECT secret_encrypted FROM vendor_credentials").fetchall()
    assert stored and all(pair["client_secret"] not in row[0] for row in stored)
    assert alice.delete(f"/api/v1/vendor-credentials/{pair['id']}").json()["revoked_at"]
    assert bob.get("/api/v1/vendor-credentials").json() == []


def test_voice_clone_from_a_tts_result_is_private(new_account: NewAccount) -> None:
    alice, bob = new_account(), new_account()
    text = ("The quick brown fox jumps over the lazy dog. A clear voice reads this sample "
            "slowly, so that its pitch and timbre can be measured well.")
    speech = wait_for_job(alice, alice.post("/api/v1/speech",
                                            json={"text": text, "format": "wav"}).json()["id"])
    sample = speech["result"]["files"]["audio"]["url"]
    r = alice.post("/api/v1/voices/clones", json={"sample": {"url": sample}, "name": "Joe 2"})
    # the sample URL is this server's own loopback address, allowed by the test allowlist
    assert r.status_code == 201, r.text
    clone = wait_for_job(alice, r.json()["id"])
    assert clone["status"] == "succeeded", clone
    voice_id = clone["result"]["info"]["voice_id"]
    mine = alice.get("/api/v1/voices", params={"custom": True}).json()
    assert [v["id"] for v in mine["items"]] == [voice_id]
    assert bob.get("/api/v1/voices", params={"custom": True}).json()["total"] == 0
    assert bob.get(f"/api/v1/voices/{voice_id}").status_code == 404
    r = bob.post("/api/v1/speech", json={"text": "Hello.", "voice": voice_id})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_voice"
    said = wait_for_job(alice, alice.post("/api/v1/speech", json={
        "text": "Now I speak with the cloned voice.", "voice": voice_id}).json()["id"])
    assert said["status"] == "succeeded" and said["result"]["info"]["voice"] == voice_id
    assert alice.patch(f"/api/v1/voices/{voice_id}", json={"name": "Renamed"}).json()[
        "name"] == "Renamed"
    assert alice.delete(f"/api/v1/voices/{voice_id}").status_code == 204
    assert alice.get("/api/v1/voices", params={"custom": True}).json()["total"] == 0


def test_voices_languages_and_filters(admin: httpx.Client) -> None:
    german = admin.get("/api/v1/voices", params={"language": "de", "page_size": 100}).json()
    assert german["total"] >= 2 and all(v["language"].startswith("de") for v in german["items"])
    page2 = admin.get("/api/v1/voices", params={"page": 2, "page_size": 5}).json()
    page1 = admin.get("/api/v1/voices", params={"page": 1, "page_size": 5}).json()
    assert not {v["id"] for v in page1["items"]} & {v["id"] for v in page2["items"]}
    langs = {lang["code"]: lang for lang in admin.get("/api/v1/languages").json()}
    assert "en" in langs and any(r["code"] == "GB" for r in langs["en"]["regions"])
    r = admin.get("/api/v1/voices", params={"gender": "robot"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"


def test_restart_keeps_jobs_files_and_keys(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "home")
    srv.start()
    try:
        with srv.client() as client:
            job = wait_for_job(client, client.post("/api/v1/speech",
                                                   json={"text": "Kept."}).json()["id"])
            assert job["status"] == "succeeded"
    finally:
        assert srv.stop() == 0  # Ctrl-C: a clean exit
    again = ServerProcess(tmp_path / "home", port=srv.port)
    again.admin_key = srv.admin_key
    again.start()
    try:
        assert "admin API key" not in again.log.read_text().split("facecast http")[-1]
        with again.client() as client:
            kept = client.get(f"/api/v1/jobs/{job['id']}").json()
            assert kept["status"] == "succeeded" and kept["cost"] == job["cost"]
            audio = httpx.get(kept["result"]["files"]["audio"]["url"])
            assert audio.status_code == 200 and len(audio.content) == kept["result"]["files"][
                "audio"]["size"]
            assert json.loads(httpx.get(kept["result"]["files"]["timings"]["url"]).text)["words"]
    finally:
        again.stop()
