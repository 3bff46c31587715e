"""Test support for live avatars: the app under uvicorn in this process (so a test can
change the service's settings and read its sessions), a real aiortc WHEP viewer, and a
server-sent-events reader, each waiting on conditions with timeouts rather than sleeps."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn

from facecast.api.app import create_app
from facecast.service.core import Service
from facecast.service.settings import load_settings
from service_support import free_port


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             every: float = 0.05) -> Any:
    """``condition()``'s first truthy value within ``timeout`` seconds (else fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(every)


@dataclass
class LiveServer:
    """The whole app on a loopback port, in this process (sessions are our children)."""

    service: Service
    url: str
    admin: str
    server: uvicorn.Server
    thread: threading.Thread

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin}"}

    def account(self, credits: int = 1000) -> str:
        r = httpx.post(f"{self.url}/api/v1/accounts", json={"name": "live", "credits": credits},
                       headers=self.headers())
        assert r.status_code == 201, r.text
        return str(r.json()["api_key"])

    def balance(self, key: str) -> int:
        r = httpx.get(f"{self.url}/api/v1/account", headers=self.headers(key))
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])

    def stop(self) -> None:
        """Stop serving (the app's shutdown ends every live session)."""
        self.server.should_exit = True
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@contextlib.contextmanager
def live_server(home: Path, **settings: Any) -> Iterator[LiveServer]:
    service = Service(load_settings(home=home, url_allowlist=["127.0.0.1"],
                                    avatar_previews=False, expression_previews="off",
                                    rate_limit="1000/second", **settings))
    admin = service.bootstrap(previews=False)
    assert admin is not None
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, maintenance=False),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), 60, "uvicorn to start", 0.01)
    assert thread.is_alive(), "uvicorn did not start"
    made = LiveServer(service, f"http://127.0.0.1:{port}", admin, server, thread)
    try:
        yield made
    finally:
        if thread.is_alive():
            made.stop()
        service.db.dispose()


@dataclass
class Viewer:
    """A WHEP player: aiortc's RTCPeerConnection receiving video and audio, on an event
    loop of its own thread."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    video_frames: int = 0
    audio_frames: int = 0
    last_image: Any = None
    resource: str | None = None
    _thread: threading.Thread | None = None
    _pc: Any = None
    _tasks: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def offer(self) -> str:
        """A recvonly offer with every ICE candidate (WHEP without trickle)."""
        return str(self._run(self._offer()))

    async def _offer(self) -> str:
        from aiortc import RTCPeerConnection

        from facecast.live.ice import offer_loopback_when_alone

        offer_loopback_when_alone()
        self._pc = pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")

        @pc.on("track")
        def _track(track: Any) -> None:
            self._tasks.append(asyncio.ensure_future(self._consume(track)))

        await pc.setLocalDescription(await pc.createOffer())  # gathers ICE
        return str(pc.localDescription.sdp)

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video_frames += 1
                if self.video_frames % 5 == 0:
                    self.last_image = frame.to_ndarray(format="rgb24")
            else:
                self.audio_frames += 1

    @property
    def hung_up(self) -> bool:
        """The server ended this connection: every track it received has ended."""
        return bool(self._tasks) and all(t.done() for t in self._tasks)

    def connect(self, whep_url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST the offer to ``whep_url``; on 201 the answer is applied."""
        r = httpx.post(whep_url, content=self.offer(), timeout=30,
                       headers={"Content-Type": "application/sdp", **(headers or {})})
        if r.status_code == 201:
            from aiortc import RTCSessionDescription

            self.resource = r.headers["Location"]
            self._run(self._pc.setRemoteDescription(RTCSessionDescription(r.text, "answer")))
        return r

    def close(self) -> None:
        if self._pc is not None:
            with contextlib.suppress(Exception):
                self._run(self._pc.close(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None:
            self._thread.join(10)


class Events:
    """``GET /streams/{id}/events`` read in a thread: the events as they come."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[int] = []
        self.status: int | None = None
        self.content_type = ""
        self.connected = threading.Event()
        self.ended = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=None))
        self._thread = threading.Thread(target=self._read, args=(url, headers or {}),
                                        daemon=True)
        self._thread.start()
        assert self.connected.wait(30), "the event stream did not open"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                self.status, self.content_type = r.status_code, r.headers.get("content-type", "")
                self.connected.set()
                event: dict[str, Any] = {}
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        event = json.loads(line[6:])
                    elif line.startswith("id: "):
                        self.ids.append(int(line[4:]))
                    elif line == "" and event:
                        self.events.append(event)
                        event = {}
        except httpx.HTTPError:
            pass
        finally:
            self.connected.set()
            self.ended.set()

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def wait(self, type: str, timeout: float = 30, **match: Any) -> dict[str, Any]:
        return dict(wait_for(lambda: next(
            (e for e in self.events if e["type"] == type
             and all(e.get(k) == v for k, v in match.items())), None), timeout,
            f"a {type} event {match or ''} (got {self.types()})"))

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)


def wav_base64(folder: Path, seconds: float = 1.5, rate: int = 16000) -> str:
    """A voiced sound (a 150 Hz buzz with harmonics, rising and falling) as a WAV file."""
    from facecast.media.audio import Audio, write_audio

    t = np.arange(int(seconds * rate)) / rate
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
    envelope = np.sin(np.pi * t / seconds) ** 2 * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    path = write_audio(folder / "buzz.wav", Audio((0.3 * buzz * envelope).astype(np.float32),
                                                  rate))
    return base64.b64encode(path.read_bytes()).decode()
