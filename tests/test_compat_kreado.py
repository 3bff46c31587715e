"""The KreadoAI-compatible API (``/apis/open``) against a real ``facecast serve`` on
loopback: every request example of the seed document replayed with only the host
changed (media URLs pointed at a local file server), each answer checked field by field
against the documented example's names and types; a real end-to-end render (photo
upload, speech, digital-human video, download); and KreadoAI's rules and codes."""

from __future__ import annotations

import io
import json
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest

from facecast.media import Audio, write_audio
from service_support import ServerProcess, file_server

SEED = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "000_5d062574d8afc307.txt"
HOST = "https://api.kreadoai.com"
MEDIA = re.compile(r"https://[\w.-]*(?:kreadoai|pixabay)\.com/\S*?/([\w.-]+\.(?:jpg|png|mp3|mp4))")
STATUSES = {1, 2, 3, 4, 5}


# ---- the seed document ----------------------------------------------------------------------


@dataclass
class Example:
    section: str
    curl: str
    response: dict[str, Any]


def seed_examples() -> list[Example]:
    """Each request example (curl) with the response example that follows it."""
    text = SEED.read_text()
    out = []
    blocks = text.split("```bash\n")[1:]
    for block in blocks:
        curl, _, rest = block.partition("```")
        found = re.search(r"```json\n(.*?)```", rest, re.S)
        if found is None:  # the authentication sample: no response shown
            continue
        response = found.group(1).strip()
        try:
            body = json.loads(response)
        except ValueError:  # getInfo's example lacks its closing brace
            body = json.loads(response + "\n}")
        path = re.search(r"/apis/open(/[\w/]+)", curl)
        assert path, curl
        out.append(Example(path.group(1), curl, body))
    return out


@dataclass
class Curl:
    method: str
    url: str
    headers: dict[str, str]
    body: str | None


def parse_curl(text: str) -> Curl:
    words = shlex.split(text.replace("\\\n", " "))
    method, url, headers, body = None, "", {}, None
    args = iter(words[1:])
    for word in args:
        if word == "--request":
            method = next(args)
        elif word in ("--url",):
            url = next(args)
        elif word == "--location":
            continue
        elif word == "--header":
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "--data":
            body = next(args)
        elif word.startswith("http"):
            url = word
    # curl sends POST when --data is given and no --request says otherwise
    return Curl(method or ("POST" if body is not None else "GET"), url, headers, body)


def problems(actual: Any, doc: Any, where: str = "") -> list[str]:
    """Every documented field missing from ``actual`` or of another JSON type."""
    if isinstance(doc, dict):
        if not isinstance(actual, dict):
            return [f"{where or 'body'}: object expected, got {actual!r}"]
        return [p for k, v in doc.items()
                for p in ([f"{where}.{k}: missing"] if k not in actual
                          else problems(actual[k], v, f"{where}.{k}"))]
    if isinstance(doc, list):
        if not isinstance(actual, list):
            return [f"{where}: array expected, got {actual!r}"]
        return [p for item in actual for p in problems(item, doc[0], f"{where}[]")] \
            if doc else []
    if isinstance(doc, bool):
        ok = isinstance(actual, bool)
    elif isinstance(doc, int | float):
        ok = isinstance(actual, int | float) and not isinstance(actual, bool)
    else:
        ok = isinstance(actual, str)
    return [] if ok else [f"{where}: {type(doc).__name__} expected, got {actual!r}"]


# the table says String where the example shows a number; the table wins
DOC_FIXES = {"/voice/v3/textToSpeech": lambda d: d["data"]["textToSpeech"].update(
    paymentMoney="4")}


def envelope_ok(body: dict[str, Any], code: str = "200") -> None:
    assert isinstance(body.get("code"), str) and body["code"] == code, body
    assert isinstance(body.get("message"), str) and body["message"]
    assert isinstance(body.get("requestId"), str) and body["requestId"].isdigit()


# ---- media and fixtures ---------------------------------------------------------------------


def voiced(seconds: float, rate: int = 16000) -> Audio:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return Audio(wave.astype(np.float32), rate)


def write_video(path: Path, face: np.ndarray, seconds: float, size: tuple[int, int] = (160, 160),
                fps: int = 10) -> None:
    frame = cv2.cvtColor(cv2.resize(face, size), cv2.COLOR_BGR2RGB)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("h264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(int(seconds * fps)):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("kreado"), heartbeat_s=0.5, lease_s=20,
                        maintenance_interval_s=0.1)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def make_key(server: ServerProcess) -> Iterator[Callable[..., str]]:
    admin = server.client()

    def make(credits: int = 1000) -> str:
        r = admin.post("/api/v1/accounts", json={"name": "kreado user", "credits": credits})
        assert r.status_code == 201, r.text
        return r.json()["api_key"]

    yield make
    admin.close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("kreado-media")
    face = cv2.imread(str(astronaut_path))
    photo = cv2.resize(face, (400, 400))
    # named as in the seed's example URLs, which the replay points here
    cv2.imwrite(str(folder / "78732-567321517_medium.jpg"), photo)
    write_audio(folder / "2b150387595c4efba35db553740cb47a.mp3", voiced(1.6))
    write_video(folder / "ea634216760c4d87a0709a7d00eddc9e.mp4", face, 5.5)
    # the instant clone's example video: KreadoAI's clone needs 360p or more
    write_video(folder / "a3389d0323cb4f948a9d68f71062efeb.mp4", face, 5.5, size=(360, 360))
    # the removal example's subtitle area reaches (1068.84, 1346.41): a frame that holds it
    write_video(folder / "sy.mp4", face, 5.5, size=(1088, 1360), fps=5)
    write_video(folder / "short.mp4", face, 2.0)
    write_audio(folder / "tiny.wav", voiced(0.5))
    cv2.imwrite(str(folder / "small.jpg"), cv2.resize(face, (300, 300)))
    cv2.imwrite(str(folder / "blank.png"), np.full((400, 400, 3), 128, np.uint8))
    return folder


def kreado(server: ServerProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/apis/open", timeout=120,
                        headers={"apiToken": key})


def replay(example: Example, base: str, key: str, media_url: str,
           edit: Callable[[dict[str, Any]], None] | None = None) -> httpx.Response:
    """The documented request with only the host changed (plus the token and the media
    URLs, which point at the local file server); ``edit`` swaps in ids that exist."""
    curl = parse_curl(example.curl)
    headers = {k: (key if k == "apiToken" else v) for k, v in curl.headers.items()}
    body = curl.body
    if body is not None:
        body = MEDIA.sub(lambda m: f"{media_url}/{m.group(1)}", body)
        if edit is not None:
            value = json.loads(re.sub(r",(\s*[}\]])", r"\1", body))
            edit(value)
            body = json.dumps(value)
    return httpx.request(curl.method, curl.url.replace(HOST, base), headers=headers,
                         content=body, timeout=120)


def poll(client: httpx.Client, path: str, body: dict[str, Any], timeout: float = 150
         ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        envelope_ok(r.json())
        data = r.json()["data"]
        assert data["status"] in STATUSES
        if data["status"] >= 3 or time.monotonic() > deadline:
            return data
        time.sleep(0.2)  # polling interval, as a client polls


# ---- tests ----------------------------------------------------------------------------------


def test_seed_has_every_endpoint_example() -> None:
    if not SEED.is_file():
        pytest.skip("the seed document is not beside the checkout")
    sections = {e.section for e in seed_examples()}
    assert sections >= {
        "/avatar/v3/list", "/avatar/v3/uploadAvatar", "/avatar/v3/getUploadCustomAvatar",
        "/video/v3/submitLipTask", "/video/v3/submitSystemLipTask",
        "/video/v3/getLipVideoResult", "/video/v3/list", "/video/v3/detail",
        "/video/v3/emoList", "/video/v3/uploadCloneVideo",
        "/video/v3/getUploadCloneVideoStatus", "/user/v3/getInfo",
        "/voice/v3/getVoiceLanguage", "/voice/v3/getVoiceList", "/voice/v3/textToSpeech",
        "/subtitle_removal/v3/submitTask", "/subtitle_removal/v3/detail"}


@pytest.mark.slow
def test_seed_examples_replayed_conform(server: ServerProcess, media: Path,
                                        make_key: Callable[..., str]) -> None:
    if not SEED.is_file():
        pytest.skip("the seed document is not beside the checkout")
    key = make_key()
    native = server.client(key)
    ids: dict[str, Any] = {}
    # ids the document's examples name do not exist here: they are answered with
    # KreadoAI's own codes, then replayed again naming ids this account has
    not_here = {"/avatar/v3/getUploadCustomAvatar": "10009",
                "/video/v3/submitSystemLipTask": "10020",
                "/video/v3/getLipVideoResult": "10009", "/video/v3/detail": "10009",
                "/subtitle_removal/v3/detail": "10009",
                "/video/v3/getUploadCloneVideoStatus": "10009"}
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "/avatar/v3/getUploadCustomAvatar": lambda b: b.update(jobId=str(ids["avatar"])),
        "/video/v3/submitSystemLipTask": lambda b: b["digitalHuman"].update(
            digitalHumanId=ids["avatar"]),
        "/video/v3/getLipVideoResult": lambda b: b.update(jobId=ids["dub"]),
        "/video/v3/detail": lambda b: b.update(taskId=ids["dub"]),
        "/subtitle_removal/v3/detail": lambda b: b.update(jobId=str(ids["clean"])),
        "/video/v3/getUploadCloneVideoStatus": lambda b: b.update(jobId=ids["clone"]),
    }
    checked = []
    with file_server(media) as files:
        for example in seed_examples():
            doc = json.loads(json.dumps(example.response))
            DOC_FIXES.get(example.section, lambda d: None)(doc)
            r = replay(example, server.url, key, files.url)
            if example.section in not_here:
                assert r.status_code in (200, 401), r.text
                envelope_ok(r.json(), not_here[example.section])
                if example.section not in edits:
                    checked.append(example.section)
                    continue
                r = replay(example, server.url, key, files.url, edits[example.section])
            assert r.status_code == 200, (example.section, r.text)
            body = r.json()
            envelope_ok(body)
            assert problems(body, doc) == [], (example.section, body)
            data = body["data"]
            if example.section == "/avatar/v3/uploadAvatar":
                ids["avatar"] = data["jobId"]
            elif example.section == "/video/v3/submitLipTask":
                ids["dub"] = data["jobId"]
            elif example.section == "/subtitle_removal/v3/submitTask":
                ids["clean"] = data["jobId"]
            elif example.section == "/video/v3/submitSystemLipTask":
                ids["video"] = data["jobId"]
            elif example.section == "/video/v3/uploadCloneVideo":
                ids["clone"] = data["jobId"]
            elif example.section == "/video/v3/getUploadCloneVideoStatus":
                assert data["digitalHuman"]["digitalHumanId"] > 0
            elif example.section == "/voice/v3/textToSpeech":
                assert data["textToSpeech"]["duration"] >= 1
                audio = httpx.get(data["textToSpeech"]["audioUrl"], timeout=30)
                assert audio.status_code == 200 and len(audio.content) > 1000
            checked.append(example.section)
    # the long jobs are not needed further: stop them so the other tests get the CPU
    for name in ("dub", "clean", "video", "clone"):
        native.post(f"/api/v1/jobs/{ids[name]}/cancel")
    native.close()
    assert len(checked) == len(seed_examples())


@pytest.mark.slow
def test_photo_to_video_end_to_end(server: ServerProcess, media: Path,
                                   make_key: Callable[..., str]) -> None:
    api = kreado(server, make_key())
    with file_server(media) as files:
        r = api.post("/avatar/v3/uploadAvatar",
                     json={"fileUrl": f"{files.url}/78732-567321517_medium.jpg"})
        envelope_ok(r.json())
        job_id = r.json()["data"]["jobId"]
    uploaded = poll(api, "/avatar/v3/getUploadCustomAvatar", {"jobId": str(job_id)})
    assert uploaded["status"] == 3
    human_id = uploaded["digitalHuman"]["digitalHumanId"]
    listed = api.post("/avatar/v3/list", json={"cloneDigitalHuman": 1, "supportTypeId": 100,
                                               "pageIndex": 1, "pageSize": 10}).json()["data"]
    assert [a["digitalHumanId"] for a in listed["data"]] == [human_id]

    speech = api.post("/voice/v3/textToSpeech", json={
        "languageId": "en-us", "content": "Hello from facecast.", "voiceId": "espeak:en-us",
        "voiceClone": 0, "voiceSource": 1}).json()
    envelope_ok(speech)
    tts = speech["data"]["textToSpeech"]
    r = api.post("/video/v3/submitSystemLipTask", json={
        "taskName": "e2e", "videoRatio": 2,
        "digitalHuman": {"digitalHumanId": human_id, "mask": 1, "resize": "0.80"},
        "background": {"type": 302, "color": "rgb (0, 255, 0)"},
        "audio": {"audioUrl": tts["audioUrl"], "audioId": tts["fileId"]}})
    envelope_ok(r.json())
    video_id = r.json()["data"]["jobId"]
    result = poll(api, "/video/v3/getLipVideoResult", {"jobId": video_id}, timeout=240)
    assert result["status"] == 3, result
    assert result["videoTask"]["taskId"] == video_id
    data = httpx.get(result["videoTask"]["videoUrl"], timeout=60).content
    with av.open(io.BytesIO(data)) as container:
        seconds = float(container.duration or 0) / 1e6
        stream = container.streams.video[0]
        size = (stream.width, stream.height)
        assert container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) > 10
    assert size == (720, 1280)  # 9:16
    speech_s = float(tts["duration"])  # whole seconds, rounded up
    assert speech_s - 1.0 <= seconds <= speech_s + 0.3
    detail = api.post("/video/v3/detail", json={"taskId": video_id}).json()["data"]
    assert detail["status"] == 3 and detail["taskName"] == "e2e"
    assert detail["supportTypeId"] == 100 and detail["successTime"]
    listing = api.post("/video/v3/list", json={"status": 3, "pageIndex": 1,
                                               "pageSize": 5}).json()["data"]
    assert [v["taskId"] for v in listing["data"]] == [video_id]
    api.close()


@pytest.mark.slow
def test_removal_queue_cap_is_kreados_10019(server: ServerProcess, media: Path,
                                             make_key: Callable[..., str]) -> None:
    api = kreado(server, make_key())
    # each rule's refusal, the missing token and unknown paths are tested one case each
    # in-process: test_compat_kreado_rules.py
    with file_server(media) as files:
        # KreadoAI's queue cap for removal: four unfinished tasks, the fifth is refused
        submitted = []
        refused = None
        for n in range(5):
            r = api.post("/subtitle_removal/v3/submitTask", json={
                "taskName": f"cap {n}", "srcFileUrl": f"{files.url}/sy.mp4"}).json()
            if r["code"] == "200":
                submitted.append(r["data"]["jobId"])
            else:
                refused = r
    assert refused is not None and refused["code"] == "10019", refused
    assert len(submitted) == 4
    result = api.post("/subtitle_removal/v3/taskResult", json={"jobId": submitted[0]}).json()
    envelope_ok(result)
    assert result["data"]["status"] in STATUSES and result["data"]["taskName"] == "cap 0"
    for job_id in submitted:  # free the CPU
        httpx.post(f"{server.url}/api/v1/jobs/{job_id}/cancel",
                   headers={"Authorization": f"Bearer {api.headers['apiToken']}"})
    api.close()
