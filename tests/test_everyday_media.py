"""The media people actually have: phones' HEVC MP4/MOV and HEIC photos, the web's VP9
WebM, AVIF, old MPEG-4 Part 2 AVIs, ProRes, AV1 in MKV, and variable-frame-rate phone
clips. Small clips of each are written here with PyAV (and photos with Pillow and
pillow-heif), then taken by the engine, the CLI and a real ``facecast serve``; the
vendor APIs keep the restrictions their documents state."""

from __future__ import annotations

import base64
import itertools
import shutil
from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facecast.errors import InputError
from facecast.face import check_face
from facecast.media import load_image, write_audio
from facecast.media.video_reader import (
    CLEAN_LIMITS,
    DUB_LIMITS,
    MP4_H264_LIMITS,
    VideoInfo,
    constant_rate_frames,
    probe_video,
)
from facecast.pipeline.frames import output_rate, source_output_rate
from facecast.service.ingest import verify_media
from media_support import write_vfr_video, write_video
from service_support import ServerProcess, file_server, wait_for_job

X265 = {"x265-params": "log-level=error"}
AV1_ENCODER = next(
    (c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None
)
# name, encoder, pixel format, options, the codec name probe_video reports
CLIPS = [
    ("iphone.mp4", "libx265", "yuv420p", X265, "hevc"),
    ("iphone.mov", "libx265", "yuv420p", X265, "hevc"),
    ("web.webm", "libvpx-vp9", "yuv420p", {}, "vp9"),
    ("old.webm", "libvpx", "yuv420p", {}, "vp8"),
    ("camera.avi", "mpeg4", "yuv420p", {}, "mpeg4"),
    ("part2.mp4", "mpeg4", "yuv420p", {}, "mpeg4"),
    ("edit.mov", "prores_ks", "yuv422p10le", {}, "prores"),
    ("screen.mkv", "libx264", "yuv420p", {}, "h264"),
    pytest.param(
        "modern.mkv",
        AV1_ENCODER,
        "yuv420p",
        {},
        None,
        marks=pytest.mark.skipif(AV1_ENCODER is None, reason="no AV1 encoder in PyAV"),
    ),
]


def gradient_frames(n: int, side: int = 64) -> Iterator[np.ndarray]:
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    for i in range(n):
        img = np.zeros((side, side, 3), np.uint8)
        img[:, :, 0] = ramp[None, :]
        img[:, :, 1] = ramp[:, None]
        img[:, :, 2] = (i * 4) % 256
        yield img


@pytest.mark.parametrize(("name", "encoder", "pix_fmt", "options", "codec"), CLIPS)
def test_native_limits_take_every_common_codec_and_container(
    tmp_path: Path,
    name: str,
    encoder: str,
    pix_fmt: str,
    options: dict[str, str],
    codec: str | None,
) -> None:
    path = write_video(
        tmp_path / name,
        gradient_frames(52),
        fps=10,
        codec=encoder,
        pix_fmt=pix_fmt,
        options=options,
    )
    info = probe_video(path, DUB_LIMITS)
    probe_video(path, CLEAN_LIMITS)
    assert codec is None or info.codec == codec
    assert (info.width, info.height) == (64, 64) and info.duration == pytest.approx(5.2, abs=0.1)
    media = verify_media(path, {"video"})  # what the service checks an upload with
    assert media.kind == "video" and media.info["width"] == 64
    frames = list(constant_rate_frames(path, 10.0))
    assert [i for i, _ in frames] == list(range(52))
    want = list(gradient_frames(52))
    err = max(float(np.abs(rgb.astype(int) - want[i]).mean()) for i, rgb in frames)
    assert err < 12, f"frames decode wrong (mean error {err:.1f})"
    # KreadoAI's lip-sync rules (MP4 or MOV, H.264) still refuse what they name
    if codec != "h264" or not name.endswith((".mp4", ".mov")):
        with pytest.raises(InputError) as refused:
            probe_video(path, MP4_H264_LIMITS)
        assert refused.value.code in ("unsupported_codec", "unsupported_container")
        assert name in refused.value.message


def test_unknown_containers_are_still_refused_by_name(tmp_path: Path) -> None:
    path = write_video(tmp_path / "capture.ts", gradient_frames(60), fps=10, fmt="mpegts")
    with pytest.raises(InputError) as err:
        probe_video(path, DUB_LIMITS)
    assert err.value.code == "unsupported_container"
    assert "MP4/MOV" in err.value.message and "MKV/WebM" in err.value.message


# ---- frame rates ---------------------------------------------------------------------------


def test_output_rate_picks_the_nearest_standard_rate() -> None:
    # 30 and 24 are not 29.97 and 23.976: a 30 fps recording stays at 30
    assert output_rate(30.0) == 30 and output_rate(24.0) == 24
    assert output_rate(29.97) == Fraction(30000, 1001)
    assert output_rate(23.976) == Fraction(24000, 1001)


def _vfr(fps: float, nominal: float) -> VideoInfo:
    return VideoInfo(
        Path("x.mp4"),
        700,
        700,
        fps,
        6.0,
        round(6 * fps),
        "h264",
        "mov",
        True,
        True,
        nominal_fps=nominal,
    )


@pytest.mark.parametrize(
    ("average", "nominal", "rate"),
    [
        (22.13, 30.0, 30),  # a phone's "30 fps" clip, frames dropped in low light
        (22.13, 0.0, 24),  # no declared rate: the lowest whole standard rate above the average
        (23.24, 120.0, 24),  # a declared rate far above the frames (a fine time base's guess)
        (55.0, 60.0, 60),
        (14.0, 15.0, 24),  # 15 is no standard rate
    ],
)
def test_variable_rate_input_gets_a_standard_rate(
    average: float, nominal: float, rate: int
) -> None:
    assert source_output_rate(_vfr(average, nominal)) == rate


@pytest.fixture(scope="module")
def face_frames(shared_media: Path) -> list[np.ndarray]:
    """A real person speaking (256 x 256, 25 fps), 6 s of it."""
    with av.open(str(shared_media / "videos" / "klobuchar_10s_noaudio.mp4")) as c:
        return [f.to_ndarray(format="rgb24") for f in itertools.islice(c.decode(video=0), 150)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from facecast.speech import synthesize

    said = synthesize("Hello there, friends.")
    return write_audio(tmp_path_factory.mktemp("speech") / "hello.wav", said.audio)


def phone_vfr_clip(path: Path, frames: list[np.ndarray], seconds: float = 6.0) -> Path:
    """The source shown in real time, but written only on some ticks of a 30 fps clock
    (1, 2 or 3 ticks apart, ~18 fps on average), with AAC sound: a phone in dim light."""
    rng = np.random.default_rng(7)
    times: list[float] = []
    tick = 0
    while tick / 30 < seconds:
        times.append(tick / 30)
        tick += int(rng.choice([1, 1, 2, 2, 3]))
    shown = [(t, frames[min(int(t * 25), len(frames) - 1)]) for t in times]
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(int(44100 * seconds)) / 44100)
    return write_vfr_video(path, shown, audio=tone.astype(np.float32))


def _stream_facts(path: Path) -> tuple[str, Fraction, set[float]]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = [f.pts for f in c.decode(s)]
        steps = {round(float((b - a) * s.time_base), 4) for a, b in pairwise(pts)}
        return s.codec_context.name, Fraction(s.average_rate), steps


@pytest.mark.slow
def test_cli_dub_of_a_vfr_phone_clip_is_at_a_standard_constant_rate(
    tmp_path: Path, face_frames: list[np.ndarray], speech: Path
) -> None:
    from facecast.cli import main

    clip = phone_vfr_clip(tmp_path / "phone.mp4", face_frames)
    info = probe_video(clip)
    assert info.variable_rate and 15 < info.fps < 22 and info.nominal_fps == 30
    out = tmp_path / "dubbed.mp4"
    res = CliRunner().invoke(
        main, ["dub", "--video", str(clip), "--audio", str(speech), "-o", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "at 30 fps" in res.output, res.output
    codec, rate, steps = _stream_facts(out)
    assert codec == "h264" and rate == 30 and steps == {round(1 / 30, 4)}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "encoder", "pix_fmt", "options"),
    [
        ("iphone.mp4", "libx265", "yuv420p", X265),
        ("web.webm", "libvpx-vp9", "yuv420p", {}),
        ("camera.avi", "mpeg4", "yuv420p", {}),
    ],
)
def test_cli_dub_takes_phone_and_web_video(
    tmp_path: Path,
    face_frames: list[np.ndarray],
    speech: Path,
    name: str,
    encoder: str,
    pix_fmt: str,
    options: dict[str, str],
) -> None:
    from facecast.cli import main

    clip = write_video(
        tmp_path / name, face_frames[:140], fps=25, codec=encoder, pix_fmt=pix_fmt, options=options
    )
    out = tmp_path / "dubbed.mp4"
    res = CliRunner().invoke(
        main, ["dub", "--video", str(clip), "--audio", str(speech), "-o", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "256x256 at 25 fps" in res.output, res.output
    codec, rate, _steps = _stream_facts(out)
    assert codec == "h264" and rate == 25


@pytest.mark.slow
def test_a_portrait_phone_clip_is_dubbed_upright(
    tmp_path: Path, face_frames: list[np.ndarray], speech: Path
) -> None:
    """Phones store a portrait recording as landscape frames and a display matrix."""
    from facecast.cli import main

    upright = [np.ascontiguousarray(f[:, 32:224]) for f in face_frames[:140]]  # 192 x 256
    stored = (cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in upright)  # 256 x 192
    clip = write_video(
        tmp_path / "portrait.mov", stored, codec="libx265", options=X265, rotation=90
    )
    info = probe_video(clip, DUB_LIMITS)
    assert (info.width, info.height, info.rotation) == (256, 192, 90)
    out = tmp_path / "dubbed.mp4"
    res = CliRunner().invoke(
        main, ["dub", "--video", str(clip), "--audio", str(speech), "-o", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert "192x256 at 25 fps" in res.output, res.output
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    # the top half (eyes, forehead: no dubbing there) is the upright source's
    err = float(np.abs(first[:100].astype(int) - upright[0][:100]).mean())
    assert err < 8, f"the output is not the upright picture (mean error {err:.1f})"


# ---- photos --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "content_type"), [(".heic", "image/heic"), (".avif", "image/avif")]
)
def test_heic_and_avif_photos_are_read(
    tmp_path: Path, astronaut: np.ndarray, suffix: str, content_type: str
) -> None:
    from facecast.media.image import image_header

    path = tmp_path / f"photo{suffix}"
    Image.fromarray(astronaut).save(path, quality=90)
    rgb = load_image(path)
    assert rgb.shape == astronaut.shape and rgb.dtype == np.uint8
    assert float(np.abs(rgb.astype(int) - astronaut).mean()) < 6
    assert image_header(path.read_bytes()).content_type == content_type
    assert verify_media(path, {"image"}).content_type == content_type
    assert check_face(path).accepted
    # turned by its EXIF orientation, as a phone's portrait photo is
    turned = tmp_path / f"turned{suffix}"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    Image.fromarray(astronaut[:, :400]).save(turned, quality=90, exif=exif.tobytes())
    assert load_image(turned).shape == (400, 512, 3)
    assert image_header(turned.read_bytes()).upright_size == (512, 400)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_the_header_gives_the_size_as_shown(fmt: str) -> None:
    """A phone's portrait photo is stored on its side with an EXIF orientation: the
    header's upright size is the decoded picture's (without decoding it)."""
    import io

    from facecast.media.image import image_header

    for orientation in (1, 3, 6, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        Image.new("RGB", (120, 80), (200, 100, 50)).save(buf, fmt, exif=exif.tobytes())
        height, width = load_image(buf.getvalue()).shape[:2]
        assert image_header(buf.getvalue()).upright_size == (width, height), (fmt, orientation)
        assert (width, height) == ((80, 120) if orientation in (6, 8) else (120, 80))


@pytest.mark.parametrize("fmt", ["GIF", "PPM", "ICO"])
def test_other_image_formats_are_refused_before_their_parsers_run(fmt: str) -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buf, fmt)
    with pytest.raises(InputError) as err:
        load_image(buf.getvalue())
    assert err.value.code == "unreadable_image" and "HEIC/HEIF" in err.value.message


# ---- through a real server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("everyday"), heartbeat_s=0.5, lease_s=20, maintenance_interval_s=0.1
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.slow
def test_native_api_takes_phone_media_and_vendors_keep_their_rules(
    server: ServerProcess,
    tmp_path: Path,
    face_frames: list[np.ndarray],
    astronaut: np.ndarray,
    speech: Path,
) -> None:
    admin = server.client()
    r = admin.post("/api/v1/accounts", json={"name": "phone", "credits": 1000})
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    user = server.client(key)
    heic = tmp_path / "me.heic"
    Image.fromarray(astronaut).save(heic, quality=90)
    avif = tmp_path / "me.avif"
    Image.fromarray(astronaut).save(avif, quality=90)
    hevc = write_video(tmp_path / "iphone.mp4", face_frames[:140], codec="libx265", options=X265)
    vp9 = write_video(tmp_path / "web.webm", face_frames[:140], codec="libvpx-vp9")
    try:
        r = user.post("/api/v1/assets", files={"file": ("me.heic", heic.read_bytes())})
        assert r.status_code == 201, r.text
        assert r.json()["content_type"] == "image/heic" and r.json()["kind"] == "image"
        r = user.post(
            "/api/v1/face-check",
            json={"photo": {"base64": base64.b64encode(avif.read_bytes()).decode()}},
        )
        assert r.status_code == 200 and r.json()["accepted"], r.text
        r = user.post(
            "/api/v1/avatars",
            json={
                "name": "heic me",
                "photo": {"base64": base64.b64encode(heic.read_bytes()).decode()},
            },
        )
        assert r.status_code == 201 and r.json()["status"] == "ready", r.text

        r = user.post("/api/v1/assets", files={"file": ("web.webm", vp9.read_bytes())})
        assert r.status_code == 201, r.text
        webm = r.json()["id"]
        assert r.json()["content_type"] == "video/webm"
        r = user.post(
            "/api/v1/dubs",
            json={
                "video": {"asset_id": webm},
                "audio": {"base64": base64.b64encode(speech.read_bytes()).decode()},
            },
        )
        assert r.status_code == 201, r.text
        job = wait_for_job(user, r.json()["id"], timeout=300)
        assert job["status"] == "succeeded", job
        r = user.post("/api/v1/assets", files={"file": ("iphone.mp4", hevc.read_bytes())})
        assert r.status_code == 201, r.text
        r = user.post(
            "/api/v1/avatars", json={"name": "hevc me", "video": {"asset_id": r.json()["id"]}}
        )
        assert r.status_code == 201 and r.json()["status"] == "processing", r.text
        assert user.delete(f"/api/v1/avatars/{r.json()['id']}").status_code == 204

        # KreadoAI's lip sync is documented as MP4/MOV, H.264: its API still says so
        shutil.copy(speech, tmp_path / "hello.wav")
        with file_server(tmp_path) as files:
            r = httpx.post(
                f"{server.url}/apis/open/video/v3/submitLipTask",
                json={
                    "taskName": "x",
                    "videoUrl": f"{files.url}/iphone.mp4",
                    "audioUrl": f"{files.url}/hello.wav",
                },
                headers={"apiToken": key},
                timeout=120,
            )
        assert r.json()["code"] == "10002", r.text
        assert "[unsupported_codec]" in r.json()["message"], r.text
    finally:
        admin.close()
        user.close()
