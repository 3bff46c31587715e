"""The Kling-compatible avatar API (``/v1/videos/avatar/image2video``) against a real
``facecast serve`` on loopback: JWTs signed with PyJWT exactly as a Kling client signs
them, the seed document's curl examples replayed with only the host changed and media
served from a local file server, real renders, and Kling callbacks to a real receiver."""

from __future__ import annotations

import base64
import io
import json
import re
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import jwt
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from facecast.media import Audio, write_audio
from service_support import ServerProcess, WebhookReceiver, file_server, wait_for_job

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "001_bc9d7d133c52a01a.txt"
KLING_HOST = "https://api-singapore.klingai.com"
KLING_MEDIA = re.compile(r"https://p1-kling\.klingai\.com/\S*?/([\w.-]+)(?=\")")

# The request examples of the seed document, verbatim (long lines split in Python only).
SEED_CREATE = "\n".join([
    "curl --request POST \\",
    "--url https://api-singapore.klingai.com/v1/videos/avatar/image2video \\",
    "--header 'Authorization: Bearer <token>' \\",
    "--header 'Content-Type: application/json' \\",
    "--data '{",
    '"image": "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/pink_boy.png",',
    '"sound_file": "https://p1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/'
    'go-to-world.mp3",',
    '"prompt": "While talking, excitedly shaking head, finally reaching out and making a fist, '
    'deciding to set off, hopping happily",',
    '"mode": "std",',
    '"external_task_id": "",',
    '"callback_url": ""',
    "}'",
])
SEED_QUERY = "\n".join([
    "curl --request GET \\",
    "--url https://api-singapore.klingai.com/v1/videos/avatar/image2video/{task_id} \\",
    "--header 'Authorization: Bearer <token>'",
])
SEED_LIST = "\n".join([
    "curl --request GET \\",
    "--url 'https://api-singapore.klingai.com/v1/videos/avatar/image2video?pageNum=1&"
    "pageSize=30' \\",
    "--header 'Authorization: Bearer <token>'",
])

# The documented responses with their comments dropped: names and example values (types).
DOC_TASK: dict[str, Any] = {
    "task_id": "string", "task_status": "string", "task_status_msg": "string",
    "task_info": {"external_task_id": "string"},
    "task_result": {"videos": [{"id": "string", "url": "string", "watermark_url": "string",
                                "duration": "string"}]},
    "watermark_info": {"enabled": True}, "final_unit_deduction": "string",
    "created_at": 1722769557708, "updated_at": 1722769557708,
}
DOC_CREATE = {"code": 0, "message": "string", "request_id": "string", "data": {
    "task_id": "string", "task_status": "string", "task_info": {"external_task_id": "string"},
    "created_at": 1722769557708, "updated_at": 1722769557708}}
DOC_QUERY = {"code": 0, "message": "string", "request_id": "string", "data": DOC_TASK}
# the seed cuts the list example off after task_info; its items are the query's task
DOC_LIST = {"code": 0, "message": "string", "request_id": "string", "data": [DOC_TASK]}
DOC_ERROR = {"code": 1000, "message": "string", "request_id": "string"}
STATUSES = {"submitted", "processing", "succeed", "failed"}
FUZZ_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_schema_conformance, response_headers_conformance,
               allow_header_conformance]


# ---- helpers --------------------------------------------------------------------------------


def conformance_problems(actual: Any, doc: Any, where: str = "") -> list[str]:
    """Every documented field missing from ``actual`` or of another JSON type."""
    if isinstance(doc, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'body'}: an object expected, got {actual!r}"]
        out = []
        for name, value in doc.items():
            if name not in actual:
                out.append(f"{where}.{name}: missing")
            else:
                out += conformance_problems(actual[name], value, f"{where}.{name}")
        return out
    if isinstance(doc, list):
        if not isinstance(actual, list):
            return [f"{where}: an array expected, got {actual!r}"]
        return [p for i, item in enumerate(actual)
                for p in conformance_problems(item, doc[0], f"{where}[{i}]")]
    if isinstance(doc, bool):
        ok = isinstance(actual, bool)
    elif isinstance(doc, int):
        ok = isinstance(actual, int) and not isinstance(actual, bool)
    else:
        ok = isinstance(actual, str)
    return [] if ok else [f"{where}: {type(doc).__name__} expected, got {actual!r}"]


def assert_conforms(body: dict[str, Any], doc: dict[str, Any]) -> None:
    assert conformance_problems(body, doc) == [], body
    data = body.get("data")
    for task in data if isinstance(data, list) else [data] if data else []:
        assert task["task_status"] in STATUSES
        # milliseconds: a second-based time would be ~1000 times too small
        assert abs(task["created_at"] - time.time() * 1000) < 3_600_000, task


@dataclass
class Curl:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None


def parse_curl(text: str) -> Curl:
    words = shlex.split(text.replace("\\\n", " "))
    assert words[0] == "curl"
    method, url, headers, body = "GET", "", {}, None
    args = iter(words[1:])
    for word in args:
        if word == "--request":
            method = next(args)
        elif word == "--url":
            url = next(args)
        elif word == "--header":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "--data":
            body = next(args)
    return Curl(method, url, headers, body)


def replay(text: str, base_url: str, token: str, media_url: str,
           **path: str) -> httpx.Response:
    """Send a documented curl request with only the host changed (plus the token, the path
    placeholders and the media URLs, which point at the local file server)."""
    curl = parse_curl(text)
    url = curl.url.replace(KLING_HOST, base_url)
    for name, value in path.items():
        url = url.replace("{" + name + "}", value)
    headers = {k: v.replace("<token>", token) for k, v in curl.headers.items()}
    body = KLING_MEDIA.sub(lambda m: f"{media_url}/{m.group(1)}", curl.body) \
        if curl.body else None
    return httpx.request(curl.method, url, headers=headers, content=body, timeout=60)


def sign(access_key: str, secret_key: str, **claims: Any) -> str:
    """A Kling API token, made as Kling's own sample code makes it."""
    now = int(time.time())
    payload = {"iss": access_key, "exp": now + 1800, "nbf": now - 5, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret_key, algorithm="HS256",
                      headers={"alg": "HS256", "typ": "JWT"})


def video_facts(data: bytes) -> tuple[float, int, bool]:
    """(duration s, decoded frames, has sound) of an MP4, decoding every frame."""
    assert data[4:8] == b"ftyp"
    with av.open(io.BytesIO(data)) as container:
        duration = float(container.duration or 0) / 1e6
        has_sound = bool(container.streams.audio)
        frames = sum(1 for _ in container.decode(video=0))
    return duration, frames, has_sound


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def voiced(seconds: float, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return Audio(wave.astype(np.float32), rate)


# ---- fixtures -------------------------------------------------------------------------------


@dataclass
class KlingUser:
    """An account with a native API client and a Kling access key / secret key pair."""

    native: httpx.Client
    access_key: str
    secret_key: str
    credential_id: str
    base_url: str

    def token(self, **claims: Any) -> str:
        return sign(self.access_key, self.secret_key, **claims)

    def kling(self, **claims: Any) -> httpx.Client:
        return httpx.Client(base_url=f"{self.base_url}/v1", timeout=60,
                            headers={"Authorization": f"Bearer {self.token(**claims)}"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("kling"), heartbeat_s=0.5, lease_s=20,
                        maintenance_interval_s=0.1, webhook_retry_delays="0.2,0.4")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def make_user(server: ServerProcess) -> Iterator[Callable[..., KlingUser]]:
    clients: list[httpx.Client] = []
    admin = server.client()
    clients.append(admin)

    def make(credits: int = 1000) -> KlingUser:
        r = admin.post("/api/v1/accounts", json={"name": "kling user", "credits": credits})
        assert r.status_code == 201, r.text
        native = server.client(r.json()["api_key"])
        clients.append(native)
        r = native.post("/api/v1/vendor-credentials", json={"vendor": "kling"})
        assert r.status_code == 201, r.text
        pair = r.json()
        return KlingUser(native, pair["client_id"], pair["client_secret"], pair["id"],
                         server.url)

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("kling-media")
    face = cv2.imread(str(astronaut_path))
    # named as in the seed's example URLs, which the replay points here
    cv2.imwrite(str(folder / "pink_boy.png"), face)
    write_audio(folder / "go-to-world.mp3", voiced(2.4))
    write_audio(folder / "short.wav", voiced(1.5))
    write_audio(folder / "long.wav", Audio(np.zeros(305 * 8000, np.float32), 8000))  # < 5 MB
    write_audio(folder / "big.wav", Audio(np.zeros(180 * 16000, np.float32), 16000))  # > 5 MB
    with av.open(str(folder / "speech.flac"), "w") as out:  # decodable, not a Kling format
        stream = out.add_stream("flac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (voiced(2.5).samples * 32767).astype(np.int16)[None, :], format="s16",
            layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    cv2.imwrite(str(folder / "small.png"), cv2.resize(face, (256, 256)))
    cv2.imwrite(str(folder / "wide.png"), cv2.resize(face, (800, 300)))
    cv2.imwrite(str(folder / "face.webp"), face)
    cv2.imwrite(str(folder / "blank.png"), np.full((400, 400, 3), 128, np.uint8))
    noise = np.random.default_rng(1).integers(0, 256, (2100, 2100, 3), dtype=np.uint8)
    cv2.imwrite(str(folder / "huge.png"), noise)  # over 10 MB: noise does not compress
    assert (folder / "huge.png").stat().st_size > 10 * 1024 * 1024
    assert (folder / "big.wav").stat().st_size > 5 * 1024 * 1024
    assert (folder / "long.wav").stat().st_size < 5 * 1024 * 1024
    return folder


# ---- tests ----------------------------------------------------------------------------------


def test_embedded_examples_are_the_seed_documents() -> None:
    """The curl requests replayed below are exactly those of the seed document."""
    if not SEED.is_file():
        pytest.skip("the seed document is not beside the checkout")
    sections = json.loads(SEED.read_text()).values()  # they overlap; each is read alone
    found = {block.strip() for text in sections
             for block in re.findall(r"(curl --request .*?)\n200\n", text, re.S)}
    assert found == {SEED_CREATE, SEED_QUERY, SEED_LIST}
    documented = [body for text in sections for body in re.findall(
        r"\n200\nCopy\nCollapse\n(\{.*?\n\}\n\})", text, re.S)]
    bodies = [json.loads(re.sub(r"//[^\n]*", "", b).replace("boolean", "true"))
              for b in documented if b.count("{") == b.count("}")]
    assert DOC_CREATE in bodies and DOC_QUERY in bodies


@pytest.mark.slow
def test_seed_examples_replayed_render_and_download(server: ServerProcess, media: Path,
                                                    make_user: Callable[..., KlingUser]
                                                    ) -> None:
    user, stranger = make_user(), make_user()
    with file_server(media) as files:
        r = replay(SEED_CREATE, server.url, user.token(), files.url)
        assert r.status_code == 200, r.text
        created = r.json()
        assert_conforms(created, DOC_CREATE)
        assert created["code"] == 0 and created["data"]["task_status"] == "submitted"
        task_id = created["data"]["task_id"]
        assert task_id.isdigit() and created["data"]["task_info"]["external_task_id"] == ""

        deadline = time.monotonic() + 120
        while True:
            r = replay(SEED_QUERY, server.url, user.token(), files.url, task_id=task_id)
            assert r.status_code == 200, r.text
            assert_conforms(r.json(), DOC_QUERY)
            task = r.json()["data"]
            if task["task_status"] in ("succeed", "failed") or time.monotonic() > deadline:
                break
            assert task["task_result"]["videos"] == []
            time.sleep(0.2)  # polling interval, as a client polls
    assert task["task_status"] == "succeed", task
    assert task["task_status_msg"] == "" and task["watermark_info"] == {"enabled": False}
    assert int(task["final_unit_deduction"]) == 3  # 2.4 s at a credit per started second
    assert task["updated_at"] >= task["created_at"]
    (video,) = task["task_result"]["videos"]
    assert video["watermark_url"] == ""
    duration, frames, has_sound = video_facts(httpx.get(video["url"]).content)
    assert abs(duration - 2.4) < 0.15 and abs(float(video["duration"]) - 2.4) < 0.15
    assert frames >= 55 and has_sound  # 25 fps for the speech's length

    r = replay(SEED_LIST, server.url, user.token(), "")
    assert r.status_code == 200, r.text
    assert_conforms(r.json(), DOC_LIST)
    assert [t["task_id"] for t in r.json()["data"]] == [task_id]
    assert r.json()["data"][0]["task_result"]["videos"][0]["id"] == video["id"]

    # the prompt is kept on the job for the renderer; the job is a Kling one
    native = user.native.get(f"/api/v1/jobs/job_{task_id}").json()
    assert native["input"]["prompt"].startswith("While talking, excitedly shaking head")
    assert native["input"]["quality"] == "std"
    # another account sees nothing of it
    with stranger.kling() as other:
        r = other.get(f"/videos/avatar/image2video/{task_id}")
        assert r.status_code == 404 and r.json()["code"] == 1203
        assert other.get("/videos/avatar/image2video").json()["data"] == []


@pytest.mark.slow
def test_callbacks_audio_id_pro_mode_watermark_and_external_id(
        media: Path, make_user: Callable[..., KlingUser]) -> None:
    user = make_user()
    speech = wait_for_job(user.native, user.native.post("/api/v1/speech", json={
        "text": "Hello there. This one came from the speech API.",
        "format": "wav"}).json()["id"])
    assert speech["status"] == "succeeded", speech
    spoken = speech["result"]["info"]["duration"]
    assert spoken >= 2.0
    external = f"order-{uuid.uuid4().hex[:8]}"
    request = {"image": b64(media / "pink_boy.png"),
               "audio_id": speech["id"].removeprefix("job_"),  # Kling-style bare id
               "prompt": "Smiling warmly, nodding slowly", "mode": "pro",
               "watermark_info": {"enabled": True}, "external_task_id": external}
    with WebhookReceiver() as receiver, user.kling() as kling:
        r = kling.post("/videos/avatar/image2video",
                       json={**request, "callback_url": f"{receiver.url}/kling"})
        assert r.status_code == 200, r.text
        task_id = r.json()["data"]["task_id"]
        assert r.json()["data"]["task_info"]["external_task_id"] == external

        again = kling.post("/videos/avatar/image2video", json=request)
        assert again.status_code == 400 and again.json()["code"] == 1201
        assert "[duplicate_external_task_id]" in again.json()["message"]

        got = receiver.wait_for(lambda rs: any(b'"succeed"' in x.body or b'"failed"' in x.body
                                               for x in rs), timeout=150)
        by_external = kling.get(f"/videos/avatar/image2video/{external}").json()["data"]
        listed = kling.get("/videos/avatar/image2video", params={"pageSize": 5}).json()
    callbacks = [json.loads(x.body) for x in got]
    for body in callbacks:
        assert conformance_problems(body, DOC_TASK) == [], body
        assert body["task_id"] == task_id and body["task_info"]["external_task_id"] == external
    statuses = {body["task_status"] for body in callbacks}
    assert statuses == {"processing", "succeed"}, callbacks
    final = next(body for body in callbacks if body["task_status"] == "succeed")
    for x in got:
        headers = {name.lower(): value for name, value in x.headers.items()}
        assert x.path == "/kling" and headers["content-type"] == "application/json"

    assert by_external["task_id"] == task_id and by_external["task_status"] == "succeed"
    assert by_external["watermark_info"] == {"enabled": True}
    assert [t["task_id"] for t in listed["data"]] == [task_id]
    (video,) = final["task_result"]["videos"]
    plain = httpx.get(video["url"]).content
    marked = httpx.get(video["watermark_url"]).content
    assert plain != marked
    for data in (plain, marked):
        duration, _frames, has_sound = video_facts(data)
        assert abs(duration - spoken) < 0.15 and has_sound
    job = user.native.get(f"/api/v1/jobs/job_{task_id}").json()
    assert job["input"]["prompt"] == "Smiling warmly, nodding slowly"
    assert job["input"]["quality"] == "pro" and job["input"]["watermark"] is True


# Kling's refusals (JWTs, rules, pages, unknown tasks and paths, credits) are tested one
# case each in-process: test_compat_kling_rules.py


@pytest.mark.slow
def test_a_task_canceled_natively_reads_as_failed(
        media: Path, make_user: Callable[..., KlingUser]) -> None:
    user = make_user()
    with file_server(media) as files, user.kling() as kling:
        good = {"image": f"{files.url}/pink_boy.png",
                "sound_file": f"{files.url}/go-to-world.mp3"}
        # a task canceled through the native API reads as failed, with the reason
        r = kling.post("/videos/avatar/image2video", json=good)
        assert r.status_code == 200, r.text
        task_id = r.json()["data"]["task_id"]
        assert user.native.post(f"/api/v1/jobs/job_{task_id}/cancel").status_code == 200
        r = kling.get(f"/videos/avatar/image2video/{task_id}")
    assert_conforms(r.json(), DOC_QUERY)
    task = r.json()["data"]
    assert task["task_status"] == "failed" and task["task_status_msg"].endswith("[canceled]")
    assert task["task_result"]["videos"] == [] and task["final_unit_deduction"] == "0"


# ---- schema-driven fuzzing of the Kling document -------------------------------------------


@pytest.fixture(scope="module")
def kling_schema(server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/v1/openapi.json")


@pytest.fixture(scope="module")
def fuzz_token(make_user: Callable[..., KlingUser]) -> str:
    return make_user().token()


kling_schema_cases = schemathesis.pytest.from_fixture("kling_schema")


@pytest.mark.slow
@kling_schema_cases.parametrize()
@settings(max_examples=12, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_fuzz_finds_no_5xx_and_no_answer_outside_the_document(
        case: schemathesis.Case, fuzz_token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_token}"},
                           checks=FUZZ_CHECKS, timeout=60)


@pytest.mark.slow
def test_server_logged_no_unhandled_error(server: ServerProcess) -> None:
    """Every answer above was handled: no traceback in the server's log."""
    assert httpx.get(f"{server.url}/health").status_code == 200
    log = server.log.read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log, log[-5000:]
