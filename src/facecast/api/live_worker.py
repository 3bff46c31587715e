"""``facecast live-worker``: the private RPC server of a live worker, over HTTP.

The API processes place live sessions here and forward what their callers ask
(:mod:`facecast.service.live_placed`); this maps each call onto
:class:`facecast.service.live_host.LiveHost`. Every call carries the key the API and
the live workers derive from the service's shared secret (``Settings.live_rpc_key``),
as a Bearer token. Errors go back as ``{"error": [class, message, code, details]}``
(the API raises the same error again); events go out as server-sent events, the API's
own format, which the API relays to its callers. Keep this server on a private network:
players never call it (their media comes from the sessions' own UDP ports).

Calls: ``POST /sessions`` (JSON: id, photo as base64, suffix, voice, width, height,
expression, max_duration_s), ``POST /sessions/{id}/speak`` (JSON), ``POST
/sessions/{id}/audio?sample_rate=N`` (raw little-endian float32 samples, streamed as
they are decoded), ``POST /sessions/{id}/interrupt``, ``POST /sessions/{id}/whep``
(JSON: sdp), ``DELETE /sessions/{id}/whep/{viewer}``, ``DELETE /sessions/{id}?reason=``,
``GET /sessions/{id}/events?after=N`` and ``GET /health``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import queue
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from facecast.api.live_events import follow
from facecast.errors import FacecastError
from facecast.live.process import error_tuple
from facecast.service.accounts import AuthError
from facecast.service.db import Database
from facecast.service.live_host import LiveHost
from facecast.service.settings import Settings

log = logging.getLogger("facecast.live_worker")

ERROR_STATUS = 400  # the API rebuilds the error from its class and code, not the status
SHUTDOWN_S = 10  # on SIGTERM, what uvicorn waits for open requests at most


class OpenIn(BaseModel):
    id: Annotated[str, Field(pattern=r"^str_[0-9a-f]{1,28}$")]
    photo: str  # base64 of the portrait's file
    suffix: Annotated[str, Field(max_length=10)]
    voice: str | None
    width: int
    height: int
    expression: str | None
    max_duration_s: float


class SpeakIn(BaseModel):
    text: str
    rate: float
    pitch: float
    volume: float


class OfferIn(BaseModel):
    sdp: str


def create_worker_app(host: LiveHost, key: str) -> FastAPI:
    """The RPC app over ``host``, answering callers that send ``key``."""

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise AuthError("not a caller of this live worker", code="unauthorized")

    app = FastAPI(title="facecast live worker", openapi_url=None, docs_url=None,
                  redoc_url=None, dependencies=[Depends(authorised)])

    @app.exception_handler(FacecastError)
    async def _error(_request: Request, exc: FacecastError) -> JSONResponse:
        return JSONResponse({"error": list(error_tuple(exc))},
                            status_code=401 if isinstance(exc, AuthError) else ERROR_STATUS)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"worker_id": host.worker_id, "open": host.open_count(),
                "capacity": host.capacity}

    @app.post("/sessions")
    def open_session(body: OpenIn) -> dict[str, Any]:
        return host.open(body.id, base64.b64decode(body.photo), body.suffix,
                         voice=body.voice, width=body.width, height=body.height,
                         expression=body.expression, max_duration_s=body.max_duration_s)

    @app.post("/sessions/{stream_id}/speak")
    def speak(stream_id: str, body: SpeakIn) -> dict[str, Any]:
        return {"id": host.speak_text(stream_id, body.text, body.rate, body.pitch,
                                      body.volume)}

    @app.post("/sessions/{stream_id}/audio")
    async def audio(stream_id: str, sample_rate: int, request: Request) -> dict[str, Any]:
        # the body arrives as the API decodes it; each piece goes on to the session while
        # the rest is on its way (a thread feeds the session; this loop reads)
        pieces: queue.Queue[np.ndarray | None] = queue.Queue()

        def given() -> Iterator[np.ndarray]:
            while (piece := pieces.get()) is not None:
                yield piece

        speaking = asyncio.get_running_loop().run_in_executor(
            None, host.speak_audio, stream_id, given(), sample_rate)
        rest = b""
        try:
            async for chunk in request.stream():
                if speaking.done():  # refused (the stream ended, its queue is full)
                    continue
                data = rest + chunk
                whole = len(data) // 4 * 4
                if whole:
                    pieces.put(np.frombuffer(data[:whole], "<f4").astype(np.float32))
                rest = data[whole:]
        except ClientDisconnect:
            pass  # the API's decoding failed part-way: what came is spoken, then it ends
        finally:
            pieces.put(None)
        return {"id": await speaking}

    @app.post("/sessions/{stream_id}/interrupt")
    def interrupt(stream_id: str) -> dict[str, Any]:
        return {"interrupted": host.interrupt(stream_id)}

    @app.post("/sessions/{stream_id}/whep")
    def whep(stream_id: str, body: OfferIn) -> dict[str, Any]:
        viewer, answer, viewers = host.watch(stream_id, body.sdp)
        return {"viewer": viewer, "sdp": answer, "viewers": viewers}

    @app.delete("/sessions/{stream_id}/whep/{viewer}")
    def hang_up(stream_id: str, viewer: str) -> dict[str, Any]:
        return {"viewers": host.hang_up(stream_id, viewer)}

    @app.delete("/sessions/{stream_id}")
    def close(stream_id: str, reason: str) -> dict[str, Any]:
        host.close(stream_id, reason)
        return {}

    @app.get("/sessions/{stream_id}/events")
    async def events(stream_id: str, after: int | None = None) -> Response:
        stream = await run_in_threadpool(host.stream, stream_id)
        return follow(stream, after)

    return app


def _advertised(settings: Settings, port: int) -> str:
    """How the API processes reach this worker: the setting, or this address and port
    (the machine's name when it listens on every address)."""
    if settings.live_worker_url:
        return settings.live_worker_url.rstrip("/")
    host = settings.live_worker_host
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    return f"http://{host}:{port}"


def run_live_worker(settings: Settings) -> None:
    """Serve until Ctrl-C / SIGTERM; then every session here ends (``shutdown``)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    db = Database(settings.db_url)
    db.migrate()  # a worker may start before any API process has (idempotent)
    family = socket.AF_INET6 if ":" in settings.live_worker_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.live_worker_host, settings.live_worker_port))  # 0: any free port
    host = LiveHost(settings, db)
    host.start(_advertised(settings, sock.getsockname()[1]))
    closing = threading.Thread(target=host.close_all, args=("shutdown",), daemon=True)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # the sessions end first: their closed events end the relayed event streams,
            # which uvicorn would otherwise wait for before it stops
            if closing.ident is None:  # once, whatever signals follow
                closing.start()
            super().handle_exit(sig, frame)

    def _terminated(_sig: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)  # uvicorn raises SIGTERM again once it has stopped: end cleanly

    signal.signal(signal.SIGTERM, _terminated)
    try:
        config = uvicorn.Config(create_worker_app(host, settings.live_rpc_key),
                                log_level="warning", access_log=False,
                                timeout_graceful_shutdown=SHUTDOWN_S)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises Ctrl-C again, too
            Server(config).run(sockets=[sock])
    finally:
        if closing.ident is not None:
            closing.join(SHUTDOWN_S)
        host.stop()  # the row goes
        db.dispose()


if __name__ == "__main__":
    # `facecast serve` starts one as its child (FACECAST_LIVE_PLACEMENT=workers)
    from facecast.service.processes import die_with_parent

    if "--die-with-parent" in sys.argv:
        die_with_parent()
    run_live_worker(Settings())
