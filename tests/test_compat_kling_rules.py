"""Kling's rules, authentication and envelopes, one case per test, in-process (the
``app`` fixture: no server process, no render). The end-to-end tests with real renders
and callbacks stay in ``test_compat_kling.py``, whose helpers and media these share."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from app_support import App
from service_support import file_server
from test_compat_kling import DOC_ERROR, DOC_LIST, b64, conformance_problems, media, sign

__all__ = ["media"]  # the media fixture, shared with the end-to-end tests

CREATE = "/v1/videos/avatar/image2video"


@dataclass
class Kling:
    """An account on the in-process app with a Kling access key / secret key pair."""

    app: App
    key: str
    access_key: str
    secret_key: str
    credential_id: str

    def token(self, **claims: Any) -> str:
        return sign(self.access_key, self.secret_key, **claims)

    def headers(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**claims)}"}

    def talking_photos(self) -> int:
        r = self.app.client.get(
            "/api/v1/jobs", params={"kind": "talking_photo"}, headers=self.app.native(self.key)
        )
        assert r.status_code == 200, r.text
        return int(r.json()["total"])


@pytest.fixture(scope="module")
def make_user(app: App) -> Callable[..., Kling]:
    def make(credits: int = 1000) -> Kling:
        key = app.account(credits=credits, name="kling user")
        pair = app.vendor_pair(key, "kling")
        return Kling(app, key, pair["client_id"], pair["client_secret"], pair["id"])

    return make


@pytest.fixture(scope="module")
def user(make_user: Callable[..., Kling]) -> Kling:
    return make_user()


@pytest.fixture(scope="module")
def files(media: Path) -> Iterator[str]:
    with file_server(media) as served:
        yield served.url


@pytest.fixture(scope="module")
def speech_id(app: App, user: Kling) -> str:
    """A finished TTS job ("Hi.", under Kling's 2 s minimum), run in-process."""
    r = app.client.post(
        "/api/v1/speech", json={"text": "Hi.", "format": "wav"}, headers=app.native(user.key)
    )
    assert r.status_code == 201, r.text
    app.run_jobs()
    job = app.client.get(f"/api/v1/jobs/{r.json()['id']}", headers=app.native(user.key))
    assert job.json()["status"] == "succeeded", job.text
    return str(job.json()["id"])


# ---- authentication --------------------------------------------------------------------


def _refusals(user: Kling) -> dict[str, tuple[str | None, int]]:
    now = int(time.time())
    return {
        "no header": (None, 1001),
        "empty": ("", 1001),
        "not bearer": (f"Basic {user.token()}", 1002),
        "not a jwt": ("Bearer not.a.jwt", 1002),
        "wrong secret": (f"Bearer {sign(user.access_key, 'not-the-secret-key' * 3)}", 1000),
        "unknown access key": (f"Bearer {sign('kl_nobody', user.secret_key)}", 1000),
        "expired": (f"Bearer {user.token(exp=now - 60, nbf=now - 120)}", 1004),
        "not yet valid": (f"Bearer {user.token(nbf=now + 120)}", 1003),
        "no exp": (f"Bearer {user.token(exp=None)}", 1002),
        "no iss": (f"Bearer {sign(None, user.secret_key)}", 1002),  # type: ignore[arg-type]
        "alg none": (
            "Bearer "
            + jwt.encode({"iss": user.access_key, "exp": now + 60}, None, algorithm="none"),
            1002,
        ),
        "HS512": (
            "Bearer "
            + jwt.encode(
                {"iss": user.access_key, "exp": now + 60}, user.secret_key * 2, algorithm="HS512"
            ),
            1002,
        ),
    }


REFUSALS = [
    "no header",
    "empty",
    "not bearer",
    "not a jwt",
    "wrong secret",
    "unknown access key",
    "expired",
    "not yet valid",
    "no exp",
    "no iss",
    "alg none",
    "HS512",
]


def _ask(client: TestClient, authorization: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    r = client.get(CREATE, headers=headers)
    assert conformance_problems(r.json(), DOC_ERROR if r.status_code != 200 else DOC_LIST) == [], (
        r.text
    )
    return r.status_code, r.json()


def test_a_signed_token_is_accepted(app: App, user: Kling) -> None:
    status, body = _ask(app.client, f"Bearer {user.token()}")
    assert status == 200 and body["code"] == 0 and body["message"] == "SUCCEED"


@pytest.mark.parametrize("name", REFUSALS)
def test_bad_tokens_are_refused(app: App, user: Kling, name: str) -> None:
    header, code = _refusals(user)[name]
    status, body = _ask(app.client, header)
    assert (status, body["code"]) == (401, code), body


def test_a_revoked_pair_stops_working_at_once(app: App, make_user: Callable[..., Kling]) -> None:
    revoked = make_user()
    assert _ask(app.client, f"Bearer {revoked.token()}")[0] == 200
    r = app.client.delete(
        f"/api/v1/vendor-credentials/{revoked.credential_id}", headers=app.native(revoked.key)
    )
    assert r.status_code == 200, r.text
    status, body = _ask(app.client, f"Bearer {revoked.token()}")
    assert (status, body["code"]) == (401, 1000)


# ---- Kling's rules: every refusal is Kling's and creates nothing --------------------------

# (name, body (a dict, or raw text), HTTP status, Kling code, text in the message); in a
# body, "FACE", "SOUND" and "FILES/" are replaced by the served media, "SPEECH" by the TTS
# job's id, "B64:name" by a media file in base64
RULES: list[tuple[str, dict[str, Any] | str, int, int, str]] = [
    ("malformed JSON", '{"image": ', 400, 1200, "not valid JSON"),
    ("no image", {"sound_file": "SOUND"}, 400, 1200, "image"),
    ("image not a string", {"image": 12, "sound_file": "SOUND"}, 400, 1200, "image"),
    ("empty image", {"image": "", "sound_file": "SOUND"}, 400, 1201, "[missing_image]"),
    ("no sound", {"image": "FACE"}, 400, 1201, "[bad_audio_choice]"),
    (
        "both sounds",
        {"image": "FACE", "sound_file": "SOUND", "audio_id": "SPEECH"},
        400,
        1201,
        "[bad_audio_choice]",
    ),
    ("mode", {"image": "FACE", "sound_file": "SOUND", "mode": "turbo"}, 400, 1201, "[bad_mode]"),
    (
        "prompt",
        {"image": "FACE", "sound_file": "SOUND", "prompt": "x" * 2501},
        400,
        1201,
        "[prompt_too_long]",
    ),
    (
        "external id",
        {"image": "FACE", "sound_file": "SOUND", "external_task_id": "x" * 201},
        400,
        1201,
        "[external_task_id_too_long]",
    ),
    (
        "private callback",
        {"image": "FACE", "sound_file": "SOUND", "callback_url": "http://10.1.2.3/hook"},
        400,
        1201,
        "[url_not_allowed]",
    ),
    (
        "data: prefix",
        {"image": "data:image/png;base64,B64:small.png", "sound_file": "SOUND"},
        400,
        1201,
        "[bad_base64]",
    ),
    ("bad base64", {"image": "iVBOR$w0KG", "sound_file": "SOUND"}, 400, 1201, "[bad_base64]"),
    (
        "image too small",
        {"image": "B64:small.png", "sound_file": "SOUND"},
        400,
        1201,
        "[image_too_small]",
    ),
    ("aspect", {"image": "FILES/wide.png", "sound_file": "SOUND"}, 400, 1201, "[bad_aspect_ratio]"),
    (
        "image over 10 MB",
        {"image": "FILES/huge.png", "sound_file": "SOUND"},
        400,
        1201,
        "[file_too_large]",
    ),
    (
        "webp",
        {"image": "B64:face.webp", "sound_file": "SOUND"},
        400,
        1201,
        "[unsupported_image_format]",
    ),
    (
        "not an image",
        {"image": "B64:short.wav", "sound_file": "SOUND"},
        400,
        1201,
        "[unsupported_media]",
    ),
    ("no face", {"image": "FILES/blank.png", "sound_file": "SOUND"}, 400, 1201, "[no_face]"),
    (
        "sound too short",
        {"image": "FACE", "sound_file": "FILES/short.wav"},
        400,
        1201,
        "[bad_audio_duration]",
    ),
    (
        "sound too long",
        {"image": "FACE", "sound_file": "FILES/long.wav"},
        400,
        1201,
        "[bad_audio_duration]",
    ),
    (
        "sound over 5 MB",
        {"image": "FACE", "sound_file": "FILES/big.wav"},
        400,
        1201,
        "[file_too_large]",
    ),
    (
        "flac",
        {"image": "FACE", "sound_file": "B64:speech.flac"},
        400,
        1201,
        "[unsupported_audio_format]",
    ),
    (
        "sound data: prefix",
        {"image": "FACE", "sound_file": "data:audio/wav;base64,B64:short.wav"},
        400,
        1201,
        "[bad_base64]",
    ),
    ("audio_id not an id", {"image": "FACE", "audio_id": "tts-abc"}, 400, 1201, "[bad_audio_id]"),
    (
        "audio_id not ASCII digits",
        {"image": "FACE", "audio_id": "\u00b2"},
        400,
        1201,
        "[bad_audio_id]",
    ),
    (
        "audio_id unknown",
        {"image": "FACE", "audio_id": "job_99999"},
        400,
        1201,
        "[audio_not_found]",
    ),
    # the TTS audio ("Hi.") is found and read, then refused for Kling's 2 s minimum
    (
        "audio_id too short",
        {"image": "FACE", "audio_id": "SPEECH"},
        400,
        1201,
        "[bad_audio_duration]",
    ),
]


def _fill(value: Any, files: str, media: Path, speech: Callable[[], str]) -> Any:
    if not isinstance(value, str):
        return value
    if value == "SPEECH":
        return speech()
    value = value.replace("FACE", f"{files}/pink_boy.png")
    value = value.replace("SOUND", f"{files}/go-to-world.mp3")
    value = value.replace("FILES/", f"{files}/")
    if "B64:" in value:
        head, name = value.split("B64:", 1)
        value = head + b64(media / name)
    return value


@pytest.mark.parametrize(
    ("body", "status", "code", "text"), [c[1:] for c in RULES], ids=[c[0] for c in RULES]
)
def test_klings_rules_refuse_and_create_nothing(
    request: pytest.FixtureRequest,
    app: App,
    user: Kling,
    files: str,
    media: Path,
    body: dict[str, Any] | str,
    status: int,
    code: int,
    text: str,
) -> None:
    def speech() -> str:
        return str(request.getfixturevalue("speech_id"))

    if isinstance(body, str):
        r = app.client.post(
            CREATE, content=body, headers={"Content-Type": "application/json", **user.headers()}
        )
    else:
        filled = {k: _fill(v, files, media, speech) for k, v in body.items()}
        r = app.client.post(CREATE, json=filled, headers=user.headers())
    assert conformance_problems(r.json(), DOC_ERROR) == [], r.text
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert text in r.json()["message"], r.text
    assert user.talking_photos() == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"pageSize": 0}, 1201),
        ({"pageSize": 501}, 1201),
        ({"pageNum": 0}, 1201),
        ({"pageNum": "one"}, 1200),
    ],
)
def test_list_pages_out_of_range(app: App, user: Kling, params: dict[str, Any], code: int) -> None:
    r = app.client.get(CREATE, params=params, headers=user.headers())
    assert (r.status_code, r.json()["code"]) == (400, code), r.text


@pytest.mark.parametrize("unknown", ["424242", "\u00b2", "no-such-external-id"])
def test_unknown_tasks_are_klings_404(app: App, user: Kling, unknown: str) -> None:
    r = app.client.get(f"{CREATE}/{unknown}", headers=user.headers())
    assert (r.status_code, r.json()["code"]) == (404, 1203), r.text


def test_no_credits_is_klings_1102_and_creates_nothing(
    app: App, make_user: Callable[..., Kling], files: str
) -> None:
    broke = make_user(credits=0)
    r = app.client.post(
        CREATE,
        json={"image": f"{files}/pink_boy.png", "sound_file": f"{files}/go-to-world.mp3"},
        headers=broke.headers(),
    )
    assert (r.status_code, r.json()["code"]) == (429, 1102), r.text
    assert "[insufficient_credits]" in r.json()["message"]
    assert broke.talking_photos() == 0


# ---- paths and methods Kling does not have ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/nothing/here", 404),
        ("POST", "/v1/videos/text2video", 404),
        ("DELETE", "/v1/videos/avatar/image2video", 405),
        ("POST", "/v1/videos/avatar/image2video/12", 405),
    ],
)
def test_unknown_endpoints_and_methods_answer_in_klings_envelope(
    app: App, method: str, path: str, status: int
) -> None:
    r = app.client.request(method, path)
    assert r.status_code == status, (method, path, r.text)
    assert conformance_problems(r.json(), DOC_ERROR) == [] and r.json()["code"] == 1202
    assert "error" not in r.json()


def test_klings_own_openapi_document(app: App) -> None:
    r = app.client.delete("/v1/videos/avatar/image2video")
    assert r.headers["Allow"] == "GET, POST"
    own = app.client.get("/v1/openapi.json").json()
    assert set(own["paths"]) == {
        "/videos/avatar/image2video",
        "/videos/avatar/image2video/{task_id}",
    }
    assert "KlingJWT" in own["components"]["securitySchemes"]
    assert "HTTPValidationError" not in json.dumps(own)  # refusals are 400 + 1200, not 422
    assert "/v1/openapi.json" in app.client.get("/v1/docs").text
    native = app.client.get("/openapi.json").json()
    assert not any("image2video" in p for p in native["paths"])
