"""Live avatars (issue #16): the streaming sessions of this API process and their rules.

A session is a :class:`facecast.live.LiveSession`, a child process that renders the
avatar, speaks and sends the WebRTC media. This module does everything else, with no
HTTP in it: who may open one (a cap per account and one per machine, the machine's
derived from the measured CPU cost of a session), what it costs (credits per started
minute on the jobs' ledger, the first charged when it opens), when it ends (deleted,
idle, past its maximum duration, out of credits, its process gone, the server
stopping), the signed tokens of its WHEP URL, and the fan-out of its events to any
number of listeners (the API's server-sent-event streams) with a short backlog, so a
listener that reconnects with ``Last-Event-ID`` misses nothing.

Here sessions live in the API process that opened them (the embedded default, one API
process). With several API processes, or ``FACECAST_LIVE_PLACEMENT=workers``, they are
placed on live workers instead (:mod:`facecast.service.live_placed`, a subclass of
:class:`LiveStreams` with the same calls), and any API process answers for any stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facecast.errors import ConflictError, InputError, LimitError, NotFoundError
from facecast.rules import (
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_VOLUME,
    LIVE_DEFAULT_SIZE,
    LIVE_DEFAULT_SIZE_WITH_ASPECT,
    LIVE_MAX_QUEUED_UTTERANCES,
    LIVE_MAX_VIEWERS,
    MAX_AUDIO_S,
)
from facecast.service.accounts import AuthError, Principal, book, lock_account
from facecast.service.jobs import check_credits
from facecast.service.models import Asset, utcnow
from facecast.service.scratch import scratch

if TYPE_CHECKING:
    from facecast.live import LiveEvent, LiveSession, LiveSpec
    from facecast.media.audio import AudioStream
    from facecast.service.assets import MediaSource
    from facecast.service.core import Service

log = logging.getLogger("facecast.live")

ID_PREFIX = "str_"
BACKLOG = 256  # events kept per stream for listeners that reconnect (Last-Event-ID)
ENDED_KEEP_S = 600.0  # an ended stream is still shown (how it ended, what it cost) this long
ENDED_KEEP_MAX = 1000  # and at most this many ended streams are kept in memory
REAP_INTERVAL_S = 1.0  # how often idle / expired / unpaid sessions are looked for
MINUTE_S = 60.0
CAPACITY_RETRY_S = 30  # Retry-After of a refusal for want of CPU: sessions last minutes
SDP_MAX_CHARS = 64 * 1024  # a WHEP offer is a few kB; more is not an offer


def live_size(photo_w: int, photo_h: int, size: str | None, aspect: str | None
              ) -> tuple[int, int]:
    """A session's frame size in the talking photo's size/aspect vocabulary (the live
    limits, at most 720p's pixels, are checked with the rest of the spec)."""
    from facecast.render.canvas import canvas_size

    if size is None:
        if aspect is None:
            return LIVE_DEFAULT_SIZE
        size = LIVE_DEFAULT_SIZE_WITH_ASPECT
    return canvas_size(photo_w, photo_h, size, aspect)  # bad_size / bad_aspect


def check_sdp(offer: str) -> None:
    """Refuse what cannot be an SDP offer before the session's process sees it."""
    text = offer.strip()
    if len(offer) > SDP_MAX_CHARS:
        raise InputError(f"the SDP offer is over {SDP_MAX_CHARS} characters", code="bad_offer")
    if not text.startswith("v=0") or "\nm=" not in text:
        raise InputError("the body is not an SDP offer (it must start with 'v=0' and have "
                         "media lines)", code="bad_offer")
    if "\nm=video" not in text and "\nm=audio" not in text:
        raise InputError("the SDP offer asks for neither video nor audio", code="bad_offer")


@dataclass(frozen=True)
class StreamEvent:
    """One event of a stream, numbered in order (the SSE ``id``)."""

    seq: int
    type: str
    data: dict[str, Any]


Listener = Callable[[StreamEvent], None]


@dataclass(eq=False)
class Stream:
    """One live session as the service keeps it (memory only: it dies with the process)."""

    id: str
    account_id: int
    avatar_id: int | None
    width: int
    height: int
    voice: str | None
    expression: str | None
    max_duration_s: float
    created_at: datetime = field(default_factory=utcnow)
    status: str = "starting"  # starting | live | ended
    session: LiveSession | None = None
    started: float | None = None  # monotonic time the session was ready
    ended_at: datetime | None = None
    ended_reason: str | None = None
    minutes_charged: int = 0
    credits_charged: int = 0
    viewers: dict[str, float] = field(default_factory=dict)  # WHEP resource -> made (monotonic)
    last_event: float = 0.0  # monotonic time of the last event of speech (not idle while speaking)
    engine_end: str | None = None  # why the session's process said it closed
    # placed on a live worker (facecast.service.live_placed): its RPC address, and what
    # its heartbeat last reported; None here when the session is this process's child
    worker: str | None = None
    reported_viewers: int = 0
    reported_media_s: float = 0.0
    pending: set[str] = field(default_factory=set)  # utterances given out and not yet ended
    _ended: deque[str] = field(default_factory=lambda: deque(maxlen=BACKLOG))  # recent ends
    _seq: int = 0
    _events: deque[StreamEvent] = field(default_factory=lambda: deque(maxlen=BACKLOG))
    _listeners: set[Listener] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(seconds=self.max_duration_s)

    @property
    def media_seconds(self) -> float:
        return self.session.media_seconds if self.session is not None \
            else self.reported_media_s

    @property
    def viewer_count(self) -> int:
        return len(self.viewers) if self.worker is None else self.reported_viewers

    def check_viewer_room(self) -> None:
        """Refuse one more WHEP viewer past LIVE_MAX_VIEWERS (``too_many_viewers``)."""
        if len(self.viewers) >= LIVE_MAX_VIEWERS:
            raise LimitError(f"live stream {self.id} already has {len(self.viewers)} "
                             f"viewers (the limit is {LIVE_MAX_VIEWERS})",
                             code="too_many_viewers", limit=LIVE_MAX_VIEWERS)

    def check_queue_room(self) -> None:
        """Refuse one more utterance past LIVE_MAX_QUEUED_UTTERANCES (``too_many_utterances``)."""
        if len(self.pending) >= LIVE_MAX_QUEUED_UTTERANCES:
            raise LimitError(f"live stream {self.id} already has {len(self.pending)} "
                             f"utterances queued (the limit is {LIVE_MAX_QUEUED_UTTERANCES}); "
                             "wait for one to end, or interrupt", code="too_many_utterances",
                             limit=LIVE_MAX_QUEUED_UTTERANCES)

    def mark_ended(self, reason: str) -> bool:
        """Mark the stream ended, once: False when it already was."""
        with self._lock:
            if self.status == "ended":
                return False
            self.status = "ended"
            self.ended_at = utcnow()
            self.ended_reason = reason
        return True

    def publish(self, type: str, **data: Any) -> None:
        """An event to every listener (any thread; listeners must be thread-safe)."""
        with self._lock:
            self._seq += 1
            event = StreamEvent(self._seq, type, {"type": type, "stream_id": self.id, **data})
            self._events.append(event)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not stop the others
                log.exception("live event listener failed")

    def engine_event(self, event: LiveEvent) -> None:
        """The session's ``on_event`` (its reader thread): forwarded, but its own
        ``closed``, which the service's single ``closed`` (with the service's reason)
        replaces."""
        if event.type == "closed":
            self.engine_end = event.reason or "closed"
            return
        if event.type in ("utterance_started", "word", "utterance_ended", "interrupted"):
            self.last_event = time.monotonic()
        if event.type in ("utterance_ended", "error") and event.utterance_id:
            with self._lock:
                self.pending.discard(event.utterance_id)
                self._ended.append(event.utterance_id)
        self.publish(event.type, utterance_id=event.utterance_id, t=round(event.t, 3),
                     word=event.word, reason=event.reason)

    def add_pending(self, utterance: str) -> None:
        """Count an utterance as queued, unless its end has already been reported (a
        short one can end before its caller is back)."""
        with self._lock:
            if utterance not in self._ended:
                self.pending.add(utterance)

    def listen(self, listener: Listener, after: int | None) -> list[StreamEvent]:
        """Register ``listener``; returns the events it missed: those after ``after`` (a
        reconnecting listener's Last-Event-ID), or for an ended stream its ``closed``."""
        with self._lock:
            if after is not None:
                missed = [e for e in self._events if e.seq > after]
            elif self.status == "ended":
                missed = [e for e in self._events if e.type == "closed"][-1:]
            else:
                missed = []
            self._listeners.add(listener)
        return missed

    def unlisten(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)


def close_session(stream: Stream) -> None:
    """End a session's process (it is given session.JOIN_S, then killed)."""
    assert stream.session is not None
    try:
        stream.session.close()
    except Exception:
        log.exception("closing live stream %s failed", stream.id)


def send_closed(stream: Stream, *, wait: bool) -> None:
    """Tell the stream's followers it ended (``closed``), then end its process: ``wait``
    for it, or a thread does and the caller goes on."""
    stream.publish("closed", reason=stream.ended_reason, utterance_id=None,
                   t=round(stream.media_seconds, 3))
    if stream.session is None:
        return
    if wait:
        close_session(stream)
    else:
        threading.Thread(target=close_session, args=(stream,), daemon=True,
                         name=f"facecast-live-close-{stream.id}").start()


class LiveStreams:
    """The live sessions of this process: create, speak, watch (WHEP), end, reap."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.settings = service.settings
        self._streams: dict[str, Stream] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # ---- life of the reaper ----------------------------------------------------------------

    def start(self) -> None:
        """Start the reaper thread (idle, expired and unpaid sessions end; minutes are
        charged); :meth:`stop` ends it and every session."""
        if self._reaper is None:
            self._stop.clear()
            self._reaper = threading.Thread(target=self._loop, name="facecast-live-reaper",
                                            daemon=True)
            self._reaper.start()

    def stop(self) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=10)
            self._reaper = None
        self.close_all("shutdown")

    def _loop(self) -> None:
        while not self._stop.wait(REAP_INTERVAL_S):
            try:
                self.tick()
            except Exception:  # keep going: one bad round must not stop the reaper
                log.exception("live reaper round failed")

    def close_all(self, reason: str) -> None:
        """End every open session (at once: each close waits for its process)."""
        with self._lock:
            open_ = [s for s in self._streams.values() if s.status != "ended"]
        if open_:
            with ThreadPoolExecutor(max_workers=min(16, len(open_))) as pool:
                list(pool.map(lambda s: self._end(s, reason), open_))

    # ---- create ----------------------------------------------------------------------------

    def create(self, principal: Principal, *, avatar_id: int | None = None,
               photo: MediaSource | None = None, voice: str | None = None,
               size: str | None = None, aspect: str | None = None,
               expression: str | int | None = None) -> Stream:
        """Open a session: checked, capped, its first minute charged, its process ready
        (the face checked and the portrait prepared) before it answers."""
        if (photo is None) == (avatar_id is None):
            raise InputError("give either a photo or an avatar_id", code="bad_request")
        if self.settings.api_workers > 1 and not self.settings.live_placed:
            raise LimitError("live streams placed in the API process need a single API "
                             "process: set FACECAST_LIVE_PLACEMENT=workers (or auto) to "
                             "place them on live workers", code="live_unavailable")
        self.service.check_voice(principal, voice)
        key: str | None = None
        if expression is not None:
            from facecast.motion.expressions import get_template

            key = get_template(expression).key  # unknown_expression
        live_size(512, 512, size, aspect)  # the size's words, before anything is fetched
        with self._lock:
            self._check_caps(principal)  # and the caps (checked again when reserving)
        with self._portrait(principal, avatar_id, photo) as path:
            from facecast.live import LiveSpec, check_spec
            from facecast.media.image import image_header

            # the size as shown, from the header: the session's process decodes it
            width, height = live_size(*image_header(path.read_bytes()).upright_size,
                                      size, aspect)
            spec = LiveSpec(photo=path, voice=voice, width=width, height=height,
                            expression=key)
            check_spec(spec)  # bad_size (over 720p's pixels), ... before anything is held
            stream = self._reserve(principal, avatar_id, width, height, voice, key)
            try:
                self._charge_minute(stream)  # insufficient_credits: nothing opens
                self._open(stream, spec)
            except BaseException as exc:
                self._discard(stream, exc)
                raise
        return stream

    @contextlib.contextmanager
    def _portrait(self, principal: Principal, avatar_id: int | None,
                  photo: MediaSource | None) -> Iterator[Path]:
        """The portrait as a temporary local file, deleted after the session read it."""
        if photo is not None:
            with self.service.assets.temporary(principal.account_id, photo, {"image"},
                                               "photo") as path:
                yield path
            return
        assert avatar_id is not None
        avatar = self.service.avatars.get(principal.account_id, avatar_id)
        if avatar.kind == "video":
            # a video avatar streams from its face-centred still (its motion is recorded;
            # a live session makes its own)
            if avatar.status != "ready" or not avatar.thumbnail_key:
                raise ConflictError(f"video avatar av_{avatar_id} is not ready",
                                    code="avatar_not_ready")
            storage_key, suffix = avatar.thumbnail_key, ".jpg"
        else:
            asset_id = self.service.avatars.photo_asset(principal.account_id, avatar_id)
            with self.service.db.session() as session:
                asset = session.get(Asset, asset_id)
            if asset is None:
                raise NotFoundError(f"avatar av_{avatar_id} has no photo",
                                    code="avatar_not_ready")
            storage_key, suffix = asset.storage_key, Path(asset.filename).suffix
        with scratch(self.settings.scratch_root, "live-") as folder:
            path = folder / f"portrait{suffix}"
            self.service.storage.get_to_path(storage_key, path)
            yield path

    def _reserve(self, principal: Principal, avatar_id: int | None, width: int, height: int,
                 voice: str | None, expression: str | None) -> Stream:
        """A place for a new session under the account's and the machine's caps."""
        with self._lock:
            self._forget_ended()
            self._check_caps(principal)
            stream = Stream(ID_PREFIX + secrets.token_hex(8), principal.account_id, avatar_id,
                            width, height, voice, expression,
                            max_duration_s=self.settings.live_max_duration_s)
            self._streams[stream.id] = stream
        return stream

    def _check_caps(self, principal: Principal) -> None:
        """Refuse a new session past the account's or the machine's cap (hold the lock)."""
        open_ = [s for s in self._streams.values() if s.status != "ended"]
        mine = sum(s.account_id == principal.account_id for s in open_)
        cap = self.settings.live_max_per_account
        if mine >= cap:
            raise LimitError(f"this account already has {mine} live streams open (the limit "
                             f"is {cap}); end one first", code="too_many_streams", limit=cap)
        capacity = self.settings.live_capacity
        if len(open_) >= capacity:
            raise LimitError(f"this server is already running {len(open_)} live streams, all "
                             f"it has CPU for ({capacity}); try again later",
                             code="capacity_reached", limit=capacity, retry_after=CAPACITY_RETRY_S)

    def _open(self, stream: Stream, spec: LiveSpec) -> None:
        from facecast.live import LiveSession

        session = LiveSession(spec, on_event=stream.engine_event)
        stream.session = session
        session.start(timeout=self.settings.live_start_timeout_s)  # face_check_failed, ...
        with stream._lock:
            if stream.status != "starting":  # ended while starting (shutdown)
                raise ConflictError(f"live stream {stream.id} was ended while it started",
                                    code="stream_ended")
            stream.status = "live"
            stream.started = session.started_at
        # (the session's own "ready" event follows through engine_event)

    def _discard(self, stream: Stream, exc: BaseException) -> None:
        """A session that did not open: its process closed, its minute refunded, no trace."""
        if stream.session is not None:
            stream.session.close()
        if stream.credits_charged:
            with self.service.db.session() as session:
                book(session, stream.account_id, stream.credits_charged, kind="refund",
                     note=f"live stream {stream.id} did not start: "
                          f"{getattr(exc, 'code', type(exc).__name__)}")
        with self._lock:
            self._streams.pop(stream.id, None)

    # ---- money -----------------------------------------------------------------------------

    def _charge_minute(self, stream: Stream) -> None:
        """Charge the stream's next minute; ``insufficient_credits`` when the account
        (less what its unfinished jobs hold) cannot pay it."""
        price = self.settings.live_price_per_minute
        minute = stream.minutes_charged + 1
        if price > 0:
            with self.service.db.session() as session:
                lock_account(session, stream.account_id)
                check_credits(session, stream.account_id, price,
                              what=f"minute {minute} of live stream {stream.id}")
                book(session, stream.account_id, -price, kind="charge",
                     note=f"live stream {stream.id}: minute {minute}")
        stream.minutes_charged = minute
        stream.credits_charged += price

    # ---- the reaper ------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """One round: each live session past its time ends; each started minute is
        charged, and a session whose account cannot pay ends. ``now``: monotonic time."""
        now = time.monotonic() if now is None else now
        with self._lock:
            live = [s for s in self._streams.values() if s.status == "live"]
        for stream in live:
            reason = self._why_end(stream, now)
            if reason is not None:
                self._end(stream, reason)
                continue
            assert stream.started is not None
            due = int((now - stream.started) // MINUTE_S) + 1
            while self._charge_due(stream, due):
                pass
        with self._lock:
            self._forget_ended()

    def _charge_due(self, stream: Stream, due: int) -> bool:
        """Charge one more minute if fewer than ``due`` are and the stream is live (under
        its lock: a stream ended meanwhile is charged no further); True when charged. An
        account that cannot pay ends the stream."""
        with stream._lock:
            if stream.status != "live" or stream.minutes_charged >= due:
                return False
            try:
                self._charge_minute(stream)
                return True
            except LimitError:
                pass
        self._end(stream, "insufficient_credits")
        return False

    def _why_end(self, stream: Stream, now: float) -> str | None:
        session = stream.session
        assert session is not None and stream.started is not None
        if not session.alive:
            return f"process_exited: {stream.engine_end}" if stream.engine_end \
                else "process_exited"
        if now - stream.started >= stream.max_duration_s:
            return "max_duration"
        active = max(session.last_activity, stream.last_event, stream.started,
                     max(list(stream.viewers.values()), default=0.0))
        if now - active >= self.settings.live_idle_timeout_s:
            return "idle"
        return None

    def _end(self, stream: Stream, reason: str, wait: bool = True) -> None:
        """End a session once: its ``closed`` event, then its process (``wait``: for it
        to end; else a thread does, and the caller goes on)."""
        if not stream.mark_ended(reason):
            return
        send_closed(stream, wait=wait)
        log.info("live stream %s ended: %s (%d min, %d credits)", stream.id, reason,
                 stream.minutes_charged, stream.credits_charged)

    def _forget_ended(self) -> None:
        """Drop ended streams past ENDED_KEEP_S (and the oldest past ENDED_KEEP_MAX)."""
        cutoff = utcnow() - timedelta(seconds=ENDED_KEEP_S)
        ended = sorted((s for s in self._streams.values() if s.status == "ended"),
                       key=lambda s: s.ended_at or s.created_at)
        for i, stream in enumerate(ended):
            if (stream.ended_at or stream.created_at) < cutoff or \
                    len(ended) - i > ENDED_KEEP_MAX:
                del self._streams[stream.id]

    # ---- reads and commands ----------------------------------------------------------------

    def _find(self, stream_id: str) -> Stream | None:
        return self._streams.get(stream_id)

    def get(self, principal: Principal, stream_id: str) -> Stream:
        stream = self._find(stream_id)
        if stream is None or stream.account_id != principal.account_id:
            raise NotFoundError(f"no live stream with id {stream_id!r}",
                                code="stream_not_found")
        return stream

    def of_account(self, principal: Principal) -> list[Stream]:
        with self._lock:
            mine = [s for s in self._streams.values() if s.account_id == principal.account_id]
        return sorted(mine, key=lambda s: s.created_at, reverse=True)

    def _live(self, stream: Stream) -> LiveSession:
        self._ensure_live(stream)
        assert stream.session is not None
        return stream.session

    @staticmethod
    def _ensure_live(stream: Stream) -> None:
        """``stream_ended`` / ``stream_not_ready`` unless the stream is live."""
        if stream.status != "live" or (stream.session is None and stream.worker is None):
            raise ConflictError(f"live stream {stream.id} has ended ({stream.ended_reason})"
                                if stream.status == "ended" else
                                f"live stream {stream.id} is still starting",
                                code="stream_ended" if stream.status == "ended"
                                else "stream_not_ready")

    def end(self, principal: Principal, stream_id: str) -> Stream:
        stream = self.get(principal, stream_id)
        self._end(stream, "deleted", wait=False)  # the caller need not wait for the process
        return stream

    def speak(self, principal: Principal, stream_id: str, *, text: str | None = None,
              audio: MediaSource | None = None, rate: float = DEFAULT_RATE,
              pitch: float = DEFAULT_PITCH, volume: float = DEFAULT_VOLUME) -> str:
        """Queue an utterance (text in the session's voice, or audio); its id."""
        stream = self.get(principal, stream_id)
        session = self._live(stream)
        self._one_of(text, audio)
        stream.check_queue_room()
        if text is not None:
            utterance = session.speak_text(self._spoken_text(text, rate, pitch, volume),
                                           rate=rate, pitch=pitch, volume=volume)
        else:
            assert audio is not None
            # A file that fails only part-way is spoken up to the fault, then refused here.
            with self._speech_audio(principal, audio) as sound:
                utterance = session.speak_audio_stream(sound, sound.sample_rate)
        stream.add_pending(utterance)
        return utterance

    @staticmethod
    def _one_of(text: str | None, audio: MediaSource | None) -> None:
        """A speak gives text or audio, never both or neither (``bad_request``)."""
        if (text is None) == (audio is None):
            raise InputError("give either text or audio", code="bad_request")

    def _spoken_text(self, text: str, rate: float, pitch: float, volume: float) -> str:
        """A speak's text, checked (control characters, length) with its voice settings."""
        from facecast.speech.synth import check_ranges

        check_ranges(rate, pitch, volume)
        return self.service.check_text(text)

    @contextlib.contextmanager
    def _speech_audio(self, principal: Principal, audio: MediaSource) -> Iterator[AudioStream]:
        """A speak's audio, decoded from a scratch file that is deleted once it is read (a
        session keeps no files), at the session's own rate, piece by piece as it is
        decoded: the first words play while the rest is still being read."""
        from facecast.live.clock import AUDIO_RATE
        from facecast.media.audio import AudioStream

        with self.service.assets.temporary(principal.account_id, audio,
                                           {"audio", "video"}, "audio") as path, \
                self.service.assets.naming("audio"), \
                AudioStream(path, AUDIO_RATE, max_duration=MAX_AUDIO_S) as sound:
            yield sound

    def interrupt(self, principal: Principal, stream_id: str) -> str | None:
        """Cut the utterance being spoken (and drop those queued); the id cut, or None."""
        stream = self.get(principal, stream_id)
        cut = self._live(stream).interrupt()
        with stream._lock:
            stream.pending.clear()  # each gets its utterance_ended; none is queued any more
        return cut

    # ---- WHEP ------------------------------------------------------------------------------

    def token(self, stream: Stream) -> str:
        """A token for the stream's WHEP URL (for players that cannot send the API key):
        ``<expiry>.<HMAC>``, valid until the stream's end at the latest."""
        expires = int(time.time() + min(self.settings.live_token_ttl_s, stream.max_duration_s))
        return f"{expires}.{self._mac(stream.id, expires)}"

    def _mac(self, stream_id: str, expires: int) -> str:
        message = f"whep\n{stream_id}\n{expires}".encode()
        return hmac.new(self.settings.signing_key, message, hashlib.sha256).hexdigest()[:32]

    def by_token(self, stream_id: str, token: str) -> Stream:
        """The stream a WHEP token is for; :class:`AuthError` when it is not valid."""
        expires_text, _, mac = token.partition(".")
        if not expires_text.isdigit() or len(expires_text) > 12 or not hmac.compare_digest(
                mac, self._mac(stream_id, int(expires_text))):
            raise AuthError("this WHEP token is not valid for this stream",
                            code="invalid_token")
        if int(expires_text) < time.time():
            raise AuthError("this WHEP token has expired", code="token_expired")
        stream = self._find(stream_id)
        if stream is None:
            raise NotFoundError(f"no live stream with id {stream_id!r}",
                                code="stream_not_found")
        return stream

    def watch(self, stream: Stream, offer: str) -> tuple[str, str]:
        """A WHEP viewer: the SDP offer answered; ``(viewer id, answer SDP)``."""
        session = self._live(stream)
        check_sdp(offer)
        stream.check_viewer_room()
        viewer = secrets.token_hex(8)
        # bad_offer: one the session's process refuses
        answer = session.answer(offer, viewer=viewer)
        stream.viewers[viewer] = time.monotonic()
        return viewer, answer

    def stop_watching(self, stream: Stream, viewer: str) -> None:
        """A WHEP resource deleted: that viewer's connection ends at once."""
        if stream.viewers.pop(viewer, None) is None:
            raise NotFoundError(f"no viewer {viewer!r} of live stream {stream.id}",
                                code="viewer_not_found")
        if stream.session is not None:
            stream.session.hang_up(viewer)

    def open_count(self) -> int:
        with self._lock:
            return sum(s.status != "ended" for s in self._streams.values())

    def capacity(self) -> int:
        """Sessions that may run at once (this machine's CPU carries)."""
        return self.settings.live_capacity
