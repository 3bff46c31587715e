"""``PATCH /api/v1/avatars/{id}``: your own avatars renamed; the library's are fixed."""

from __future__ import annotations

import base64
from pathlib import Path

from app_support import App


def test_rename_own_avatar_not_the_library(app: App, astronaut_path: Path) -> None:
    key = app.account()
    photo = {"base64": base64.b64encode(astronaut_path.read_bytes()).decode()}
    made = app.client.post("/api/v1/avatars", json={"name": "Before", "photo": photo},
                           headers=app.native(key))
    assert made.status_code == 201, made.text
    avatar_id = made.json()["id"]
    r = app.client.patch(f"/api/v1/avatars/{avatar_id}", json={"name": "After"},
                         headers=app.native(key))
    assert r.status_code == 200 and r.json()["name"] == "After", r.text
    got = app.client.get(f"/api/v1/avatars/{avatar_id}", headers=app.native(key)).json()
    assert got["name"] == "After"
    # another account cannot see it, let alone rename it
    other = app.client.patch(f"/api/v1/avatars/{avatar_id}", json={"name": "Mine"},
                             headers=app.native(app.account()))
    assert other.status_code == 404 and other.json()["error"]["code"] == "avatar_not_found"
    library = app.client.get("/api/v1/avatars?custom=false", headers=app.native(key)).json()
    builtin = library["items"][0]["id"]
    refused = app.client.patch(f"/api/v1/avatars/{builtin}", json={"name": "Mine"},
                               headers=app.native(key))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "avatar_builtin"
    empty = app.client.patch(f"/api/v1/avatars/{avatar_id}", json={"name": ""},
                             headers=app.native(key))
    assert empty.status_code == 422


def test_python_client_renames_and_checks_prompts(app: App, astronaut_path: Path) -> None:
    from facecast.client import Client
    from facecast.client.errors import ConflictError

    key = app.account()
    # (not closed: closing a client closes the http_client it was given, the app's)
    client = Client("http://testserver", key, http_client=app.client)
    avatar = client.avatars.create("Client's", photo=astronaut_path)
    assert client.avatars.rename(avatar, "Renamed by the client").name == \
        "Renamed by the client"
    builtin = client.avatars.list(custom=False).items[0]
    try:
        client.avatars.rename(builtin, "Mine")
    except ConflictError as e:
        assert e.code == "avatar_builtin"
    else:
        raise AssertionError("a library avatar was renamed")
    read = client.expressions.check_prompt("smiling; juggle three balls")
    assert read.unused == ["juggle three balls"] and read.actions
