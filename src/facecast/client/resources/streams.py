"""``client.streams``: live avatar sessions (issue #16). The media is WebRTC: hand the
stream's ``whep_url`` to a WHEP player (docs/LIVE.md); its words as they are spoken are
server-sent events at ``events_url``. These calls open, drive and end a session."""

from __future__ import annotations

from facecast.api.native.wire import (
    AvatarOut,
    InterruptOut,
    StreamList,
    StreamOut,
    UtteranceOut,
)
from facecast.client._media import Media, media_input
from facecast.client._plan import Plan, body, call, segment
from facecast.client._resource import M, Resource, operation

StreamRef = str | StreamOut


def stream_id(stream: StreamRef) -> str:
    return segment(stream if isinstance(stream, str) else stream.id)


class Streams(Resource[M]):
    @operation
    def create(self, photo: Media | None = None, *, avatar_id: str | AvatarOut | None = None,
               voice: str | None = None, size: str | None = None, aspect: str | None = None,
               expression: str | int | None = None) -> Plan[StreamOut]:
        """Open a session of ``avatar_id`` (or ``photo``): answered once its process is
        ready; its first minute is charged."""
        request = body(photo=(yield from media_input(photo)),
                       avatar_id=avatar_id.id if isinstance(avatar_id, AvatarOut)
                       else avatar_id, voice=voice, size=size, aspect=aspect,
                       expression=expression)
        return (yield from call("POST", "/streams", StreamOut, json=request))

    @operation
    def list(self) -> Plan[StreamList]:
        return (yield from call("GET", "/streams", StreamList))

    @operation
    def get(self, stream: StreamRef) -> Plan[StreamOut]:
        return (yield from call("GET", f"/streams/{stream_id(stream)}", StreamOut))

    @operation
    def speak(self, stream: StreamRef, text: str | None = None, *, audio: Media | None = None,
              rate: float | None = None, pitch: float | None = None,
              volume: float | None = None) -> Plan[UtteranceOut]:
        """Queue ``text`` (or ``audio``) to be spoken after what the avatar is saying."""
        request = body(text=text, audio=(yield from media_input(audio)), rate=rate,
                       pitch=pitch, volume=volume)
        return (yield from call("POST", f"/streams/{stream_id(stream)}/speak", UtteranceOut,
                                json=request))

    @operation
    def interrupt(self, stream: StreamRef) -> Plan[InterruptOut]:
        return (yield from call("POST", f"/streams/{stream_id(stream)}/interrupt",
                                InterruptOut))

    @operation
    def end(self, stream: StreamRef) -> Plan[StreamOut]:
        """End the session now (its process stops); the ended stream, with its cost."""
        return (yield from call("DELETE", f"/streams/{stream_id(stream)}", StreamOut))
