"""Webhook delivery against a real HTTP receiver on loopback and a real SQLite database.

The receiver verifies every request with ``standardwebhooks.Webhook(secret).verify``,
as a receiver written from the Standard Webhooks spec would, and answers from a
per-path script (status codes in order, the last one repeating; ``"hang"``
holds the request past the sender's timeout).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from standardwebhooks import Webhook, WebhookVerificationError

from facecast.errors import ConflictError, NotFoundError
from facecast.service import webhooks
from facecast.service.db import Database
from facecast.service.models import Account, Job, WebhookDelivery, WebhookEndpoint
from facecast.service.settings import Settings
from facecast.service.webhooks import (
    dispatch_due,
    new_secret,
    queue_event,
    queue_job_event,
    redeliver,
    register_format,
)

Answer = int | str


@dataclass
class Hit:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    verified: bool | None  # None: no secret known for the path
    at: float  # time.monotonic() on arrival


class _Server(ThreadingHTTPServer):
    # several dispatchers x 8 sender threads connect at once; the default backlog
    # of 5 would drop connections and turn them into connect timeouts
    request_queue_size = 128


class Receiver:
    """A scripted webhook receiver on 127.0.0.1 that records and verifies every request."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.script: dict[str, list[Answer]] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends every "hang"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver._answer(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a short poll interval keeps shutdown() quick at teardown
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        headers = {k.lower(): v for k, v in handler.headers.items()}
        verified: bool | None = None
        if path in self.secrets:
            try:
                Webhook(self.secrets[path]).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self.lock:
            answers = self.script.get(path, [200])
            seen = sum(1 for h in self.hits if h.path == path)
            answer = answers[min(seen, len(answers) - 1)]
            self.hits.append(Hit(path, headers, body, verified, time.monotonic()))
        if answer == "hang":
            self.release.wait(10)
            answer = 200
        assert isinstance(answer, int)
        try:
            handler.send_response(answer)
            if 300 <= answer < 400:
                handler.send_header("location", "/redirected")
            handler.send_header("content-length", "2")
            handler.end_headers()
            handler.wfile.write(b"ok")
        except OSError:
            pass  # the sender gave up (timeout) and closed the connection

    def paths(self) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits]

    def to(self, path: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    rx.thread.start()
    yield rx
    rx.release.set()
    rx.server.shutdown()
    rx.server.server_close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/t.db")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, url_allowlist=["127.0.0.1"],
                    webhook_retry_delays=[0.05, 0.1], webhook_timeout_s=0.5)


@pytest.fixture
def account(db: Database) -> Account:
    with db.session() as session:
        acc = Account(name="acme", webhook_secret=new_secret())
        session.add(acc)
    return acc


def add_endpoint(db: Database, account_id: int, url: str, events: list[str] | None = None,
                 enabled: bool = True) -> WebhookEndpoint:
    with db.session() as session:
        ep = WebhookEndpoint(account_id=account_id, url=url, secret=new_secret(),
                             events=events or [], enabled=enabled)
        session.add(ep)
    return ep


def add_job(db: Database, account_id: int, callback_url: str | None = None,
            extra: dict[str, Any] | None = None) -> int:
    with db.session() as session:
        job = Job(account_id=account_id, kind="talking_photo", status="succeeded",
                  callback_url=callback_url, extra=extra or {})
        session.add(job)
        session.flush()
        return job.id


def emit(db: Database, job_id: int, event_type: str, data: dict[str, Any] | None = None,
         ) -> list[WebhookDelivery]:
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return queue_job_event(session, job, event_type, data or {"id": f"job_{job_id}"})


def delivery(db: Database, delivery_id: int) -> WebhookDelivery:
    with db.session() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        return row


def drain(db: Database, settings: Settings, timeout_s: float = 8.0) -> int:
    """Call dispatch_due until nothing is pending (retries included); returns attempts made."""
    deadline = time.monotonic() + timeout_s
    attempted = 0
    while True:
        attempted += dispatch_due(db, settings)
        with db.session() as session:
            pending = session.scalar(select(func.count()).select_from(WebhookDelivery)
                                     .where(WebhookDelivery.status == "pending"))
        if not pending:
            return attempted
        assert time.monotonic() < deadline, f"{pending} deliveries still pending"
        time.sleep(0.01)  # poll interval; the retry delays are 50-100 ms


def parse_at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))


def test_new_secret_is_a_standard_webhooks_secret() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and a != b
    import base64

    assert len(base64.b64decode(a.removeprefix("whsec_"))) == 24
    body = b'{"x":1}'
    headers = webhooks.standard_headers("msg_1", body, a)
    assert Webhook(a).verify(body, headers) == {"x": 1}


def test_job_event_reaches_callback_and_subscribed_endpoints(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    ep_all = add_endpoint(db, account.id, receiver.url("/all"))
    ep_done = add_endpoint(db, account.id, receiver.url("/done"), events=["job.succeeded"])
    add_endpoint(db, account.id, receiver.url("/off"), enabled=False)
    with db.session() as session:
        other = Account(name="other", webhook_secret=new_secret())
        session.add(other)
        session.flush()
        session.add(WebhookEndpoint(account_id=other.id, url=receiver.url("/other"),
                                    secret=new_secret(), events=[]))
    receiver.secrets = {"/cb": account.webhook_secret, "/all": ep_all.secret,
                        "/done": ep_done.secret}
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))

    done = emit(db, job_id, "job.succeeded", {"id": f"job_{job_id}", "status": "succeeded"})
    failed = emit(db, job_id, "job.failed", {"id": f"job_{job_id}", "status": "failed"})
    assert sorted(d.url.rsplit("/", 1)[1] for d in done) == ["all", "cb", "done"]
    assert sorted(d.url.rsplit("/", 1)[1] for d in failed) == ["all", "cb"]
    assert all(d.job_id == job_id and d.status == "pending" for d in done + failed)
    assert {d.endpoint_id for d in done} == {None, ep_all.id, ep_done.id}

    assert drain(db, settings) == 5
    assert sorted(receiver.paths()) == ["/all", "/all", "/cb", "/cb", "/done"]
    assert all(h.verified for h in receiver.hits)
    by_id = {h.headers["webhook-id"]: h for h in receiver.hits}
    for d in done + failed:
        row = delivery(db, d.id)
        assert row.status == "succeeded" and row.finished_at is not None
        assert row.attempts == 1 and row.attempts_log[0]["status_code"] == 200
        body = json.loads(by_id[row.msg_id].body)
        assert body == row.payload
        assert body["type"] == row.event_type and body["data"]["status"] == row.event_type[4:]
        assert body["timestamp"].endswith("Z")


def test_tampered_body_or_wrong_secret_fails_verification(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))
    emit(db, job_id, "job.succeeded")
    drain(db, settings)
    (hit,) = receiver.hits
    wh = Webhook(account.webhook_secret)
    assert wh.verify(hit.body, hit.headers)["type"] == "job.succeeded"
    tampered = hit.body.replace(b"job.succeeded", b"job.failed")
    assert tampered != hit.body
    with pytest.raises(WebhookVerificationError):
        wh.verify(tampered, hit.headers)
    with pytest.raises(WebhookVerificationError):
        wh.verify(hit.body, {**hit.headers, "webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(hit.body, hit.headers)


def test_retry_after_500_then_success(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    receiver.script["/cb"] = [500, 200]
    receiver.secrets["/cb"] = account.webhook_secret
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))
    (d,) = emit(db, job_id, "job.succeeded")

    assert drain(db, settings) == 2
    row = delivery(db, d.id)
    assert row.status == "succeeded" and row.attempts == 2
    assert [e["status_code"] for e in row.attempts_log] == [500, 200]
    assert all(e["error"] is None and e["duration_ms"] >= 0 for e in row.attempts_log)
    gap = (parse_at(row.attempts_log[1]) - parse_at(row.attempts_log[0])).total_seconds()
    assert gap >= settings.webhook_retry_delays[0]
    first, second = receiver.to("/cb")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == row.msg_id
    assert first.verified and second.verified


def test_retry_after_timeout(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    receiver.script["/cb"] = ["hang", 200]
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))
    (d,) = emit(db, job_id, "job.succeeded")

    assert drain(db, settings) == 2
    row = delivery(db, d.id)
    assert row.status == "succeeded" and row.attempts == 2
    timed_out, ok = row.attempts_log
    assert timed_out["status_code"] is None and timed_out["error"].startswith("timeout")
    assert timed_out["duration_ms"] >= 0.9 * settings.webhook_timeout_s * 1000
    assert ok["status_code"] == 200 and ok["error"] is None
    assert len(receiver.to("/cb")) == 2


def test_failed_after_retries_are_exhausted(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    receiver.script["/cb"] = [503]
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))
    (d,) = emit(db, job_id, "job.succeeded")

    assert drain(db, settings) == len(settings.webhook_retry_delays) + 1
    row = delivery(db, d.id)
    assert row.status == "failed" and row.finished_at is not None
    assert row.next_attempt_at is None
    assert row.attempts == 3 and [e["status_code"] for e in row.attempts_log] == [503] * 3
    assert len(receiver.to("/cb")) == 3
    assert dispatch_due(db, settings) == 0


def test_connect_error_is_retried_then_fails(
        db: Database, settings: Settings, account: Account) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    job_id = add_job(db, account.id, callback_url=f"http://127.0.0.1:{port}/cb")
    (d,) = emit(db, job_id, "job.succeeded")

    drain(db, settings)
    row = delivery(db, d.id)
    assert row.status == "failed" and row.attempts == 3
    assert all(e["status_code"] is None and "ConnectError" in e["error"]
               for e in row.attempts_log)


def test_redirect_is_not_followed(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    receiver.script["/cb"] = [302]
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))
    (d,) = emit(db, job_id, "job.succeeded")

    drain(db, settings)
    row = delivery(db, d.id)
    assert row.status == "failed"
    assert [e["status_code"] for e in row.attempts_log] == [302] * 3
    assert "/redirected" in row.attempts_log[0]["error"]
    assert receiver.paths() == ["/cb"] * 3


def test_blocked_url_fails_without_sending(
        db: Database, account: Account, receiver: Receiver, tmp_path: Path) -> None:
    strict = Settings(home=tmp_path, allow_private_urls=False, url_allowlist=[],
                      webhook_retry_delays=[0.05, 0.1], webhook_timeout_s=0.5)
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))
    (d,) = emit(db, job_id, "job.succeeded")

    assert dispatch_due(db, strict) == 1
    row = delivery(db, d.id)
    assert row.status == "failed" and row.attempts == 1 and row.next_attempt_at is None
    (entry,) = row.attempts_log
    assert entry["status_code"] is None and "url_not_allowed" in entry["error"]
    assert receiver.hits == []


def test_concurrent_dispatchers_send_each_delivery_once(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    ep = add_endpoint(db, account.id, receiver.url("/all"))
    receiver.secrets["/all"] = ep.secret
    n = 24
    with db.session() as session:
        for i in range(n):
            queue_event(session, account.id, "webhook.test", {"i": i})

    # separate engines, as separate processes would have, started together
    dbs = [Database(db.url) for _ in range(3)]
    start = threading.Barrier(len(dbs))
    counts: list[int] = []
    lock = threading.Lock()

    def run(own: Database) -> None:
        start.wait()
        sent = dispatch_due(own, settings, limit=50)
        with lock:
            counts.append(sent)

    threads = [threading.Thread(target=run, args=(d,)) for d in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for d in dbs:
        d.dispose()

    assert len(counts) == len(dbs) and sum(counts) == n
    ids = [h.headers["webhook-id"] for h in receiver.to("/all")]
    assert len(ids) == n and len(set(ids)) == n
    assert all(h.verified for h in receiver.hits)
    with db.session() as session:
        rows = session.scalars(select(WebhookDelivery)).all()
    assert {(r.status, r.attempts) for r in rows} == {("succeeded", 1)}


def test_redeliver(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    ep = add_endpoint(db, account.id, receiver.url("/broken"))
    receiver.script["/broken"] = [500]
    receiver.secrets["/fixed"] = ep.secret
    with db.session() as session:
        (d,) = queue_event(session, account.id, "webhook.test", {"hello": "world"})
    with db.session() as session, pytest.raises(ConflictError):
        redeliver(session, d.id)
    drain(db, settings)
    assert delivery(db, d.id).status == "failed"

    with db.session() as session:  # the owner fixes the URL, then presses "retry"
        session.get(WebhookEndpoint, ep.id).url = receiver.url("/fixed")
    with db.session() as session:
        again = redeliver(session, d.id)
        assert again.status == "pending" and again.attempts == 0
        assert again.finished_at is None and again.url.endswith("/fixed")
    drain(db, settings)
    row = delivery(db, d.id)
    assert row.status == "succeeded" and row.attempts == 1
    assert [e["status_code"] for e in row.attempts_log] == [500, 500, 500, 200]

    with db.session() as session:  # a succeeded delivery can be sent again, same msg id
        redeliver(session, d.id)
    drain(db, settings)
    fixed = receiver.to("/fixed")
    assert len(fixed) == 2 and all(h.verified for h in fixed)
    assert {h.headers["webhook-id"] for h in fixed} == {row.msg_id}
    with db.session() as session, pytest.raises(NotFoundError):
        redeliver(session, 999_999)


@pytest.fixture
def formats(monkeypatch: pytest.MonkeyPatch) -> None:
    # formats registered by a test stay in that test
    monkeypatch.setattr(webhooks, "_FORMATS", dict(webhooks._FORMATS))


def test_registered_format_is_used_for_the_job_callback(
        db: Database, settings: Settings, account: Account, receiver: Receiver,
        formats: None) -> None:
    def encode(d: WebhookDelivery, secret: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"code": 0, "event": d.payload["type"],
                           "job": d.payload["data"]}).encode()
        sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return body, {"content-type": "application/json", "x-test-signature": sig}

    register_format("test-compat", encode)
    ep = add_endpoint(db, account.id, receiver.url("/all"))
    receiver.secrets["/all"] = ep.secret
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"),
                     extra={"callback_format": "test-compat"})
    other_id = add_job(db, account.id, callback_url=receiver.url("/unknown"),
                       extra={"callback_format": "nobody"})
    (cb, _) = emit(db, job_id, "job.succeeded", {"id": "job_x"})
    (unknown, _) = emit(db, other_id, "job.succeeded")
    assert cb.format == "test-compat" and unknown.format == "nobody"

    drain(db, settings)
    (hit,) = receiver.to("/cb")
    assert json.loads(hit.body) == {"code": 0, "event": "job.succeeded", "job": {"id": "job_x"}}
    expected = hmac.new(account.webhook_secret.encode(), hit.body, hashlib.sha256).hexdigest()
    assert hit.headers["x-test-signature"] == expected
    assert "webhook-signature" not in hit.headers
    endpoint_hits = receiver.to("/all")  # endpoints keep the standard format
    assert len(endpoint_hits) == 2 and all(h.verified for h in endpoint_hits)
    assert receiver.to("/unknown") == []
    row = delivery(db, unknown.id)
    assert row.status == "failed" and "unknown_format" in row.attempts_log[0]["error"]
    with pytest.raises(ValueError):
        register_format("a-name-longer-than-16", encode)


def test_queueing_is_part_of_the_callers_transaction(
        db: Database, account: Account, receiver: Receiver) -> None:
    ep = add_endpoint(db, account.id, receiver.url("/all"), events=["webhook.test"])
    add_endpoint(db, account.id, receiver.url("/jobs"), events=["job.succeeded"])
    job_id = add_job(db, account.id, callback_url=receiver.url("/cb"))

    with pytest.raises(RuntimeError), db.session() as session:
        job = session.get(Job, job_id)
        assert len(queue_job_event(session, job, "job.succeeded", {})) == 2
        raise RuntimeError("the job update failed")
    with db.session() as session:
        (d,) = queue_event(session, account.id, "webhook.test", {})
        assert d.endpoint_id == ep.id and d.job_id is None and d.id is not None
    with db.session() as session:
        rows = session.scalars(select(WebhookDelivery)).all()
    assert [(r.endpoint_id, r.event_type) for r in rows] == [(ep.id, "webhook.test")]
    assert rows[0].next_attempt_at is not None and rows[0].msg_id.startswith("msg_")


def test_test_event_to_one_endpoint_ignores_its_filter(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    ep = add_endpoint(db, account.id, receiver.url("/jobs"), events=["job.succeeded"])
    add_endpoint(db, account.id, receiver.url("/all"))
    receiver.secrets["/jobs"] = ep.secret
    with db.session() as session:
        (d,) = queue_event(session, account.id, "webhook.test", {"ping": 1},
                           endpoint_id=ep.id)
    assert d.endpoint_id == ep.id
    drain(db, settings)
    (hit,) = receiver.hits
    assert hit.path == "/jobs" and hit.verified
    assert json.loads(hit.body)["data"] == {"ping": 1}


def test_disabled_or_deleted_endpoint_is_not_sent(
        db: Database, settings: Settings, account: Account, receiver: Receiver) -> None:
    off = add_endpoint(db, account.id, receiver.url("/off"))
    gone = add_endpoint(db, account.id, receiver.url("/gone"))
    job_id = add_job(db, account.id)
    by_url = {d.url: d for d in emit(db, job_id, "job.succeeded")}
    with db.session() as session:
        session.get(WebhookEndpoint, off.id).enabled = False
        # what deleting an endpoint does: its deliveries stay, unlinked
        session.execute(update(WebhookDelivery).where(WebhookDelivery.endpoint_id == gone.id)
                        .values(endpoint_id=None))
        session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == gone.id))

    assert dispatch_due(db, settings) == 2
    assert receiver.hits == []
    disabled = delivery(db, by_url[receiver.url("/off")].id)
    orphan = delivery(db, by_url[receiver.url("/gone")].id)
    assert disabled.status == "failed" and "endpoint_disabled" in disabled.attempts_log[0]["error"]
    # an unlinked delivery must not go out signed with the account's callback secret
    assert orphan.status == "failed" and "endpoint_deleted" in orphan.attempts_log[0]["error"]
    with db.session() as session, pytest.raises(ConflictError):
        redeliver(session, orphan.id)
