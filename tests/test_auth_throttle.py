"""Failed authentications are throttled per client address, on every API.

A real ``facecast serve`` on loopback with a small failure budget (5 per 4 s: a short
window, since the tests wait it out). Each test speaks from its own loopback source
address (127.0.0.x), since the count is per address: past the budget, that address is
refused with ``Retry-After`` in the API's own error shape (429; KreadoAI and Akool answer
HTTP 200 with their own codes, as their documents do), even with a good key, while other
addresses are served; once the window has room again the good key works.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from service_support import ServerProcess

BUDGET = 5
WINDOW_S = 4
LIMIT = f"{BUDGET}/{WINDOW_S}second"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("auth-throttle"), workers=0, auth_failure_limit=LIMIT
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def good_key(server: ServerProcess) -> str:
    with server.client() as admin:
        r = admin.post("/api/v1/accounts", json={"name": "honest", "credits": 0})
        assert r.status_code == 201, r.text
        return r.json()["api_key"]


def from_address(server: ServerProcess, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any 127.x.y.z is loopback)."""
    return httpx.Client(
        base_url=server.url, timeout=30, transport=httpx.HTTPTransport(local_address=address)
    )


def native_refusal(r: httpx.Response) -> bool:
    """The native API and Kling refuse with HTTP 429."""
    return r.status_code == 429


def kreado_refusal(r: httpx.Response) -> bool:
    """KreadoAI answers HTTP 200 with its code "429" (its document has no HTTP statuses)."""
    return r.status_code == 200 and r.json()["code"] == "429"


def akool_refusal(r: httpx.Response) -> bool:
    """Akool answers HTTP 200 with code 1006 (quota / too many requests), as Akool does."""
    return r.status_code == 200 and r.json()["code"] == 1006


def akool_auth_failure(r: httpx.Response) -> bool:
    """Akool's authorization codes (1101 invalid or expired, 1102 empty), with HTTP 200."""
    return r.status_code == 200 and r.json()["code"] in (1101, 1102)


def wait_until_let_in(
    ask: Callable[[], httpx.Response],
    refused: Callable[[httpx.Response], bool] = native_refusal,
    deadline_s: float = 60.0,
) -> httpx.Response:
    """Ask again after each Retry-After the server gives, until it answers otherwise."""
    deadline = time.monotonic() + deadline_s
    while True:
        r = ask()
        if not refused(r):
            return r
        assert time.monotonic() < deadline, "still refused after the window passed"
        time.sleep(int(r.headers["Retry-After"]))  # the server says when to come back


def exhaust(
    ask_wrong: Callable[[], httpx.Response],
    failed: Callable[[httpx.Response], bool] = lambda r: r.status_code == 401,
    refused: Callable[[httpx.Response], bool] = native_refusal,
) -> httpx.Response:
    """BUDGET failures answered as failures; the next is the refusal, returned."""
    for _ in range(BUDGET):
        r = ask_wrong()
        assert failed(r) and not refused(r), r.text
    r = ask_wrong()
    assert refused(r), r.text
    assert 1 <= int(r.headers["Retry-After"]) <= WINDOW_S
    return r


def test_native_api(server: ServerProcess, good_key: str) -> None:
    good = {"Authorization": f"Bearer {good_key}"}
    with from_address(server, "127.0.0.2") as client:
        assert client.get("/api/v1/account", headers=good).status_code == 200
        refused = exhaust(
            lambda: client.get("/api/v1/account", headers={"Authorization": "Bearer fc_guess"})
        )
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "failed authentications" in refused.json()["error"]["message"]
        # the address is refused whatever it sends, so guessing cannot go on
        assert client.get("/api/v1/account", headers=good).status_code == 429
        with from_address(server, "127.0.0.9") as elsewhere:  # other callers are served
            assert elsewhere.get("/api/v1/account", headers=good).status_code == 200
        # not for ever: once the window has room the good key is served again
        r = wait_until_let_in(lambda: client.get("/api/v1/account", headers=good))
        assert r.status_code == 200, r.text
    assert server.proc is not None and server.proc.poll() is None


def test_missing_keys_count_too(server: ServerProcess) -> None:
    with from_address(server, "127.0.0.3") as client:
        refused = exhaust(lambda: client.get("/api/v1/jobs"))
        assert refused.json()["error"]["code"] == "rate_limited"


def test_kreado_api(server: ServerProcess, good_key: str) -> None:
    with from_address(server, "127.0.0.4") as client:

        def ask(token: str) -> httpx.Response:
            return client.post("/apis/open/avatar/v3/list", json={}, headers={"apiToken": token})

        refused = exhaust(
            lambda: ask("fc_guess"),
            failed=lambda r: r.status_code == 200 and r.json()["code"] == "405",
            refused=kreado_refusal,
        )
        assert refused.json()["code"] == "429", refused.text
        assert kreado_refusal(ask(good_key))  # the address is refused whatever it sends
        r = wait_until_let_in(lambda: ask(good_key), kreado_refusal)
        assert r.status_code == 200 and r.json()["code"] == "200", r.text


def test_akool_api(server: ServerProcess, good_key: str) -> None:
    with from_address(server, "127.0.0.5") as client:

        def ask(headers: dict[str, str]) -> httpx.Response:
            return client.get("/api/open/v3/avatar/list", headers=headers)

        refused = exhaust(
            lambda: ask({"Authorization": "Bearer not-a-token"}),
            failed=akool_auth_failure,
            refused=akool_refusal,
        )
        assert refused.json()["code"] == 1006, refused.text
        assert akool_refusal(ask({"x-api-key": good_key}))
        r = wait_until_let_in(lambda: ask({"x-api-key": good_key}), akool_refusal)
        assert r.status_code == 200 and r.json()["code"] == 1000, r.text
    # a wrong clientSecret at getToken is a failed authentication too; asked from an
    # address of its own, since the sliding window lets the first one back in before
    # its whole budget has returned
    with from_address(server, "127.0.0.7") as client:
        refused = exhaust(
            lambda: client.post(
                "/api/open/v3/getToken", json={"clientId": "nobody", "clientSecret": "guess"}
            ),
            failed=akool_auth_failure,
            refused=akool_refusal,
        )
        assert refused.json()["code"] == 1006, refused.text


def test_kling_api(server: ServerProcess) -> None:
    forged = jwt.encode(
        {"iss": "kl_nobody", "exp": int(time.time()) + 600}, "x" * 32, algorithm="HS256"
    )
    with from_address(server, "127.0.0.6") as client:
        refused = exhaust(
            lambda: client.get(
                "/v1/videos/avatar/image2video", headers={"Authorization": f"Bearer {forged}"}
            )
        )
        assert refused.json()["code"] == 1302, refused.text
