"""A live session's own process: prepares the portrait, then renders, speaks and streams.

:func:`main` runs in a spawned child (:class:`facecast.live.session.LiveSession`
starts it). It checks the face and sets the portrait up as a talking photo does,
loads the voice, then answers the parent's commands over a pipe while three
things run side by side: the renderer thread (:mod:`facecast.live.stage`), the
speech thread (:mod:`facecast.live.speaker`) and an asyncio loop holding each
viewer's ``RTCPeerConnection`` (aiortc encodes in its executor threads). Nothing
is written to disk. The process ends on ``close`` or when the parent's end of
the pipe goes away.

Messages, parent -> child: ``("answer", rid, sdp, viewer)``, ``("hang_up", viewer)``,
``("speak_text", uid, text, rate, pitch, volume)``; audio (still being decoded, or all
at hand) as ``("audio_begin", uid, sample_rate)``, ``("audio_piece", uid, samples)``...
``("audio_end", uid)``; ``("interrupt", rid)``,
``("close",)``. Child -> parent: ``("ready", info)`` or ``("failed", error)`` once, then
``("event", dict)``, ``("reply", rid, ok, value)``, ``("tick", media_seconds)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from facecast.errors import FacecastError, FaceCheckError, InputError
from facecast.live import heap
from facecast.live.clock import AUDIO_FRAME, MediaClock
from facecast.live.idle import IdleMotion
from facecast.live.schedule import Schedule
from facecast.live.speaker import AudioJob, Speaker, TextJob
from facecast.live.spec import LiveEvent, LiveSpec
from facecast.live.stage import Stage

if TYPE_CHECKING:
    from aiortc import RTCDataChannel, RTCPeerConnection

    from facecast.render.animator import PortraitAnimator

# STUN/TURN servers for the viewers' ICE (comma-separated URLs); none by default: a
# self-hosted server answers with its own addresses and reaches nothing outside.
ICE_SERVERS_ENV = "FACECAST_LIVE_ICE_SERVERS"
# Video codecs in the order a viewer's offer is answered with: VP8 encodes a 512x512
# frame in about 2 ms here, H.264 (libx264, zerolatency) in about 8 ms (bench_stream).
VIDEO_CODECS = ("video/VP8", "video/H264")
# An interrupt closes the mouth from the frame after the one due now (that one may be
# in the encoder already): quiet machine, received 203 ms -> see bench/README.md.
CUT_AHEAD_FRAMES = 1
# An interrupt's mouth is shut by the frame due this long after the frame due at the call
# (schedule.CLOSE_FRAMES after CUT_AHEAD_FRAMES). A viewer sees that frame later by the
# encoder, the network and its decoder (an aiortc viewer holds each frame until the
# next one begins: one frame more): within the 200 ms from the call.
MOUTH_SHUT_S = 0.08
TICK_S = 0.5  # how often the parent hears the streamed seconds
# Speech starts this many frames after the frame due now: the next one may be in the
# encoder already; the renderer redraws the ones it drew ahead (Stage.redo_from).
PLACE_AHEAD_FRAMES = 2


def error_tuple(exc: BaseException) -> tuple[str, str, str, dict[str, Any]]:
    """An error as plain values (a FacecastError's own pickling loses its code)."""
    if isinstance(exc, FacecastError):
        return type(exc).__name__, exc.message, exc.code, dict(exc.details)
    return "FacecastError", f"{type(exc).__name__}: {exc}", "live_failed", {}


class _Pipe:
    """The child's end of the pipe, safe to send on from any thread."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, msg: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError, EOFError, BrokenPipeError):
            self.conn.send(msg)


@dataclass
class Portrait:
    animator: PortraitAnimator
    mouth: tuple[float, float]  # the lips' centre on the session's canvas (pixels)
    iod: float  # the distance between the eyes (pixels)


def prepare(spec: LiveSpec) -> Portrait:
    """The face check and the animator on the portrait fitted to the session's size
    (FaceCheckError / InputError as a talking photo raises them)."""
    from facecast.face import DEFAULT_LIMITS, check_face
    from facecast.media import load_image
    from facecast.render.animator import PortraitAnimator
    from facecast.render.canvas import fit_photo

    photo = load_image(spec.photo, max_bytes=DEFAULT_LIMITS.max_bytes)
    verdict = check_face(photo, DEFAULT_LIMITS)
    if not verdict.accepted or verdict.analysis is None:
        raise FaceCheckError(verdict.message, code=verdict.reason or "no_face",
                             verdict=verdict.to_dict())
    fit = fit_photo(photo, spec.width, spec.height)
    landmarks = fit.map_points(verdict.analysis.landmarks)
    animator = PortraitAnimator(fit.image, landmarks)
    lips = landmarks[[13, 14], :2].mean(axis=0)  # face-mesh inner upper / lower lip
    return Portrait(animator, (float(lips[0]), float(lips[1])),
                    float(animator.rig.frame.iod))


def main(conn: Connection, spec: LiveSpec) -> None:
    """The child's entry point (spawned)."""
    heap.settle()  # before the models load and the threads start
    pipe = _Pipe(conn)
    try:
        portrait = prepare(spec)
        session = _Session(spec, portrait, pipe)
    except BaseException as exc:
        pipe.send(("failed", error_tuple(exc)))
        conn.close()
        return
    try:
        asyncio.run(session.serve(conn))
    finally:
        conn.close()


class _Session:
    """The child's state: clock, schedule, renderer, speaker and the viewers."""

    def __init__(self, spec: LiveSpec, portrait: Portrait, pipe: _Pipe) -> None:
        self.spec = spec
        self.pipe = pipe
        self.portrait = portrait
        self.clock = MediaClock(spec.fps)
        self.schedule = Schedule(spec.fps, PLACE_AHEAD_FRAMES)
        self.idle = IdleMotion(spec.fps, expression=spec.expression)
        self.stage = Stage(portrait.animator, self.idle, self.schedule, self.clock, self.emit)
        self.speaker = Speaker(self.schedule, spec.voice, spec.fps, self.clock.frame_now,
                               self._speech_failed, self.stage.redo_from)
        self.speaker.warm_up()
        self.peers: set[RTCPeerConnection] = set()
        self.audio_in: dict[str, AudioJob] = {}  # audio utterances still arriving
        self.viewers: dict[str, RTCPeerConnection] = {}  # named viewers, to hang up
        self.channels: list[RTCDataChannel] = []
        self.media_s = 0.0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing: asyncio.Event | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    # -- events -----------------------------------------------------------------------
    def emit(self, event: LiveEvent) -> None:
        """To the parent, and to every viewer's "events" channel (any thread)."""
        self.pipe.send(("event", event.to_dict()))
        if self.loop is not None:
            text = json.dumps(event.to_dict())
            with contextlib.suppress(RuntimeError):  # the loop has closed
                self.loop.call_soon_threadsafe(self._to_channels, text)

    def _to_channels(self, text: str) -> None:
        for ch in list(self.channels):
            if ch.readyState == "open":
                with contextlib.suppress(Exception):
                    ch.send(text)

    def _speech_failed(self, uid: str, exc: BaseException) -> None:
        self.emit(LiveEvent("error", uid, self.clock.now(), reason=str(exc)))

    # -- the loop -----------------------------------------------------------------------
    async def serve(self, conn: Connection) -> None:
        self.loop = asyncio.get_running_loop()
        self.closing = asyncio.Event()
        # The clock starts now: the first frame is due as the parent hears "ready".
        self.clock.start = time.monotonic()
        self.stage.start()
        self.speaker.start()
        reader = threading.Thread(target=self._read, args=(conn,), name="facecast-live-cmd",
                                  daemon=True)
        reader.start()
        self.pipe.send(("ready", {"pid": os.getpid(), "width": self.spec.width,
                                  "height": self.spec.height, "fps": self.spec.fps,
                                  "mouth": self.portrait.mouth, "iod": self.portrait.iod,
                                  "clock_start": self.clock.start}))
        self.emit(LiveEvent("ready", None, 0.0))
        ticker = asyncio.create_task(self._tick())
        await self.closing.wait()
        ticker.cancel()
        self.speaker.cancel()
        self.stage.stop()
        self.speaker.stop()
        for pc in list(self.peers):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 2.0)
        self.emit(LiveEvent("closed", None, self.clock.now(), reason="closed"))

    def _read(self, conn: Connection) -> None:
        """Commands from the parent, handed to the loop; EOF (the parent gone) closes."""
        assert self.loop is not None
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = ("close",)
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._dispatch, msg)
            if msg[0] == "close":
                return

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "speak_text":
            _, uid, text, rate, pitch, volume = msg
            self.speaker.submit(TextJob(uid, text, rate, pitch, volume))
        elif kind == "audio_begin":
            _, uid, sample_rate = msg
            self.audio_in[uid] = AudioJob(uid, sample_rate)
            self.speaker.submit(self.audio_in[uid])
        elif kind == "audio_piece":
            self.audio_in[msg[1]].pieces.put(msg[2])
        elif kind == "audio_end":
            self.audio_in.pop(msg[1]).pieces.put(None)
        elif kind == "interrupt":
            self._reply(msg[1], True, self._interrupt())
        elif kind == "answer":
            self._spawn(self._answer_reply(msg[1], msg[2], msg[3]))
        elif kind == "hang_up":
            pc = self.viewers.pop(msg[1], None)
            if pc is not None:
                self.peers.discard(pc)
                self._spawn(pc.close())
        elif kind == "close":
            assert self.closing is not None
            self.closing.set()

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)  # held until done (the loop keeps only weak references)
        task.add_done_callback(self._tasks.discard)

    def _reply(self, rid: int, ok: bool, value: Any) -> None:
        self.pipe.send(("reply", rid, ok, value))

    def _interrupt(self) -> str | None:
        """Cut the speech: the audio from the next packet, the mouth from the first frame
        not rendered yet, and every queued utterance."""
        self.speaker.cancel()
        now = self.clock.frame_now()
        sample = (self.clock.packet_now() + 1) * AUDIO_FRAME
        cut = self.schedule.cut(now + CUT_AHEAD_FRAMES, sample, now)
        self.stage.redo_from(now + CUT_AHEAD_FRAMES)
        return cut

    async def _tick(self) -> None:
        """Count the seconds streamed to at least one connected viewer (billing)."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            if any(pc.connectionState == "connected" for pc in self.peers):
                self.media_s += now - last
            last = now
            self.pipe.send(("tick", self.media_s))

    # -- viewers ----------------------------------------------------------------------
    async def _answer_reply(self, rid: int, sdp: str, viewer: str | None) -> None:
        try:
            answer = await self._answer(sdp, viewer)
        except BaseException as exc:
            self._reply(rid, False, error_tuple(exc))
        else:
            self._reply(rid, True, answer)

    async def _answer(self, offer: str, viewer: str | None = None) -> str:
        """A WHEP viewer: its offer -> our answer, with every ICE candidate in it."""
        from aiortc import (
            RTCConfiguration,
            RTCIceServer,
            RTCPeerConnection,
            RTCRtpSender,
            RTCSessionDescription,
        )

        from facecast.live.ice import offer_loopback_when_alone
        from facecast.live.tracks import LiveAudioTrack, LiveVideoTrack

        offer_loopback_when_alone()
        urls = [u.strip() for u in os.environ.get(ICE_SERVERS_ENV, "").split(",") if u.strip()]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(u) for u in urls]))
        self.peers.add(pc)
        if viewer is not None:
            self.viewers[viewer] = pc

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
            self.channels.append(channel)

            @channel.on("close")
            def on_close() -> None:
                if channel in self.channels:
                    self.channels.remove(channel)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self.peers.discard(pc)
                await pc.close()

        try:
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            except Exception as exc:
                raise InputError(f"the SDP offer cannot be used: {exc}",
                                 code="bad_offer") from exc
            kinds = {t.kind for t in pc.getTransceivers()}
            if not kinds & {"audio", "video"}:
                raise InputError("the SDP offer asks for neither audio nor video",
                                 code="bad_offer")
            if "video" in kinds:
                pc.addTrack(LiveVideoTrack(self.stage, self.clock))
                caps = RTCRtpSender.getCapabilities("video").codecs
                prefs = [c for mime in VIDEO_CODECS for c in caps if c.mimeType == mime]
                prefs += [c for c in caps if c.mimeType == "video/rtx"]
                for t in pc.getTransceivers():
                    if t.kind == "video":
                        t.setCodecPreferences(prefs)
            if "audio" in kinds:
                pc.addTrack(LiveAudioTrack(self.schedule, self.clock))
            _answer_as_dtls_server(pc)
            await pc.setLocalDescription(await pc.createAnswer())
        except BaseException:
            self.peers.discard(pc)
            if viewer is not None:
                self.viewers.pop(viewer, None)
            await pc.close()
            raise
        return pc.localDescription.sdp


def _answer_as_dtls_server(pc: RTCPeerConnection) -> None:
    """Take DTLS's server side (answer ``setup:passive``) where the offer leaves the choice
    (``actpass``, as WHEP players send). aiortc as the client offers only ECDHE-ECDSA
    suites, which a player holding an RSA certificate cannot serve: GStreamer 1.22's
    webrtcbin (and so ``whepsrc``) failed with "no shared cipher". As the server, aiortc
    presents its ECDSA certificate, which every WebRTC client accepts (browsers, aiortc,
    GStreamer). aiortc has no public call for it: its transports' role before the answer
    is what the answer says (``RTCPeerConnection.createAnswer``)."""
    transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    for dtls in transports:
        if getattr(dtls, "_role", None) == "auto":
            dtls._set_role("server")
