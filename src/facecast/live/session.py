"""The parent's handle on one live session: starts its process, relays commands and events.

:class:`LiveSession` is what the API holds. It checks what it can in the caller's
process (the spec, the text, the ranges: bad input fails at once, with no round
trip), spawns the session's own process (:mod:`facecast.live.process`) and talks
to it over a pipe. A reader thread takes the child's messages: events go to
``on_event``, replies wake the waiting caller. Every method may be called from any
thread. The parent never imports aiortc or renders: signalling only.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from facecast import errors
from facecast.errors import FacecastError, InputError
from facecast.live.spec import LiveEvent, LiveSpec, check_spec
from facecast.media.audio import Audio

JOIN_S = 5.0  # how long close() waits for the process before it is killed
REPLY_S = 5.0  # how long interrupt() waits for the process's answer


def rebuild_error(value: tuple[str, str, str, dict[str, Any]]) -> FacecastError:
    """The child's error as the parent's own exception class (code and details kept)."""
    name, message, code, details = value
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, FacecastError)):
        cls = FacecastError
    return cls(message, code=code, **details)


class LiveSession:
    """One avatar streaming live (see /work/notes/live_interface.md for the contract)."""

    def __init__(self, spec: LiveSpec,
                 on_event: Callable[[LiveEvent], None] | None = None) -> None:
        check_spec(spec)
        self.spec = spec
        self.on_event = on_event
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._rids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._closed = False
        self._reader: threading.Thread | None = None
        self._started_at = 0.0
        self._last_activity = 0.0
        self._media_s = 0.0
        self.pid: int | None = None
        # from the process once started: pid, width, height, fps, and where the face is:
        # "mouth" (x, y) and "iod" (eye distance) in pixels of the streamed picture
        self.info: dict[str, Any] = {}

    # -- life -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Spawn the session's process and wait until it streams (FaceCheckError or
        InputError for a portrait that cannot be used; FacecastError on a timeout)."""
        from facecast.live import process

        if self._proc is not None or self._closed:
            raise errors.ConflictError("the live session was started already")
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=process.main, args=(theirs, self.spec),
                           name="facecast-live", daemon=True)
        proc.start()
        theirs.close()
        self._proc, self._conn = proc, ours
        try:
            if not ours.poll(timeout):
                raise FacecastError(f"the live session did not start in {timeout:g} s",
                                    code="live_failed")
            msg = ours.recv()
        except (EOFError, OSError) as exc:
            self._kill()
            raise FacecastError("the live session's process ended while starting",
                                code="live_failed") from exc
        except BaseException:
            self._kill()
            raise
        if msg[0] == "failed":
            self._kill()
            raise rebuild_error(msg[1])
        self.pid = int(msg[1]["pid"])
        self.info = dict(msg[1])
        self._started_at = self._last_activity = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="facecast-live-events",
                                        daemon=True)
        self._reader.start()

    def close(self) -> None:
        """End the session and its process (idempotent)."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        self._send(("close",), quiet=True)
        proc = self._proc
        if proc is not None:
            proc.join(JOIN_S)
        self._kill()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(JOIN_S)

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(JOIN_S)
            if proc.is_alive():
                proc.kill()
                proc.join(JOIN_S)
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()

    # -- commands ---------------------------------------------------------------------
    def answer(self, offer_sdp: str, timeout: float = 10.0, *, viewer: str | None = None
               ) -> str:
        """A viewer's SDP offer -> the session's SDP answer (ICE gathered, no trickle).
        A ``viewer`` name lets :meth:`hang_up` end that viewer alone later."""
        if not isinstance(offer_sdp, str) or "m=" not in offer_sdp:
            raise InputError("the SDP offer is empty or has no media", code="bad_offer")
        self._touch()
        return str(self._request("answer", offer_sdp, viewer, timeout=timeout))

    def hang_up(self, viewer: str) -> None:
        """End one named viewer's connection (its media stops; the others' go on)."""
        self._send(("hang_up", viewer), quiet=True)

    def speak_text(self, text: str, *, rate: float = 1.0, pitch: float = 0.0,
                   volume: float = 1.0) -> str:
        """Queue ``text`` to be spoken; its utterance id. Bad text or ranges: InputError now."""
        from facecast.speech.piper_tts import checked_text
        from facecast.speech.synth import check_ranges

        text = checked_text(text)
        check_ranges(rate, pitch, volume)
        uid = _new_id()
        self._touch()
        self._send(("speak_text", uid, text, float(rate), float(pitch), float(volume)))
        return uid

    def speak_audio(self, audio: Audio) -> str:
        """Queue decoded mono audio to be spoken (mouth from the sound); its utterance id."""
        samples = np.asarray(audio.samples, np.float32)
        if samples.ndim != 1 or not len(samples):
            raise InputError("the audio has no samples (or is not mono)", code="empty_audio")
        return self.speak_audio_stream([samples], audio.sample_rate)  # one piece, all here

    def speak_audio_stream(self, pieces: Iterable[np.ndarray], sample_rate: int) -> str:
        """Queue audio still being decoded (mono float32 ``pieces`` at ``sample_rate``;
        decode at the session's 48 kHz to spare it resampling piece by piece): each piece
        goes to the session as it comes, so speech starts before the last is decoded.
        Returns the utterance id once every piece is sent. An error raised by ``pieces``
        part-way ends the utterance with what was sent (it plays, then ends) and is
        raised here; none at all is ``empty_audio``."""
        uid = _new_id()
        self._touch()
        self._send(("audio_begin", uid, int(sample_rate)))
        sent = 0
        try:
            for piece in pieces:
                samples = np.asarray(piece, np.float32).reshape(-1)
                if len(samples):
                    self._send(("audio_piece", uid, samples))
                    sent += len(samples)
        finally:
            self._send(("audio_end", uid))
        if not sent:
            raise InputError("the audio has no samples", code="empty_audio")
        return uid

    def interrupt(self) -> str | None:
        """Silence the avatar now; the id of the utterance cut, or None."""
        self._touch()
        value = self._request("interrupt", timeout=REPLY_S)
        return None if value is None else str(value)

    # -- state --------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return (not self._closed and self._proc is not None and self._proc.is_alive())

    @property
    def started_at(self) -> float:
        return self._started_at

    @property
    def last_activity(self) -> float:
        return self._last_activity

    @property
    def media_seconds(self) -> float:
        """Seconds streamed to at least one connected viewer so far."""
        return self._media_s

    # -- plumbing -----------------------------------------------------------------------
    def _touch(self) -> None:
        self._last_activity = time.monotonic()

    def _send(self, msg: tuple[Any, ...], quiet: bool = False) -> None:
        if not quiet and not self.alive:
            raise errors.ConflictError("the live session is not running",
                                       code="live_session_closed")
        conn = self._conn
        if conn is None:
            return
        with self._send_lock:
            try:
                conn.send(msg)
            except (OSError, EOFError, BrokenPipeError) as exc:
                if not quiet:
                    raise errors.ConflictError("the live session is not running",
                                               code="live_session_closed") from exc

    def _request(self, kind: str, *args: Any, timeout: float) -> Any:
        rid = next(self._rids)
        done = threading.Event()
        slot: list[Any] = []
        self._waiting[rid] = (done, slot)
        try:
            self._send((kind, rid, *args))
            if not done.wait(timeout):
                raise FacecastError(f"the live session did not answer in {timeout:g} s",
                                    code="live_failed")
        finally:
            self._waiting.pop(rid, None)
        if not slot:
            raise errors.ConflictError("the live session closed", code="live_session_closed")
        ok, value = slot
        if not ok:
            raise rebuild_error(value)
        return value

    def _read(self) -> None:
        """The child's messages until its end of the pipe closes."""
        conn = self._conn
        assert conn is not None
        closed_sent = False
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                break
            if msg[0] == "event":
                event = LiveEvent(**msg[1])
                closed_sent = closed_sent or event.type == "closed"
                self._deliver(event)
            elif msg[0] == "reply":
                waiting = self._waiting.get(msg[1])
                if waiting is not None:
                    waiting[1].extend([msg[2], msg[3]])
                    waiting[0].set()
            elif msg[0] == "tick":
                self._media_s = float(msg[1])
        for done, _slot in list(self._waiting.values()):
            done.set()  # the process is gone: nobody will answer
        if not closed_sent:
            reason = "closed" if self._closed else "process_ended"
            self._deliver(LiveEvent("closed", None, time.monotonic() - self._started_at,
                                    reason=reason))

    def _deliver(self, event: LiveEvent) -> None:
        if self.on_event is not None:
            with contextlib.suppress(Exception):  # a caller's bug must not stop the reader
                self.on_event(event)


def _new_id() -> str:
    return uuid.uuid4().hex[:16]
