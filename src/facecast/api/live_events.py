"""A live stream's events as server-sent events: one writer for the API's events route
(streams of this process) and a live worker's RPC server (streams it runs, relayed by
the API processes), so both speak the same wire format, ``Last-Event-ID`` included."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from fastapi import Response
from fastapi.responses import StreamingResponse

from facecast.service.live import Stream, StreamEvent

KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing a quiet stream
SSE_RETRY_MS = 2000  # what EventSource waits before it reconnects (with Last-Event-ID)
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(event: StreamEvent) -> str:
    return f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(event.data)}\n\n"


def follow(stream: Stream, after: int | None) -> Response:
    """The stream's events from after ``after`` (a reconnect's Last-Event-ID) until its
    ``closed``; 204 for a reconnect after the end, which tells EventSource to stop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[StreamEvent] = asyncio.Queue()

    def listener(event: StreamEvent) -> None:
        # called from the session's reader thread (or the reaper's): onto this loop
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server stops
            loop.call_soon_threadsafe(queue.put_nowait, event)

    missed = stream.listen(listener, after)
    if stream.status == "ended" and not missed:
        stream.unlisten(listener)
        return Response(status_code=204)

    async def events() -> AsyncIterator[str]:
        try:
            yield f"retry: {SSE_RETRY_MS}\n: live stream {stream.id}\n\n"
            for event in missed:
                yield sse(event)
                if event.type == "closed":
                    return
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield sse(event)
                if event.type == "closed":
                    return
        finally:
            stream.unlisten(listener)

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)
