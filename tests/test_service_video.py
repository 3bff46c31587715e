"""Video work through the native API on a real server: composition of a talking
photo, dubbing a video, and removing text from a video, with the vendors' input
rules refused with clear codes before any job exists."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from facecast.media import Audio, write_audio
from service_support import ServerProcess, wait_for_job

# end-to-end: a real server process rendering media
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("service-video"), heartbeat_s=0.5)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def tone(seconds: float, pitch: float) -> str:
    """A voiced, syllable-like sound as base64 WAV."""
    import base64
    import tempfile

    t = np.arange(int(seconds * 16000)) / 16000
    samples = 0.3 * np.sin(2 * np.pi * pitch * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t))
    with tempfile.TemporaryDirectory() as tmp:
        path = write_audio(Path(tmp) / "a.wav", Audio(samples.astype(np.float32), 16000))
        return base64.b64encode(path.read_bytes()).decode()


def probe(data: bytes) -> tuple[int, int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, float(container.duration or 0) / 1e6


@pytest.fixture(scope="module")
def source_video(client: httpx.Client) -> dict:
    """A 6 s talking-photo video made by the service itself, to dub and to clean."""
    avatar = client.get("/api/v1/avatars").json()["items"][0]["id"]
    r = client.post("/api/v1/talking-photos", json={
        "avatar_id": avatar, "audio": {"base64": tone(6.0, 150)}, "size": "256x256"})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    return job


def test_composition_on_a_canvas(client: httpx.Client) -> None:
    avatar = client.get("/api/v1/avatars").json()["items"][0]["id"]
    r = client.post("/api/v1/talking-photos", json={
        "avatar_id": avatar, "audio": {"base64": tone(1.5, 180)},
        "composition": {"canvas": "320x180", "background_color": "#1e90ff", "mask": "circle",
                        "position": [0.3, 0.5], "scale": 0.8,
                        "layers": [{"color": "#ffffff", "x": 200, "y": 20, "width": 100,
                                    "height": 30, "z": 1}]}})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job
    video = httpx.get(job["result"]["files"]["video"]["url"]).content
    width, height, _ = probe(video)
    assert (width, height) == (320, 180)
    with av.open(io.BytesIO(video)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(frame[170, 310] - [30, 144, 255]).max() < 30  # the background colour
    assert frame[30:45, 215:290].mean() > 220  # the white layer
    r = client.post("/api/v1/talking-photos", json={
        "avatar_id": avatar, "audio": {"base64": tone(1.5, 180)},
        "composition": {"canvas": "8000x100"}})
    assert r.status_code == 400, r.text


def test_dub_a_video_through_the_api(client: httpx.Client, source_video: dict) -> None:
    r = client.post("/api/v1/dubs", json={
        "video": {"job_result": f"{source_video['id']}/video"},
        "audio": {"base64": tone(8.0, 110)}})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], timeout=300)
    assert job["status"] == "succeeded", job
    info = job["result"]["info"]
    assert info["looped"] is True and info["frames_with_face"] > 0
    width, height, duration = probe(httpx.get(job["result"]["files"]["video"]["url"]).content)
    assert (width, height) == (256, 256) and abs(duration - 8.0) < 0.2
    assert job["cost"] == 8


def test_dub_refuses_what_the_rules_refuse(client: httpx.Client, source_video: dict) -> None:
    before = client.get("/api/v1/jobs", params={"kind": "dub_video"}).json()["total"]
    r = client.post("/api/v1/dubs", json={"video": {"base64": tone(6.0, 100)},
                                          "audio": {"base64": tone(2.0, 100)}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_media"
    r = client.post("/api/v1/dubs", json={"video": {"job_result": f"{source_video['id']}/video"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert client.get("/api/v1/jobs", params={"kind": "dub_video"}).json()["total"] == before


def test_clean_a_video_with_given_areas(client: httpx.Client, source_video: dict) -> None:
    video = {"job_result": f"{source_video['id']}/video"}
    r = client.post("/api/v1/cleanups", json={"video": video,
                                              "subtitle_areas": [[20, 200, 236, 240]]})
    assert r.status_code == 201, r.text
    job = wait_for_job(client, r.json()["id"], timeout=300)
    assert job["status"] == "succeeded", job
    assert job["result"]["info"]["subtitle_areas"] == [[20, 200, 236, 240]]
    width, height, duration = probe(httpx.get(job["result"]["files"]["video"]["url"]).content)
    assert (width, height) == (256, 256) and abs(duration - source_video["result"]["info"][
        "duration"]) < 0.1
    r = client.post("/api/v1/cleanups", json={"video": video,
                                              "watermark_areas": [[200, 200, 300, 300]]})
    assert r.status_code == 400, r.text
    assert "outside" in r.json()["error"]["message"] or "frame" in r.json()["error"]["message"]
