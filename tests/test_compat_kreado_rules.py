"""KreadoAI's rules and envelopes, one case per test, in-process (the ``app`` fixture: no
server process, no render). The end-to-end tests stay in ``test_compat_kreado.py``, whose
helpers and media these share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app_support import App
from service_support import file_server
from test_compat_kreado import envelope_ok, media

__all__ = ["media"]  # the media fixture, shared with the end-to-end tests

PREFIX = "/apis/open"
SONG = "2b150387595c4efba35db553740cb47a.mp3"


@pytest.fixture(scope="module")
def key(app: App) -> str:
    return app.account(name="kreado user")


@pytest.fixture(scope="module")
def files(media: Path) -> Iterator[str]:
    with file_server(media) as served:
        yield served.url


def _system_lip(f: str, ratio: int = 1, human: int = 1) -> dict[str, Any]:
    return {
        "taskName": "x",
        "videoRatio": ratio,
        "digitalHuman": {"digitalHumanId": human},
        "audio": {"audioUrl": f"{f}/tiny.wav"},
    }


# (name, path, body made from the file server's URL, KreadoAI code)
RULES: list[tuple[str, str, Callable[[str], dict[str, Any]], str]] = [
    (
        "photo too small",
        "/avatar/v3/uploadAvatar",
        lambda f: {"fileUrl": f"{f}/small.jpg"},
        "10002",
    ),
    ("no face", "/avatar/v3/uploadAvatar", lambda f: {"fileUrl": f"{f}/blank.png"}, "10010"),
    ("photo missing", "/avatar/v3/uploadAvatar", lambda f: {"fileUrl": f"{f}/none.jpg"}, "10006"),
    (
        "photo URL not ASCII",
        "/avatar/v3/uploadAvatar",
        lambda f: {"fileUrl": f"{f}/头像.jpg"},
        "10002",
    ),
    ("video ratio", "/video/v3/submitSystemLipTask", lambda f: _system_lip(f, ratio=3), "10002"),
    ("audio duration", "/video/v3/submitSystemLipTask", lambda f: _system_lip(f), "10004"),
    (
        "unknown digital human",
        "/video/v3/submitSystemLipTask",
        lambda f: _system_lip(f, human=999),
        "10020",
    ),
    (
        "audio missing",
        "/video/v3/submitLipTask",
        lambda f: {"taskName": "x", "videoUrl": f"{f}/sy.mp4", "audioUrl": f"{f}/none.mp3"},
        "10003",
    ),
    (
        "video missing",
        "/video/v3/submitLipTask",
        lambda f: {"taskName": "x", "videoUrl": f"{f}/none.mp4", "audioUrl": f"{f}/{SONG}"},
        "10005",
    ),
    (
        "video too short",
        "/video/v3/submitLipTask",
        lambda f: {"taskName": "x", "videoUrl": f"{f}/short.mp4", "audioUrl": f"{f}/{SONG}"},
        "10002",
    ),
    (
        "task name",
        "/subtitle_removal/v3/submitTask",
        lambda f: {"taskName": "x" * 101, "srcFileUrl": f"{f}/sy.mp4"},
        "10002",
    ),
    ("page index", "/video/v3/list", lambda f: {"pageIndex": 0, "pageSize": 1}, "10002"),
    ("job id", "/video/v3/getLipVideoResult", lambda f: {"jobId": "abc"}, "10002"),
]


@pytest.mark.parametrize(
    ("path", "make", "code"), [c[1:] for c in RULES], ids=[c[0] for c in RULES]
)
def test_kreados_rules_refuse_and_create_nothing(
    app: App, key: str, files: str, path: str, make: Callable[[str], dict[str, Any]], code: str
) -> None:
    r = app.client.post(f"{PREFIX}{path}", json=make(files), headers={"apiToken": key})
    assert r.status_code == 200, (path, r.text)  # KreadoAI: the outcome is the code
    envelope_ok(r.json(), code)
    assert app.jobs(key) == 0


def test_no_token_is_kreados_405_with_http_200(app: App) -> None:
    r = app.client.post(f"{PREFIX}/avatar/v3/list", json={})
    assert r.status_code == 200
    envelope_ok(r.json(), "405")


def test_unknown_paths_keep_http_404(app: App, key: str) -> None:
    r = app.client.post(f"{PREFIX}/video/v3/nothing", json={}, headers={"apiToken": key})
    assert r.status_code == 404
    envelope_ok(r.json(), "400")
