"""Request body size limit as ASGI middleware: a body over the limit is refused
with 413 before it is read whole (declared Content-Length, or counted as it
streams). Each API gives the answer in its own envelope."""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(HTTPException):
    """An HTTPException, so that when the framework's body parser meets it the
    app's own 413 handler answers (it turns any other exception into a 400)."""


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, respond: Callable[[int], Response],
                 skip_prefixes: tuple[str, ...] = ()) -> None:
        self.app, self.limit, self.respond = app, limit, respond
        # mounted sub-applications that apply their own limit
        self.skip = tuple(p.rstrip("/") + "/" for p in skip_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.skip and (scope["path"] + "/").startswith(self.skip)):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self.respond(self.limit)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge(413, f"the request body is over the {self.limit} byte limit")
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked_send)
        except _TooLarge:
            if not started:
                await self.respond(self.limit)(scope, receive, send)
