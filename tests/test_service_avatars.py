"""Avatars through a real ``facecast serve``: the library over HTTP (filters, pages,
thumbnails, the preview rendered in the background and served), and video avatars made
from a recording by the native API, KreadoAI's instant clone and Akool's avatar upload,
each then rendering a playable MP4 whose length is the speech's; a recording without a
face fails the avatar with its reason and costs nothing.

The recording is a real talking head (``../shared/media``), cut to 5.4 s and scaled to
360x360 (KreadoAI's smallest clone size) so that its analysis stays short."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest

from facecast.media import write_audio
from media_support import write_video
from service_support import ServerProcess, file_server, wait_for_job

# end-to-end: a real server process rendering media
pytestmark = pytest.mark.slow

CLIP_S, CLIP_SIDE, CLIP_FPS = 5.4, 360, 15
SPEECH = "A video avatar says something new."


def engine_present() -> bool:
    import importlib.util

    return importlib.util.find_spec("facecast.pipeline.video_avatar") is not None


needs_engine = pytest.mark.skipif(not engine_present(),
                                  reason="the video-avatar engine is not installed")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, shared_media: Path) -> Path:
    folder = tmp_path_factory.mktemp("avatar-media")

    def talking() -> Iterator[np.ndarray]:
        with av.open(str(shared_media / "videos" / "klobuchar_10s_noaudio.mp4")) as src:
            step, next_t = 1 / CLIP_FPS, 0.0
            for frame in src.decode(video=0):
                t = float(frame.pts * frame.time_base)
                if t >= CLIP_S:
                    break
                if t + 1e-6 >= next_t:
                    next_t += step
                    yield cv2.resize(frame.to_ndarray(format="rgb24"), (CLIP_SIDE, CLIP_SIDE),
                                     interpolation=cv2.INTER_CUBIC)

    def faceless() -> Iterator[np.ndarray]:
        rng = np.random.default_rng(1)
        for _ in range(int(CLIP_S * CLIP_FPS)):
            yield rng.integers(90, 160, (CLIP_SIDE, CLIP_SIDE, 3), dtype=np.uint8)

    write_video(folder / "me.mp4", talking(), fps=CLIP_FPS)
    write_video(folder / "wall.mp4", faceless(), fps=CLIP_FPS)
    from facecast.speech import synthesize

    write_audio(folder / "speech.wav", synthesize(SPEECH).audio)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # two workers: the three clones and the renders overlap; worker_nice 0 lets the
    # preview renderer have its share of busy cores
    srv = ServerProcess(tmp_path_factory.mktemp("avatars"), heartbeat_s=0.5, lease_s=60,
                        maintenance_interval_s=0.2, workers=2, worker_nice=0,
                        avatar_previews=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def user(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as admin:
        r = admin.post("/api/v1/accounts", json={"name": "avatars", "credits": 1000})
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
    with server.client(key) as client:
        yield client


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def wait_for_avatar(client: httpx.Client, avatar_id: str, timeout: float = 240.0
                    ) -> dict[str, Any]:
    """Poll the avatar until it is no longer processing (as wait_for_job does for jobs)."""
    deadline = time.monotonic() + timeout
    avatar: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/avatars/{avatar_id}")
        assert r.status_code == 200, r.text
        avatar = r.json()
        if avatar["status"] != "processing":
            return avatar
        time.sleep(0.2)
    raise AssertionError(f"avatar {avatar_id} still processing after {timeout} s: {avatar}")


def mp4_facts(data: bytes) -> tuple[float, float, int, tuple[int, int]]:
    """(video duration s, audio duration s, frames, size) of an MP4."""
    assert data[4:8] == b"ftyp"
    with av.open(io.BytesIO(data)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        size = (video.codec_context.width, video.codec_context.height)
        sound = float(audio.duration * audio.time_base) if audio.duration else 0.0
        frames = sum(1 for _ in container.decode(video=0))
        return float(container.duration or 0) / 1e6, sound, frames, size


def speech_seconds(media: Path) -> float:
    with av.open(str(media / "speech.wav")) as container:
        return float(container.duration or 0) / 1e6


# ---- the library ---------------------------------------------------------------------------


def test_library_over_http(user: httpx.Client) -> None:
    listed = user.get("/api/v1/avatars", params={"custom": False, "page_size": 1}).json()
    assert listed["total"] == 2 and len(listed["items"]) == 1
    first = listed["items"][0]
    assert (first["id"], first["source"], first["style"], first["region"], first["age"]) == (
        "av_1", "builtin", "professional", "western", "adult")
    second = user.get("/api/v1/avatars", params={"custom": False, "page_size": 1,
                                                 "page": 2}).json()["items"]
    assert [a["name"] for a in second] == ["Grace Hopper"]
    for params, total in (({"age": "senior"}, 1), ({"gender": "male"}, 0),
                          ({"region": "western", "kind": "photo"}, 2), ({"kind": "video"}, 0),
                          ({"style": "professional", "query": "eileen"}, 1),
                          ({"tag": "space"}, 1)):
        assert user.get("/api/v1/avatars", params=params).json()["total"] == total, params
    thumb = httpx.get(first["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"
    r = user.get("/api/v1/avatars", params={"region": "mars"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = user.post("/api/v1/avatars", json={"name": "Both", "photo": {"base64": "AAAA"},
                                           "video": {"base64": "AAAA"}})
    assert r.status_code == 422


def test_preview_rendered_in_background_and_served(user: httpx.Client) -> None:
    deadline = time.monotonic() + 300
    while True:
        items = user.get("/api/v1/avatars", params={"custom": False}).json()["items"]
        if all(a["preview_url"] for a in items) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # the background renderer's pace, not a synchronisation
    assert all(a["preview_url"] for a in items), items
    for avatar in items:
        duration, sound, frames, size = mp4_facts(httpx.get(avatar["preview_url"]).content)
        assert 1.5 < duration < 8 and abs(sound - duration) < 0.3 and frames > 30
        assert max(size) == 320


# ---- video avatars -------------------------------------------------------------------------


@needs_engine
def test_video_avatar_native_lifecycle(user: httpx.Client, media: Path) -> None:
    r = user.post("/api/v1/avatars", json={
        "name": "Amy", "video": {"base64": b64(media / "me.mp4"), "filename": "me.mp4"},
        "gender": "female", "style": "professional", "region": "western"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["kind"] == "video" and made["status"] == "processing" and made["custom"]
    assert made["thumbnail_url"] is None and made["job_id"].startswith("job_")
    job = wait_for_job(user, made["job_id"], timeout=300)
    assert job["status"] == "succeeded", job
    assert job["kind"] == "avatar_clone" and job["cost"] == 10
    avatar = wait_for_avatar(user, made["id"])
    assert avatar["status"] == "ready" and avatar["error"] is None
    assert avatar["video"]["width"] > 0 and avatar["video"]["duration"] > 0
    assert httpx.get(avatar["thumbnail_url"]).content[:3] == b"\xff\xd8\xff"
    assert httpx.get(avatar["preview_url"]).content[4:8] == b"ftyp"
    listed = user.get("/api/v1/avatars", params={"kind": "video", "custom": True}).json()
    assert [a["id"] for a in listed["items"]] == [made["id"]]

    # a talking video of the person: the speech's length, with its sound
    r = user.post("/api/v1/talking-photos", json={
        "avatar_id": made["id"], "audio": {"base64": b64(media / "speech.wav")}})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "avatar_video"
    done = wait_for_job(user, r.json()["id"], timeout=300)
    assert done["status"] == "succeeded", done
    duration, sound, frames, _size = mp4_facts(
        httpx.get(done["result"]["files"]["video"]["url"]).content)
    spoken = speech_seconds(media)
    assert abs(sound - spoken) < 0.25 and abs(duration - spoken) < 0.3, (duration, spoken)
    assert abs(frames - spoken * avatar["video"]["fps"]) <= 2  # at the recording's rate
    # canvas options do not apply to a video avatar: refused, not ignored
    r = user.post("/api/v1/talking-photos", json={"avatar_id": made["id"], "text": "Hi.",
                                                  "aspect": "9:16"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


def wait_for_log(server: ServerProcess, text: str, timeout: float = 120.0) -> None:
    """Wait until the server's log has a line with ``text`` (what its workers report)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in the server log after {timeout} s")


@needs_engine
def test_deleting_an_avatar_while_it_is_made_cancels_its_clone_and_keeps_nothing(
        server: ServerProcess, user: httpx.Client, media: Path) -> None:
    r = user.post("/api/v1/avatars", json={
        "name": "Gone", "video": {"base64": b64(media / "me.mp4"), "filename": "me.mp4"}})
    assert r.status_code == 201, r.text
    made = r.json()
    job_number = made["job_id"].removeprefix("job_")
    wait_for_job(user, made["job_id"], until={"running"}, timeout=120)
    assert user.delete(f"/api/v1/avatars/{made['id']}").status_code == 204
    # (a job's status may be read from the API's quarter-second cache)
    job = wait_for_job(user, made["job_id"], timeout=5)
    assert job["status"] == "canceled" and job["cost"] in (0, None), job
    assert user.get(f"/api/v1/avatars/{made['id']}").status_code == 404
    # the worker lets go of it; then nothing of the avatar is left in storage
    wait_for_log(server, f"job {job_number} attempt 1 abandoned")
    folder = server.home / "service" / "storage" / made["id"].replace("av_", "avatars/")
    assert not folder.exists() or not any(folder.rglob("*")), list(folder.rglob("*"))


@needs_engine
def test_video_without_a_face_fails_the_avatar_and_costs_nothing(
        server: ServerProcess, media: Path) -> None:
    with server.client() as admin:
        key = admin.post("/api/v1/accounts", json={"name": "no face", "credits": 100}
                         ).json()["api_key"]
    with server.client(key) as client:
        r = client.post("/api/v1/avatars", json={"name": "Wall",
                                                 "video": {"base64": b64(media / "wall.mp4")}})
        assert r.status_code == 201, r.text
        job = wait_for_job(client, r.json()["job_id"], timeout=300)
        assert job["status"] == "failed" and job["error"]["code"], job
        avatar = wait_for_avatar(client, r.json()["id"])
        assert avatar["status"] == "failed"
        assert avatar["error"]["code"] == job["error"]["code"]
        account = client.get("/api/v1/account").json()
        assert account["credits_spent"] == 0 and account["held"] == 0
        assert account["balance"] == 100
        r = client.post("/api/v1/talking-photos", json={"avatar_id": avatar["id"],
                                                        "text": "Hello."})
        assert r.status_code == 409 and r.json()["error"]["code"] == "avatar_not_ready"
        # a recording under 5 s is refused before anything is made
        r = client.post("/api/v1/avatars", json={
            "name": "Short", "video": {"base64": b64(media / "speech.wav")}})
        assert r.status_code == 400, r.text
        assert client.get("/api/v1/avatars", params={"custom": True}).json()["total"] == 1


@needs_engine
def test_kreado_instant_clone_then_a_video_task(server: ServerProcess, media: Path,
                                          user: httpx.Client) -> None:
    key = user.headers["Authorization"].removeprefix("Bearer ")
    with file_server(media) as files, httpx.Client(
            base_url=f"{server.url}/apis/open", headers={"apiToken": key},
            timeout=120) as kreado:
        r = kreado.post("/video/v3/uploadCloneVideo", json={"videoUrl": f"{files.url}/me.mp4"})
        assert r.json()["code"] == "200", r.text
        job_id = r.json()["data"]["jobId"]
        assert isinstance(job_id, int)
        deadline = time.monotonic() + 300
        while True:
            status = kreado.post("/video/v3/getUploadCloneVideoStatus",
                                 json={"jobId": str(job_id)}).json()
            assert status["code"] == "200", status
            if status["data"]["status"] >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.3)  # a client's polling interval
        assert status["data"]["status"] == 3, status
        human = status["data"]["digitalHuman"]
        assert human["digitalHumanPreviewVideoUrl"] and human["digitalHumanThumbnailUrl"]
        clones = kreado.post("/avatar/v3/list", json={
            "cloneDigitalHuman": 1, "supportTypeId": 101, "pageIndex": 1,
            "pageSize": 10}).json()["data"]
        assert human["digitalHumanId"] in [h["digitalHumanId"] for h in clones["data"]]
        assert all(h["supportTypeId"] == 101 for h in clones["data"])
        r = kreado.post("/video/v3/submitSystemLipTask", json={
            "taskName": "clone", "videoRatio": 1,
            "digitalHuman": {"digitalHumanId": human["digitalHumanId"]},
            "audio": {"audioUrl": f"{files.url}/speech.wav"}})
        assert r.json()["code"] == "200", r.text
        task = r.json()["data"]["jobId"]
        detail = kreado.post("/video/v3/detail", json={"taskId": task}).json()["data"]
        assert detail["supportTypeId"] == 101 and detail["status"] in (1, 2, 3)
        native = user.get(f"/api/v1/jobs/job_{task}").json()
        assert native["kind"] == "avatar_video"  # rendered as the native test shows
        user.post(f"/api/v1/jobs/job_{task}/cancel")
        # KreadoAI's clone rules: a recording under 360p is refused with 10002
        small = media / "small.mp4"
        if not small.exists():
            with av.open(str(media / "me.mp4")) as src:
                write_video(small, (cv2.resize(f.to_ndarray(format="rgb24"), (200, 200))
                                    for f in src.decode(video=0)), fps=CLIP_FPS)
        r = kreado.post("/video/v3/uploadCloneVideo", json={"videoUrl": f"{files.url}/small.mp4"})
        assert r.json()["code"] == "10002", r.text


@needs_engine
def test_akool_avatar_from_video(server: ServerProcess, media: Path,
                                 user: httpx.Client) -> None:
    key = user.headers["Authorization"].removeprefix("Bearer ")
    with file_server(media) as files, httpx.Client(
            base_url=f"{server.url}/api/open/v3", headers={"x-api-key": key},
            timeout=120) as akool:
        r = akool.post("/avatar/create", json={"url": f"{files.url}/me.mp4",
                                               "avatar_id": "amyVideo1", "name": "Amy",
                                               "type": 1})
        assert r.json()["code"] == 1000, r.text
        item = r.json()["data"][0]
        assert item["avatar_id"] == "amyVideo1" and item["status"] in (1, 2)
        seen = set()
        deadline = time.monotonic() + 300
        while True:
            detail = akool.get("/avatar/detail", params={"id": item["_id"]}).json()
            assert detail["code"] == 1000, detail
            seen.add(detail["data"][0]["status"])
            if detail["data"][0]["status"] >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert detail["data"][0]["status"] == 3, detail
        assert seen <= {1, 2, 3}
        own = akool.get("/avatar/list", params={"from": 3}).json()["data"]
        assert "amyVideo1" in [a["avatar_id"] for a in own]
        assert all(a["from"] == 3 for a in own)
        again = akool.post("/avatar/create", json={"url": f"{files.url}/me.mp4",
                                                   "avatar_id": "amyVideo1"}).json()
        assert again["data"][0]["_id"] == item["_id"]  # the same avatar, no second job


@needs_engine
def test_cli_video_avatar_render_and_operator_package(tmp_path: Path, media: Path) -> None:
    """`facecast avatar create --video` analyses here (no server), `render --avatar` speaks
    with it; its package copied into an operator folder is a library video avatar."""
    import json
    import os
    import shutil

    from click.testing import CliRunner

    from facecast.cli import main

    home = tmp_path / "home"
    env = {**os.environ, "FACECAST_HOME": str(home), "FACECAST_AVATAR_DIRS": ""}

    def cli(*args: str, **more: str) -> Any:
        return CliRunner().invoke(main, list(args), env={**env, **more},
                                  catch_exceptions=False)

    made = cli("avatar", "create", "--video", str(media / "me.mp4"), "--name", "Me",
               "--gender", "female")
    assert made.exit_code == 0, made.stderr
    assert "video avatar" in made.stdout and "%" in made.stderr  # the progress bar
    shown = json.loads(cli("avatar", "show", "Me").stdout)
    assert shown["kind"] == "video" and shown["status"] == "ready"
    assert Path(shown["preview_file"]).read_bytes()[4:8] == b"ftyp"
    out = tmp_path / "me.mp4"
    rendered = cli("render", "--avatar", "Me", "--audio", str(media / "speech.wav"),
                   "-o", str(out), "--no-progress")
    assert rendered.exit_code == 0, rendered.stderr
    duration, _sound, _frames, size = mp4_facts(out.read_bytes())
    assert abs(duration - speech_seconds(media)) < 0.3 and size == (shown["video"]["width"],
                                                                  shown["video"]["height"])
    refused = cli("render", "--avatar", "Me", "--text", "Hi.", "--aspect", "9:16",
                  "-o", str(tmp_path / "x.mp4"))
    assert refused.exit_code == 2 and "own size" in refused.output

    # the same package in an operator folder, with the operator's metadata beside the
    # engine's: a library video avatar
    package = home / "service" / "storage" / shown["id"].replace("av_", "avatars/") / "package"
    folder = tmp_path / "library" / "presenter"
    shutil.copytree(package, folder)
    manifest = json.loads((folder / "avatar.json").read_text())
    (folder / "avatar.json").write_text(json.dumps({**manifest, "name": "Presenter",
                                                    "style": "professional",
                                                    "region": "western"}))
    listed = cli("avatar", "list", "--kind", "video", "--built-in", "--json",
                 FACECAST_AVATAR_DIRS=str(tmp_path / "library"))
    items = json.loads(listed.stdout)["items"]
    assert [(a["name"], a["source"], a["style"], a["status"]) for a in items] == [
        ("Presenter", "operator", "professional", "ready")]
    assert items[0]["preview_url"] and items[0]["thumbnail_url"]
