"""Akool's rules and envelopes, one case per test, in-process (the ``app`` fixture: no
server process, no render). The end-to-end tests stay in ``test_compat_akool.py``, whose
helpers and media these share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app_support import App
from service_support import file_server
from test_compat_akool import DOC_ERROR, PREFIX, media, problems

__all__ = ["media"]  # the media fixture, shared with the end-to-end tests

AUDIO = "1710752141387-e7867802-0a92-41d4-b899-9bfb23144929-4946.mp3"
AVATAR = {
    "type": "avatar",
    "avatar_id": "eileen_collins",
    "scale_x": 1,
    "scale_y": 1,
    "width": 960,
    "height": 960,
    "offset_x": 0,
    "offset_y": 0,
}
SPEAK = {"type": "audio", "input_text": "Hi there.", "voice_id": "piper:x"}


@pytest.fixture(scope="module")
def key(app: App) -> str:
    return app.account(name="akool user")


@pytest.fixture(scope="module")
def files(media: Path) -> Iterator[str]:
    with file_server(media) as served:
        yield served.url


def _good(f: str, **changes: Any) -> dict[str, Any]:
    audio = {"type": "audio", "url": f"{f}/{AUDIO}"}
    return {"width": 3840, "height": 2160, "avatar_from": 2, "elements": [AVATAR, audio], **changes}


def _audio(f: str) -> dict[str, Any]:
    return {"type": "audio", "url": f"{f}/{AUDIO}"}


# (name, path, body made from the file server's URL, Akool code)
RULES: list[tuple[str, str, Callable[[str], dict[str, Any] | str], int]] = [
    ("not JSON", "/talkingavatar/create", lambda f: '{"width": ', 1003),
    ("canvas", "/talkingavatar/create", lambda f: _good(f, width=1920), 1003),
    ("avatar_from", "/talkingavatar/create", lambda f: _good(f, avatar_from=1), 1003),
    ("no avatar", "/talkingavatar/create", lambda f: _good(f, elements=[_audio(f)]), 1003),
    ("no audio", "/talkingavatar/create", lambda f: _good(f, elements=[AVATAR]), 1003),
    (
        "text without voice",
        "/talkingavatar/create",
        lambda f: _good(f, elements=[AVATAR, {**SPEAK, "voice_id": ""}]),
        1003,
    ),
    (
        "text too long",
        "/talkingavatar/create",
        lambda f: _good(f, elements=[AVATAR, {**SPEAK, "input_text": "a" * 5001}]),
        1003,
    ),
    (
        "element type",
        "/talkingavatar/create",
        lambda f: _good(f, elements=[AVATAR, {"type": "text"}, _audio(f)]),
        1003,
    ),
    (
        "image format",
        "/talkingavatar/create",
        lambda f: _good(
            f,
            elements=[
                {"type": "image", "url": f"{f}/x.gif", "offset_x": 0, "offset_y": 0},
                AVATAR,
                _audio(f),
            ],
        ),
        1003,
    ),
    (
        "unknown avatar",
        "/talkingavatar/create",
        lambda f: _good(f, elements=[{**AVATAR, "avatar_id": "nobody"}, _audio(f)]),
        1008,
    ),
    (
        "url avatar from 2",
        "/talkingavatar/create",
        lambda f: _good(
            f, elements=[{**AVATAR, "avatar_id": None, "url": f"{f}/a.png"}, _audio(f)]
        ),
        1003,
    ),
    (
        "missing offset",
        "/talkingavatar/create",
        lambda f: _good(f, elements=[{**AVATAR, "offset_x": None}, _audio(f)]),
        1003,
    ),
    (
        "private webhook",
        "/talkingavatar/create",
        lambda f: _good(f, webhookUrl="http://10.1.2.3/hook"),
        1003,
    ),
    (
        "photo empty",
        "/content/video/createbytalkingphoto",
        lambda f: {"audio_url": f"{f}/{AUDIO}"},
        1003,
    ),
    (
        "rate",
        "/audio/create",
        lambda f: {"input_text": "Hi.", "voice_id": "piper:x", "rate": "150%"},
        1003,
    ),
    ("no voice", "/audio/create", lambda f: {"input_text": "Hi."}, 1003),
    ("no text", "/audio/create", lambda f: {"input_text": "", "voice_id": "piper:x"}, 1003),
    ("clone without voice", "/audio/clone", lambda f: {"input_text": "Hi.", "rate": "50%"}, 1003),
    ("avatar upload no url", "/avatar/create", lambda f: {"avatar_id": "abc", "type": 1}, 1003),
    (
        "avatar upload bad id",
        "/avatar/create",
        lambda f: {"url": f"{f}/a.mp4", "avatar_id": "a_b-c", "type": 1},
        1003,
    ),
    (
        "avatar upload image",
        "/avatar/create",
        lambda f: {"url": f"{f}/a.png", "avatar_id": "abc", "type": 1},
        1003,
    ),
    (
        "avatar upload missing",
        "/avatar/create",
        lambda f: {"url": f"{f}/a.mp4", "avatar_id": "abc", "name": "n", "type": "1"},
        1003,
    ),
]


@pytest.mark.parametrize(
    ("path", "make", "code"), [c[1:] for c in RULES], ids=[c[0] for c in RULES]
)
def test_akools_rules_refuse_and_create_nothing(
    app: App,
    key: str,
    files: str,
    path: str,
    make: Callable[[str], dict[str, Any] | str],
    code: int,
) -> None:
    body = make(files)
    headers = {"x-api-key": key}
    if isinstance(body, str):
        r = app.client.post(
            f"{PREFIX}{path}", content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        r = app.client.post(f"{PREFIX}{path}", json=body, headers=headers)
    assert r.status_code == 200, r.text  # Akool: the outcome is the envelope's code
    assert problems(r.json(), DOC_ERROR) == [], r.text
    assert r.json()["code"] == code, r.text
    assert app.jobs(key) == 0


@pytest.mark.parametrize(
    ("params", "code"),
    [({"from": 4}, 1003), ({"size": 0}, 1003), ({"page": "x"}, 1003), ({"type": 2}, 1000)],
)
def test_avatar_list_parameters(app: App, key: str, params: dict[str, Any], code: int) -> None:
    r = app.client.get(f"{PREFIX}/avatar/list", params=params, headers={"x-api-key": key})
    assert r.json()["code"] == code, (params, r.text)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nothing/here", 404),
        ("POST", "/avatar/list", 405),
        ("GET", "/talkingavatar/create", 405),
    ],
)
def test_unknown_paths_and_methods_answer_in_akools_envelope(
    app: App, method: str, path: str, status: int
) -> None:
    r = app.client.request(method, f"{PREFIX}{path}", headers={"x-api-key": "x"})
    assert r.status_code == status and problems(r.json(), DOC_ERROR) == [], r.text
    assert r.json()["code"] in (1003, 1008)
