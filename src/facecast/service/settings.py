"""Service settings, read from ``FACECAST_*`` environment variables.

Every part has an embedded default that needs no other server (SQLite
database, Huey on SQLite, a local storage folder, in-memory rate limits, all
under ``$FACECAST_HOME``) and one URL that switches it to the distributed form
(``FACECAST_DATABASE_URL=postgresql://...``, ``FACECAST_QUEUE_URL=redis://...``,
``FACECAST_STORAGE_URL=s3://bucket/prefix?endpoint_url=...``). Each rule the
vendors state (queue caps, retention, prices, limits) is a setting here.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from facecast.home import facecast_home
from facecast.rules import (
    LIVE_CPU_PER_SESSION,
    LIVE_IDLE_TIMEOUT_S,
    LIVE_MAX_DURATION_S,
    LIVE_MAX_PER_ACCOUNT,
    LIVE_PRICE_PER_MINUTE,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FACECAST_", extra="ignore")

    home: Path = Field(default_factory=facecast_home)
    database_url: str | None = None  # default sqlite:///$home/service/facecast.db
    queue_url: str | None = None  # default Huey on sqlite:///$home/service/queue.db
    storage_url: str | None = None  # default file://$home/service/storage
    ratelimit_url: str | None = None  # default memory://, or the queue's Redis

    host: str = "127.0.0.1"
    port: int = 8000
    # base of the links handed out; default the request's own scheme://host (see origin.py)
    public_url: str | None = None
    ssl_certfile: Path | None = None  # serve HTTPS with this certificate (PEM) ...
    ssl_keyfile: Path | None = None  # ... and its private key
    # proxies (addresses or CIDRs) whose X-Forwarded-Proto / X-Forwarded-Host are believed
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    workers: int = Field(1, ge=0, le=64)  # worker processes started by `facecast serve`
    api_workers: int = Field(1, ge=1, le=64)  # API processes of `facecast serve`
    secret_key: str | None = None  # signs file URLs; default a random key kept in $home
    # scratch folders of running jobs and uploads; default $home/service/scratch (a local disk)
    scratch_dir: Path | None = None

    # retention (vendors keep results 7 to 30 days)
    result_ttl_s: float = 7 * 86400
    upload_ttl_s: float = 7 * 86400
    url_ttl_s: float = 3600  # lifetime of one signed result URL

    # limits per API key / account
    rate_limit: str = "50/second;2000/minute"  # `limits` notation, per API key
    # failed authentications (HTTP 401) per client address, every API; past it the address
    # is refused (429) until the window has room again, even with a good key
    auth_failure_limit: str = "60/minute"
    max_queued_jobs: int = 8  # queued + running video jobs per account (KreadoAI: 8)
    max_queued_text_removal: int = 4  # subtitle/watermark removal jobs (KreadoAI: 4)
    # a multipart upload of the largest video (KreadoAI: 300 MB), or JSON with base64 media
    max_body_bytes: int = 310 * 1024 * 1024
    max_upload_bytes: int = 300 * 1024 * 1024  # one media file (the kind's own limits apply too)
    max_text_chars: int = 10_000
    # Akool talking avatars are asked for at 3840x2160; a lower cap renders the same picture
    # smaller (e.g. 1280: 1280x720, a ninth of the work) and the records say so
    akool_max_side: int = Field(3840, ge=64, le=3840)

    # untrusted URLs the server downloads (inputs) or posts to (webhooks)
    allow_private_urls: bool = False
    # hosts or CIDRs allowed even when private ("127.0.0.1,10.0.0.0/8")
    url_allowlist: Annotated[list[str], NoDecode] = Field(default_factory=list)
    download_timeout_s: float = 30.0
    download_max_redirects: int = 5
    # URL downloads run in the API's request threads (40): caps on how many at once, so
    # slow servers cannot take them all; past a cap a request is refused at once (429)
    max_downloads: int = Field(16, ge=1)  # per API process
    max_downloads_per_account: int = Field(4, ge=1)

    # credits: what jobs cost, what accounts start with
    price_per_video_second: int = 1
    price_per_100_tts_chars: int = 1
    price_voice_clone: int = 10
    price_avatar_clone: int = 10  # a video avatar: one flat price, charged when it is ready
    admin_initial_credits: int = 1_000_000
    new_account_credits: int = 0

    # live avatars (issue #16): streaming sessions, child processes of the API process
    live_price_per_minute: int = Field(LIVE_PRICE_PER_MINUTE, ge=0)  # per started minute
    live_max_per_account: int = Field(LIVE_MAX_PER_ACCOUNT, ge=0)
    # sessions this machine runs at once; default the CPU cores / live_cpu_per_session
    live_max_sessions: int | None = Field(None, ge=0)
    live_cpu_per_session: float = Field(LIVE_CPU_PER_SESSION, gt=0)
    live_idle_timeout_s: float = Field(LIVE_IDLE_TIMEOUT_S, gt=0)
    live_max_duration_s: float = Field(LIVE_MAX_DURATION_S, gt=0)
    live_start_timeout_s: float = Field(60.0, gt=0)  # a session's face check and set-up
    live_token_ttl_s: float = Field(3600.0, gt=0)  # a signed whep_url stays valid this long
    # where sessions run: "local" (children of the API process that opened them),
    # "workers" (placed on live workers, any API process answers for any stream), or
    # "auto": workers when there are several API processes, else local
    live_placement: Literal["auto", "local", "workers"] = "auto"
    # with workers placement, `facecast serve` also runs a live worker on this machine
    live_local_worker: bool = True
    # a live worker's private RPC server (the API processes call it; keep it off public
    # networks: it is authenticated with a key derived from FACECAST_SECRET_KEY)
    live_worker_host: str = "127.0.0.1"
    live_worker_port: int = Field(0, ge=0, le=65535)  # 0: any free port
    live_worker_url: str | None = None  # how the API reaches it; default http://host:port

    # job execution
    heartbeat_s: float = 5.0  # a running job's worker touches it this often
    lease_s: float = 30.0  # no heartbeat for this long: the worker is gone
    max_attempts: int = 3  # a job whose worker died is retried up to this many runs
    requeue_after_s: float = 600.0  # a queued job nobody claimed is enqueued again
    maintenance_interval_s: float = 1.0
    retention_interval_s: float = 30.0  # how often expired results and uploads are swept
    progress_interval_s: float = 0.5  # at most this often a progress write per job
    worker_nice: int = 10  # workers yield the CPU to the API

    # GET /metrics in the Prometheus text format (no key, like /health: keep it off public
    # networks, or turn it off)
    metrics: bool = True

    # the avatar library: operator folders of portraits / video-avatar packages, previews
    avatar_dirs: Annotated[list[str], NoDecode] = Field(default_factory=list)
    avatar_previews: bool = True  # render library avatars' preview videos in the background
    # expression templates' previews: "all", "off", or a comma list of template keys
    expression_previews: str = "all"

    # webhooks (Standard Webhooks signatures)
    webhook_timeout_s: float = 10.0
    webhook_retry_delays: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 7200.0, 18000.0])

    @field_validator("url_allowlist", "webhook_retry_delays", "avatar_dirs", "trusted_proxies",
                     mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # environment variables give "a,b,c" (or "[a, b, c]") rather than lists
        if isinstance(value, str):
            return [part.strip() for part in value.strip().strip("[]").split(",")
                    if part.strip()]
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("FACECAST_SSL_KEYFILE needs FACECAST_SSL_CERTFILE (the certificate)")
        return self

    @property
    def live_capacity(self) -> int:
        """Live sessions this machine runs at once: the setting, or what its CPU cores
        carry at the measured cost of one session."""
        if self.live_max_sessions is not None:
            return self.live_max_sessions
        return max(1, int((os.cpu_count() or 1) / self.live_cpu_per_session))

    @property
    def live_placed(self) -> bool:
        """Whether live sessions are placed on live workers (else the API's children)."""
        if self.live_placement == "auto":
            return self.api_workers > 1
        return self.live_placement == "workers"

    @property
    def live_rpc_key(self) -> str:
        """The key API processes and live workers share (from the signing key, which every
        server of one service must share for its signed URLs anyway)."""
        return hmac.new(self.signing_key, b"facecast live rpc", hashlib.sha256).hexdigest()

    @property
    def service_dir(self) -> Path:
        return self.home / "service"

    @property
    def scratch_root(self) -> Path:
        return self.scratch_dir or self.service_dir / "scratch"

    @property
    def db_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # one driver for PostgreSQL: psycopg 3
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix):]
            return url
        return f"sqlite:///{self.service_dir / 'facecast.db'}"

    @property
    def queue(self) -> str:
        return self.queue_url or f"sqlite:///{self.service_dir / 'queue.db'}"

    @property
    def storage(self) -> str:
        return self.storage_url or f"file://{self.service_dir / 'storage'}"

    @property
    def ratelimit_storage(self) -> str:
        if self.ratelimit_url:
            return self.ratelimit_url
        if self.queue.startswith(("redis://", "rediss://")):
            return self.queue
        return "memory://"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_certfile else "http"
        return (self.public_url or f"{scheme}://{self.host}:{self.port}").rstrip("/")

    @cached_property
    def signing_key(self) -> bytes:
        """The key for signed URLs: the setting, or one made once and kept in $home."""
        if self.secret_key:
            return self.secret_key.encode()
        path = self.service_dir / "secret.key"
        if not path.exists():
            self.service_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret.{os.getpid()}.tmp")
            tmp.write_text(secrets.token_hex(32), encoding="ascii")
            try:
                os.link(tmp, path)  # of two processes starting at once, the first key wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return path.read_text(encoding="ascii").strip().encode()


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
