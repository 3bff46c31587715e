"""Webhook delivery: queue events as database rows, send them signed, retry with backoff.

An event becomes one :class:`WebhookDelivery` row per receiver, written in the
caller's transaction (so a job's status change and its events commit or roll
back together). :func:`dispatch_due` sends the rows that are due; any number
of processes may call it at once, because each row is first *claimed* with a
conditional UPDATE and only the winner sends. Every attempt (status code,
error, duration) is appended to the row's ``attempts_log``; failures are
retried after ``settings.webhook_retry_delays`` and the row ends ``succeeded``
or ``failed``. Delivery is at-least-once: receivers dedupe on ``webhook-id``.

The built-in ``standard`` format follows the Standard Webhooks spec (JSON
body, ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` headers,
``whsec_`` secrets). Compatible APIs with their own callback shape register an
encoder with :func:`register_format`.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpcore
import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from facecast.errors import ConflictError, InputError, NotFoundError
from facecast.service.db import Database, rowcount
from facecast.service.models import Account, Job, WebhookDelivery, WebhookEndpoint, utcnow
from facecast.service.settings import Settings

# ingest (URL policy, pinned HTTP client) imports PyAV and OpenCV; it is imported where a
# send happens, so queueing events (API, workers) does not pay for that
if TYPE_CHECKING:
    from facecast.service.ingest import IPAddress, UrlPolicy

log = logging.getLogger("facecast.webhooks")

Encoder = Callable[[WebhookDelivery, str], tuple[bytes, dict[str, str]]]

MAX_SENDERS = 8  # concurrent requests per dispatch_due call; sending is I/O-bound
USER_AGENT = "facecast-webhooks/1"
# a claim outlives the send (bounded by the timeout) plus the DNS lookup before it,
# which only the system resolver's own timeouts bound
LEASE_MARGIN_S = 60.0
_DEFAULT_PORTS = {"http": 80, "https": 443}

_FORMATS: dict[str, Encoder] = {}


def new_secret() -> str:
    """A fresh Standard Webhooks signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _msg_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- formats ---------------------------------------------------------------------------------


def register_format(name: str, encode: Encoder) -> None:
    """Make ``name`` usable as a job's ``extra["callback_format"]``.

    ``encode(delivery, secret)`` returns the request body and headers; it runs
    at every attempt, so a timestamp it signs is always fresh. Every process
    that calls :func:`dispatch_due` must have registered the formats it sends.
    """
    # the name is stored in WebhookDelivery.format, a String(16)
    if not name or len(name) > 16:
        raise ValueError(f"a webhook format name needs 1 to 16 characters, not {name!r}")
    _FORMATS[name] = encode


def standard_body(payload: dict[str, Any]) -> bytes:
    """The JSON body that is signed and sent (compact, UTF-8)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def standard_headers(msg_id: str, body: bytes, secret: str) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, signed now with ``secret`` (``whsec_...``)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    signature = Webhook(secret).sign(msg_id, now, body.decode("utf-8"))
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


def _encode_standard(delivery: WebhookDelivery, secret: str) -> tuple[bytes, dict[str, str]]:
    body = standard_body(delivery.payload)
    return body, standard_headers(delivery.msg_id, body, secret)


register_format("standard", _encode_standard)


# -- queueing --------------------------------------------------------------------------------


def _new_delivery(account_id: int, url: str, event_type: str, payload: dict[str, Any], *,
                  fmt: str = "standard", endpoint_id: int | None = None,
                  job_id: int | None = None) -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(
        account_id=account_id, endpoint_id=endpoint_id, job_id=job_id, url=url, format=fmt,
        event_type=event_type, msg_id=_msg_id(), payload=payload, status="pending",
        attempts=0, attempts_log=[], next_attempt_at=now, created_at=now)


def _payload(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "timestamp": _iso(datetime.now(timezone.utc)), "data": data}


def _endpoint_deliveries(session: Session, account_id: int, event_type: str,
                         payload: dict[str, Any], job_id: int | None,
                         only: int | None = None) -> list[WebhookDelivery]:
    query = select(WebhookEndpoint).where(WebhookEndpoint.account_id == account_id)
    if only is not None:
        query = query.where(WebhookEndpoint.id == only)
    else:
        query = query.where(WebhookEndpoint.enabled.is_(True))
    endpoints = session.scalars(query.order_by(WebhookEndpoint.id)).all()
    # an empty events list subscribes to everything; a send aimed at one endpoint
    # (its "send test event" button) ignores the filter
    return [_new_delivery(account_id, ep.url, event_type, payload, endpoint_id=ep.id,
                          job_id=job_id)
            for ep in endpoints if only is not None or not ep.events or event_type in ep.events]


def queue_job_event(session: Session, job: Job, event_type: str,
                    data: dict[str, Any]) -> list[WebhookDelivery]:
    """Queue ``event_type`` for a job's callback URL and its account's endpoints.

    Runs in the caller's transaction. The per-job callback (``job.callback_url``)
    uses ``job.extra["callback_format"]`` (default ``standard``) and is signed
    with the account's ``webhook_secret``; each enabled endpoint subscribed to
    the event gets a ``standard`` delivery signed with its own secret.
    """
    if job.id is None:  # a job added in this same transaction
        session.flush()
    payload = _payload(event_type, data)
    out: list[WebhookDelivery] = []
    if job.callback_url:
        fmt = (job.extra or {}).get("callback_format") or "standard"
        # an unknown format is not refused here: the process finishing a job need not have
        # imported the compat API that registers it; dispatch records it as a failure
        out.append(_new_delivery(job.account_id, job.callback_url, event_type, payload,
                                 fmt=fmt, job_id=job.id))
    out += _endpoint_deliveries(session, job.account_id, event_type, payload, job.id)
    session.add_all(out)
    session.flush()
    return out


def queue_event(session: Session, account_id: int, event_type: str, data: dict[str, Any], *,
                endpoint_id: int | None = None) -> list[WebhookDelivery]:
    """Queue an event that belongs to no job (e.g. ``webhook.test``) for the account's endpoints.

    With ``endpoint_id``, only that endpoint of the account gets it, whatever its
    ``events`` filter says (a disabled one is recorded as failed at dispatch).
    """
    out = _endpoint_deliveries(session, account_id, event_type,
                               _payload(event_type, data), None, only=endpoint_id)
    session.add_all(out)
    session.flush()
    return out


def _signing_secret(session: Session, delivery: WebhookDelivery) -> tuple[str | None, str | None]:
    """``(secret, refusal)``: the key that signs this delivery, or why it must not be sent."""
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None:
            return None, "endpoint_deleted: the webhook endpoint no longer exists"
        if not endpoint.enabled:
            return None, "endpoint_disabled: the webhook endpoint is disabled"
        if not endpoint.secret:
            return None, "no_secret: the webhook endpoint has no secret"
        return endpoint.secret, None
    # a job callback; a row whose endpoint was deleted also has no endpoint_id, and must
    # never go out signed with the account's secret
    job = session.get(Job, delivery.job_id) if delivery.job_id is not None else None
    if job is None or job.callback_url != delivery.url:
        return None, "endpoint_deleted: the webhook endpoint no longer exists"
    account = session.get(Account, delivery.account_id)
    if account is None or not account.webhook_secret:
        return None, "no_secret: the account has no webhook secret"
    return account.webhook_secret, None


def redeliver(session: Session, delivery_id: int) -> WebhookDelivery:
    """Send a finished (failed or succeeded) delivery again, with a fresh round of retries.

    The message keeps its ``msg_id`` (receivers dedupe on it) and its
    ``attempts_log`` history; ``attempts`` counts the new round. A delivery to
    an endpoint takes the endpoint's current URL, so a corrected URL is used.
    Raises NotFoundError for an unknown id and ConflictError for a delivery
    still pending or one whose endpoint was deleted.
    """
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFoundError(f"webhook delivery {delivery_id} does not exist",
                            code="delivery_not_found")
    if delivery.status == "pending":
        # it may be in flight right now; resetting it would let a second sender in
        raise ConflictError(f"webhook delivery {delivery_id} is still pending",
                            code="delivery_pending")
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is not None:
            delivery.url = endpoint.url
    _, refusal = _signing_secret(session, delivery)
    if refusal is not None and refusal.startswith("endpoint_deleted"):
        raise ConflictError(f"webhook delivery {delivery_id} cannot be sent again: its "
                            "endpoint was deleted", code="endpoint_deleted")
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.finished_at = None
    delivery.next_attempt_at = utcnow()
    session.flush()
    return delivery


# -- dispatch --------------------------------------------------------------------------------


@dataclass
class _Attempt:
    """What one send produced, before it is written to the row."""

    at: datetime
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    retry: bool = True  # False: a permanent refusal (blocked URL, unknown format, ...)

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def log_entry(self) -> dict[str, Any]:
        return {"at": _iso(self.at.replace(tzinfo=timezone.utc)), "status_code": self.status_code,
                "error": self.error, "duration_ms": self.duration_ms}


def _lease(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.webhook_timeout_s + LEASE_MARGIN_S)


@dataclass
class _Claim:
    delivery: WebhookDelivery  # detached copy as it was when claimed
    lease: datetime  # next_attempt_at while this process owns the row
    secret: str | None
    refusal: str | None  # set: record a permanent failure instead of sending


def _claim(db: Database, settings: Settings, delivery_id: int,
           due_at: datetime | None) -> _Claim | None:
    """Take the row for this process, or None when another process has it.

    The conditional UPDATE is the lock: of several processes that saw the same
    due row, exactly one matches ``next_attempt_at`` and wins. Pushing
    ``next_attempt_at`` out also means a crashed sender's row is retried once
    the lease ends.
    """
    lease = utcnow() + _lease(settings)
    with db.session() as session:
        won = rowcount(session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.next_attempt_at == due_at)
            .values(next_attempt_at=lease)
            .execution_options(synchronize_session=False)))
        if won != 1:
            return None
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:  # cannot happen: the row was just updated in this transaction
            return None
        secret, refusal = _signing_secret(session, delivery)
        session.expunge(delivery)
    return _Claim(delivery, lease, secret, refusal)


@dataclass
class _Response:
    status_code: int
    location: str | None


def _post(url: str, addresses: list[IPAddress], body: bytes, headers: dict[str, str],
          timeout_s: float) -> _Response:
    """POST to ``url`` connecting only to ``addresses`` (those check_url approved).

    ingest's pinned network backend never resolves the name again, so a name
    that rebinds to a private address after the check gains nothing, and its
    deadline bounds the whole exchange (a receiver trickling bytes included).
    No proxy from the environment is used, and redirects are not followed.
    """
    from facecast.service.ingest import PinnedBackend, shared_ssl_context

    target = httpx.URL(url)
    ssl_context = shared_ssl_context()  # before the clock starts: the first call is slow
    backend = PinnedBackend(deadline=time.monotonic() + timeout_s)
    backend.pin(target.raw_host.decode("ascii"),
                target.port or _DEFAULT_PORTS[target.scheme], addresses)
    core_url = httpcore.URL(scheme=target.raw_scheme, host=target.raw_host, port=target.port,
                            target=target.raw_path)
    # httpx's form of Host (IPv6 literals in brackets); httpcore adds content-length
    headers = {"host": target.netloc.decode("ascii"), **headers}
    timeouts = dict.fromkeys(("connect", "read", "write", "pool"), timeout_s)
    with httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend,
                                 retries=0) as pool, \
            pool.stream("POST", core_url, headers=list(headers.items()), content=body,
                        extensions={"timeout": timeouts}) as resp:
        # the status line is enough; the receiver's body is never read
        location = next((v.decode("latin-1") for k, v in resp.headers
                         if k.lower() == b"location"), None)
        return _Response(resp.status, location)


def _send(settings: Settings, policy: UrlPolicy, delivery: WebhookDelivery,
          secret: str) -> _Attempt:
    from facecast.service.ingest import check_url

    attempt = _Attempt(at=utcnow())
    started = time.monotonic()
    try:
        try:
            addresses = check_url(delivery.url, policy)
        except InputError as exc:
            # bad_url / url_not_allowed are final; download_failed (the name does not
            # resolve, perhaps for now) is worth another try
            attempt.error = f"{exc.code}: {exc.message}"
            attempt.retry = exc.code == "download_failed"
            return attempt
        encode = _FORMATS.get(delivery.format)
        if encode is None:
            attempt.error = f"unknown_format: no encoder registered for {delivery.format!r}"
            attempt.retry = False
            return attempt
        try:
            body, headers = encode(delivery, secret)
        except Exception as exc:  # an encoder bug or a malformed secret will not heal by waiting
            log.exception("webhook delivery %s: encoding failed", delivery.id)
            attempt.error, attempt.retry = f"encode_failed: {exc!r}", False
            return attempt
        headers = {"user-agent": USER_AGENT, **headers}
        try:
            resp = _post(delivery.url, addresses, body, headers, settings.webhook_timeout_s)
            attempt.status_code = resp.status_code
            if 300 <= resp.status_code < 400:
                attempt.error = f"redirect to {resp.location or '?'} not followed"
        except httpcore.TimeoutException as exc:
            attempt.error = f"timeout: {type(exc).__name__}: {exc}"
        except Exception as exc:
            # connection errors, and anything odd, count as a failed attempt to retry:
            # an unrecorded one would leave the row claimed and silent
            if not isinstance(exc, (httpcore.NetworkError, httpcore.ProtocolError)):
                log.exception("webhook delivery %s: unexpected error", delivery.id)
            attempt.error = f"{type(exc).__name__}: {exc}"
        return attempt
    finally:
        attempt.duration_ms = round((time.monotonic() - started) * 1000)


def _record(db: Database, settings: Settings, delivery: WebhookDelivery, lease: datetime,
            attempt: _Attempt) -> None:
    attempts = delivery.attempts + 1
    now = utcnow()
    delays = settings.webhook_retry_delays
    values: dict[str, Any] = {
        "attempts": attempts,
        # a new list, so the JSON column is written as a whole
        "attempts_log": [*(delivery.attempts_log or []), attempt.log_entry()],
    }
    if attempt.ok:
        values.update(status="succeeded", finished_at=now, next_attempt_at=None)
    elif attempt.retry and attempts <= len(delays):
        values.update(next_attempt_at=now + timedelta(seconds=float(delays[attempts - 1])))
    else:
        values.update(status="failed", finished_at=now, next_attempt_at=None)
    with db.session() as session:
        kept = rowcount(session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "pending",
                   WebhookDelivery.next_attempt_at == lease)
            .values(**values)
            .execution_options(synchronize_session=False)))
    if kept != 1:
        # the lease ran out mid-send and another process took the row: its record wins
        log.warning("webhook delivery %s: lease lost, attempt not recorded: %s",
                    delivery.id, attempt.log_entry())
    elif not attempt.ok:
        log.info("webhook delivery %s to %s failed (attempt %d): %s", delivery.id,
                 delivery.url, attempts, attempt.error or f"HTTP {attempt.status_code}")


def _deliver_one(db: Database, settings: Settings, policy: UrlPolicy, delivery_id: int,
                 due_at: datetime | None) -> bool:
    # claimed by the sending thread itself, just before sending, so the lease
    # never runs out while the row waits for a free thread
    claim = _claim(db, settings, delivery_id, due_at)
    if claim is None:
        return False
    if claim.refusal is not None or claim.secret is None:
        attempt = _Attempt(at=utcnow(), error=claim.refusal, retry=False)
    else:
        attempt = _send(settings, policy, claim.delivery, claim.secret)
    _record(db, settings, claim.delivery, claim.lease, attempt)
    return True


def dispatch_due(db: Database, settings: Settings, *, limit: int = 50) -> int:
    """Send up to ``limit`` due deliveries concurrently; returns how many were attempted.

    Safe to call from many processes at once: each row is sent by one of them.
    Target URLs are checked against the URL policy (private addresses refused
    unless allowed) at every attempt, redirects are not followed, and one
    request may take ``settings.webhook_timeout_s`` in all. Call it
    periodically (and soon after queueing, for prompt delivery).
    """
    with db.session() as session:
        due = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.status == "pending",
                   WebhookDelivery.next_attempt_at <= utcnow())
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)).all()
    if not due:
        return 0
    from facecast.service.ingest import UrlPolicy, shared_ssl_context

    policy = UrlPolicy.from_settings(settings)
    shared_ssl_context()  # built once here rather than by every sender thread at once
    attempted = 0
    with ThreadPoolExecutor(max_workers=min(MAX_SENDERS, len(due)),
                            thread_name_prefix="webhook") as pool:
        futures = [pool.submit(_deliver_one, db, settings, policy, row_id, due_at)
                   for row_id, due_at in due]
        for future in futures:
            try:
                attempted += future.result()
            except Exception:
                # the row stays claimed until its lease ends, then it is tried again
                log.exception("webhook dispatch failed")
    return attempted
