"""The native API's error envelope and statuses, in-process (the ``app`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest

from app_support import App


@pytest.fixture(scope="module")
def user(app: App) -> str:
    return app.account(name="plain user")


def test_an_admin_operation_is_forbidden_to_others(app: App, user: str) -> None:
    r = app.client.post("/api/v1/accounts", json={"name": "x"}, headers=app.native(user))
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "forbidden"


# (method, path, body (raw bytes or JSON), HTTP status, code)
CASES: list[tuple[str, str, Any, int, str]] = [
    ("GET", "/api/v1/nothing", None, 404, "not_found"),
    ("PUT", "/api/v1/jobs", None, 405, "method_not_allowed"),
    ("POST", "/api/v1/speech", b'{"text": ', 400, "malformed_json"),
    ("POST", "/api/v1/speech", {"text": 12}, 422, "invalid_request"),
    ("GET", "/api/v1/jobs/job_424242", None, 404, "job_not_found"),
    ("GET", "/api/v1/jobs/nope", None, 404, "job_not_found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), CASES)
def test_refusals_use_the_native_envelope(
    app: App, user: str, method: str, path: str, body: Any, status: int, code: str
) -> None:
    headers = app.native(user)
    if isinstance(body, bytes):
        r = app.client.request(
            method, path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        r = app.client.request(method, path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]["code"] == code, r.text
    assert r.json()["error"]["message"]


def test_no_key_is_unauthorized(app: App) -> None:
    r = app.client.get("/api/v1/jobs")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
