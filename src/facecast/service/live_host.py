"""A live worker's sessions: what ``facecast live-worker`` runs for the API processes.

:class:`LiveHost` holds the live sessions placed on this machine (each a
:class:`facecast.live.LiveSession`, a child process that renders, speaks and sends the
WebRTC media) as :class:`facecast.service.live.Stream` objects, with their events'
backlog for the API processes that relay them. It answers what the API forwards (open,
speak, interrupt, a WHEP offer, a viewer leaving, close) and keeps its row in the list
of live workers fresh (:mod:`facecast.service.live_workers`): each heartbeat writes what
the API's reaper needs of each session (viewers, seconds streamed, last activity),
ends here the sessions the API ended while this worker could not be told, and ends
(``process_exited``) those whose process died. Money, caps per account and tokens are
the API's (:mod:`facecast.service.live_placed`); no HTTP here (the RPC server that maps
onto this class is :mod:`facecast.api.live_worker`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from facecast.errors import ConflictError, NotFoundError
from facecast.service import live_workers
from facecast.service.db import Database
from facecast.service.live import ENDED_KEEP_S, Stream, check_sdp, send_closed
from facecast.service.models import utcnow
from facecast.service.scratch import scratch
from facecast.service.settings import Settings

log = logging.getLogger("facecast.live_worker")


class LiveHost:
    """The live sessions of this live worker, and its presence in the database."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.capacity = settings.live_capacity
        self.worker_id: int | None = None
        self.rpc_url = ""
        self._streams: dict[str, Stream] = {}
        self._ended_at: dict[str, float] = {}  # monotonic time each stream ended
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # ---- life ------------------------------------------------------------------------------

    def start(self, rpc_url: str) -> None:
        """Enter the list of live workers at ``rpc_url`` and start the heartbeat."""
        self.rpc_url = rpc_url
        self.worker_id = live_workers.register(self.db, rpc_url, self.capacity)
        self._beat = threading.Thread(target=self._loop, name="facecast-live-worker-beat",
                                      daemon=True)
        self._beat.start()
        log.info("live worker %s at %s: %d sessions", self.worker_id, rpc_url, self.capacity)

    def close_all(self, reason: str) -> None:
        """End every open session (at once: each close waits for its process); their
        ``closed`` events end the event streams the API processes relay."""
        with self._lock:
            open_ = [s for s in self._streams.values() if s.status != "ended"]
        if open_:
            with ThreadPoolExecutor(max_workers=min(16, len(open_))) as pool:
                list(pool.map(lambda s: self._end(s, reason, finish=True), open_))

    def stop(self) -> None:
        """Every session ends (``shutdown``) and the row goes (a clean stop)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=10)
        self.close_all("shutdown")
        if self.worker_id is not None:
            live_workers.unregister(self.db, self.worker_id)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_s):
            try:
                self.beat()
            except Exception:  # a busy database must not stop the heartbeat; next beat
                log.exception("live worker heartbeat failed")

    def beat(self) -> None:
        """One heartbeat: the row and every session's state written; sessions the API
        ended are ended here, those whose process died end (``process_exited``)."""
        with self._lock:
            open_ = [s for s in self._streams.values() if s.status == "live"]
        for stream in open_:
            assert stream.session is not None
            if not stream.session.alive:
                reason = f"process_exited: {stream.engine_end}" if stream.engine_end \
                    else "process_exited"
                self._end(stream, reason, finish=True)
        reports = [self._report(s) for s in open_ if s.status == "live"]
        assert self.worker_id is not None
        try:
            ended = live_workers.beat(self.db, self.worker_id, reports)
        except LookupError:  # pruned after being lost for a day: a new row, a new id
            self.worker_id = live_workers.register(self.db, self.rpc_url, self.capacity)
            ended = {}
        for stream_id, reason in ended.items():
            gone = self._streams.get(stream_id)
            if gone is not None:
                self._end(gone, reason, finish=False)
        self._forget_ended()

    def _report(self, stream: Stream) -> live_workers.Report:
        session = stream.session
        assert session is not None and stream.started is not None
        active = max(session.last_activity, stream.last_event, stream.started,
                     max(list(stream.viewers.values()), default=0.0))
        return live_workers.Report(stream.id, len(stream.viewers), stream.media_seconds,
                                   utcnow() - timedelta(seconds=time.monotonic() - active))

    def _forget_ended(self) -> None:
        cutoff = time.monotonic() - ENDED_KEEP_S
        with self._lock:
            for stream_id, at in list(self._ended_at.items()):
                if at < cutoff:
                    self._streams.pop(stream_id, None)
                    del self._ended_at[stream_id]

    # ---- sessions --------------------------------------------------------------------------

    def open(self, stream_id: str, photo: bytes, suffix: str, *, voice: str | None,
             width: int, height: int, expression: str | None,
             max_duration_s: float) -> dict[str, Any]:
        """Start a session (its face check and portrait set-up) and answer once it
        streams; its portrait is written to a scratch folder that goes at once."""
        from facecast.live import LiveSession, LiveSpec

        with self._lock:
            if stream_id in self._streams:
                raise ConflictError(f"live stream {stream_id} exists already",
                                    code="stream_exists")
            stream = Stream(stream_id, 0, None, width, height, voice, expression,
                            max_duration_s=max_duration_s)
            self._streams[stream_id] = stream
        try:
            with scratch(self.settings.scratch_root, "live-") as folder:
                path = Path(folder) / f"portrait{suffix}"
                path.write_bytes(photo)
                spec = LiveSpec(photo=path, voice=voice, width=width, height=height,
                                expression=expression)
                session = LiveSession(spec, on_event=stream.engine_event)
                stream.session = session
                session.start(timeout=self.settings.live_start_timeout_s)
        except BaseException:
            if stream.session is not None:
                stream.session.close()
            with self._lock:
                self._streams.pop(stream_id, None)
            raise
        with stream._lock:
            stream.status = "live"
            stream.started = session.started_at
        return {"pid": session.pid, "width": width, "height": height}

    def stream(self, stream_id: str) -> Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise NotFoundError(f"no live stream {stream_id!r} on this live worker",
                                code="stream_not_found")
        return stream

    def _session(self, stream_id: str) -> Any:
        stream = self.stream(stream_id)
        if stream.status != "live" or stream.session is None:
            raise ConflictError(f"live stream {stream_id} has ended ({stream.ended_reason})",
                                code="stream_ended")
        return stream.session

    def speak_text(self, stream_id: str, text: str, rate: float, pitch: float,
                   volume: float) -> str:
        session = self._session(stream_id)
        stream = self.stream(stream_id)
        stream.check_queue_room()
        utterance = str(session.speak_text(text, rate=rate, pitch=pitch, volume=volume))
        stream.add_pending(utterance)
        return utterance

    def speak_audio(self, stream_id: str, pieces: Iterable[np.ndarray],
                    sample_rate: int) -> str:
        """Audio still arriving (mono float32 pieces), sent on to the session as it comes."""
        session = self._session(stream_id)
        stream = self.stream(stream_id)
        stream.check_queue_room()
        utterance = str(session.speak_audio_stream(pieces, sample_rate))
        stream.add_pending(utterance)
        return utterance

    def interrupt(self, stream_id: str) -> str | None:
        cut = self._session(stream_id).interrupt()
        stream = self.stream(stream_id)
        with stream._lock:
            stream.pending.clear()
        return None if cut is None else str(cut)

    def watch(self, stream_id: str, offer: str) -> tuple[str, str, int]:
        """A WHEP viewer: ``(viewer id, answer SDP, viewers now)``; the answer carries
        this machine's ICE candidates, so the media goes from here to the player."""
        session = self._session(stream_id)
        stream = self.stream(stream_id)
        check_sdp(offer)
        stream.check_viewer_room()
        viewer = secrets.token_hex(8)
        answer = str(session.answer(offer, viewer=viewer))
        stream.viewers[viewer] = time.monotonic()
        return viewer, answer, len(stream.viewers)

    def hang_up(self, stream_id: str, viewer: str) -> int:
        stream = self.stream(stream_id)
        if stream.viewers.pop(viewer, None) is None:
            raise NotFoundError(f"no viewer {viewer!r} of live stream {stream.id}",
                                code="viewer_not_found")
        if stream.session is not None:
            stream.session.hang_up(viewer)
        return len(stream.viewers)

    def close(self, stream_id: str, reason: str) -> None:
        """The API ended the stream (its row says so already): ``closed`` at once, then
        the process, in the background (the API's caller does not wait for it)."""
        self._end(self.stream(stream_id), reason, finish=False, wait=False)

    def _end(self, stream: Stream, reason: str, *, finish: bool, wait: bool = True) -> None:
        """End a session here once; ``finish``: this worker decided it, so the row ends
        too (the one UPDATE that ends a row gives its slot back); ``wait``: for its
        process to end (else a thread waits)."""
        if not stream.mark_ended(reason):
            return
        if finish:
            try:
                live_workers.finish(self.db, stream.id, reason)
            except Exception:  # the API's reaper ends it when the database is back
                log.exception("live stream %s: its row was not ended", stream.id)
        send_closed(stream, wait=wait)
        with self._lock:
            self._ended_at[stream.id] = time.monotonic()
        log.info("live stream %s ended here: %s", stream.id, reason)

    def open_count(self) -> int:
        with self._lock:
            return sum(s.status != "ended" for s in self._streams.values())
