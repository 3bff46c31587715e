"""``POST /api/v1/prompt-check``: what a talking photo's prompt would do, and the parts it
would not use, before any job is made (the studio shows them as the prompt is typed)."""

from __future__ import annotations

from app_support import App
from facecast.rules import MAX_PROMPT_CHARS


def test_unused_parts_named_before_any_job(app: App) -> None:
    key = app.account(credits=0)  # costs nothing, makes nothing
    text = "while talking, nodding, then smiling; slow zoom in; fly to the moon"
    r = app.client.post("/api/v1/prompt-check", json={"prompt": text}, headers=app.native(key))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["unused"] == ["fly to the moon"]
    assert all(part in text for part in out["used"] + out["unused"])
    assert any("nod" in a for a in out["actions"]) and any("zoom" in a for a in out["actions"])
    assert app.jobs(key) == 0


def test_refusals(app: App) -> None:
    long = app.client.post("/api/v1/prompt-check", json={"prompt": "x" * (MAX_PROMPT_CHARS + 1)},
                           headers=app.native())
    assert long.status_code == 422 and long.json()["error"]["code"] == "invalid_request"
    assert app.client.post("/api/v1/prompt-check", json={"prompt": "smile"}).status_code == 401
