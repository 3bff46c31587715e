"""Live streams placed on live workers: the API does signalling only (docs/LIVE.md).

:class:`PlacedStreams` answers the same calls as :class:`facecast.service.live.LiveStreams`
(the routes cannot tell them apart) with no session in this process: a new stream takes
a slot on the least-loaded live worker with room (a conditional UPDATE, so API processes
placing at once never overfill one; none: ``capacity_reached``), its row in
``live_sessions`` holds what any API process needs to answer for it, and ``speak``,
``interrupt``, WHEP offers and ends are forwarded to its worker's RPC server
(:mod:`facecast.api.live_worker`), authenticated with the key the API and the workers
derive from the shared secret. The worker's SDP answer carries the worker's own ICE
candidates, so media flows from the worker to the player; events are relayed from the
worker's server-sent events (ids and ``Last-Event-ID`` as they are there).

Money and reaping read the table, from the reaper thread of every API process, each step a
conditional UPDATE (so several never charge a minute twice): each started minute charged,
idle and expired sessions ended, and the sessions of a worker whose heartbeat stopped
for ``lease_s`` ended as ``worker_lost`` and charged no further.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from sqlalchemy import delete, func, select, update

from facecast.errors import ConflictError, FacecastError, LimitError
from facecast.live.session import rebuild_error
from facecast.rules import DEFAULT_PITCH, DEFAULT_RATE, DEFAULT_VOLUME, MAX_AUDIO_S
from facecast.service import live_workers
from facecast.service.accounts import Principal, book, lock_account
from facecast.service.db import rowcount
from facecast.service.jobs import check_credits
from facecast.service.live import (
    CAPACITY_RETRY_S,
    ENDED_KEEP_S,
    ID_PREFIX,
    MINUTE_S,
    REAP_INTERVAL_S,
    LiveStreams,
    Stream,
    StreamEvent,
    check_sdp,
)
from facecast.service.live_workers import OPEN
from facecast.service.models import LiveSessionRow, LiveWorker, utcnow

if TYPE_CHECKING:
    from facecast.live import LiveSpec
    from facecast.service.assets import MediaSource
    from facecast.service.core import Service

log = logging.getLogger("facecast.live")

RPC_TIMEOUT_S = 15.0  # a forwarded call (a WHEP answer gathers ICE: a few hundred ms)
PRUNE_EVERY_S = 60.0  # how often ended rows past ENDED_KEEP_S are deleted
# a row still "starting" this long after the start timeout lost its API process mid-way
START_GRACE_S = 30.0


def _at(now: float | None) -> datetime:
    """``now`` (POSIX seconds, as ``time.time()``; None: now) as the table's naive UTC."""
    if now is None:
        return utcnow()
    return datetime.fromtimestamp(now, timezone.utc).replace(tzinfo=None)


class PlacedStreams(LiveStreams):
    """Live streams on live workers, any API process answering for any of them."""

    def __init__(self, service: Service) -> None:
        super().__init__(service)
        self.db = service.db
        self._http = httpx.Client(timeout=RPC_TIMEOUT_S)
        self._auth = {"Authorization": f"Bearer {self.settings.live_rpc_key}"}
        self._pruned = 0.0

    # ---- the table -------------------------------------------------------------------------

    def _stream(self, row: LiveSessionRow, worker: str | None) -> Stream:
        stream = Stream(row.id, row.account_id, row.avatar_id, row.width, row.height, row.voice,
                        row.expression, max_duration_s=row.max_duration_s,
                        created_at=row.created_at, status=row.status, ended_at=row.ended_at,
                        ended_reason=row.ended_reason, minutes_charged=row.minutes_charged,
                        credits_charged=row.credits_charged, worker=worker or "",
                        reported_viewers=row.viewers, reported_media_s=row.media_seconds)
        if row.started_at is not None:  # on this process's clock, as a local stream's
            stream.started = time.monotonic() - (utcnow() - row.started_at).total_seconds()
        return stream

    def _find(self, stream_id: str) -> Stream | None:
        with self.db.session() as session:
            found = session.execute(
                select(LiveSessionRow, LiveWorker.rpc_url)
                .outerjoin(LiveWorker, LiveWorker.id == LiveSessionRow.worker_id)
                .where(LiveSessionRow.id == stream_id)).first()
        return None if found is None else self._stream(found[0], found[1])

    def of_account(self, principal: Principal) -> list[Stream]:
        shown = utcnow() - timedelta(seconds=ENDED_KEEP_S)
        with self.db.session() as session:
            found = session.execute(
                select(LiveSessionRow, LiveWorker.rpc_url)
                .outerjoin(LiveWorker, LiveWorker.id == LiveSessionRow.worker_id)
                .where(LiveSessionRow.account_id == principal.account_id,
                       (LiveSessionRow.status != "ended") | (LiveSessionRow.ended_at >= shown))
                .order_by(LiveSessionRow.created_at.desc())).all()
        return [self._stream(row, url) for row, url in found]

    def open_count(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(LiveSessionRow)
                                      .where(LiveSessionRow.status.in_(OPEN))) or 0)

    def capacity(self) -> int:
        return live_workers.capacity(self.db, self.settings.lease_s)

    # ---- the calls to a worker -------------------------------------------------------------

    def stop(self) -> None:
        super().stop()
        self._http.close()

    def _call(self, stream: Stream, method: str, path: str = "", *,
              timeout: float = RPC_TIMEOUT_S, **kwargs: Any) -> dict[str, Any]:
        """One call about the stream to its worker (``/sessions/{id}/{path}``)."""
        url = f"{stream.worker}/sessions/{stream.id}" + (f"/{path}" if path else "")
        return self._request(stream, method, url, timeout, **kwargs)

    def _request(self, stream: Stream, method: str, url: str, timeout: float,
                 **kwargs: Any) -> dict[str, Any]:
        """One call to the stream's worker: its answer, or its error raised again here
        (``live_failed`` when the worker cannot be reached)."""
        try:
            r = self._http.request(method, url, headers=self._auth, timeout=timeout, **kwargs)
        except httpx.HTTPError as exc:
            raise FacecastError(f"the live worker of stream {stream.id} did not answer "
                                f"({type(exc).__name__})", code="live_failed") from exc
        try:
            body = r.json()
        except ValueError:
            body = None
        if r.status_code == 200 and isinstance(body, dict):
            return body
        if isinstance(body, dict) and isinstance(body.get("error"), list):
            raise rebuild_error(tuple(body["error"]))  # type: ignore[arg-type]
        raise FacecastError(f"the live worker of stream {stream.id} answered "
                            f"{r.status_code}", code="live_failed")

    # ---- create ----------------------------------------------------------------------------

    def _count_mine(self, session: Any, account_id: int) -> int:
        return int(session.scalar(select(func.count()).select_from(LiveSessionRow).where(
            LiveSessionRow.account_id == account_id, LiveSessionRow.status.in_(OPEN))) or 0)

    def _too_many(self, mine: int) -> LimitError:
        cap = self.settings.live_max_per_account
        return LimitError(f"this account already has {mine} live streams open (the limit "
                          f"is {cap}); end one first", code="too_many_streams", limit=cap)

    def _no_room(self) -> LimitError:
        capacity = self.capacity()
        return LimitError(f"every live worker is running all the live streams its CPU "
                          f"carries ({capacity} in all); try again later",
                          code="capacity_reached", limit=capacity,
                          retry_after=CAPACITY_RETRY_S)

    def _check_caps(self, principal: Principal) -> None:
        """A first look (before the portrait is fetched): the claims come later."""
        with self.db.session() as session:
            mine = self._count_mine(session, principal.account_id)
            room = session.scalar(select(func.count()).select_from(LiveWorker).where(
                LiveWorker.last_seen >= live_workers.alive_after(self.settings.lease_s),
                LiveWorker.sessions < LiveWorker.capacity))
        if mine >= self.settings.live_max_per_account:
            raise self._too_many(mine)
        if not room:
            raise self._no_room()

    def _reserve(self, principal: Principal, avatar_id: int | None, width: int, height: int,
                 voice: str | None, expression: str | None) -> Stream:
        """A slot on a worker, then the row under the account's cap (one locked
        transaction); the slot goes back when the account is over its cap."""
        worker = live_workers.claim(self.db, self.settings.lease_s)
        if worker is None:
            raise self._no_room()
        try:
            with self.db.session() as session:
                lock_account(session, principal.account_id)
                mine = self._count_mine(session, principal.account_id)
                if mine >= self.settings.live_max_per_account:
                    raise self._too_many(mine)
                row = LiveSessionRow(
                    id=ID_PREFIX + secrets.token_hex(8), account_id=principal.account_id,
                    worker_id=worker.id, avatar_id=avatar_id, width=width, height=height,
                    voice=voice, expression=expression, status="starting",
                    max_duration_s=self.settings.live_max_duration_s, minutes_charged=0,
                    credits_charged=0, viewers=0, media_seconds=0.0, created_at=utcnow(),
                    last_activity=utcnow())
                session.add(row)
                session.flush()
                stream = self._stream(row, worker.rpc_url)
        except BaseException:
            with self.db.session() as session:
                live_workers.release(session, worker.id)
            raise
        return stream

    def _charge(self, stream_id: str, account_id: int, charged: int) -> bool:
        """Charge minute ``charged + 1`` of an open stream: True when this call did; False
        when it was charged already (another API process) or the stream ended. Raises
        ``insufficient_credits`` when the account cannot pay it."""
        price = self.settings.live_price_per_minute
        minute = charged + 1
        with self.db.session() as session:
            lock_account(session, account_id)
            won = session.execute(update(LiveSessionRow).where(
                LiveSessionRow.id == stream_id, LiveSessionRow.status.in_(OPEN),
                LiveSessionRow.minutes_charged == charged).values(
                minutes_charged=minute,
                credits_charged=LiveSessionRow.credits_charged + price))
            if not rowcount(won):
                return False
            if price > 0:  # refused here, the UPDATE above is rolled back with it
                check_credits(session, account_id, price,
                              what=f"minute {minute} of live stream {stream_id}")
                book(session, account_id, -price, kind="charge",
                     note=f"live stream {stream_id}: minute {minute}")
        return True

    def _charge_minute(self, stream: Stream) -> None:
        if self._charge(stream.id, stream.account_id, stream.minutes_charged):
            stream.minutes_charged += 1
            stream.credits_charged += self.settings.live_price_per_minute

    def _open(self, stream: Stream, spec: LiveSpec) -> None:
        import base64

        opening = {"id": stream.id, "photo": base64.b64encode(spec.photo.read_bytes())
                   .decode("ascii"), "suffix": spec.photo.suffix, "voice": spec.voice,
                   "width": spec.width, "height": spec.height, "expression": spec.expression,
                   "max_duration_s": stream.max_duration_s}
        self._request(stream, "POST", f"{stream.worker}/sessions",
                      self.settings.live_start_timeout_s + RPC_TIMEOUT_S, json=opening)
        stream.started = time.monotonic()  # the worker runs it (a failure now closes it)
        with self.db.session() as session:
            won = rowcount(session.execute(update(LiveSessionRow).where(
                LiveSessionRow.id == stream.id, LiveSessionRow.status == "starting").values(
                status="live", started_at=utcnow(), last_activity=utcnow())))
        if not won:  # its worker was lost while it started
            raise ConflictError(f"live stream {stream.id} was ended while it started",
                                code="stream_ended")
        stream.status = "live"

    def _discard(self, stream: Stream, exc: BaseException) -> None:
        """A stream that did not open: closed on its worker, its row and slot gone, its
        minute refunded."""
        if stream.started is not None:
            with contextlib.suppress(FacecastError):
                self._call(stream, "DELETE", params={"reason": "start_failed"})
        with self.db.session() as session:
            row = session.get(LiveSessionRow, stream.id)
            if row is not None:
                if row.status in OPEN:
                    live_workers.release(session, row.worker_id)
                session.delete(row)
            if stream.credits_charged:
                book(session, stream.account_id, stream.credits_charged, kind="refund",
                     note=f"live stream {stream.id} did not start: "
                          f"{getattr(exc, 'code', type(exc).__name__)}")

    # ---- ends, money and the reaper --------------------------------------------------------

    def close_all(self, reason: str) -> None:
        """Nothing: an API process stopping leaves the streams to their workers (and to
        the other API processes)."""

    def _end(self, stream: Stream, reason: str, wait: bool = True) -> None:
        """End a stream once (its row), then its session on its worker (``closed``
        with the reason goes out from there; the worker closes the process in the
        background, so ``wait`` changes nothing); a lost worker is not asked."""
        if not live_workers.finish(self.db, stream.id, reason):
            return
        stream.status, stream.ended_reason, stream.ended_at = "ended", reason, utcnow()
        if reason != "worker_lost" and stream.worker:
            try:
                self._call(stream, "DELETE", params={"reason": reason})
            except FacecastError:  # its heartbeat hears of the end from the table
                log.warning("live stream %s: its worker did not hear of the end", stream.id)
        log.info("live stream %s ended: %s", stream.id, reason)

    def end(self, principal: Principal, stream_id: str) -> Stream:
        self._end(self.get(principal, stream_id), "deleted")
        return self.get(principal, stream_id)

    def tick(self, now: float | None = None) -> None:
        """One round (every API process runs it; each step is a conditional UPDATE):
        the streams of lost workers end (``worker_lost``, on the real clock); each live
        stream past its time ends; each started minute is charged, and a stream whose
        account cannot pay ends. ``now``: POSIX seconds (``time.time()``)."""
        at = _at(now)
        for stream_id in live_workers.lost(self.db, self.settings.lease_s):
            stream = self._find(stream_id)
            if stream is not None:
                self._end(stream, "worker_lost")
        with self.db.session() as session:
            rows = session.scalars(select(LiveSessionRow).where(
                LiveSessionRow.status.in_(OPEN))).all()
        abandoned = utcnow() - timedelta(seconds=self.settings.live_start_timeout_s +
                                         START_GRACE_S)
        for row in rows:
            stream = self._stream(row, None)
            if row.status == "starting" or row.started_at is None:
                if row.created_at < abandoned:  # its API process died while it started
                    self._end(stream, "start_abandoned")
                continue
            reason = self._why_end_row(row, at)
            if reason is not None:
                self._end(self._find(row.id) or stream, reason)
                continue
            due = int((at - row.started_at).total_seconds() // MINUTE_S) + 1
            charged = row.minutes_charged
            try:
                while charged < due and self._charge(row.id, row.account_id, charged):
                    charged += 1
            except LimitError:
                self._end(self._find(row.id) or stream, "insufficient_credits")
        if time.monotonic() - self._pruned >= PRUNE_EVERY_S:
            self._pruned = time.monotonic()
            with self.db.session() as session:
                session.execute(delete(LiveSessionRow).where(
                    LiveSessionRow.status == "ended",
                    LiveSessionRow.ended_at < utcnow() - timedelta(seconds=ENDED_KEEP_S)))

    def _why_end_row(self, row: LiveSessionRow, at: datetime) -> str | None:
        assert row.started_at is not None
        if (at - row.started_at).total_seconds() >= row.max_duration_s:
            return "max_duration"
        active = max(row.last_activity, row.started_at)
        if (at - active).total_seconds() >= self.settings.live_idle_timeout_s:
            return "idle"
        return None

    # ---- commands, forwarded ---------------------------------------------------------------

    def speak(self, principal: Principal, stream_id: str, *, text: str | None = None,
              audio: MediaSource | None = None, rate: float = DEFAULT_RATE,
              pitch: float = DEFAULT_PITCH, volume: float = DEFAULT_VOLUME) -> str:
        stream = self.get(principal, stream_id)
        self._ensure_live(stream)
        self._one_of(text, audio)
        if text is not None:
            said = self._call(stream, "POST", "speak", json={
                "text": self._spoken_text(text, rate, pitch, volume), "rate": rate,
                "pitch": pitch, "volume": volume})
            return str(said["id"])
        assert audio is not None
        # decoded here and sent on as it is decoded: the worker's session speaks the
        # first half second while the rest is on its way
        with self._speech_audio(principal, audio) as sound:

            def body() -> Iterator[bytes]:
                for piece in sound:
                    yield np.asarray(piece, "<f4").reshape(-1).tobytes()

            said = self._call(stream, "POST", "audio", content=body(),
                              params={"sample_rate": sound.sample_rate},
                              timeout=MAX_AUDIO_S)
        return str(said["id"])

    def interrupt(self, principal: Principal, stream_id: str) -> str | None:
        stream = self.get(principal, stream_id)
        self._ensure_live(stream)
        cut = self._call(stream, "POST", "interrupt")["interrupted"]
        return None if cut is None else str(cut)

    def _viewers(self, stream: Stream, viewers: int) -> None:
        with self.db.session() as session:
            session.execute(update(LiveSessionRow).where(LiveSessionRow.id == stream.id)
                            .values(viewers=viewers, last_activity=utcnow()))

    def watch(self, stream: Stream, offer: str) -> tuple[str, str]:
        """A WHEP viewer of the stream's worker: the answer carries that worker's ICE
        candidates, so the player's media comes from there, not through here."""
        self._ensure_live(stream)
        check_sdp(offer)
        answer = self._call(stream, "POST", "whep", json={"sdp": offer})
        self._viewers(stream, int(answer["viewers"]))
        return str(answer["viewer"]), str(answer["sdp"])

    def stop_watching(self, stream: Stream, viewer: str) -> None:
        left = self._call(stream, "DELETE", f"whep/{viewer}")
        self._viewers(stream, int(left["viewers"]))

    # ---- events, relayed -------------------------------------------------------------------

    async def events(self, stream: Stream, after: int | None
                     ) -> AsyncIterator[StreamEvent | None] | None:
        """The stream's events after ``after`` from its worker, as they come (None items:
        a keepalive); None when it has ended and nothing was missed (the caller answers
        204). A worker that went away (lost) before the ``closed`` event: the table's
        reason, in a ``closed`` event made here, once the reaper has ended the stream."""
        client = httpx.AsyncClient(timeout=httpx.Timeout(RPC_TIMEOUT_S, read=None))
        response: httpx.Response | None = None
        if stream.worker:
            with contextlib.suppress(httpx.HTTPError):
                response = await client.send(client.build_request(
                    "GET", f"{stream.worker}/sessions/{stream.id}/events", headers=self._auth,
                    params={} if after is None else {"after": after}), stream=True)
        if response is not None and response.status_code != 200:
            await response.aclose()
            if response.status_code == 204:
                await client.aclose()
                return None
            response = None
        if response is None and stream.status == "ended" and after is not None:
            await client.aclose()  # the worker no longer knows: nothing more to send
            return None
        return self._relay(client, response, stream, after)

    async def _relay(self, client: httpx.AsyncClient, response: httpx.Response | None,
                     stream: Stream, after: int | None
                     ) -> AsyncIterator[StreamEvent | None]:
        last = after or 0
        try:
            if response is not None:
                try:
                    async for event in _parse(response):
                        if event is not None:
                            last = event.seq
                        yield event
                        if event is not None and event.type == "closed":
                            return
                except httpx.HTTPError:
                    pass  # the worker went away
                finally:
                    await response.aclose()
            # no closed event: the worker went away. Wait for the reaper to end the stream
            # (lost after lease_s) and say why; still open by then, this response ends and
            # the client reconnects with its Last-Event-ID.
            deadline = time.monotonic() + self.settings.lease_s + 3 * REAP_INTERVAL_S
            while time.monotonic() < deadline:
                seen = await asyncio.to_thread(self._find, stream.id)
                if seen is None:
                    return
                if seen.status == "ended":
                    yield StreamEvent(last + 1, "closed", {
                        "type": "closed", "stream_id": stream.id, "utterance_id": None,
                        "t": round(seen.media_seconds, 3), "word": None,
                        "reason": seen.ended_reason})
                    return
                await asyncio.sleep(REAP_INTERVAL_S)
        finally:
            await client.aclose()


async def _parse(response: httpx.Response) -> AsyncIterator[StreamEvent | None]:
    """Server-sent events as the worker writes them (facecast.api.live_events)."""
    import json

    seq, kind, data = 0, "", ""
    async for line in response.aiter_lines():
        if line.startswith(": keepalive"):
            yield None
        elif line.startswith("id: "):
            seq = int(line[4:])
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and kind:
            yield StreamEvent(seq, kind, json.loads(data))
            kind, data = "", ""
