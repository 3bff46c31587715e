"""The studio's Live page in a real browser (Debian's chromium through Playwright): a person
picks an avatar, starts a session, types a sentence, and the ``<video>`` plays the avatar
saying it, frames moving in the mouth area, over the browser's own WebRTC (WHEP).

The app runs under uvicorn in this process (``live_support.live_server``), so the test
also sees the session's process end when the page ends it. A frame grab of the mouth,
idle | speaking, goes to ``out/console/live-mouth.png``.

Skipped when Playwright or ``/usr/bin/chromium`` is missing."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest

from live_support import LiveServer, live_server, wait_for

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               # the avatar is heard as well as seen: no click-to-play in a test
               "--autoplay-policy=no-user-gesture-required",
               # the server is on this machine; where loopback is its only interface (a
               # container), the browser must offer loopback candidates too
               "--allow-loopback-in-peer-connection",
               # plain addresses, not mDNS names (which need multicast to resolve)
               "--disable-features=WebRtcHideLocalIpsWithMdns"]
SHOTS = Path(__file__).resolve().parent.parent / "out" / "console"
TIMEOUT_MS = 60_000
SENTENCE = "Hello, I am your live avatar, and I am speaking to you right now."

# the <video>'s state: time played, frames presented (requestVideoFrameCallback); and the
# mouth area (a box in the frame's pixels) as grey pixels
WATCH = """(video) => {
  if (!video.dataset.watched) {
    video.dataset.watched = '1';
    window.liveFrames = 0;
    const count = () => { window.liveFrames += 1; video.requestVideoFrameCallback(count); };
    video.requestVideoFrameCallback(count);
  }
  return { time: video.currentTime, frames: window.liveFrames, width: video.videoWidth,
           height: video.videoHeight, paused: video.paused };
}"""
MOUTH = """(video, box) => {
  const canvas = document.createElement('canvas');
  canvas.width = box[2]; canvas.height = box[3];
  const g = canvas.getContext('2d');
  g.drawImage(video, box[0], box[1], box[2], box[3], 0, 0, box[2], box[3]);
  const rgba = g.getImageData(0, 0, box[2], box[3]).data;
  const grey = [];
  for (let i = 0; i < rgba.length; i += 4) grey.push((rgba[i] + rgba[i + 1] + rgba[i + 2]) / 3);
  return { width: box[2], height: box[3], grey };
}"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-console")) as made:
        yield made


def astronaut_id(srv: LiveServer) -> str:
    r = httpx.get(f"{srv.url}/api/v1/avatars", headers=srv.headers())
    return next(str(a["id"]) for a in r.json()["items"] if a["name"] == "Eileen Collins")


def mouth(page: Any, box: list[int]) -> np.ndarray:
    grab = page.eval_on_selector("[data-testid=live-video]", MOUTH, box)
    return np.asarray(grab["grey"], np.float32).reshape(grab["height"], grab["width"])


def test_live_page_speaks_what_is_typed(srv: LiveServer, landmarks: np.ndarray) -> None:
    # the library's Eileen Collins is the packaged astronaut (512x512), streamed at 512x512: the
    # face mesh's lip points are the mouth's place in the frame (x, y, w, h around them)
    lips = landmarks[[0, 17, 61, 291], :2]
    centre, half = lips.mean(axis=0), (lips[3, 0] - lips[2, 0]) * 0.75
    box = [int(centre[0] - half), int(centre[1] - half * 0.8), int(2 * half), int(1.6 * half)]
    problems: list[str] = []
    started = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type == "error" else None)
            page.goto(f"{srv.url}/")
            page.get_by_test_id("api-key-input").fill(srv.admin)
            page.get_by_test_id("api-key-input").press("Enter")
            page.get_by_test_id("sign-out").wait_for()
            page.get_by_role("link", name="Live").click()
            page.locator(f"[data-testid=avatar-card][data-avatar-id={astronaut_id(srv)}]").click()
            page.get_by_test_id("live-start").click()
            video = page.get_by_test_id("live-video")
            # playing: time advancing, frames presented
            page.wait_for_function(
                "() => { const v = document.querySelector('[data-testid=live-video]');"
                " return v.readyState >= 2 && v.currentTime > 0.5 && v.videoWidth > 0; }")
            first = video.evaluate(WATCH)
            assert first["width"] == 512 and not first["paused"], first
            sessions = [s for s in srv.service.live._streams.values() if s.status == "live"]
            assert len(sessions) == 1 and sessions[0].session is not None
            process = sessions[0].session.pid
            assert process is not None
            SHOTS.mkdir(parents=True, exist_ok=True)
            idle = mouth(page, box)
            print(f"\nplaying {time.monotonic() - started:.1f} s after the start")

            page.get_by_test_id("live-text").fill(SENTENCE)
            page.get_by_test_id("live-speak").click()
            # the words arrive as the avatar says them (server-sent events)
            page.wait_for_function("() => document.querySelector('[data-testid=live-said]')"
                                   ".textContent.split(' ').length >= 3")
            talking = [mouth(page, box)]
            for _ in range(5):  # a few grabs while it speaks, half a video second apart
                before = video.evaluate(WATCH)["time"]
                page.wait_for_function(
                    "(t) => document.querySelector('[data-testid=live-video]').currentTime"
                    " > t + 0.5", arg=before)
                talking.append(mouth(page, box))
            page.screenshot(path=str(SHOTS / "live.png"), full_page=True)
            later = video.evaluate(WATCH)
            assert later["time"] > first["time"] + 2 and later["frames"] > 40, (first, later)
            moved = max(float(np.abs(t - idle).mean()) for t in talking)
            between = max(float(np.abs(a - b).mean()) for a, b in itertools.pairwise(talking))
            save_grab(idle, talking)
            assert moved > 2.0 and between > 1.0, (moved, between)  # the mouth moves

            page.get_by_test_id("live-interrupt").click()
            page.get_by_test_id("live-stop").click()
            page.get_by_test_id("live-start").wait_for(state="attached")
            wait_for(lambda: not psutil.pid_exists(process) or
                     psutil.Process(process).status() == psutil.STATUS_ZOMBIE, 15,
                     "the session's process to end")
            assert srv.service.live.open_count() == 0
        finally:
            browser.close()
    assert not problems, problems


def save_grab(idle: np.ndarray, talking: list[np.ndarray]) -> None:
    """idle | the most open of the speaking grabs, 3x, for a person to look at."""
    import cv2

    SHOTS.mkdir(parents=True, exist_ok=True)
    most = max(talking, key=lambda t: float(np.abs(t - idle).mean()))
    pair = np.hstack([idle, np.full((idle.shape[0], 4), 255, np.float32), most])
    big = cv2.resize(pair, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(str(SHOTS / "live-mouth.png"), big.clip(0, 255).astype(np.uint8))
