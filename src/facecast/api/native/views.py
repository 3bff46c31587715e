"""ORM rows -> native wire models (ids get their ``job_`` / ``ast_`` ... prefixes)."""

from __future__ import annotations

from typing import Any

from facecast.api.native import wire as s
from facecast.service import origin
from facecast.service.core import Service
from facecast.service.live import Stream
from facecast.service.models import (
    Account,
    ApiKey,
    Asset,
    Avatar,
    Job,
    LedgerEntry,
    VendorCredential,
    WebhookDelivery,
    WebhookEndpoint,
)
from facecast.service.workers import WorkerView

# internal bookkeeping in params that callers did not send
_HIDDEN_PARAMS = ("inputs", "avatar_package")


def _job_input(job: Job) -> dict[str, Any]:
    params = {k: v for k, v in job.params.items() if k not in _HIDDEN_PARAMS}
    for name, asset_id in (job.params.get("inputs") or {}).items():
        params[f"{name}_asset_id"] = f"ast_{asset_id}"
    if "avatar_id" in params:
        params["avatar_id"] = f"av_{params['avatar_id']}"
    return params


def job(service: Service, row: Job) -> s.JobOut:
    result = None
    if row.status == "succeeded" and row.result:
        files = {name: s.FileOut(**f) for name, f in service.job_files(row).items()}
        quality = row.result.get("quality")
        result = s.JobResult(files=files, info=row.result.get("info", {}),
                             quality=s.QualityOut(**quality) if quality else None)
    error = s.JobError(code=row.error_code, message=row.error_message or "") \
        if row.error_code and row.status in ("failed", "canceled") else None
    if row.status == "expired":
        error = s.JobError(code="result_expired",
                           message="the result was deleted when its retention time ended")
    return s.JobOut(
        id=f"job_{row.id}", kind=row.kind, status=row.status,  # type: ignore[arg-type]
        progress=round(row.progress * 100), stage=row.stage, input=_job_input(row),
        result=result, error=error, cost_estimate=row.cost_estimate, cost=row.cost,
        external_id=row.external_id, callback_url=row.callback_url, attempts=row.attempt,
        created_at=row.created_at, started_at=row.started_at, finished_at=row.finished_at,
        expires_at=row.expires_at)


def asset(service: Service, row: Asset) -> s.AssetOut:
    return s.AssetOut(
        id=f"ast_{row.id}", kind=row.kind, filename=row.filename,
        content_type=row.content_type, size=row.size, sha256=row.sha256, info=row.info,
        url=service.storage.url(row.storage_key, service.settings.url_ttl_s, row.filename),
        created_at=row.created_at, expires_at=row.expires_at)


def avatar(service: Service, row: Avatar) -> s.AvatarOut:
    urls = service.avatars.urls(row)
    package = (row.info or {}).get("package") or {}
    video = {k: v for k, v in package.items() if k not in ("avatar_id", "prefix", "files",
                                                           "thumbnail", "preview")}
    return s.AvatarOut(
        id=f"av_{row.id}", name=row.name, kind=row.kind,  # type: ignore[arg-type]
        status=row.status,  # type: ignore[arg-type]
        custom=row.account_id is not None, source=row.source,  # type: ignore[arg-type]
        gender=row.gender, age=row.age, style=row.style, region=row.region,
        tags=list(row.tags or []), photo_url=urls["photo"], thumbnail_url=urls["thumbnail"],
        preview_url=urls["preview"], face=row.face,
        video=video if row.kind == "video" and video else None,
        job_id=f"job_{row.job_id}" if row.job_id else None,
        error=s.AvatarError(code=row.error_code, message=row.error_message or "")
        if row.status == "failed" and row.error_code else None,
        created_at=row.created_at)


def voice(base_url: str, v: Any) -> s.VoiceOut:
    return s.VoiceOut(
        id=v.id, name=v.name, language=v.language, region=v.region, gender=v.gender,
        age_group=v.age_group, engine=v.engine, sample_rate=v.sample_rate, custom=v.custom,
        preview_url=f"{base_url}/api/v1/voices/{v.id}/preview")


def endpoint(row: WebhookEndpoint) -> s.WebhookOut:
    return s.WebhookOut(id=f"whe_{row.id}", url=row.url, events=list(row.events or []),
                        description=row.description, enabled=row.enabled, secret=row.secret,
                        created_at=row.created_at)


def delivery(row: WebhookDelivery) -> s.DeliveryOut:
    return s.DeliveryOut(
        id=f"whd_{row.id}", endpoint_id=f"whe_{row.endpoint_id}" if row.endpoint_id else None,
        job_id=f"job_{row.job_id}" if row.job_id else None, url=row.url,
        event_type=row.event_type, msg_id=row.msg_id, status=row.status, attempts=row.attempts,
        attempts_log=list(row.attempts_log or []), payload=row.payload,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        created_at=row.created_at, finished_at=row.finished_at)


def key(row: ApiKey) -> s.KeyOut:
    return s.KeyOut(id=f"key_{row.id}", name=row.name, prefix=row.prefix,
                    created_at=row.created_at, last_used_at=row.last_used_at,
                    revoked_at=row.revoked_at)


def ledger(row: LedgerEntry) -> s.LedgerOut:
    return s.LedgerOut(id=row.id, amount=row.amount, kind=row.kind,
                       job_id=f"job_{row.job_id}" if row.job_id else None,
                       balance_after=row.balance_after, note=row.note,
                       created_at=row.created_at)


def account_brief(row: Account) -> s.AccountBrief:
    return s.AccountBrief(id=f"acc_{row.id}", name=row.name, is_admin=row.is_admin,
                          balance=row.balance, created_at=row.created_at)


def worker(view: WorkerView) -> s.WorkerOut:
    row = view.row
    return s.WorkerOut(id=f"wrk_{row.id}", hostname=row.hostname, pid=row.pid,
                       queue=row.queue,  # type: ignore[arg-type]  # sqlite | redis
                       state=view.state, started_at=row.started_at, last_seen=row.last_seen,
                       job_id=f"job_{row.job_id}" if row.job_id is not None else None,
                       job_kind=row.job_kind, jobs_done=row.jobs_done,
                       jobs_failed=row.jobs_failed)


def credential(row: VendorCredential) -> s.VendorCredentialOut:
    return s.VendorCredentialOut(id=f"vc_{row.id}", vendor=row.vendor, client_id=row.client_id,
                                 name=row.name, created_at=row.created_at,
                                 revoked_at=row.revoked_at)


def stream(service: Service, row: Stream) -> s.StreamOut:
    """A live stream with its WHEP and events URLs (each with a fresh signed token)."""
    base = f"{origin.base(service.settings.base_url)}/api/v1/streams/{row.id}"
    token = service.live.token(row)
    return s.StreamOut(
        id=row.id, status=row.status,  # type: ignore[arg-type]
        avatar_id=f"av_{row.avatar_id}" if row.avatar_id is not None else None,
        width=row.width, height=row.height, voice=row.voice, expression=row.expression,
        whep_url=f"{base}/whep?token={token}", events_url=f"{base}/events?token={token}",
        created_at=row.created_at, expires_at=row.expires_at, ended_at=row.ended_at,
        ended_reason=row.ended_reason, viewers=row.viewer_count,
        media_seconds=round(row.media_seconds, 2), minutes_charged=row.minutes_charged,
        credits_charged=row.credits_charged,
        price_per_minute=service.settings.live_price_per_minute)
