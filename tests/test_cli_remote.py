"""``facecast --server URL render|tts ...``: the CLI's remote mode against a real
``facecast serve`` on loopback (through the Python client): the job runs on the
service, its progress shows as the local CLI's does, the result lands at the output
path, and refusals print as the local CLI prints them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facecast.client import Client
from facecast.media import Audio, write_audio
from service_support import ServerProcess

pytestmark = pytest.mark.slow  # a real server process rendering media

STAGE_LINE = re.compile(r"^(.+) \((\d+)%, [0-9.]+ s\)$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("service"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    with Client(server.url, server.admin_key) as admin:
        return admin.accounts.create("cli", credits=100).api_key


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    folder = tmp_path_factory.mktemp("media")
    face = astronaut[0:256, 128:384]  # head and shoulders, 256 px
    cv2.imwrite(str(folder / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    t = np.arange(int(1.5 * 16000)) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    write_audio(folder / "speech.wav", Audio(voiced.astype(np.float32), 16000))
    return folder


def facecast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FACECAST_")}
    proc = subprocess.run([sys.executable, "-m", "facecast.cli", *args], capture_output=True,
                          timeout=300, env={**clean, **(env or {})})
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode(),
                                       proc.stderr.decode())


def test_render_runs_on_the_server_with_progress(server: ServerProcess, key: str,
                                                 media: Path, tmp_path: Path) -> None:
    out = tmp_path / "remote.mp4"
    visemes = tmp_path / "remote.json"
    proc = facecast("--server", server.url, "--api-key", key, "render",
                    "--photo", str(media / "face.png"), "--audio", str(media / "speech.wav"),
                    "--size", "128x128", "--seed", "4", "--expression", "happy",
                    "--export-visemes", str(visemes), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    # the job was the server's
    submitted = re.search(r"^(job_\d+) queued on ", proc.stderr, re.M)
    assert submitted, proc.stderr
    with Client(server.url, key) as client:
        job = client.jobs.get(submitted.group(1))
    assert job.status == "succeeded" and job.input["seed"] == 4
    # progress as the local CLI shows it off a terminal: one line per stage, rising
    stages = [m for line in proc.stderr.splitlines() if (m := STAGE_LINE.match(line))]
    assert len(stages) >= 2, proc.stderr
    percents = [int(m.group(2)) for m in stages]
    assert percents == sorted(percents) and stages[-1].group(1) == "done"
    assert "\r" not in proc.stderr
    # the result, downloaded
    assert f"wrote {out} (128x128" in proc.stdout and submitted.group(1) in proc.stdout
    assert "expression happy" in proc.stdout
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (128, 128)
        assert container.streams.audio
    assert json.loads(visemes.read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["remote.json", "remote.mp4"]


def test_render_on_the_server_downloads_its_captions(server: ServerProcess, key: str,
                                                    media: Path, tmp_path: Path) -> None:
    out, srt = tmp_path / "captioned.mp4", tmp_path / "captioned.srt"
    proc = facecast("--server", server.url, "--api-key", key, "render",
                    "--photo", str(media / "face.png"), "--text", "Hello there, friends.",
                    "--size", "128x128", "--captions", str(srt), "--burn-captions",
                    "--caption-position", "top", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {srt} (1 cues from tts words)" in proc.stdout
    assert re.fullmatch(r"1\n00:00:00,\d{3} --> 00:00:0\d,\d{3}\nHello there, friends.\n",
                        srt.read_text(encoding="utf-8")), srt.read_text(encoding="utf-8")
    refused = facecast("--server", server.url, "--api-key", key, "render",
                       "--photo", str(media / "face.png"), "--text", "Hi.", "--burn-captions",
                       "--caption-colour", "#ffff00", "-o", str(tmp_path / "x.mp4"))
    assert refused.returncode == 2 and "--caption-size and --caption-position" in refused.stderr


def test_tts_takes_the_server_and_key_from_the_environment(server: ServerProcess, key: str,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    proc = facecast("tts", "--text", "Hello from the server.", "--rate", "1.2", "-o", str(out),
                    env={"FACECAST_SERVER": server.url, "FACECAST_API_KEY": key})
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:4] == b"RIFF"
    timings = json.loads((tmp_path / "hello.timings.json").read_text())
    assert [w["word"].lower().strip(".") for w in timings["words"]][:2] == ["hello", "from"]
    assert re.search(r"as job_\d+ on http://127\.0\.0\.1", proc.stdout)


def test_refusals_print_like_the_local_cli(server: ServerProcess, key: str, media: Path,
                                           tmp_path: Path) -> None:
    out = tmp_path / "never.mp4"
    base = ["--server", server.url, "render", "--photo", str(media / "face.png"),
            "--audio", str(media / "speech.wav"), "-o", str(out)]
    proc = facecast(*base[:2], "--api-key", "fc_wrong", *base[2:])
    assert proc.returncode == 2
    assert re.search(r"^error: .+ \[invalid_api_key\]$", proc.stderr, re.M), proc.stderr
    proc = facecast(*base[:2], "--api-key", key, *base[2:], "--size", "huge")
    assert proc.returncode == 2
    assert re.search(r"^error: .*huge.* \[bad_size\]$", proc.stderr, re.M), proc.stderr
    proc = facecast(*base[:2], "--api-key", key, *base[2:], "--avatar", "x")
    assert proc.returncode == 2 and "exactly one of --photo or --avatar" in proc.stderr
    # a failed job: its code, and no file at the output path
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((256, 256, 3), 200, np.uint8))
    proc = facecast("--server", server.url, "--api-key", key, "render", "--photo", str(blank),
                    "--audio", str(media / "speech.wav"), "-o", str(out))
    assert proc.returncode == 2
    assert re.search(r"^error: job_\d+ failed: .+ \[no_face\]$", proc.stderr, re.M), proc.stderr
    assert not out.exists()
    proc = facecast("--server", server.url, "--api-key", key, "render",
                    "--photo", str(media / "face.png"), "--audio", str(media / "speech.wav"),
                    "--export-visemes", str(tmp_path / "v.tsv"), "-o", str(out))
    assert proc.returncode == 2 and ".json track" in proc.stderr


def test_dub_and_clean_run_on_the_server(server: ServerProcess, key: str, media: Path,
                                         tmp_path: Path) -> None:
    # a 6 s talking-head video to work on, made by the server itself
    t = np.arange(6 * 16000) / 16000
    voiced = 0.3 * np.sin(2 * np.pi * 120 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t))
    write_audio(tmp_path / "long.wav", Audio(voiced.astype(np.float32), 16000))
    remote = ["--server", server.url, "--api-key", key]
    video = tmp_path / "head.mp4"
    proc = facecast(*remote, "render", "--photo", str(media / "face.png"), "--audio",
                    str(tmp_path / "long.wav"), "--size", "128x128", "-o", str(video))
    assert proc.returncode == 0, proc.stderr

    dubbed = tmp_path / "dubbed.mp4"
    proc = facecast(*remote, "dub", "--video", str(video), "--audio",
                    str(media / "speech.wav"), "-o", str(dubbed))
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^wrote .*dubbed\.mp4 \(128x128 at 25 fps, 1\.\d s, .* as job_\d+ on ",
                     proc.stdout, re.M), proc.stdout
    with av.open(str(dubbed)) as container:
        assert container.streams.video[0].width == 128
    # captions of a dub, burned in on the server and the file downloaded, as for render
    srt = tmp_path / "dubbed.srt"
    proc = facecast(*remote, "dub", "--video", str(video), "--text", "Hello there, friends.",
                    "--captions", str(srt), "--burn-captions", "--caption-position", "top",
                    "-o", str(dubbed))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {srt} (1 cues from tts words)" in proc.stdout
    assert srt.read_text(encoding="utf-8").endswith("Hello there, friends.\n")
    proc = facecast(*remote, "dub", "--video", str(video), "--text", "Hi.", "--burn-captions",
                    "--caption-colour", "#ffff00", "-o", str(dubbed))
    assert proc.returncode == 2 and "--caption-size and --caption-position" in proc.stderr

    cleaned = tmp_path / "cleaned.mp4"
    proc = facecast(*remote, "clean", "--video", str(video), "--subtitle-area", "0,100,128,124",
                    "--json", "-o", str(cleaned))
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["subtitle_areas"] == [[0, 100, 128, 124]] and cleaned.stat().st_size > 0

    # what only the local engine does is refused before anything is sent
    proc = facecast(*remote, "dub", "--video", str(video), "--audio",
                    str(media / "speech.wav"), "--face-at", "60,60", "-o", str(dubbed))
    assert proc.returncode == 2 and "--face-at cannot be used with --server" in proc.stderr
    proc = facecast(*remote, "clean", "--video", str(video), "--crf", "20", "-o", str(cleaned))
    assert proc.returncode == 2 and "--crf cannot be used with --server" in proc.stderr
