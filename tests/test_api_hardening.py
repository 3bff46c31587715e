"""Hardening of every API's doors against a real ``facecast serve`` on loopback: control
characters in any text field, bodies that cannot be parsed, the vendors' own HTTP statuses
for their envelopes, and KreadoAI's membership date. Each case names the door (native,
KreadoAI, Akool, Kling) and what that vendor's document says the answer is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import jwt
import pytest

from facecast.errors import InputError
from facecast.speech.text import check_characters
from service_support import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path_factory.mktemp("hardening"), maintenance_interval_s=0.2)
    srv.start()
    yield srv
    srv.stop()


@dataclass
class Doors:
    """One account with a way in through each API."""

    url: str
    key: str
    kling_token: str

    def headers(self, api: str) -> dict[str, str]:
        return {
            "native": {"Authorization": f"Bearer {self.key}"},
            "kreado": {"apiToken": self.key},
            "akool": {"x-api-key": self.key},
            "kling": {"Authorization": f"Bearer {self.kling_token}"},
        }[api]


@pytest.fixture(scope="module")
def doors(server: ServerProcess) -> Doors:
    with server.client() as admin:
        r = admin.post("/api/v1/accounts", json={"name": "doors", "credits": 1000})
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
    with server.client(key) as native:
        r = native.post("/api/v1/vendor-credentials", json={"vendor": "kling"})
        assert r.status_code == 201, r.text
        pair = r.json()
    now = int(time.time())
    token = jwt.encode(
        {"iss": pair["client_id"], "exp": now + 3600, "nbf": now - 5},
        pair["client_secret"],
        algorithm="HS256",
    )
    return Doors(server.url, key, token)


# ---- what each vendor's envelope says about a bad parameter --------------------------------


def assert_bad_parameter(api: str, r: httpx.Response, reason: str) -> None:
    """The API's own answer to a refused parameter, naming facecast's ``reason``."""
    body = r.json()
    if api == "native":
        assert r.status_code == 400 and body["error"]["code"] == reason, r.text
    elif api == "kreado":  # KreadoAI: business errors come with HTTP 200
        assert r.status_code == 200 and body["code"] == "10002", r.text
        assert f"[{reason}]" in body["message"], r.text
    elif api == "akool":  # Akool: HTTP 200, the error in code (1003 parameter error)
        assert r.status_code == 200 and body["code"] == 1003, r.text
        assert f"[{reason}]" in body["msg"], r.text
    else:  # Kling: HTTP 400 with 1200 (bad request) or 1201 (a rule broken)
        assert r.status_code == 400 and body["code"] in (1200, 1201), r.text
        assert f"[{reason}]" in body["message"], r.text


# ---- control characters --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello\x00world.",
        "a\x01b",
        "bell\x07",
        "esc\x1b[31m",
        "del\x7f",
        "next line\x85",
        "c1\x9f",
        "lone \ud800 surrogate",
        "form\x0cfeed",
        "vertical\x0btab",
    ],
)
def test_control_characters_are_refused(text: str) -> None:
    with pytest.raises(InputError) as caught:
        check_characters(text, "text")
    assert caught.value.code == "invalid_characters"
    assert "text" in caught.value.message and "U+" in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "Hello world.",
        "tab\there",
        "two\nlines\r\n",
        "Grüße, 日本語",
        "emoji 🙂",
        "nbsp\u00a0here",
        "",
    ],
)
def test_ordinary_text_passes(text: str) -> None:
    assert check_characters(text, "text") == text


NUL = "Hello\u0000world."
# (door, path, body): a control character in each kind of text field of each API
CONTROL_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("native", "/api/v1/speech", {"text": NUL}),
    ("native", "/api/v1/speech", {"text": "Hi\u0085there."}),
    ("native", "/api/v1/speech", {"text": "Hello.", "external_id": "id\u0000"}),
    (
        "native",
        "/api/v1/talking-photos",
        {"photo": {"url": "http://127.0.0.1:9/a.png"}, "text": "Hi.", "prompt": "smile\u001b"},
    ),
    (
        "native",
        "/api/v1/talking-photos",
        {
            "photo": {"url": "http://127.0.0.1:9/a.png"},
            "audio": {"url": "http://127.0.0.1:9/a.mp3"},
            "transcript": "hi\u0000",
        },
    ),
    (
        "native",
        "/api/v1/avatars",
        {"name": "Eve\u0000", "photo": {"url": "http://127.0.0.1:9/a.png"}},
    ),
    (
        "native",
        "/api/v1/voices/clones",
        {"name": "me\u0007", "sample": {"url": "http://127.0.0.1:9/a.wav"}},
    ),
    ("native", "/api/v1/keys", {"name": "key\u0000"}),
    (
        "kreado",
        "/apis/open/voice/v3/textToSpeech",
        {"languageId": "en", "content": NUL, "voiceId": "piper:x"},
    ),
    (
        "kreado",
        "/apis/open/video/v3/submitSystemLipTask",
        {
            "taskName": "t\u0000",
            "digitalHuman": {"digitalHumanId": 1, "audioUrl": "http://127.0.0.1:9/a.mp3"},
        },
    ),
    ("akool", "/api/open/v3/audio/create", {"input_text": NUL, "voice_id": "piper:x"}),
    (
        "akool",
        "/api/open/v3/talkingavatar/create",
        {
            "width": 3840,
            "height": 2160,
            "avatar_from": 2,
            "elements": [
                {"type": "avatar", "avatar_id": "eileen_collins"},
                {"type": "audio", "input_text": NUL, "voice_id": "piper:x"},
            ],
        },
    ),
    (
        "kling",
        "/v1/videos/avatar/image2video",
        {
            "image": "http://127.0.0.1:9/a.png",
            "sound_file": "http://127.0.0.1:9/a.mp3",
            "prompt": "nod\u0000",
        },
    ),
    (
        "kling",
        "/v1/videos/avatar/image2video",
        {
            "image": "http://127.0.0.1:9/a.png",
            "sound_file": "http://127.0.0.1:9/a.mp3",
            "external_task_id": "x\u009b",
        },
    ),
]


@pytest.mark.parametrize(
    ("api", "path", "body"),
    CONTROL_CASES,
    ids=[f"{c[0]}{c[1]}-{i}" for i, c in enumerate(CONTROL_CASES)],
)
def test_control_characters_refused_at_every_door(
    doors: Doors, api: str, path: str, body: dict[str, Any]
) -> None:
    r = httpx.post(f"{doors.url}{path}", json=body, headers=doors.headers(api), timeout=60)
    assert_bad_parameter(api, r, "invalid_characters")


# (door, method, path with query): control characters in query and path values
URL_CASES: list[tuple[str, str, str]] = [
    ("native", "GET", "/api/v1/voices?query=a%00b"),
    ("native", "GET", "/api/v1/avatars?tag=x%1B"),
    ("native", "GET", "/api/v1/jobs/external/ext%00id"),
    ("akool", "GET", "/api/open/v3/content/video/infobymodelid?video_model_id=%00"),
    ("akool", "GET", "/api/open/v3/avatar/detail?id=a%07"),
    ("kling", "GET", "/v1/videos/avatar/image2video/abc%00"),
    ("kreado", "GET", "/apis/open/user/v3/getInfo?x=%00"),
]


@pytest.mark.parametrize(("api", "method", "path"), URL_CASES)
def test_control_characters_in_urls(doors: Doors, api: str, method: str, path: str) -> None:
    r = httpx.request(method, f"{doors.url}{path}", headers=doors.headers(api), timeout=60)
    assert_bad_parameter(api, r, "invalid_characters")


def test_vendor_paths_with_line_breaks_stay_in_the_vendors_envelope(doors: Doors) -> None:
    # Starlette's mount pattern stopped at a line break: the native 404 answered
    r = httpx.get(
        f"{doors.url}/v1/videos/avatar/image2video/a%0Ab%0D", headers=doors.headers("kling")
    )
    assert (r.status_code, r.json()["code"]) == (404, 1203), r.text
    r = httpx.get(f"{doors.url}/api/open/v3/no%0Athing", headers=doors.headers("akool"))
    assert (r.status_code, r.json()["code"]) == (404, 1008), r.text


def test_refused_text_made_no_job_and_tabs_are_fine(doors: Doors) -> None:
    with httpx.Client(base_url=doors.url, headers=doors.headers("native"), timeout=60) as c:
        r = c.post("/api/v1/speech", json={"text": NUL})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_characters"
        assert "U+0000" in r.json()["error"]["message"], r.text
        assert c.get("/api/v1/jobs", params={"kind": "tts"}).json()["total"] == 0
        r = c.post("/api/v1/speech", json={"text": "Tabs\tand\nlines are fine."})
        assert r.status_code == 201, r.text
        assert c.post(f"/api/v1/jobs/{r.json()['id']}/cancel").status_code in (200, 409)


# ---- bodies that cannot be parsed ----------------------------------------------------------

DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE_INT = b'{"text": "hi", "rate": ' + b"1" * 5000 + b"}"
NOT_UTF8 = b'{"text": "caf\xe9 \xff"}'
BODIES = {"not utf-8": NOT_UTF8, "nested 10k deep": DEEP, "integer of 5000 digits": HUGE_INT}
# a JSON-taking endpoint of each API
JSON_PATHS = {
    "native": "/api/v1/speech",
    "kreado": "/apis/open/voice/v3/textToSpeech",
    "akool": "/api/open/v3/audio/create",
    "kling": "/v1/videos/avatar/image2video",
}


@pytest.mark.parametrize("api", list(JSON_PATHS))
@pytest.mark.parametrize("name", list(BODIES))
def test_unparsable_json_bodies(doors: Doors, api: str, name: str) -> None:
    r = httpx.post(
        f"{doors.url}{JSON_PATHS[api]}",
        content=BODIES[name],
        headers={**doors.headers(api), "Content-Type": "application/json"},
        timeout=60,
    )
    assert_bad_parameter(api, r, "malformed_json")
    if api == "native":
        message = r.json()["error"]["message"]
        assert {
            "not utf-8": "UTF-8",
            "nested 10k deep": "nested",
            "integer of 5000 digits": "digits",
        }[name] in message, message


@pytest.mark.parametrize(
    "body",
    [
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nabc',
        b"no boundary at all",
        b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n",
    ],
)
def test_broken_multipart_upload(doors: Doors, body: bytes) -> None:
    r = httpx.post(
        f"{doors.url}/api/v1/assets",
        content=body,
        timeout=60,
        headers={**doors.headers("native"), "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["code"] == "invalid_request", r.text
    assert r.json()["error"]["code"] != "http_error"


def test_server_keeps_answering_after_bad_bodies(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


# ---- vendors' HTTP statuses ----------------------------------------------------------------

# Akool answers its business errors with HTTP 200 and the error in code
AKOOL_ERRORS: list[tuple[str, str, dict[str, str] | None, dict[str, Any] | None, int]] = [
    ("GET", "/avatar/list", {}, None, 1102),  # no authorization
    ("GET", "/avatar/list", {"x-api-key": "fc_nobody"}, None, 1101),
    ("POST", "/audio/create", None, {"input_text": ""}, 1003),
    ("GET", "/content/video/infobymodelid", None, {"video_model_id": "zz"}, 1008),
    (
        "GET",
        "/content/video/infobymodelid",
        None,
        {"video_model_id": "00000000000000000000ffff"},
        1008,
    ),
    ("GET", "/avatar/detail", None, {"id": "nobody"}, 1008),
]


@pytest.mark.parametrize(("method", "path", "headers", "payload", "code"), AKOOL_ERRORS)
def test_akool_errors_come_with_http_200(
    doors: Doors,
    method: str,
    path: str,
    headers: dict[str, str] | None,
    payload: dict[str, Any] | None,
    code: int,
) -> None:
    sent = doors.headers("akool") if headers is None else headers
    kwargs: dict[str, Any] = {"params": payload} if method == "GET" else {"json": payload}
    r = httpx.request(method, f"{doors.url}/api/open/v3{path}", headers=sent, timeout=60, **kwargs)
    assert r.status_code == 200, r.text
    assert r.json()["code"] == code, r.text


# KreadoAI's document defines envelope codes only: HTTP 200 with the code, as for Akool
KREADO_ERRORS: list[tuple[str, dict[str, str] | None, bytes, str]] = [
    ("/avatar/v3/list", {}, b"{}", "405"),  # no apiToken
    ("/avatar/v3/list", {"apiToken": "fc_nobody"}, b"{}", "405"),
    ("/video/v3/detail", None, b'{"taskId": 999999}', "10009"),
    ("/voice/v3/textToSpeech", None, b'{"content": ', "10002"),
]


@pytest.mark.parametrize(("path", "headers", "body", "code"), KREADO_ERRORS)
def test_kreado_errors_come_with_http_200(
    doors: Doors, path: str, headers: dict[str, str] | None, body: bytes, code: str
) -> None:
    sent = doors.headers("kreado") if headers is None else headers
    r = httpx.post(
        f"{doors.url}/apis/open{path}",
        content=body,
        timeout=60,
        headers={**sent, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["code"] == code, r.text


def test_unknown_vendor_paths_keep_http_404(doors: Doors) -> None:
    for api, path in (("kreado", "/apis/open/nothing/here"), ("akool", "/api/open/v3/nothing")):
        r = httpx.post(f"{doors.url}{path}", json={}, headers=doors.headers(api))
        assert r.status_code == 404, r.text


def test_kreado_get_info_expiry_is_a_date(doors: Doors) -> None:
    r = httpx.get(f"{doors.url}/apis/open/user/v3/getInfo", headers=doors.headers("kreado"))
    assert r.status_code == 200 and r.json()["code"] == "200", r.text
    value = r.json()["data"]["vipExpireTime"]
    # the document's example: "2026-09-04 15:11:51"
    assert datetime.strptime(value, "%Y-%m-%d %H:%M:%S") > datetime(2100, 1, 1), value
