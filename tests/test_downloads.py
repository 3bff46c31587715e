"""URL downloads against a real slow server: they cannot take the API's request threads.

A loopback HTTP server that holds every request until the test releases it stands in for
slow public servers. A real ``facecast serve`` (downloads capped at 3 at once, 2 per
account) is asked to import files from it: past a cap a request is refused at once with
429 ``too_many_downloads`` (nothing is connected to), the API keeps answering everything
else meanwhile, and once the server answers the waiting imports succeed and the places
are free again.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service_support import LoopbackServer, ServerProcess

PER_ACCOUNT = 2
TOTAL = 3


class HeldServer(LoopbackServer):
    """Answers each GET with a PNG, but only once :meth:`release` is called; counts the
    requests that arrived (so the test knows which downloads are in flight)."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.released = threading.Event()
        self.arrived = 0
        self.changed = threading.Condition()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner.changed:
                    owner.arrived += 1
                    owner.changed.notify_all()
                owner.released.wait(300)  # a test that fails never hangs it
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, *_args: object) -> None:
                pass

        super().__init__(Handler)

    def wait_arrived(self, n: int, timeout: float = 60.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.arrived >= n, timeout), self.arrived

    def release(self) -> None:
        self.released.set()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("downloads"),
        workers=0,
        download_timeout_s=300,  # held downloads must outlast a slow test machine
        max_downloads=TOTAL,
        max_downloads_per_account=PER_ACCOUNT,
    )
    srv.start()
    yield srv
    srv.stop()


def _account(server: ServerProcess) -> Callable[[], httpx.Client]:
    with server.client() as admin:
        r = admin.post("/api/v1/accounts", json={"name": "importer", "credits": 0})
        assert r.status_code == 201, r.text
        key = r.json()["api_key"]
    return lambda: server.client(key)


def test_slow_servers_cannot_take_the_request_threads(
    server: ServerProcess, astronaut_path: Path
) -> None:
    first, second, third = _account(server), _account(server), _account(server)
    with HeldServer(astronaut_path.read_bytes()) as slow, ThreadPoolExecutor(8) as pool:

        def start(make_client: Callable[[], httpx.Client], name: str) -> Future[httpx.Response]:
            def run() -> httpx.Response:
                with make_client() as client:
                    return client.post(
                        "/api/v1/assets/import", json={"url": f"{slow.url}/{name}.png"}
                    )

            return pool.submit(run)

        def import_now(make_client: Callable[[], httpx.Client]) -> httpx.Response:
            with make_client() as client:
                return client.post("/api/v1/assets/import", json={"url": f"{slow.url}/x.png"})

        held = [start(first, "a1"), start(first, "a2")]
        slow.wait_arrived(2)
        # the account's third download is refused at once, without reaching the server
        r = import_now(first)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_downloads"
        assert "this account already has 2 downloads" in r.json()["error"]["message"]
        held.append(start(second, "b1"))
        slow.wait_arrived(3)
        r = import_now(third)  # every download place is taken
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_downloads"
        assert "the limit is 3" in r.json()["error"]["message"]
        assert slow.arrived == 3  # refused requests never connected
        # the API answers everything else while the downloads wait
        with first() as client:
            assert client.get("/api/v1/account").status_code == 200
            assert client.get("/api/v1/assets").json()["total"] == 0
        assert not any(f.done() for f in held)
        slow.release()
        answers = [f.result(timeout=60) for f in held]
        assert [a.status_code for a in answers] == [201] * 3, [a.text for a in answers]
        # the places are free again
        r = import_now(first)
        assert r.status_code == 201, r.text


MANY = 42  # more than the API's 40 request threads


@pytest.fixture(scope="module")
def roomy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path_factory.mktemp("downloads-roomy"),
        workers=0,
        download_timeout_s=300,  # held downloads must outlast a slow test machine
        max_downloads=MANY,
        max_downloads_per_account=MANY,
    )
    srv.start()
    yield srv
    srv.stop()


def test_downloads_do_not_hold_request_threads(
    roomy_server: ServerProcess, astronaut_path: Path
) -> None:
    account = _account(roomy_server)
    with HeldServer(astronaut_path.read_bytes()) as slow, ThreadPoolExecutor(MANY) as pool:

        def run(i: int) -> httpx.Response:
            with account() as client:
                return client.post("/api/v1/assets/import", json={"url": f"{slow.url}/{i}.png"})

        held = [pool.submit(run, i) for i in range(MANY)]
        # every download reached the slow server at once: none waited for a request thread
        slow.wait_arrived(MANY)
        with account() as client:
            assert client.get("/api/v1/account").status_code == 200
            assert client.get("/api/v1/jobs").status_code == 200
        assert not any(f.done() for f in held)
        slow.release()
        assert [f.result(timeout=120).status_code for f in held] == [201] * MANY
