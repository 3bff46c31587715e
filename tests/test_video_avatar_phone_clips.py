"""Video avatars from recordings as people make them: a 700x700 phone clip with a variable
frame rate (30 fps declared, about 22 on average) and AAC sound, and a speaker who never
opens the mouth (no mouth samples at all: the painted interior is used). Both make a
working avatar; a recording that truly cannot make one fails with its reason code, and
that reason reaches the vendor APIs too (Akool's avatar detail, KreadoAI's clone status).

Real media (../shared/media; skipped without it): frames of the Obama weekly address and
the Grace Hopper portrait, written here with PyAV's timestamps.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from facecast.errors import InputError
from facecast.media import load_image
from facecast.media.video_reader import probe_video
from facecast.pipeline.video_avatar import (
    AvatarRenderSpec,
    VideoAvatarSpec,
    create_video_avatar,
    render_video_avatar,
)
from facecast.render.mouth_bank import MouthBank
from media_support import write_still_video, write_vfr_video, write_video
from service_support import ServerProcess, file_server

SIDE = 700


def _steps(path: Path) -> tuple[Fraction, set[float]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = [f.pts for f in c.decode(s)]
        return Fraction(s.average_rate), {
            round(float((b - a) * s.time_base), 4) for a, b in pairwise(pts)
        }


def test_an_empty_mouth_bank_saves_and_loads(tmp_path: Path) -> None:
    path = MouthBank([], 64.0, 0.9).save(tmp_path / "bank.npz")
    bank = MouthBank.load(path)
    assert len(bank) == 0 and bank.max_gap == 0.0
    assert bank.choose(0.2, 0.9) == []  # the painter is used for every opening


@pytest.fixture(scope="module")
def phone_clip(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 700x700: frames kept on an irregular subset of a 30 fps clock (1/600 time
    base, as phones write), about 22 fps on average, with AAC sound."""
    with av.open(str(shared_media / "videos" / "obama_weekly_address_20s.mp4")) as c:
        source = [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(video=0), 155)]
    rng = np.random.default_rng(3)
    times, tick = [], 0
    while tick / 30 < 6.0:
        times.append(tick / 30)
        tick += int(rng.choice([1, 1, 1, 2, 2, 1, 2, 1, 1, 2, 1, 1, 1, 3]))
    frames = (
        (
            t,
            cv2.resize(
                source[min(int(t * 25), len(source) - 1)],
                (SIDE, SIDE),
                interpolation=cv2.INTER_CUBIC,
            ),
        )
        for t in times
    )
    tone = 0.1 * np.sin(2 * np.pi * 180 * np.arange(44100 * 6) / 44100)
    path = tmp_path_factory.mktemp("phone") / "phone.mp4"
    return write_vfr_video(path, frames, audio=tone.astype(np.float32))


@pytest.mark.slow
def test_a_vfr_phone_clip_makes_a_working_avatar(phone_clip: Path, tmp_path: Path) -> None:
    info = probe_video(phone_clip)
    assert info.variable_rate and info.nominal_fps == 30 and 20 < info.fps < 24
    assert (info.width, info.height, info.codec, info.has_audio) == (SIDE, SIDE, "h264", True)
    made = create_video_avatar(
        VideoAvatarSpec(video=phone_clip, folder=tmp_path / "me", name="phone")
    )
    assert made.fps == 30  # a standard constant rate, not the 22.13 average
    assert made.mouth_samples > 0 and made.frames_with_face == made.source_frames
    assert made.preview.is_file() and made.preview_duration > 2
    rate, steps = _steps(made.folder / "idle.mp4")
    assert rate == 30 and steps == {round(1 / 30, 4)}
    out = render_video_avatar(
        AvatarRenderSpec(avatar=made.folder, output=tmp_path / "o.mp4", text="One more sentence.")
    )
    assert out.output.is_file() and out.duration > 1
    rate, steps = _steps(out.output)
    assert rate == 30 and steps == {round(1 / 30, 4)}


@pytest.fixture(scope="module")
def closed_mouth_clip(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s of a person who keeps the lips closed (the Grace Hopper portrait, moving a
    little), as an iPhone-style HEVC MOV."""
    face = load_image(shared_media / "faces" / "grace_hopper.jpg")
    h, w = face.shape[:2]
    side = min(h, w)
    face = cv2.resize(face[:side, (w - side) // 2 : (w - side) // 2 + side], (SIDE, SIDE))

    def frames() -> Iterator[np.ndarray]:
        for i in range(150):
            m = np.float32([[1, 0, 4 * np.sin(i / 9)], [0, 1, 3 * np.cos(i / 13)]])
            yield cv2.warpAffine(face, m, (SIDE, SIDE), borderMode=cv2.BORDER_REFLECT)

    path = tmp_path_factory.mktemp("closed") / "closed.mov"
    return write_video(path, frames(), codec="libx265", options={"x265-params": "log-level=error"})


@pytest.mark.slow
def test_a_speaker_who_never_opens_the_mouth_makes_an_avatar(
    closed_mouth_clip: Path, tmp_path: Path
) -> None:
    made = create_video_avatar(
        VideoAvatarSpec(video=closed_mouth_clip, folder=tmp_path / "quiet", name="quiet")
    )
    assert made.mouth_samples == 0  # nothing to keep: the bank is empty, and valid
    assert len(MouthBank.load(made.folder / "mouth_bank.npz")) == 0
    assert made.preview.is_file() and made.preview_duration > 2
    out = render_video_avatar(
        AvatarRenderSpec(avatar=made.folder, output=tmp_path / "o.mp4", text="I can still speak.")
    )
    # the painted interior opens the mouth: the lips move in the render
    with av.open(str(out.output)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    diffs = [float(np.abs(a.astype(int) - b).mean()) for a, b in pairwise(frames)]
    assert max(diffs) > 0.5


@pytest.mark.slow
@pytest.mark.parametrize(
    ("pattern", "share"),
    [
        ("FF" + "." * 4, 0.33),  # the person walks out after 2 s: seen in a third of it
        ("F." * 3, 0.5),  # in and out every second: never 4 s on end
    ],
)
def test_a_face_that_comes_and_goes_fails_with_face_lost(
    shared_media: Path, tmp_path: Path, pattern: str, share: float
) -> None:
    with av.open(str(shared_media / "videos" / "klobuchar_10s_noaudio.mp4")) as c:
        faces = [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(video=0), 150)]
    room = np.full_like(faces[0], 110)
    # one character per second of the recording: F the person, . the empty room
    frames = [faces[i] if pattern[i // 25] == "F" else room for i in range(25 * len(pattern))]
    clip = write_video(tmp_path / "comes_and_goes.mp4", frames)
    with pytest.raises(InputError) as err:
        create_video_avatar(VideoAvatarSpec(video=clip, folder=tmp_path / "gone", name="x"))
    assert err.value.code == "face_lost", err.value
    if share < 0.5:  # refused on the share itself, which the details carry
        assert err.value.details["face_share"] == pytest.approx(share, abs=0.05)
    assert "comes_and_goes.mp4" in err.value.message or "4 s on end" in err.value.message
    assert not (tmp_path / "gone").exists()


# ---- the reason reaches the vendor APIs ----------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("clone-reasons"),
        heartbeat_s=0.5,
        lease_s=20,
        maintenance_interval_s=0.1,
    )
    srv.start()
    yield srv
    srv.stop()


def _poll(fetch, done, timeout: float = 180.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.mark.slow
def test_a_recording_without_a_face_fails_with_its_reason_on_every_api(
    server: ServerProcess, tmp_path: Path
) -> None:
    write_still_video(tmp_path / "room.mp4", 6.0, frame=np.full((360, 360, 3), 120, np.uint8))
    admin = server.client()
    r = admin.post("/api/v1/accounts", json={"name": "clone", "credits": 1000})
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    with file_server(tmp_path) as files, httpx.Client(base_url=server.url, timeout=60) as http:
        url = f"{files.url}/room.mp4"
        r = http.post(
            "/api/open/v3/avatar/create",
            json={"url": url, "name": "room"},
            headers={"x-api-key": key},
        )
        assert r.json()["code"] == 1000, r.text
        akool_id = r.json()["data"][0]["_id"]
        r = http.post(
            "/apis/open/video/v3/uploadCloneVideo",
            json={"videoUrl": url},
            headers={"apiToken": key},
        )
        assert r.json()["code"] == "200", r.text
        kreado_job = r.json()["data"]["jobId"]

        detail = _poll(
            lambda: http.get(
                "/api/open/v3/avatar/detail", params={"id": akool_id}, headers={"x-api-key": key}
            ).json()["data"][0],
            lambda d: d["status"] in (3, 4),
        )
        assert detail["status"] == 4 and "[no_face]" in detail["error_msg"], detail
        status = _poll(
            lambda: http.post(
                "/apis/open/video/v3/getUploadCloneVideoStatus",
                json={"jobId": str(kreado_job)},
                headers={"apiToken": key},
            ).json()["data"],
            lambda d: d["status"] in (3, 4, 5),
        )
        assert status["status"] == 4 and "[no_face]" in status["failReason"], status
        native = httpx.get(
            f"{server.url}/api/v1/avatars",
            params={"custom": "true"},
            headers={"Authorization": f"Bearer {key}"},
        ).json()["items"]
        assert {a["error"]["code"] for a in native} == {"no_face"}
    admin.close()
