"""Database tables of the service (SQLAlchemy 2 ORM).

The Job row is the source of truth for a piece of work: the queue only carries
wake-ups. Ids are integers; each API shows them in its own form (the native
API as ``job_12``, KreadoAI as a Long, Akool as 24 hex digits, Kling as a
string). Money-like values (credits) are integers; the ledger is the record
and ``Account.balance`` its running sum, changed in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; BIGINT elsewhere
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    webhook_secret: Mapped[str] = mapped_column(String(100))  # signs per-job callbacks
    rate_limit: Mapped[str | None] = mapped_column(String(100))  # overrides the setting
    max_queued_jobs: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))  # shown in lists; the key itself never is
    hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class Asset(Base):
    """A media file the caller gave (upload, base64 or URL), checked by decoding."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # None: a built-in file (a library avatar), usable by every account through its avatar
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # image | audio | video
    filename: Mapped[str] = mapped_column(String(255), default="")
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
    source_url: Mapped[str | None] = mapped_column(Text)
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)  # width, height, duration, ...
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("account_id", "external_id", name="uq_jobs_account_external_id"),
        Index("ix_jobs_account_created", "account_id", "created_at"),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(32))  # talking_photo | tts | voice_clone | ...
    origin: Mapped[str] = mapped_column(String(16), default="native")  # the API that made it
    # queued | running | succeeded | failed | canceled | expired
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    stage: Mapped[str] = mapped_column(String(64), default="")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    cost_estimate: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[int | None] = mapped_column(BigInteger)  # booked on success
    external_id: Mapped[str | None] = mapped_column(String(200))
    callback_url: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what a compat API keeps
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))  # host:pid of the current run
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class LedgerEntry(Base):
    """One credit movement. A job is charged at most once (unique job + kind)."""

    __tablename__ = "ledger"
    __table_args__ = (UniqueConstraint("job_id", "kind", name="uq_ledger_job_kind"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # + grant, - charge
    kind: Mapped[str] = mapped_column(String(16))  # grant | charge | adjust
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(100))  # whsec_... (Standard Webhooks)
    events: Mapped[list[Any]] = mapped_column(default=list)  # empty: every event
    description: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one receiver, with every attempt recorded in ``attempts_log``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_endpoints.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # "standard" (Standard Webhooks headers) or a compat API's own format
    format: Mapped[str] = mapped_column(String(16), default="standard")
    event_type: Mapped[str] = mapped_column(String(64))
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|succeeded|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempts_log: Mapped[list[Any]] = mapped_column(default=list)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class Avatar(Base):
    """A face to animate: a photo (face-checked) or a video avatar (a package made from a
    recording by the ``avatar_clone`` job). Library avatars (built in, or from the
    operator's folders) have no account; custom ones belong to an account."""

    __tablename__ = "avatars"
    __table_args__ = (Index("ix_avatars_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="photo")  # photo | video
    # ready | processing (a video avatar being made) | failed
    status: Mapped[str] = mapped_column(String(16), default="ready")
    source: Mapped[str] = mapped_column(String(16), default="custom",  # builtin|operator|custom
                                        server_default="custom")
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    # library avatars: "eileen_collins", "dir:<folder>/<entry>"; unique so a start adds each once
    builtin_key: Mapped[str | None] = mapped_column(String(100), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(200))  # a vendor API's own id
    gender: Mapped[str | None] = mapped_column(String(16))
    age: Mapped[str | None] = mapped_column(String(16))  # child | young | adult | senior
    style: Mapped[str | None] = mapped_column(String(32))  # professional, casual, ...
    region: Mapped[str | None] = mapped_column(String(32))  # western, asian, ... (Kreado's)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    face: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # face check verdict
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))  # the avatar_clone job
    package_key: Mapped[str | None] = mapped_column(String(500))  # video: storage prefix
    thumbnail_key: Mapped[str | None] = mapped_column(String(500))  # square face crop, jpg
    preview_key: Mapped[str | None] = mapped_column(String(500))  # short talking MP4
    # library photos' preview render: pending | rendering | ready | failed (None: none wanted)
    preview_state: Mapped[str | None] = mapped_column(String(16))
    preview_at: Mapped[datetime | None] = mapped_column(DateTime)  # when it was claimed
    info: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # video facts, files, fingerprint
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class CustomVoice(Base):
    """A cloned voice owned by an account (the profile itself lives in the voice store)."""

    __tablename__ = "custom_voices"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    voice_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime)


class VendorCredential(Base):
    """A client id + secret pair for a vendor API that signs with a shared secret
    (Kling's JWT, Akool's token and callback encryption). The secret is kept
    encrypted with the service's key, as verifying an HMAC needs it in clear."""

    __tablename__ = "vendor_credentials"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    vendor: Mapped[str] = mapped_column(String(16))  # akool | kling
    client_id: Mapped[str] = mapped_column(String(100), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class Worker(Base):
    """A worker process that runs jobs: written when it starts, touched by its heartbeat,
    removed when it stops cleanly. One whose heartbeat is older than ``Settings.lease_s``
    is lost (killed, or its machine gone); see :mod:`facecast.service.workers`."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queue: Mapped[str] = mapped_column(String(16))  # the queue's backend: sqlite | redis
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # the job it runs now (no foreign key: a job row may be purged while a worker lists it)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    job_kind: Mapped[str | None] = mapped_column(String(32))
    jobs_done: Mapped[int] = mapped_column(Integer, default=0)
    jobs_failed: Mapped[int] = mapped_column(Integer, default=0)


class LiveWorker(Base):
    """A live host (``facecast live-worker``, or the one ``facecast serve`` starts) that
    runs live sessions for any API process: its private RPC address, how many sessions
    its CPU carries and how many slots are claimed. Written when it starts, touched by
    its heartbeat; one silent for ``Settings.lease_s`` is lost and its sessions end
    (``worker_lost``). See :mod:`facecast.service.live_workers`."""

    __tablename__ = "live_workers"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    rpc_url: Mapped[str] = mapped_column(String(255))  # http://private-address:port
    capacity: Mapped[int] = mapped_column(Integer)
    sessions: Mapped[int] = mapped_column(Integer, default=0)  # slots claimed (open sessions)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class LiveSessionRow(Base):
    """One live stream placed on a live worker: what any API process needs to answer for
    it (its worker, its state, its money). Ended rows stay for the listing a while."""

    __tablename__ = "live_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # str_<hex>
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    # no foreign key: a lost worker's row may be pruned while its sessions are listed
    worker_id: Mapped[int] = mapped_column(BigInteger, index=True)
    avatar_id: Mapped[int | None] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    voice: Mapped[str | None] = mapped_column(String(200))
    expression: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="starting", index=True)
    max_duration_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(200))
    minutes_charged: Mapped[int] = mapped_column(Integer, default=0)
    credits_charged: Mapped[int] = mapped_column(Integer, default=0)
    # written by the worker's heartbeat (and the viewers by WHEP calls)
    viewers: Mapped[int] = mapped_column(Integer, default=0)
    media_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    last_activity: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
