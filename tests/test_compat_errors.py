"""How each vendor door names facecast's errors (the tables in ``api/compat/*/mapper.py``
and the shared kit), and the envelopes of requests that never reach a route: in-process,
on the ``app`` fixture, with no server process."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app_support import App
from facecast.api.compat import akool, kit, kling, kreado
from facecast.api.compat.akool import mapper as akool_mapper
from facecast.api.compat.kling import mapper as kling_mapper
from facecast.api.compat.kreado import mapper as kreado_mapper
from facecast.api.errors import status_for
from facecast.errors import (
    ConflictError,
    FacecastError,
    FaceCheckError,
    ForbiddenError,
    InputError,
    LimitError,
    NotFoundError,
)
from facecast.service.accounts import AuthError
from facecast.service.storage import StorageFull

RATE = LimitError("slow down", code="rate_limited", retry_after=2.2)

# (error, native HTTP status, Kling (status, code), Akool (status, code), KreadoAI code)
ERRORS: list[tuple[FacecastError, int, tuple[int, int], tuple[int, int], str]] = [
    (AuthError("no key"), 401, (401, 1000), (401, 1101), "405"),
    (AuthError("bad key", code="invalid_api_key"), 401, (401, 1000), (401, 1101), "405"),
    (NotFoundError("no job", code="job_not_found"), 404, (404, 1203), (404, 1008), "10009"),
    (NotFoundError("no voice", code="voice_not_found"), 404, (404, 1203), (404, 1008), "10009"),
    (ConflictError("running", code="job_active"), 409, (400, 1201), (400, 1003), "10001"),
    (FaceCheckError("no face", code="no_face"), 422, (400, 1201), (400, 1003), "10010"),
    (FaceCheckError("two", code="multiple_faces"), 422, (400, 1201), (400, 1003), "10010"),
    (InputError("bad size", code="bad_size"), 400, (400, 1201), (400, 1003), "10002"),
    (InputError("too big", code="file_too_large"), 413, (400, 1201), (400, 1003), "10007"),
    (InputError("timeout", code="download_timeout"), 400, (400, 1201), (400, 1003), "10006"),
    (InputError("not media", code="unsupported_media"), 400, (400, 1201), (400, 1003), "10008"),
    (RATE, 429, (429, 1302), (429, 1006), "429"),
    (LimitError("queue", code="too_many_queued_jobs"), 429, (429, 1303), (429, 1006), "10019"),
    (LimitError("credits", code="insufficient_credits"), 402, (429, 1102), (402, 1006), "10017"),
    (LimitError("busy", code="too_many_downloads"), 429, (429, 1302), (429, 1006), "429"),
    (LimitError("limit"), 429, (429, 1300), (429, 1006), "429"),
    (ForbiddenError("admin only"), 403, (403, 1103), (403, 1009), "429"),
    (StorageFull("disk full"), 507, (503, 5001), (500, 1015), "10001"),
    (FacecastError("engine", code="tts_failed"), 500, (500, 5000), (500, 1015), "10001"),
]
IDS = [f"{type(e[0]).__name__}-{e[0].code}" for e in ERRORS]


@pytest.mark.parametrize(("exc", "native", "kling_", "akool_", "kreado_"), ERRORS, ids=IDS)
def test_every_door_names_the_error(
    exc: FacecastError, native: int, kling_: tuple[int, int], akool_: tuple[int, int], kreado_: str
) -> None:
    assert status_for(exc) == native
    k = kling_mapper.from_facecast(exc)
    assert isinstance(k, kling_mapper.KlingError) and (k.status, k.code) == kling_
    a = akool_mapper.from_facecast(exc)
    assert isinstance(a, akool_mapper.AkoolError) and (a.status, a.code) == akool_
    r = kreado_mapper.from_facecast(exc)
    assert isinstance(r, kreado_mapper.KreadoError) and r.code == kreado_
    # KreadoAI's status says what kind of failure it was: 429 for its "429", 500 for its
    # internal 10001, else 200
    assert r.status == {"429": 429, "10001": 500}.get(kreado_, 200)


@pytest.mark.parametrize(("exc", "native", "kling_", "akool_", "kreado_"), ERRORS, ids=IDS)
def test_the_callers_errors_keep_the_reason_code(
    exc: FacecastError, native: int, kling_: tuple[int, int], akool_: tuple[int, int], kreado_: str
) -> None:
    for error in (
        kling_mapper.from_facecast(exc),
        akool_mapper.from_facecast(exc),
        kreado_mapper.from_facecast(exc),
    ):
        if error.status < 500:
            assert error.message == f"{exc.message} [{exc.code}]"
        else:  # not the caller's fault: no reason code to act on
            assert f"[{exc.code}]" not in error.message and exc.message in error.message
    failed = kreado_mapper.from_facecast(exc)
    if failed.code == "10001":
        assert failed.message == f"Internal system exception: {exc.message}"


@pytest.mark.parametrize(
    "to_vendor",
    [kling_mapper.from_facecast, akool_mapper.from_facecast, kreado_mapper.from_facecast],
)
def test_rate_limits_say_when_to_retry(to_vendor: Any) -> None:
    assert to_vendor(RATE).headers == {"Retry-After": "3"}  # rounded up, never 0
    assert to_vendor(LimitError("q", code="too_many_queued_jobs", retry_after=5)).headers in (
        None,
        {"Retry-After": "5"},
    )
    assert to_vendor(InputError("x", code="bad_size")).headers is None


def test_kreado_retry_after_only_with_its_429() -> None:
    queued = LimitError("q", code="too_many_queued_jobs", retry_after=5)
    assert kreado_mapper.from_facecast(queued).headers is None
    assert kreado_mapper.from_facecast(LimitError("r", retry_after=0.2)).headers == {
        "Retry-After": "1"
    }


@pytest.mark.parametrize("code", ["download_failed", "url_not_allowed", "bad_url"])
@pytest.mark.parametrize("download_code", ["10006", "10003"])
def test_kreado_download_failures_take_the_operations_code(code: str, download_code: str) -> None:
    error = kreado_mapper.from_facecast(InputError("nope", code=code), download_code)
    assert (error.code, error.status) == (download_code, 200)


@pytest.mark.parametrize("failure", [1015, 1201])
def test_akool_failures_take_the_operations_code(failure: int) -> None:
    error = akool_mapper.from_facecast(FacecastError("boom"), failure)
    assert (error.status, error.code, error.message) == (500, failure, "boom")
    # the caller's own errors keep their code whatever the operation
    assert akool_mapper.from_facecast(InputError("x"), failure).code == 1003


@pytest.mark.parametrize(
    "error", [kling_mapper.KlingError, akool_mapper.AkoolError, kreado_mapper.KreadoError]
)
def test_vendor_errors_take_code_message_status(error: type[kit.VendorError]) -> None:
    made = error(1234, "why", 404, {"X": "1"})
    assert (made.code, made.message, made.status, made.headers) == (1234, "why", 404, {"X": "1"})
    with pytest.raises(ValueError, match="not an HTTP status"):
        error(400, "the old argument order", 1201)  # type: ignore[arg-type]


def test_vendor_default_statuses() -> None:
    assert kreado_mapper.KreadoError("10002", "x").status == 200  # KreadoAI: HTTP 200 always
    assert kling_mapper.KlingError(1201, "x").status == 400
    assert akool_mapper.AkoolError(1003, "x").status == 400


# ---- requests that never reach a route, through the whole app in-process ---------------

KLING_ERROR = {"code", "message", "request_id"}
KREADO_ERROR = {"code", "message", "data", "requestId"}
AKOOL_ERROR = {"code", "msg"}

# (method, path, HTTP status, envelope keys, vendor code)
UNROUTED: list[tuple[str, str, int, set[str], Any]] = [
    ("GET", "/v1/nothing/here", 404, KLING_ERROR, 1202),
    ("POST", "/v1/videos/text2video", 404, KLING_ERROR, 1202),
    ("DELETE", "/v1/videos/avatar/image2video", 405, KLING_ERROR, 1202),
    ("POST", "/v1/videos/avatar/image2video/12", 405, KLING_ERROR, 1202),
    ("GET", "/apis/open/nothing", 404, KREADO_ERROR, "400"),
    ("GET", "/api/open/v3/nothing", 404, AKOOL_ERROR, 1008),
]


@pytest.mark.parametrize(("method", "path", "status", "keys", "code"), UNROUTED)
def test_unknown_paths_and_methods_answer_in_the_vendors_envelope(
    app: App, method: str, path: str, status: int, keys: set[str], code: Any
) -> None:
    r = app.client.request(method, path)
    assert r.status_code == status, r.text
    assert set(r.json()) == keys and r.json()["code"] == code, r.text


def test_klings_405_lists_the_allowed_methods(app: App) -> None:
    r = app.client.delete("/v1/videos/avatar/image2video")
    assert r.headers["Allow"] == "GET, POST"


@pytest.fixture(scope="module")
def vendor_headers(app: App) -> dict[str, dict[str, str]]:
    """Each vendor door's authentication headers for one new account."""
    key = app.account()
    pair = app.vendor_pair(key, "kling")
    now = int(time.time())
    token = jwt.encode(
        {"iss": pair["client_id"], "exp": now + 600, "nbf": now - 5},
        pair["client_secret"],
        algorithm="HS256",
    )
    return {
        "kling": {"Authorization": f"Bearer {token}"},
        "akool": {"x-api-key": key},
        "kreado": {"apiToken": key},
    }


# (vendor, path, HTTP status, vendor code, envelope keys) of a body that is not JSON;
# Akool and KreadoAI answer HTTP 200 with the outcome in code
MALFORMED: list[tuple[str, str, int, Any, set[str]]] = [
    ("kling", "/v1/videos/avatar/image2video", 400, 1200, KLING_ERROR),
    ("akool", "/api/open/v3/talkingavatar/create", 200, 1003, AKOOL_ERROR),
    ("kreado", "/apis/open/video/v3/submitLipTask", 200, "10002", KREADO_ERROR),
]


@pytest.mark.parametrize(("vendor", "path", "status", "code", "keys"), MALFORMED)
@pytest.mark.parametrize("body", [b'{"image": ', b"\xff\xfe{}"], ids=["cut-off", "not-utf8"])
def test_unreadable_bodies_are_the_vendors_parameter_error(
    app: App,
    vendor_headers: dict[str, dict[str, str]],
    vendor: str,
    path: str,
    status: int,
    code: Any,
    keys: set[str],
    body: bytes,
) -> None:
    r = app.client.post(
        path, content=body, headers={"Content-Type": "application/json", **vendor_headers[vendor]}
    )
    assert set(r.json()) == keys, r.text
    assert (r.status_code, r.json()["code"]) == (status, code), r.text


# (path, HTTP status, vendor code) of an oversized body
TOO_LARGE: list[tuple[str, int, Any]] = [
    ("/v1/videos/avatar/image2video", 413, 1201),
    ("/api/open/v3/talkingavatar/create", 200, 1003),
    ("/apis/open/video/v3/submitLipTask", 200, "10007"),
]


@pytest.mark.parametrize(("path", "status", "code"), TOO_LARGE)
def test_oversized_bodies_answer_in_the_vendors_envelope(
    app: App, path: str, status: int, code: Any
) -> None:
    limit = app.service.settings.max_body_bytes
    r = app.client.post(
        path, content=b"x" * (limit + 1), headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert str(limit) in r.text


# ---- the catch-all, on a bare app with each vendor's door ------------------------------


@pytest.mark.parametrize(
    ("door", "status", "body"),
    [
        (kling.DOOR, 500, {"code": 5000, "message": "server internal error; it is logged"}),
        (
            akool.DOOR,
            200,
            {"code": 1015, "msg": "server internal error, please try again later; it is logged"},
        ),
        (
            kreado.DOOR,
            200,
            {"code": "10001", "message": "Internal system exception; it is logged", "data": None},
        ),
    ],
)
def test_a_crash_is_answered_in_the_vendors_envelope(
    door: kit.Door, status: int, body: dict[str, Any]
) -> None:
    bare = FastAPI()

    @bare.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    kit.install(bare, door, 1000)
    with TestClient(bare, raise_server_exceptions=False) as client:
        r = client.get("/boom")
    assert r.status_code == status
    got = r.json()
    got.pop("request_id", None)
    got.pop("requestId", None)
    assert got == body


def test_problems_names_the_first_and_counts_the_rest() -> None:
    errors = [
        {"loc": ("body", "image"), "msg": "Field required"},
        {"loc": ("query", "pageSize"), "msg": "too big"},
    ]
    assert kit.problems(errors) == "image: Field required (and 1 more)"
    assert kit.problems(errors[:1]) == "image: Field required"
    assert kit.problems([]) == "invalid request"
