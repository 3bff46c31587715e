"""Test support for the service: a real ``facecast serve`` (or worker) process on a
loopback port with its own home folder, and helpers to poll jobs to the end."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "canceled", "expired"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(home: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACECAST_")}
    env.update({"FACECAST_HOME": str(home), "FACECAST_HOST": "127.0.0.1",
                "FACECAST_URL_ALLOWLIST": "127.0.0.1", "GLOG_minloglevel": "2",
                "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1",
                # background preview renders would take CPU from every test server: on
                # only where a test asks for them
                "FACECAST_AVATAR_PREVIEWS": "false", "FACECAST_EXPRESSION_PREVIEWS": "off"})
    for name, value in settings.items():
        env[f"FACECAST_{name.upper()}"] = str(value)
    return env


class ServerProcess:
    """``facecast serve`` as a child process in its own process group."""

    def __init__(self, home: Path, port: int | None = None, serve_args: tuple[str, ...] = (),
                 **settings: object) -> None:
        self.home = home
        self.port = port or free_port()
        self.serve_args = serve_args  # command-line options of `facecast serve`
        self.settings = settings
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"serve-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.admin_key: str | None = None

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        env = service_env(self.home, port=self.port, **self.settings)
        with open(self.log, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "facecast.cli", "serve", *self.serve_args], env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"facecast serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"facecast serve did not start:\n{self.log.read_text()[-3000:]}")
        found = re.search(r"admin API key \(shown once, keep it\): (fc_\S+)",
                          self.log.read_text())
        if found:
            self.admin_key = found.group(1)
        return self

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            return None

    def kill9(self) -> None:
        """Kill the server and everything it started, at once (a crash or power loss)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 180.0,
                 until: set[str] = TERMINAL) -> dict[str, Any]:
    """Poll the job until its status is in ``until``; fail with its last state on timeout."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/api/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["status"] in until:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {until} in {timeout} s: {job}")


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 for the service to fetch from or post to."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def file_server(root: Path) -> LoopbackServer:
    """Serves the files in ``root``."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))

    class Quiet(handler.func):  # type: ignore[name-defined,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *_args: Any) -> None:
            pass

    return LoopbackServer(Quiet)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver(LoopbackServer):
    """Records every POST; answers with the next status in ``statuses`` (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[Received] = []
        self.statuses = list(statuses or [])
        self.cond = threading.Condition()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.cond:
                    owner.received.append(Received(self.path, dict(self.headers.items()), body))
                    status = owner.statuses.pop(0) if owner.statuses else 200
                    owner.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        super().__init__(Handler)

    def wait_for(self, predicate: Any, timeout: float = 60.0) -> list[Received]:
        """Block until ``predicate(received)`` holds; returns the requests so far."""
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.received), timeout=timeout):
                raise AssertionError(f"webhooks not received in {timeout} s: "
                                     f"{[r.body[:200] for r in self.received]}")
            return list(self.received)
