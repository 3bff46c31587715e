"""Bad input never yields a 500: the HTTP service against malformed and hostile requests.

One real ``facecast serve`` (no worker processes, so the jobs the fuzzer creates stay
queued and nothing renders) takes two kinds of abuse:

* explicit bad inputs - malformed JSON, wrong types, unknown fields, bodies over
  ``FACECAST_MAX_BODY_BYTES``, bad base64, URLs to link-local / loopback / private
  addresses, files that are not what they claim - each answered with its documented
  status and error code, and nothing (no job, asset or webhook) left behind;
* a schema-driven fuzz run (schemathesis) over every operation in ``/openapi.json``,
  positive and negative cases, checked for 5xx answers and for answers that break the
  document (status code, content type, body schema, headers).

Schemathesis runs its coverage phase (boundary and just-invalid values of every parameter,
undocumented methods) and its fuzzing phase, ``FUZZ_EXAMPLES`` (default 25) cases per
operation, derandomized so a run is repeatable; every other case with path parameters gets
the ids of real things (a queued job, an uploaded asset, a webhook and its delivery ...).
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service_support import ServerProcess

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
MAX_BODY_BYTES = 1 << 20  # small, so the over-limit bodies are cheap to send
FUZZ_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_schema_conformance, response_headers_conformance,
               allow_header_conformance]
# hosts the server must refuse to download from or post to (it allowlists only 127.0.0.1)
FORBIDDEN_URLS = ["http://169.254.169.254/latest/meta-data/photo.png",
                  "http://[::1]:8080/photo.png", "http://10.0.0.1/photo.png"]
TEXT_FILE = b"These are not the pixels you are looking for.\n" * 20


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server with no workers, limits the fuzzer cannot exhaust, a 1 MiB body cap."""
    srv = ServerProcess(tmp_path_factory.mktemp("fuzz-home"), workers=0,
                        rate_limit="1000000/second", max_queued_jobs=1_000_000,
                        max_body_bytes=MAX_BODY_BYTES, admin_initial_credits=10**15).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def admin(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def user(server: ServerProcess, admin: httpx.Client) -> Iterator[httpx.Client]:
    """An account of its own for the explicit tests, so the fuzzer's work never mixes in."""
    r = admin.post("/api/v1/accounts", json={"name": "bad-input tester", "credits": 100_000})
    assert r.status_code == 201, r.text
    with server.client(r.json()["api_key"]) as client:
        yield client


@pytest.fixture(scope="module")
def known(server: ServerProcess, admin: httpx.Client, astronaut_path: Path) -> dict[str, str]:
    """Ids of real things, swapped into path parameters so the fuzzer gets past the 404s."""
    def made(r: httpx.Response, status: int = 201) -> Any:
        assert r.status_code == status, r.text
        return r.json()

    hook = made(admin.post("/api/v1/webhooks", json={"url": f"{server.url}/fuzz-hook"}))
    delivery = made(admin.post(f"/api/v1/webhooks/{hook['id']}/test"), 202)[0]
    job = made(admin.post("/api/v1/speech", json={"text": "Known job.",
                                                  "external_id": "fuzz-known"}))
    asset = made(admin.post("/api/v1/assets", files={
        "file": ("astronaut.png", astronaut_path.read_bytes(), "image/png")}))
    voice = made(admin.get("/api/v1/voices", params={"page_size": 1}), 200)["items"][0]
    account = made(admin.post("/api/v1/accounts", json={"name": "fuzz target",
                                                        "credits": 1000}))
    spare_key = made(admin.post("/api/v1/keys", json={"name": "spare (the fuzzer may revoke)"}))
    own_keys = [k["id"] for k in made(admin.get("/api/v1/keys"), 200) if k["id"] !=
                spare_key["id"]]
    return {"job_id": job["id"], "external_id": "fuzz-known", "asset_id": asset["id"],
            "avatar_id": "av_1", "endpoint_id": hook["id"], "delivery_id": delivery["id"],
            "voice_id": voice["id"], "account_id": account["id"], "key_id": spare_key["id"],
            "own_key_ids": ",".join(own_keys)}


def totals(client: httpx.Client) -> dict[str, int]:
    """How many jobs, assets and webhook endpoints the caller's account has."""
    jobs = client.get("/api/v1/jobs")
    assets = client.get("/api/v1/assets")
    hooks = client.get("/api/v1/webhooks")
    assert (jobs.status_code, assets.status_code, hooks.status_code) == (200, 200, 200)
    return {"jobs": jobs.json()["total"], "assets": assets.json()["total"],
            "webhooks": len(hooks.json())}


def assert_refused(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


@pytest.fixture
def nothing_created(user: httpx.Client) -> Iterator[None]:
    """The test's refused requests leave no job, asset or webhook behind."""
    before = totals(user)
    yield
    assert totals(user) == before


# ---- explicit bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("path,body", [
    ("/api/v1/speech", b'{"text": "Hello'),
    ("/api/v1/talking-photos", b'{"avatar_id": "av_1", "text": "Hi",}'),
    ("/api/v1/assets/import", b"{base64: AAAA}"),
    ("/api/v1/webhooks", b'{"url": "http://127.0.0.1/hook"} trailing'),
])
def test_malformed_json_is_400(user: httpx.Client, nothing_created: None, path: str,
                               body: bytes) -> None:
    r = user.post(path, content=body, headers={"Content-Type": "application/json"})
    assert_refused(r, 400, "malformed_json")


@pytest.mark.parametrize("path,body,field", [
    ("/api/v1/speech", {"text": 123}, "text"),
    ("/api/v1/speech", {"text": "Hi", "rate": "fast"}, "rate"),
    ("/api/v1/speech", {"text": ["Hi"]}, "text"),
    ("/api/v1/talking-photos", {"avatar_id": "av_1", "text": "Hi", "fps": "25fps"}, "fps"),
    ("/api/v1/talking-photos", {"avatar_id": 1, "text": "Hi"}, "avatar_id"),
    ("/api/v1/talking-photos", {"photo": "a photo", "text": "Hi"}, "photo"),
    ("/api/v1/speech", {"text": "Hi", "colour": "red"}, "colour"),
    ("/api/v1/talking-photos", {"avatar_id": "av_1", "text": "Hi", "resolution": "4k"},
     "resolution"),
    ("/api/v1/talking-photos", {"photo": {"base64": "AAAA", "mime": "image/png"},
                                "text": "Hi"}, "photo.mime"),
    ("/api/v1/assets/import", {"url": "http://127.0.0.1/a.png", "sha256": "00"}, "sha256"),
])
def test_wrong_types_and_unknown_fields_are_422(user: httpx.Client, nothing_created: None,
                                                 path: str, body: dict[str, Any],
                                                 field: str) -> None:
    error = assert_refused(user.post(path, json=body), 422, "invalid_request")
    assert field in [e["field"] for e in error["details"]["errors"]], error


def test_body_over_the_limit_is_413(user: httpx.Client, nothing_created: None) -> None:
    photo = base64.b64encode(b"\0" * MAX_BODY_BYTES).decode()
    r = user.post("/api/v1/talking-photos", json={"photo": {"base64": photo}, "text": "Hi"})
    assert_refused(r, 413, "payload_too_large")


@pytest.mark.parametrize("content_type", ["application/json",
                                          "multipart/form-data; boundary=fuzz"])
def test_streamed_body_over_the_limit_is_413(user: httpx.Client, nothing_created: None,
                                             content_type: str) -> None:
    """No Content-Length (chunked): the limit must hold while the body is read."""
    def chunks() -> Iterator[bytes]:
        if content_type.startswith("multipart"):
            yield (b'--fuzz\r\nContent-Disposition: form-data; name="file"; '
                   b'filename="big.png"\r\nContent-Type: image/png\r\n\r\n')
        for _ in range(2 * MAX_BODY_BYTES // 65536):
            yield b"A" * 65536

    path = "/api/v1/assets" if content_type.startswith("multipart") else "/api/v1/speech"
    r = user.post(path, content=chunks(), headers={"Content-Type": content_type})
    assert "content-length" not in r.request.headers
    assert_refused(r, 413, "payload_too_large")


@pytest.mark.parametrize("data", ["!!! not base64 !!!", "QUJD=", "data:image/png,AAAA",
                                  "ÄÖÜ"])
@pytest.mark.parametrize("where", ["asset", "photo", "audio"])
def test_bad_base64_is_400(user: httpx.Client, nothing_created: None, where: str,
                           data: str) -> None:
    if where == "asset":
        r = user.post("/api/v1/assets/import", json={"base64": data})
    elif where == "photo":
        r = user.post("/api/v1/talking-photos", json={"photo": {"base64": data}, "text": "Hi"})
    else:
        r = user.post("/api/v1/talking-photos",
                      json={"avatar_id": "av_1", "audio": {"base64": data}})
    assert_refused(r, 400, "bad_base64")


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
@pytest.mark.parametrize("where", ["asset", "photo", "webhook", "callback"])
def test_urls_to_internal_addresses_are_400(user: httpx.Client, nothing_created: None,
                                            where: str, url: str) -> None:
    if where == "asset":
        r = user.post("/api/v1/assets/import", json={"url": url})
    elif where == "photo":
        r = user.post("/api/v1/talking-photos", json={"photo": {"url": url}, "text": "Hi"})
    elif where == "webhook":
        r = user.post("/api/v1/webhooks", json={"url": url})
    else:
        r = user.post("/api/v1/speech", json={"text": "Hi", "callback_url": url})
    error = assert_refused(r, 400, "url_not_allowed")
    assert error["details"]["host"] in url


@pytest.mark.parametrize("name,data", [
    ("photo.png", TEXT_FILE),
    ("photo.jpg", b"\xff\xd8\xff\xe0" + TEXT_FILE),  # a JPEG's first bytes, then text
    ("photo.png", b"\x89PNG\r\n\x1a\n" + TEXT_FILE),  # a PNG signature, then text
])
def test_files_that_are_not_what_they_claim_are_400(user: httpx.Client, nothing_created: None,
                                                    name: str, data: bytes) -> None:
    media_type = "image/png" if name.endswith(".png") else "image/jpeg"
    r = user.post("/api/v1/assets", files={"file": (name, data, media_type)})
    assert_refused(r, 400, "unsupported_media")
    as_photo = {"base64": base64.b64encode(data).decode(), "filename": name}
    r = user.post("/api/v1/talking-photos", json={"photo": as_photo, "text": "Hi"})
    assert_refused(r, 400, "unsupported_media")


def test_text_claiming_to_be_speech_is_400(user: httpx.Client, nothing_created: None) -> None:
    fake_wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + TEXT_FILE
    audio = {"base64": base64.b64encode(fake_wav).decode(), "filename": "speech.wav"}
    r = user.post("/api/v1/talking-photos", json={"avatar_id": "av_1", "audio": audio})
    assert_refused(r, 400, "unsupported_media")


def test_the_refusals_are_not_blanket(user: httpx.Client) -> None:
    """The same calls with good input do create things (the checks above can fail)."""
    before = totals(user)
    r = user.post("/api/v1/speech", json={"text": "Hello there."})
    assert r.status_code == 201, r.text
    assert user.post(f"/api/v1/jobs/{r.json()['id']}/cancel").status_code == 200
    after = totals(user)
    assert after["jobs"] == before["jobs"] + 1


def test_external_id_of_a_deleted_job_is_not_a_500(user: httpx.Client) -> None:
    """Found by the fuzzer: create with an external_id, cancel, delete, create again."""
    body = {"text": "Once more.", "external_id": "reused-after-delete"}
    first = user.post("/api/v1/speech", json=body)
    assert first.status_code == 201, first.text
    job_id = first.json()["id"]
    assert user.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
    assert user.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    again = user.post("/api/v1/speech", json=body)
    assert again.status_code in (201, 409), again.text
    if again.status_code == 201:
        assert again.json()["id"] != job_id


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/api/v1/jobs/job_1", "DELETE, GET"),
    ("OPTIONS", "/api/v1/voices/piper:x", "DELETE, GET, PATCH"),
    ("PATCH", "/api/v1/keys", "GET, POST"),
    ("PUT", "/api/v1/voices/clones", "POST"),  # the concrete path, not /voices/{voice_id}
])
def test_405_names_every_method_of_the_path(user: httpx.Client, method: str, path: str,
                                            allow: str) -> None:
    r = user.request(method, path)
    assert_refused(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


# ---- schema-driven fuzzing -------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_schema(server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("fuzz_schema")
# a WHEP offer (POST /streams/{id}/whep) is an SDP text body: sent as text is
schemathesis.serializer.alias("application/sdp", "text/plain")
_case_numbers = itertools.count()


@schema.parametrize()
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_fuzz_finds_no_5xx_and_no_schema_violation(
        case: schemathesis.Case, server: ServerProcess, known: dict[str, str]) -> None:
    # every other case reaches a real job / asset / webhook ... instead of a 404
    if next(_case_numbers) % 2 and case.path_parameters:
        for name in case.path_parameters:
            if name in known:
                case.path_parameters[name] = known[name]
    if case.path_parameters and case.path_parameters.get("key_id") in \
            known["own_key_ids"].split(","):
        case.path_parameters["key_id"] = known["key_id"]  # never revoke the fuzzer's own key
    case.call_and_validate(headers={"Authorization": f"Bearer {server.admin_key}"},
                           checks=FUZZ_CHECKS, timeout=60)


def test_server_logged_no_unhandled_error(server: ServerProcess, admin: httpx.Client) -> None:
    """Every answer so far was handled: no 500 and no traceback in the server's log."""
    assert admin.get("/health").status_code == 200
    log = server.log.read_text(errors="replace")
    assert "unhandled error" not in log and "Traceback" not in log, log[-5000:]
