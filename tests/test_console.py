"""The studio (the web console at ``/``) driven in a real browser: Debian's chromium through
Playwright, against one real ``facecast serve`` on loopback. Every page is checked for
console errors and failed requests; screenshots of each page at a laptop's and a phone's
size go to ``out/console/``.

Skipped when Playwright or ``/usr/bin/chromium`` is missing (``.ci/run`` installs both)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from service_support import ServerProcess, wait_for_job

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "out" / "console"
MEDIA = ROOT.parent / "shared" / "media"
LAPTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
XSS = "<img src=x onerror=alert(1)>"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("console"), workers=1).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Watched:
    """A page with what went wrong on it: console errors, script errors, failed requests
    (no answer, or an answer of 400 and above), and alert() dialogs."""

    page: Any
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    expected: set[tuple[int, str]] = field(default_factory=set)  # (status, path) allowed

    def check(self) -> None:
        assert not self.dialogs, self.dialogs
        assert not self.problems, self.problems


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    w = Watched(page)

    def response(r: Any) -> None:
        path = re.sub(r"^https?://[^/]+", "", r.url).split("?")[0]
        if r.status >= 400 and (r.status, path) not in w.expected:
            w.problems.append(f"{r.status} {r.request.method} {path}")

    def console(m: Any) -> None:
        # the browser logs every 4xx answer; those a test expects are not problems
        failed = re.match(r"Failed to load resource: the server responded with a status of "
                          r"(\d+)", m.text)
        if failed and any(status == int(failed.group(1)) for status, _ in w.expected):
            return
        if m.type in ("error", "warning"):
            w.problems.append(f"console {m.type}: {m.text}")

    page.on("console", console)
    page.on("pageerror", lambda e: w.problems.append(f"script error: {e}"))
    page.on("requestfailed", lambda r: w.problems.append(f"failed {r.url}: {r.failure}"))
    page.on("response", response)

    def dialog(d: Any) -> None:
        w.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    try:
        yield w
    finally:
        context.close()


def sign_in(page: Any, server: ServerProcess, key: str | None = None) -> None:
    page.goto(f"{server.url}/")
    page.get_by_test_id("api-key-input").fill(key or server.admin_key)
    page.get_by_test_id("api-key-input").press("Enter")  # the keyboard submits the form
    page.get_by_test_id("sign-out").wait_for()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# ---- the page and its headers (no browser) ----------------------------------------------


def test_console_is_served_with_a_strict_policy(server: ServerProcess) -> None:
    r = httpx.get(f"{server.url}/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "set-cookie" not in r.headers
    # nothing from another site: every src and href is this origin's
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", r.text)
    config = re.search(r'id="console-config">(.*?)</script>', r.text)
    assert config and '"aspects"' in config.group(1)
    js = httpx.get(f"{server.url}/console/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in js.text  # user data goes in as text (dom.js)
    missing = httpx.get(f"{server.url}/console/..%2Fsettings.py")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert httpx.get(f"{server.url}/health").status_code == 200  # the APIs stay where they were


# ---- sign in and out ---------------------------------------------------------------------


def test_sign_in_and_out(server: ServerProcess, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{server.url}/")
    # a wrong key is refused in words, and the key never reaches the URL
    watched.expected.add((401, "/api/v1/account"))
    page.get_by_test_id("api-key-input").fill("fc_not-a-key")
    page.get_by_test_id("sign-in").click()
    error = page.get_by_test_id("error-message")
    error.wait_for()
    assert "[invalid_api_key]" in error.inner_text()
    sign_in(page, server)
    assert server.admin_key not in page.url
    assert page.context.cookies() == []
    assert page.locator("header").inner_text().count("admin") >= 1
    assert page.get_by_role("link", name="Admin").is_visible()  # an admin key sees the admin page
    page.wait_for_load_state("networkidle")  # a reload would cut requests in flight
    page.reload()  # the tab keeps the session
    page.get_by_test_id("sign-out").wait_for()
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("api-key-input").wait_for()
    assert page.evaluate("sessionStorage.length") == 0
    watched.check()


# ---- create a talking photo and watch it -------------------------------------------------

SCRIPT = "Hello from the studio."
# the progress bar, status and value of the newest job, recorded whenever they change
WATCH_JOB = """() => {
  const row = document.querySelector('[data-testid=job-row]');
  if (!row) return false;
  const status = row.querySelector('[data-testid=job-status]').textContent;
  const value = row.querySelector('[data-testid=job-progress]').value;
  const seen = (window.seenProgress ||= []);
  if (seen[seen.length - 1] !== value) seen.push(value);
  return ['succeeded', 'failed', 'canceled', 'expired'].includes(status) && status;
}"""


def speech_seconds(server: ServerProcess, text: str, voice: str) -> float:
    """How long the service's speech of ``text`` is, from a speech job of its own."""
    with server.client() as c:
        r = c.post("/api/v1/speech", json={"text": text, "voice": voice, "format": "wav"})
        assert r.status_code == 201, r.text
        job = wait_for_job(c, r.json()["id"])
    assert job["status"] == "succeeded", job
    return float(job["result"]["info"]["duration"])


def make_video(server: ServerProcess, watched: Watched, photo: Path, name: str) -> None:
    """Sign in, upload ``photo``, type a script, pick a voice, create, watch the progress
    bar move and play the result in the page."""
    page = watched.page
    sign_in(page, server)
    page.get_by_test_id("photo-input").set_input_files(str(photo))
    verdict = page.get_by_test_id("face-verdict")
    verdict.wait_for()
    assert verdict.inner_text().startswith("Face found"), verdict.inner_text()
    # the face box is drawn on the photo: its outline colour is in the canvas
    boxed = page.evaluate("""() => {
      const c = document.querySelector('canvas.photo');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] === 30 && d[i + 1] === 154 && d[i + 2] === 76) n++;
      }
      return n;
    }""")
    assert boxed > 100, boxed
    page.get_by_test_id("script-input").fill(SCRIPT)
    voices = page.get_by_test_id("voice-select")
    page.wait_for_function(
        "document.querySelector('[data-testid=voice-select]').options.length > 1")
    voice = voices.locator("option").nth(1).get_attribute("value")
    assert voice
    voices.select_option(voice)
    estimate = page.get_by_test_id("estimate")
    assert re.match(r"About \d+ credits", estimate.inner_text()), estimate.inner_text()
    page.get_by_test_id("create-button").click()
    page.get_by_test_id("job-row").first.wait_for()
    status = page.wait_for_function(WATCH_JOB, polling=50, timeout=120_000).json_value()
    shot(page, f"{name}-jobs-done")
    seen = page.evaluate("window.seenProgress")
    assert status == "succeeded", (status, page.get_by_test_id("job-row").first.inner_text())
    assert seen[-1] == 100 and seen == sorted(seen), seen
    assert any(0 < v < 100 for v in seen), f"the bar never showed work in progress: {seen}"
    row = page.get_by_test_id("job-row").first
    job_id = row.get_attribute("data-job-id")
    with server.client() as c:
        job = c.get(f"/api/v1/jobs/{job_id}").json()
    # play it in the page
    row.get_by_role("button", name="Play").click()
    video = page.get_by_test_id("result-video")
    video.wait_for()
    page.evaluate("() => { const v = document.querySelector('[data-testid=result-video]');"
                  " v.muted = true; return v.play(); }")
    page.wait_for_function("() => { const v = document.querySelector("
                           "'[data-testid=result-video]'); return v.readyState >= 3 && "
                           "v.currentTime > 0; }")
    duration = page.evaluate("document.querySelector('[data-testid=result-video]').duration")
    assert abs(duration - job["result"]["info"]["duration"]) <= 0.3, (duration, job["result"])
    spoken = speech_seconds(server, SCRIPT, voice)
    assert abs(duration - spoken) <= 0.3, (duration, spoken)
    shot(page, f"{name}-playing")
    link = row.get_by_test_id("download-link")
    assert link.get_attribute("href") == job["result"]["files"]["video"]["url"]
    got = httpx.get(link.get_attribute("href"))
    assert got.status_code == 200 and got.content[4:8] == b"ftyp"
    watched.check()


def test_talking_photo_of_the_astronaut(server: ServerProcess, watched: Watched,
                                        astronaut_path: Path) -> None:
    make_video(server, watched, astronaut_path, "astronaut")


def test_talking_photo_of_a_real_photo(server: ServerProcess, watched: Watched,
                                       shared_media: Path) -> None:
    make_video(server, watched, shared_media / "faces" / "photo_woman_happy_256.png", "woman")


def blank_photo(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "wall.png"
    Image.new("RGB", (400, 400), (180, 170, 160)).save(path)
    return path


@pytest.mark.parametrize("make, reason", [
    (blank_photo, "no_face"),
    (lambda _tmp: MEDIA / "faces_rejected" / "two_faces_obama_biden.jpg", "multiple_faces"),
], ids=["blank", "two-faces"])
def test_refused_photo_shows_its_reason(server: ServerProcess, watched: Watched, tmp_path: Path,
                                        make: Any, reason: str) -> None:
    photo = make(tmp_path)
    if not photo.exists():
        pytest.skip("../shared/media is not present")
    page = watched.page
    sign_in(page, server)
    page.get_by_test_id("script-input").fill(SCRIPT)
    page.get_by_test_id("photo-input").set_input_files(str(photo))
    verdict = page.get_by_test_id("face-verdict")
    verdict.wait_for()
    text = verdict.inner_text()
    assert text.startswith("Refused: ") and f"[{reason}]" in text and len(text) > 30, text
    assert page.get_by_test_id("create-button").is_disabled()
    shot(page, f"refused-{reason}")
    watched.check()
