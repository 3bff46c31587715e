"""Expression templates and prompts through the service: a real ``facecast serve`` on
loopback, the native catalogue with preview URLs (previews rendered by the service's
background renderer into its storage), a talking photo with an expression and a prompt
(the unused parts in the job result), refusals, and KreadoAI's emoList / templateId."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from facecast.media import Audio, write_audio
from facecast.motion.expressions import TEMPLATES
from service_support import ServerProcess, file_server, wait_for_job


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # The server renders no previews itself here: listing would otherwise start all of
    # them in the background; the test renders one through the same class instead.
    srv = ServerProcess(tmp_path_factory.mktemp("expressions"), heartbeat_s=0.5, lease_s=20,
                        maintenance_interval_s=0.1, expression_previews="off")
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def photo_b64(astronaut_path: Path) -> str:
    small = cv2.resize(cv2.imread(str(astronaut_path)), (400, 400))  # face over 64 px
    ok, data = cv2.imencode(".jpg", small)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


@pytest.mark.slow
def test_catalogue_lists_previews_once_rendered(server: ServerProcess, admin: httpx.Client,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from facecast.service.expressions import ExpressionPreviews
    from facecast.service.settings import Settings
    from facecast.service.storage import open_storage

    r = admin.get("/api/v1/expressions")
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["total"] == len(TEMPLATES) == len(listed["items"])
    assert [t["key"] for t in listed["items"]] == [t.key for t in TEMPLATES]
    assert all(t["preview_url"] == "" and t["thumbnail_url"] == "" for t in listed["items"])
    # The service's background renderer, on the server's own storage, asked for one preview.
    monkeypatch.setenv("FACECAST_EXPRESSION_PREVIEWS", "nodding")
    settings = Settings(home=server.home)
    storage = open_storage(settings.storage, signing_key=settings.signing_key,
                           base_url=server.url)
    previews = ExpressionPreviews(storage, settings)
    assert [t.key for t in previews.missing()] == ["nodding"]
    assert previews.ensure() is True
    previews.wait(timeout=240)
    assert previews.missing() == [] and previews.ensure() is False
    items = {t["key"]: t for t in admin.get("/api/v1/expressions").json()["items"]}
    nodding = items["nodding"]
    assert nodding["id"] == 6 and nodding["name_zh"] == "点头"
    video = httpx.get(nodding["preview_url"], timeout=30)
    thumb = httpx.get(nodding["thumbnail_url"], timeout=30)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"
    assert items["happy"]["preview_url"] == "", "only the rendered one has a URL"
    # KreadoAI's emoList is the same catalogue, with the same preview
    key = server.admin_key
    r = httpx.post(f"{server.url}/apis/open/video/v3/emoList", headers={"apiToken": key},
                   json={"pageIndex": 1, "pageSize": 100}, timeout=30)
    body = r.json()
    assert body["code"] == "200", body
    rows = body["data"]["data"]
    assert body["data"]["totalCount"] == len(TEMPLATES) == len(rows)
    by_id = {row["id"]: row for row in rows}
    assert by_id[3]["emoEnDescription"] == "Amazed" and by_id[3]["emoZhDescription"] == "惊讶"
    assert by_id[6]["emoVideoUrl"] and by_id[6]["emoVideoThumbnailUrl"]
    assert by_id[2]["emoVideoUrl"] == ""
    one = httpx.post(f"{server.url}/apis/open/video/v3/emoList", headers={"apiToken": key},
                     json={"pageIndex": 1, "pageSize": 5, "id": 7}, timeout=30).json()
    assert [row["emoEnDescription"] for row in one["data"]["data"]] == ["Shaking head"]


def voiced_wav(path: Path, seconds: float) -> Path:
    """A voiced, syllable-like sound: speech enough for the mouth, no TTS to load."""
    t = np.arange(int(seconds * 16000)) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_audio(path, Audio(voiced.astype(np.float32), 16000))
    return path


@pytest.mark.slow
def test_talking_photo_follows_expression_and_prompt(admin: httpx.Client, photo_b64: str,
                                                     tmp_path: Path) -> None:
    audio = base64.b64encode(voiced_wav(tmp_path / "speech.wav", 1.5).read_bytes()).decode()
    r = admin.post("/api/v1/talking-photos", json={
        "photo": {"base64": photo_b64}, "audio": {"base64": audio, "filename": "speech.wav"},
        "size": "256x256", "expression": 6,
        "prompt": "smiling, then waving hand; slow zoom in"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["input"]["expression"] == "nodding", "stored by key, whichever way it was named"
    done = wait_for_job(admin, job["id"])
    assert done["status"] == "succeeded", done
    info = done["result"]["info"]
    assert info["expression"] == "nodding"
    assert info["prompt_unused"] == ["waving hand"]
    assert any("zoom in" in a for a in info["prompt_actions"])
    assert any(a.startswith("smile") for a in info["prompt_actions"])


@pytest.mark.slow
def test_unknown_expression_is_refused_before_a_job(admin: httpx.Client,
                                                    photo_b64: str) -> None:
    before = admin.get("/api/v1/jobs").json()["total"]
    for value in ("grumpy", 99):
        r = admin.post("/api/v1/talking-photos", json={
            "photo": {"base64": photo_b64}, "text": "Hello.", "expression": value})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "unknown_expression"
        assert "happy" in error["message"] and "shaking_head" in error["message"]
    assert admin.get("/api/v1/jobs").json()["total"] == before


@pytest.mark.slow
def test_kreado_template_id_picks_the_expression(server: ServerProcess, admin: httpx.Client,
                                                 tmp_path: Path) -> None:
    voiced_wav(tmp_path / "speech.wav", 2.0)
    avatar = admin.get("/api/v1/avatars", params={"custom": False}).json()["items"][0]["id"]
    kreado = httpx.Client(base_url=f"{server.url}/apis/open", timeout=60,
                          headers={"apiToken": server.admin_key or ""})
    with file_server(tmp_path) as files, kreado:
        def submit(template_id: int) -> dict:
            return kreado.post("/video/v3/submitSystemLipTask", json={
                "taskName": "expression", "videoRatio": 1,
                "digitalHuman": {"digitalHumanId": int(avatar.removeprefix("av_")),
                                 "templateId": template_id},
                "audio": {"audioUrl": f"{files.url}/speech.wav"}}).json()

        refused = submit(99)
        assert refused["code"] == "10002" and "templateId" in refused["message"]
        accepted = submit(3)
        assert accepted["code"] == "200", accepted
    job_id = f"job_{accepted['data']['jobId']}"
    job = admin.get(f"/api/v1/jobs/{job_id}").json()
    assert job["input"]["expression"] == "amazed"
    admin.post(f"/api/v1/jobs/{job_id}/cancel")  # not needed further: free the CPU


def test_preview_renderer_stops_when_asked(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from facecast.service.expressions import ExpressionPreviews
    from facecast.service.settings import Settings
    from facecast.service.storage import open_storage

    monkeypatch.setenv("FACECAST_EXPRESSION_PREVIEWS", "happy")
    settings = Settings(home=tmp_path)
    storage = open_storage(settings.storage, signing_key=b"k" * 32,
                           base_url="http://127.0.0.1:9")
    previews = ExpressionPreviews(storage, settings)
    assert previews.ensure() is True and previews.running
    previews.stop(timeout=120)  # what the process does at exit
    assert not previews.running
    assert [t.key for t in previews.missing()] == ["happy"], "a stopped render stores nothing"
    assert previews.ensure() is False, "stopped for good"
    assert not any((tmp_path / "service").glob("expression-previews-*")), "scratch removed"
