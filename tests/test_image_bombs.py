"""Decompression bombs: a PNG of a few hundred kilobytes whose header says 144 megapixels
is refused on its header, before any decode, on every path that reads images (the
engine's loaders, the face check, the compositor's layers, media ingest) and through
a real ``facecast serve`` on every API that takes a photo, with the API process's peak
memory barely moving."""

from __future__ import annotations

import base64
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import numpy as np
import psutil
import pytest

from facecast.errors import InputError
from facecast.face import check_face
from facecast.media import Audio, write_audio
from facecast.media.image import MAX_DECODE_PIXELS, image_header, load_image, load_image_alpha
from facecast.service.ingest import verify_media
from service_support import ServerProcess, file_server

SIDE = 12_000  # 144 MP: over the limit, yet quick to decode in the test that shows the old way
PEAK_GROWTH_LIMIT = 100 * 2**20  # what one refused attempt may add to the API's peak RSS


def png_bomb(side: int, rows_per_segment: int = 100) -> bytes:
    """An 8-bit grey PNG of ``side`` x ``side`` zeros, built without compressing them:
    one deflate segment of zero rows ends in a full flush (byte-aligned, no history), so
    it can be repeated; Adler-32 of n zero bytes is (n mod 65521) << 16 | 1."""
    assert side % rows_per_segment == 0

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = raw.compress(bytes(rows_per_segment * (side + 1))) + raw.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    n = side * (side + 1)
    stream = (
        b"\x78\xda"
        + segment * (side // rows_per_segment)
        + end
        + struct.pack(">I", ((n % 65521) << 16) | 1)
    )
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(png_bomb(SIDE))
    t = np.arange(32000) / 16000  # two seconds of a voiced tone: the speech beside it
    wave = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_audio(path.parent / "speech.wav", Audio(wave.astype(np.float32), 16000))
    assert path.stat().st_size < 400_000
    return path


def test_the_bomb_is_a_real_image_over_the_limit(bomb: Path) -> None:
    # the file is what it claims: a valid PNG whose pixels really decode (see its size)
    assert SIDE * SIDE > MAX_DECODE_PIXELS
    with pytest.raises(InputError) as err:
        image_header(bomb.read_bytes(), "bomb.png")
    assert err.value.code == "image_too_large"
    assert f"{SIDE}x{SIDE}" in err.value.message and "bomb.png" in err.value.message
    small = png_bomb(200)
    assert image_header(small).width == 200
    assert load_image(small).shape == (200, 200, 3)


def test_every_image_path_refuses_the_bomb_before_decoding(bomb: Path) -> None:
    data = bomb.read_bytes()
    for load in (
        lambda: load_image(bomb),
        lambda: load_image(data),
        lambda: load_image_alpha(bomb),
    ):
        start = time.perf_counter()
        with pytest.raises(InputError) as err:
            load()
        assert err.value.code == "image_too_large"
        # a decode of 144 MP takes seconds; reading a header, milliseconds
        assert time.perf_counter() - start < 0.5
    verdict = check_face(bomb)
    assert not verdict.accepted and verdict.reason == "image_too_large"
    with pytest.raises(InputError) as err:
        verify_media(bomb, {"image"})
    assert err.value.code == "image_too_large"


def test_a_compositor_layer_refuses_the_bomb(bomb: Path, tmp_path: Path) -> None:
    from facecast.render.matte import _load_rgba

    with pytest.raises(InputError) as err:
        _load_rgba(bomb)
    assert err.value.code == "image_too_large"


# ---- through a real server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("bomb-service"))
    srv.start()
    yield srv
    srv.stop()


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory since the last :func:`_reset_peak` (bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # 5: reset the peak RSS to the current


def test_api_refuses_bombs_with_its_codes_and_flat_memory(
    server: ServerProcess, bomb: Path
) -> None:
    assert server.proc is not None
    api = psutil.Process(server.proc.pid)  # uvicorn runs in the serve process itself
    admin = server.client()
    r = admin.post("/api/v1/accounts", json={"name": "bomber", "credits": 1000})
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    user = server.client(key)
    r = user.post("/api/v1/vendor-credentials", json={"vendor": "kling"})
    assert r.status_code == 201, r.text
    pair = r.json()
    now = int(time.time())
    kling_token = jwt.encode(
        {"iss": pair["client_id"], "exp": now + 1800, "nbf": now - 5},
        pair["client_secret"],
        algorithm="HS256",
    )
    data = bomb.read_bytes()
    b64 = base64.b64encode(data).decode()
    speech = base64.b64encode((bomb.parent / "speech.wav").read_bytes()).decode()
    jobs_before = user.get("/api/v1/jobs").json()["total"]

    with file_server(bomb.parent) as files:
        url = f"{files.url}/{bomb.name}"
        native = [
            lambda: user.post("/api/v1/assets", files={"file": ("bomb.png", data, "image/png")}),
            lambda: user.post("/api/v1/assets/import", json={"base64": b64}),
            lambda: user.post("/api/v1/assets/import", json={"url": url}),
            lambda: user.post("/api/v1/face-check", json={"photo": {"base64": b64}}),
            lambda: user.post("/api/v1/avatars", json={"name": "b", "photo": {"url": url}}),
            lambda: user.post(
                "/api/v1/talking-photos", json={"photo": {"base64": b64}, "text": "Hello."}
            ),
        ]
        for call in native:
            api.memory_info()  # the process is alive and ours to read
            _reset_peak(api.pid)
            base = api.memory_info().rss
            r = call()
            growth = _peak_rss(api.pid) - base
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "image_too_large", r.text
            assert growth < PEAK_GROWTH_LIMIT, f"peak RSS grew {growth / 2**20:.0f} MB"

        # two at once: still refused on the header, still flat
        _reset_peak(api.pid)
        base = api.memory_info().rss
        answers: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: answers.append(native[0]())) for _ in "ab"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        growth = _peak_rss(api.pid) - base
        assert [a.json()["error"]["code"] for a in answers] == ["image_too_large"] * 2
        assert growth < PEAK_GROWTH_LIMIT, f"peak RSS grew {growth / 2**20:.0f} MB"

        # the vendors' own codes, facecast's reason in brackets
        with httpx.Client(base_url=server.url, timeout=60) as http:
            r = http.post(
                "/apis/open/avatar/v3/uploadAvatar",
                json={"fileUrl": url},
                headers={"apiToken": key},
            )
            assert r.json()["code"] == "10002", r.text
            assert "[image_too_large]" in r.json()["message"], r.text
            r = http.post(
                "/api/open/v3/content/video/createbytalkingphoto",
                json={"talking_photo_url": url, "audio_url": f"{files.url}/speech.wav"},
                headers={"x-api-key": key},
            )
            assert r.json()["code"] == 1003 and "[image_too_large]" in r.json()["msg"], r.text
            r = http.post(
                "/v1/videos/avatar/image2video",
                json={"image": b64, "sound_file": speech},
                headers={"Authorization": f"Bearer {kling_token}"},
            )
            assert r.status_code == 400 and r.json()["code"] == 1201, r.text
            assert "[image_too_large]" in r.json()["message"], r.text
    assert user.get("/api/v1/jobs").json()["total"] == jobs_before  # nothing was made
    assert api.is_running()
    admin.close()
    user.close()


def test_a_render_refuses_the_bomb_with_its_code(
    bomb: Path, tmp_path: Path, shared_media: Path
) -> None:
    # What a worker runs: the code reaches the job, not OpenCV's text as internal_error.
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    speech = shared_media / "speech"
    with pytest.raises(InputError) as err:
        render_talking_photo(
            TalkingPhotoSpec(
                photo=bomb, output=tmp_path / "o.mp4", audio=speech / "pocketsphinx_goforward.wav"
            )
        )
    assert err.value.code == "image_too_large", err.value
    assert not (tmp_path / "o.mp4").exists()
