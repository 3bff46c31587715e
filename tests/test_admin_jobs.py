"""``GET /api/v1/admin/jobs``: every account's jobs for admin keys (the studio's recent
failures); other keys are refused."""

from __future__ import annotations

import io
import wave

from app_support import App


def silence_wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:  # 3 s of silence: no voice to clone
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 48000)
    return out.getvalue()


def test_admin_sees_every_accounts_failures(app: App) -> None:
    key = app.account()
    asset = app.client.post("/api/v1/assets", files={"file": ("s.wav", silence_wav(),
                                                              "audio/wav")},
                            headers=app.native(key)).json()
    made = app.client.post("/api/v1/voices/clones", json={"sample": {"asset_id": asset["id"]},
                                                          "name": "Quiet"},
                           headers=app.native(key))
    assert made.status_code == 201, made.text
    app.run_jobs()
    owner = app.client.get("/api/v1/account", headers=app.native(key)).json()["id"]
    r = app.client.get("/api/v1/admin/jobs?status=failed", headers=app.native())
    assert r.status_code == 200, r.text
    failed = {j["id"]: j for j in r.json()["items"]}
    job = failed[made.json()["id"]]  # another account's job, seen by the admin
    assert job["account_id"] == owner and job["error"]["code"].startswith("sample_")
    # the admin's own list stays its own
    mine = app.client.get("/api/v1/jobs?status=failed", headers=app.native()).json()
    assert made.json()["id"] not in {j["id"] for j in mine["items"]}
    refused = app.client.get("/api/v1/admin/jobs", headers=app.native(key))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_python_client_lists_every_accounts_jobs(app: App) -> None:
    from facecast.client import Client
    from facecast.client.errors import PermissionDeniedError

    key = app.account()
    made = app.client.post("/api/v1/speech", json={"text": "Listed for the admin."},
                           headers=app.native(key)).json()
    # (not closed: closing a client closes the http_client it was given, the app's)
    admin = Client("http://testserver", app.admin, http_client=app.client)
    listed = admin.accounts.jobs(kind="tts", page_size=100)
    assert made["id"] in {j.id for j in listed.items}
    user = Client("http://testserver", key, http_client=app.client)
    try:
        user.accounts.jobs()
    except PermissionDeniedError as e:
        assert e.code == "forbidden"
    else:
        raise AssertionError("a user key listed every account's jobs")
