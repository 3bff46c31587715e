"""Native routes for live avatars (issue #16): sessions, speech, events (server-sent
events) and the WHEP endpoint (RFC 9725) a WebRTC player watches a session through.

The media never passes through here: the session's own process answers the player's
SDP offer and sends the frames and sound over UDP; these routes do signalling only. A
session placed on a live worker is reached through it: its WHEP answer carries that
worker's addresses, and its events are relayed from that worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from facecast.api.deps import Caller, GivenKey, ServiceDep, guarded_auth, ingesting, parse_id
from facecast.api.errors import ERROR_RESPONSES, ErrorBody
from facecast.api.live_events import SSE_HEADERS, SSE_RETRY_MS, follow, sse
from facecast.api.native import views
from facecast.api.native import wire as s
from facecast.api.native.mapper import media
from facecast.errors import InputError
from facecast.service.accounts import AuthError
from facecast.service.core import Service
from facecast.service.live import Stream
from facecast.service.live_placed import PlacedStreams

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

SDP = "application/sdp"
Token = Annotated[str | None, Query(max_length=100, description="The signed token of "
                                    "whep_url / events_url, for players that cannot send "
                                    "the API key")]


@router.post("/streams", status_code=201, response_model=s.StreamOut, tags=["live"],
             summary="Open a live avatar session (WebRTC over WHEP); the first minute is "
                     "charged")
@ingesting  # the photo may be a URL to download
def create_stream(body: s.StreamCreate, service: ServiceDep, caller: Caller,
                  response: Response) -> s.StreamOut:
    stream = service.live.create(
        caller, avatar_id=parse_id("av", body.avatar_id, "avatar") if body.avatar_id else None,
        photo=media(body.photo), voice=body.voice, size=body.size, aspect=body.aspect,
        expression=body.expression)
    response.headers["Location"] = f"/api/v1/streams/{stream.id}"
    return views.stream(service, stream)


@router.get("/streams", response_model=s.StreamList, tags=["live"],
            summary="Your live streams: open ones and those ended in the last minutes")
def list_streams(service: ServiceDep, caller: Caller) -> s.StreamList:
    return s.StreamList(items=[views.stream(service, x) for x in service.live.of_account(caller)])


@router.get("/streams/{stream_id}", response_model=s.StreamOut, tags=["live"],
            summary="One live stream")
def get_stream(stream_id: str, service: ServiceDep, caller: Caller) -> s.StreamOut:
    return views.stream(service, service.live.get(caller, stream_id))


@router.delete("/streams/{stream_id}", response_model=s.StreamOut, tags=["live"],
               summary="End a live stream (its process stops; nothing is kept)")
def end_stream(stream_id: str, service: ServiceDep, caller: Caller) -> s.StreamOut:
    return views.stream(service, service.live.end(caller, stream_id))


@router.post("/streams/{stream_id}/speak", status_code=202, response_model=s.UtteranceOut,
             tags=["live"], summary="Queue an utterance: text in the stream's voice, or audio")
@ingesting  # the audio may be a URL to download
def speak(stream_id: str, body: s.SpeakIn, service: ServiceDep, caller: Caller
          ) -> s.UtteranceOut:
    utterance = service.live.speak(caller, stream_id, text=body.text, audio=media(body.audio),
                                   rate=body.rate, pitch=body.pitch, volume=body.volume)
    return s.UtteranceOut(id=utterance, stream_id=stream_id)


@router.post("/streams/{stream_id}/interrupt", response_model=s.InterruptOut, tags=["live"],
             summary="Cut the utterance being spoken (and those queued)")
def interrupt(stream_id: str, service: ServiceDep, caller: Caller) -> s.InterruptOut:
    return s.InterruptOut(interrupted=service.live.interrupt(caller, stream_id),
                          stream_id=stream_id)


async def _stream_for(request: Request, stream_id: str, token: str | None, key: str | None
                      ) -> Stream:
    """The stream a WHEP or events request is for: the API key (Bearer, as WHEP players
    send it, or X-API-Key) of its account, or the signed token of its URLs."""
    service: Service = request.app.state.service
    if key:
        caller = guarded_auth(request, lambda: service.authenticate(key))
        return service.live.get(caller, stream_id)
    if token:
        return guarded_auth(request, lambda: service.live.by_token(stream_id, token))
    raise AuthError("send the API key ('Authorization: Bearer <key>') or use the stream's "
                    "whep_url / events_url with its token")


@router.get("/streams/{stream_id}/events", tags=["live"],
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-sent events until the stream ends"},
                       204: {"description": "The stream has ended and every event was sent "
                                            "(EventSource stops reconnecting)"}},
            summary="The stream's events as server-sent events: ready, utterance_started, "
                    "word, utterance_ended, interrupted, closed")
async def stream_events(
    stream_id: str, request: Request,
    key: GivenKey, token: Token = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> Response:
    stream = await _stream_for(request, stream_id, token, key)
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    live = request.app.state.service.live
    if isinstance(live, PlacedStreams):
        return await _relay(live, stream, after)
    return follow(stream, after)


async def _relay(live: PlacedStreams, stream: Stream, after: int | None) -> Response:
    """A placed stream's events, relayed from its live worker as they come."""
    feed = await live.events(stream, after)
    if feed is None:
        return Response(status_code=204)  # ended, and nothing missed

    async def events() -> AsyncIterator[str]:
        yield f"retry: {SSE_RETRY_MS}\n: live stream {stream.id}\n\n"
        async for event in feed:
            yield ": keepalive\n\n" if event is None else sse(event)

    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/streams/{stream_id}/whep", status_code=201, tags=["live"],
             response_class=Response,
             openapi_extra={"requestBody": {"required": True,
                                            "content": {SDP: {"schema": {"type": "string"}}}}},
             responses={201: {"content": {SDP: {}}, "description": "The SDP answer; "
                              "Location names the viewer's resource (DELETE it to leave)"},
                        415: {"model": ErrorBody,
                              "description": "The offer is not application/sdp"}},
             summary="WHEP (RFC 9725): POST an SDP offer, get the SDP answer")
async def whep_offer(
    stream_id: str, request: Request,
    key: GivenKey, token: Token = None,
) -> Response:
    stream = await _stream_for(request, stream_id, token, key)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != SDP:
        raise InputError(f"a WHEP offer is {SDP}, not {kind or 'untyped'}",
                         code="unsupported_media_type")
    try:
        offer = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("the SDP offer is not UTF-8 text", code="bad_offer") from exc
    service: Service = request.app.state.service
    viewer, answer = await run_in_threadpool(service.live.watch, stream, offer)
    # no trickle ICE: the answer holds every candidate, and a PATCH is refused (405)
    return Response(answer, status_code=201, media_type=SDP,
                    headers={"Location": f"/api/v1/streams/{stream.id}/whep/{viewer}"})


@router.delete("/streams/{stream_id}/whep/{viewer_id}", tags=["live"],
               response_class=Response, responses={200: {"description": "The viewer left"}},
               summary="WHEP: end one viewer's session (the stream goes on)")
async def whep_leave(
    stream_id: str, viewer_id: str, request: Request,
    key: GivenKey, token: Token = None,
) -> Response:
    stream = await _stream_for(request, stream_id, token, key)
    await run_in_threadpool(request.app.state.service.live.stop_watching, stream, viewer_id)
    return Response(status_code=200)
