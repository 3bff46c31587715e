"""Kling wire values <-> :class:`facecast.service.core.Service` calls.

Everything Kling-specific lives here: status names, error codes and their
HTTP statuses, the task shape (ids as strings, times in ms), Kling's own
input rules (checked before a job exists, so a refusal creates nothing and
costs nothing), and the callback body sent on each status change.

Error codes are Kling's published table: 1000-1004 authentication, 1100s
account, 1200 bad request / 1201 illegal value / 1202 no such method / 1203 no
such resource, 1300s policy and limits, 5000s server errors.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from facecast.api.compat.kit import ErrorTable, VendorError
from facecast.errors import (
    ConflictError,
    FacecastError,
    InputError,
    LimitError,
    NotFoundError,
)
from facecast.pipeline.specs import check_speech_choice
from facecast.rules import MAX_PROMPT_CHARS
from facecast.service.accounts import AuthError, Principal
from facecast.service.assets import MediaSource
from facecast.service.core import JobOptions, RenderOptions, Service
from facecast.service.models import Asset, Job, WebhookDelivery, utcnow

from . import wire

MB = 1024 * 1024
IMAGE_MAX_BYTES = 10 * MB
SOUND_MAX_BYTES = 5 * MB
SOUND_MIN_S, SOUND_MAX_S = 2.0, 300.0
EXTERNAL_ID_MAX_CHARS = 200  # the jobs table's column
AUDIO_ID_MAX_AGE = timedelta(days=30)
PAGE_NUM_RANGE, PAGE_SIZE_RANGE = (1, 1000), (1, 500)
MODES = ("std", "pro")
IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg"}
SOUND_TYPES = {"audio/mpeg": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav",
               "audio/mp4": ".m4a", "audio/aac": ".aac"}
# Kling std renders 720p and pro 1080p: a bigger photo is scaled down to this long side
MAX_LONG_SIDE = {"std": 1280, "pro": 1920}

STATUS = {"queued": "submitted", "running": "processing", "succeeded": "succeed",
          "failed": "failed", "canceled": "failed", "expired": "failed"}

OK_MESSAGE = "SUCCEED"

# a scheme in front means a URL (ingest refuses all but http/https); anything else is base64
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class KlingError(VendorError):
    """A refusal in Kling's terms: Kling code, message, HTTP status (sent as is)."""


# facecast errors -> (HTTP status, Kling code)
ERRORS = ErrorTable(
    by_code={
        "rate_limited": (429, 1302),
        "too_many_downloads": (429, 1302),  # requests over a limit of the server's, as a rate
        "too_many_queued_jobs": (429, 1303),
        "insufficient_credits": (429, 1102),
        "forbidden": (403, 1103),
        "storage_full": (503, 5001),  # Kling's "server temporarily unavailable"
    },
    by_class=((AuthError, (401, 1000)), (NotFoundError, (404, 1203)),
              ((InputError, ConflictError), (400, 1201)), (LimitError, (429, 1300))),
    failure=(500, 5000))


def from_facecast(exc: FacecastError) -> KlingError:
    """The Kling refusal for a service error."""
    status, code, message, headers = ERRORS.translate(exc)
    return KlingError(code, message, status, headers)


def new_request_id() -> str:
    return str(uuid.uuid4())


def ms(moment: datetime | None) -> int:
    """Unix time in ms of a naive-UTC database time (or an aware one)."""
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


# ---- tasks ---------------------------------------------------------------------------------


def _updated(job: Job) -> datetime:
    times = [t for t in (job.created_at, job.started_at, job.heartbeat_at, job.finished_at)
             if t is not None]
    return max(times)


def _failure(job: Job) -> str:
    if job.status == "expired":
        return "the result was deleted when its retention time ended [result_expired]"
    if job.error_code:
        return f"{job.error_message or job.error_code} [{job.error_code}]"
    return "the task failed"


def _videos(service: Service, job: Job) -> list[wire.Video]:
    files = service.job_files(job)
    if "video" not in files:
        return []
    info = (job.result or {}).get("info", {})
    return [wire.Video(id=f"{job.id}-video", url=files["video"]["url"],
                       watermark_url=files["watermarked"]["url"] if "watermarked" in files
                       else "",
                       duration=_seconds(float(info.get("duration") or 0.0)))]


def task(service: Service, job: Job, *, status: str | None = None,
         updated: datetime | None = None) -> wire.Task:
    """The job as Kling's task. ``status`` (a facecast status) renders the job as it was at
    that status change, for callbacks sent after the job moved on."""
    status = status or job.status
    kling_status = STATUS.get(status, "failed")
    return wire.Task(
        task_id=str(job.id), task_status=kling_status,  # type: ignore[arg-type]
        task_status_msg=_failure(job) if kling_status == "failed" else "",
        task_info=wire.TaskInfo(external_task_id=job.external_id or ""),
        task_result=wire.TaskResult(
            videos=_videos(service, job) if status == "succeeded" else []),
        watermark_info=wire.WatermarkInfoOut(enabled=bool(job.params.get("watermark"))),
        final_unit_deduction=str(job.cost or 0) if status == "succeeded" else "0",
        created_at=ms(job.created_at), updated_at=ms(updated or _updated(job)))


def created_task(job: Job) -> wire.CreatedTask:
    return wire.CreatedTask(
        task_id=str(job.id), task_status=STATUS.get(job.status, "failed"),  # type: ignore[arg-type]
        task_info=wire.TaskInfo(external_task_id=job.external_id or ""),
        created_at=ms(job.created_at), updated_at=ms(_updated(job)))


def find_task(service: Service, principal: Principal, task_id: str) -> Job:
    """A Kling task by its task_id or, failing that, by its external_task_id."""
    if task_id.isascii() and task_id.isdigit() and len(task_id) <= 18:
        try:
            job = service.job(principal, int(task_id))
            if job.origin == "kling":
                return job
        except NotFoundError:
            pass
    try:
        job = service.job_by_external_id(principal, task_id)
        if job.origin == "kling":
            return job
    except NotFoundError:
        pass
    raise KlingError(1203, f"no avatar task with task_id or external_task_id {task_id!r}", 404)


def list_tasks(service: Service, principal: Principal, page_num: int, page_size: int
               ) -> list[wire.Task]:
    for name, value, (low, high) in (("pageNum", page_num, PAGE_NUM_RANGE),
                                     ("pageSize", page_size, PAGE_SIZE_RANGE)):
        if not low <= value <= high:
            raise KlingError(1201, f"{name} must be {low} to {high}, not {value}", 400)
    rows, _total = service.list_jobs(principal, origin="kling", offset=(page_num - 1) * page_size,
                                     limit=page_size)
    return [task(service, row) for row in rows]


# ---- create --------------------------------------------------------------------------------


def _given(value: str | None) -> str | None:
    """Kling's examples send "" for fields left out."""
    return value if value is not None and value.strip() else None


def _bad(field: str, message: str, reason: str) -> KlingError:
    return KlingError(1201, f"{field}: {message} [{reason}]", 400)


def _source(value: str, max_bytes: int, filename: str) -> MediaSource:
    if _URL.match(value.strip()):
        return MediaSource(url=value.strip(), max_bytes=max_bytes)
    # Kling documents a 'data:' prefix as an error: only the bare base64 string
    return MediaSource(base64=value, allow_data_uri=False, max_bytes=max_bytes,
                       filename=filename)


def _job_id(audio_id: str) -> int:
    number = audio_id.strip().removeprefix("job_")
    if not (number.isascii() and number.isdigit()) or len(number) > 18:
        raise _bad("audio_id", f"{audio_id!r} is not the id of a TTS result", "bad_audio_id")
    return int(number)


class Creator:
    """One create call: Kling's rules, cheapest first, then the service's job."""

    def __init__(self, service: Service, principal: Principal,
                 body: wire.Image2VideoCreate) -> None:
        self.service, self.principal, self.body = service, principal, body

    def run(self) -> Job:
        body = self.body
        image = _given(body.image)
        audio_id, sound_file = _given(body.audio_id), _given(body.sound_file)
        prompt = body.prompt if body.prompt else None
        external_id = _given(body.external_task_id)
        callback_url = _given(body.callback_url)
        if image is None:
            raise _bad("image", "an image URL or base64 string is required", "missing_image")
        try:
            # the speech rule of every door (audio_id names a TTS result: Kling's text);
            # Kling's document gives it a code of its own
            check_speech_choice(sound_file, audio_id)
        except InputError:
            raise _bad("audio_id/sound_file", "give exactly one of audio_id and sound_file",
                       "bad_audio_choice") from None
        if body.mode not in MODES:
            raise _bad("mode", f"must be std or pro, not {body.mode!r}", "bad_mode")
        if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
            raise _bad("prompt", f"{len(prompt)} characters; at most {MAX_PROMPT_CHARS}",
                       "prompt_too_long")
        if external_id is not None:
            self._check_external_id(external_id)
        if callback_url is not None:
            self._check_callback(callback_url)
        sound = self._sound_file(sound_file) if sound_file else self._tts_audio(audio_id or "")
        photo = self._image(image)
        watermark = bool(body.watermark_info and body.watermark_info.enabled)
        options = RenderOptions(size=self._size(photo), quality=body.mode, watermark=watermark,
                                prompt=prompt)
        opts = JobOptions(external_id=external_id, callback_url=callback_url, origin="kling",
                          extra={"callback_format": "kling"} if callback_url else None)
        job, created = self.service.create_talking_photo(
            self.principal, photo=MediaSource(asset_id=photo.id),
            audio=MediaSource(asset_id=sound.id), options=options, opts=opts)
        if not created:  # another request took this external_task_id a moment ago
            raise self._duplicate(external_id or "", job)
        return job

    # -- cheap checks

    def _duplicate(self, external_id: str, job: Job) -> KlingError:
        return _bad("external_task_id", f"{external_id!r} is already used by task {job.id}; "
                    "it must be unique within the account", "duplicate_external_task_id")

    def _check_external_id(self, external_id: str) -> None:
        if len(external_id) > EXTERNAL_ID_MAX_CHARS:
            raise _bad("external_task_id", f"at most {EXTERNAL_ID_MAX_CHARS} characters",
                       "external_task_id_too_long")
        try:
            job = self.service.job_by_external_id(self.principal, external_id)
        except NotFoundError:
            return
        raise self._duplicate(external_id, job)

    def _check_callback(self, url: str) -> None:
        # checked before any media is fetched (the service checks it again at create)
        from facecast.service.ingest import UrlPolicy, check_url

        try:
            check_url(url, UrlPolicy.from_settings(self.service.settings))
        except InputError as exc:
            raise _bad("callback_url", exc.message, exc.code) from None

    # -- media

    def _asset(self, field: str, source: MediaSource, kinds: set[str]) -> Asset:
        try:
            return self.service.assets.from_source(self.principal.account_id, source, kinds,
                                                   field)
        except InputError as exc:
            if exc.code == "unsupported_media":
                # ingest's own wording names every kind facecast reads; Kling's list is shorter
                expected = ".jpg/.jpeg/.png image" if kinds == {"image"} else \
                    ".mp3/.wav/.m4a/.aac audio"
                raise _bad(field, f"not a readable {expected}", "unsupported_media") from None
            raise

    def _sound(self, field: str, asset: Asset) -> Asset:
        if asset.content_type not in SOUND_TYPES:
            raise _bad(field, f"{asset.content_type} is not accepted; use .mp3, .wav, .m4a or "
                       ".aac", "unsupported_audio_format")
        seconds = float(asset.info.get("duration") or 0.0)
        if not SOUND_MIN_S <= seconds <= SOUND_MAX_S:
            raise _bad(field, f"the audio is {seconds:.2f} s long; it must be "
                       f"{SOUND_MIN_S:g} to {SOUND_MAX_S:g} s", "bad_audio_duration")
        return asset

    def _sound_file(self, value: str) -> Asset:
        source = _source(value, SOUND_MAX_BYTES, "sound_file")
        return self._sound("sound_file", self._asset("sound_file", source, {"audio"}))

    def _tts_audio(self, audio_id: str) -> Asset:
        job_id = _job_id(audio_id)
        try:
            job = self.service.job(self.principal, job_id)
        except NotFoundError:
            raise _bad("audio_id", f"no TTS result with id {audio_id!r}", "audio_not_found") \
                from None
        if job.kind != "tts":
            raise _bad("audio_id", f"{audio_id!r} is a {job.kind} task, not a TTS result",
                       "audio_not_found")
        if job.status != "succeeded":
            raise _bad("audio_id", f"the TTS task {audio_id!r} is {job.status}, not finished "
                       "successfully", "audio_not_ready")
        if job.finished_at is not None and utcnow() - job.finished_at > AUDIO_ID_MAX_AGE:
            raise _bad("audio_id", "only audio made within the last 30 days can be used",
                       "audio_too_old")
        source = MediaSource(job_file=(job_id, "audio"))
        return self._sound("audio_id", self._asset("audio_id", source, {"audio"}))

    def _image(self, value: str) -> Asset:
        asset = self._asset("image", _source(value, IMAGE_MAX_BYTES, "image"),
                            {"image"})
        if asset.content_type not in IMAGE_TYPES:
            raise _bad("image", f"{asset.content_type} is not accepted; use .jpg, .jpeg or "
                       ".png", "unsupported_image_format")
        verdict = self.service.avatars.check(self.principal.account_id,
                                             MediaSource(asset_id=asset.id), "kling")
        if not verdict.get("accepted"):
            reason = verdict.get("reason") or "no_face"
            raise _bad("image", verdict.get("message") or reason, reason)
        return asset

    def _size(self, photo: Asset) -> str:
        width, height = int(photo.info.get("width") or 0), int(photo.info.get("height") or 0)
        limit = MAX_LONG_SIDE[self.body.mode]
        if not width or not height or max(width, height) <= limit:
            return "source"
        scale = limit / max(width, height)
        return f"{max(2, round(width * scale / 2) * 2)}x{max(2, round(height * scale / 2) * 2)}"


def create(service: Service, principal: Principal, body: wire.Image2VideoCreate) -> Job:
    return Creator(service, principal, body).run()


# ---- callbacks -----------------------------------------------------------------------------


def _event_time(payload: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(payload.get("timestamp")))
    except ValueError:
        return None


def callback_body(service: Service, delivery: WebhookDelivery) -> dict[str, Any]:
    """The task as it was at the delivery's status change, with fresh result URLs."""
    if delivery.job_id is None:
        raise ValueError(f"delivery {delivery.id} is about no job")
    with service.db.session() as session:
        job = session.get(Job, delivery.job_id)
        if job is None:
            raise ValueError(f"job {delivery.job_id} of delivery {delivery.id} is gone")
        session.expunge(job)
    status = (delivery.payload.get("data") or {}).get("status") or job.status
    return task(service, job, status=status,
                updated=_event_time(delivery.payload)).model_dump(mode="json")
