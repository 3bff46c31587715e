"""KreadoAI wire values <-> :class:`facecast.service.core.Service` calls.

Everything KreadoAI-specific lives here: the status numbers 1-5, the error
codes (strings, as KreadoAI sends them), the digital-human, video, voice and
removal-task shapes, and KreadoAI's own input rules, checked before a job
exists so that a refusal creates nothing and costs nothing.

KreadoAI's ids are Longs: a video or removal task's ``jobId``/``taskId`` is
the facecast job's integer id, a ``digitalHumanId`` is the avatar's id, an
uploaded photo's ``jobId`` is the avatar it became, an instant clone's ``jobId``
is its ``avatar_clone`` job (the video avatar it makes is listed with
``supportTypeId`` 101), and a TTS ``fileId`` is the TTS job's id (usable as
``audioId`` in the video calls).
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time
from datetime import datetime
from typing import Any

from facecast.api.compat.kit import ErrorTable, VendorError
from facecast.errors import (
    FacecastError,
    FaceCheckError,
    InputError,
    LimitError,
    NotFoundError,
)
from facecast.media.video_reader import CLEAN_LIMITS, MP4_H264_LIMITS, MP4_MOV_LIMITS
from facecast.rules import MAX_AUDIO_S, MIN_AUDIO_S
from facecast.service.accounts import AuthError, Principal
from facecast.service.assets import MediaSource
from facecast.service.composition import CompositionSpec
from facecast.service.core import JobOptions, RenderOptions, Service
from facecast.service.models import Asset, Avatar, Job

from . import wire

MB = 1024 * 1024
IMAGE_MAX_BYTES = 10 * MB
VIDEO_MAX_BYTES = 300 * MB
CLEAN_MAX_BYTES = 200 * MB
TASK_NAME_MAX = 100
PAGE_SIZE_MAX = 100
TTS_DEADLINE_S = 120.0
# getInfo's vipExpireTime for a membership that never ends, in the document's format
NO_EXPIRY = "9999-12-31 23:59:59"
ORIGIN = "kreado"
IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp"}
AUDIO_TYPES = {"audio/mpeg", "audio/wav", "audio/x-wav", "audio/mp4", "audio/x-m4a",
               "audio/aac"}
# 720p canvases: KreadoAI's two ratios at a size two shared cores render quickly
CANVAS = {1: (1280, 720), 2: (720, 1280)}
MASKS = {0: "none", 1: "circle", 2: "rect"}
PHOTO, VIDEO = 100, 101
GENDER_TAGS = {211: "female", 210: "male"}
STYLE_REALISTIC, STYLE_FEATURED, STYLE_PREMIUM = 137, 138, 139
# KreadoAI's region tags -> the library's region metadata (the same vocabulary)
REGION_TAGS = {141: "western", 140: "asian", 142: "japanese_korean", 143: "southeast_asian",
               145: "indian", 144: "middle_eastern", 146: "african"}
# instant avatar clone (5.1): KreadoAI's video rules
CLONE_MIN_SIDE, CLONE_MAX_SIDE = 360, 3840
CLONE_TYPES = {"video/mp4", "video/quicktime"}
# The video rules KreadoAI's documents state (the native API takes more): lip sync "MP4
# or MOV format, encoded with H.264"; the clone and the removal "mp4, mov".
LIP_LIMITS = MP4_H264_LIMITS
CLONE_LIMITS = MP4_MOV_LIMITS
REMOVAL_LIMITS = dataclasses.replace(CLEAN_LIMITS, containers=MP4_MOV_LIMITS.containers)
# emoList is facecast's expression catalogue (motion/expressions.py): the ids are the
# templates' ids, so digitalHuman.templateId picks the template by the same number

OK = "200"
STATUS = {"queued": 1, "running": 2, "succeeded": 3, "failed": 4, "canceled": 4,
          "expired": 5}
BY_STATUS = {1: ["queued"], 2: ["running"], 3: ["succeeded"], 4: ["failed", "canceled"],
             5: ["expired"]}
VIDEO_KINDS = ("talking_photo", "dub_video", "avatar_video")
# KreadoAI's age groups -> facecast's
AGE_GROUPS = {"children": "child", "young": "young", "middle-aged": "adult", "old": "senior"}

LANGUAGES = {
    "en": ("English", "英语"), "cmn": ("Chinese", "中文"), "zh": ("Chinese", "中文"),
    "yue": ("Cantonese", "粤语"), "de": ("German", "德语"), "fr": ("French", "法语"),
    "es": ("Spanish", "西班牙语"), "it": ("Italian", "意大利语"), "ja": ("Japanese", "日语"),
    "ko": ("Korean", "韩语"), "pt": ("Portuguese", "葡萄牙语"), "ru": ("Russian", "俄语"),
    "ar": ("Arabic", "阿拉伯语"), "hi": ("Hindi", "印地语"), "vi": ("Vietnamese", "越南语"),
    "th": ("Thai", "泰语"), "id": ("Indonesian", "印尼语"), "nl": ("Dutch", "荷兰语"),
    "pl": ("Polish", "波兰语"), "tr": ("Turkish", "土耳其语"), "uk": ("Ukrainian", "乌克兰语"),
    "sv": ("Swedish", "瑞典语"), "fa": ("Persian", "波斯语"), "ca": ("Catalan", "加泰罗尼亚语"),
}


class KreadoError(VendorError):
    """A refusal in KreadoAI's terms: the code (a string), a message, the HTTP status (what
    kind of failure it was: KreadoAI answers HTTP 200 with the outcome in ``code``)."""

    default_status = 200


def bad(message: str) -> KreadoError:
    return KreadoError("10002", f"Request parameter error: {message}")


# facecast errors -> (HTTP status, KreadoAI code)
ERRORS = ErrorTable(
    by_code={
        "rate_limited": (429, "429"), "too_many_queued_jobs": (200, "10019"),
        "insufficient_credits": (200, "10017"), "file_too_large": (200, "10007"),
        "video_too_large": (200, "10007"), "bad_audio_duration": (200, "10004"),
        "avatar_not_found": (200, "10020"), "avatar_not_ready": (200, "10020"),
        "job_not_found": (200, "10009"), "asset_not_found": (200, "10009"),
        "face_check_failed": (200, "10010"), "no_face": (200, "10010"),
        "face_lost": (200, "10010"), "multiple_faces": (200, "10010"),
        "face_cut_off": (200, "10010"), "face_too_small": (200, "10010"),
        "not_frontal": (200, "10010"), "unsupported_media": (200, "10008"),
        "download_timeout": (200, "10006"),
        # KreadoAI has no permission code: a refusal reads as its "429" (no KreadoAI
        # route raises it; this keeps what a LimitError(code="forbidden") got)
        "forbidden": (429, "429"),
    },
    by_class=((AuthError, (200, "405")), (NotFoundError, (200, "10009")),
              (InputError, (200, "10002")), (LimitError, (429, "429"))),
    failure=(500, "10001"), failure_prefix="Internal system exception: ")
# facecast codes of a failed download: each operation names its own KreadoAI code
DOWNLOAD_CODES = ("download_failed", "url_not_allowed", "bad_url")


def from_facecast(exc: FacecastError, download_code: str = "10006") -> KreadoError:
    """The KreadoAI refusal for a service error; facecast's reason stays in brackets."""
    status, code, message, headers = ERRORS.translate(
        exc, overrides={c: (200, download_code) for c in DOWNLOAD_CODES})
    return KreadoError(code, message, status, headers)


def new_request_id() -> str:
    # KreadoAI's request ids are 19-digit snowflake-like numbers, sent as strings
    return str(time.time_ns() // 1000 * 1000 + random.randrange(1000))


# ---- small conversions ---------------------------------------------------------------------


def _given(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def long_id(value: Any, field: str) -> int:
    """A KreadoAI Long sent as a number or a string of digits."""
    if isinstance(value, bool) or value is None:
        raise bad(f"{field} is required")
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise bad(f"{field} must be an integer id, not {value!r}")
    return int(text)


def _url(value: str | None, field: str) -> str:
    url = _given(value)
    if url is None:
        raise bad(f"{field} is required")
    if not url.isascii() or any(c.isspace() for c in url):
        # KreadoAI's rule: no Chinese or other special characters in media URLs
        raise bad(f"{field} must not contain Chinese or other non-ASCII characters")
    if not re.match(r"^https?://", url, re.I):
        raise bad(f"{field} must be an http(s) URL")
    return url


def _task_name(value: str | None, required: bool = True) -> str:
    name = _given(value)
    if name is None:
        if required:
            raise bad("taskName is required")
        return ""
    if len(name) > TASK_NAME_MAX:
        raise bad(f"taskName has {len(name)} characters; at most {TASK_NAME_MAX}")
    return name


def _page(index: int, size: int) -> tuple[int, int]:
    if index < 1:
        raise bad(f"pageIndex must be >= 1, not {index}")
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise bad(f"pageSize must be 1 to {PAGE_SIZE_MAX}, not {size}")
    return index, size


def page(items: list[Any], total: int, index: int, size: int) -> dict[str, Any]:
    return {"pageIndex": index, "pageSize": size, "totalCount": total,
            "totalPages": math.ceil(total / size) if size else 0, "data": items}


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _iso(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S") if moment else ""


def _hms(seconds: float) -> str:
    s = int(math.ceil(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def status_of(job: Job) -> int:
    if job.status == "failed" and "timeout" in (job.error_code or ""):
        return 5
    return STATUS.get(job.status, 4)


def _fetch(service: Service, principal: Principal, source: MediaSource, kinds: set[str],
           field: str, download_code: str) -> Asset:
    """One downloaded input, with KreadoAI's download-failure code for that input."""
    try:
        return service.assets.from_source(principal.account_id, source, kinds, field)
    except FacecastError as exc:
        raise from_facecast(exc, download_code) from None


def _asset_url(service: Service, asset_id: int | None) -> str:
    if asset_id is None:
        return ""
    with service.db.session() as session:
        asset = session.get(Asset, asset_id)
        key = asset.storage_key if asset is not None else None
    return service.storage.url(key, service.settings.url_ttl_s) if key else ""


# ---- digital humans ------------------------------------------------------------------------


def digital_human(service: Service, avatar: Avatar) -> dict[str, Any]:
    urls = service.avatars.urls(avatar)
    thumb = urls["thumbnail"] or urls["photo"] or ""
    # a photo avatar without a rendered preview shows its photo there, as KreadoAI's own
    # photo-avatar answers do; a video avatar's "full-body image" is its thumbnail
    photo = urls["photo"] or thumb
    return {"digitalHumanId": avatar.id,
            "supportTypeId": VIDEO if avatar.kind == "video" else PHOTO,
            "digitalHumanThumbnailUrl": thumb, "digitalHumanPhotoUrl": photo,
            "digitalHumanPreviewVideoUrl": urls["preview"] or photo}


def list_avatars(service: Service, principal: Principal, body: wire.AvatarList
                 ) -> dict[str, Any]:
    index, size = _page(body.pageIndex, body.pageSize)
    if body.supportTypeId not in (None, PHOTO, VIDEO):
        raise bad(f"supportTypeId must be 100 or 101, not {body.supportTypeId}")
    if body.cloneDigitalHuman not in (None, 0, 1):
        raise bad("cloneDigitalHuman must be 0 or 1")
    tags, areas = body.tagIds or [], body.areaTypeIds or []
    unknown = [t for t in tags if t not in GENDER_TAGS and
               t not in (STYLE_REALISTIC, STYLE_FEATURED, STYLE_PREMIUM)]
    unknown += [a for a in areas if a not in REGION_TAGS]
    if unknown:
        raise bad(f"unknown tag ids {unknown}: gender 210/211, style 137-139, region 140-146")
    custom = True if body.cloneDigitalHuman == 1 else None
    styles = {t for t in tags if t in (STYLE_REALISTIC, STYLE_FEATURED, STYLE_PREMIUM)}
    style_filter = None
    if styles and STYLE_REALISTIC not in styles:
        # every facecast avatar is a real photo or recording (137); "featured" (138) is the
        # curated library; "premium" (139) is the style metadata the operator gives
        if STYLE_FEATURED in styles:
            if custom:
                return page([], 0, index, size)
            custom = False
        else:
            style_filter = ["premium"]
    ids = None
    if body.digitalHumanId not in (None, ""):
        ids = [long_id(body.digitalHumanId, "digitalHumanId")]
    rows, total = service.avatars.list(
        principal.account_id, custom=custom,
        kind="video" if body.supportTypeId == VIDEO else "photo",
        genders=[GENDER_TAGS[t] for t in tags if t in GENDER_TAGS] or None,
        styles=style_filter,
        regions=[REGION_TAGS[a] for a in areas] or None, ids=ids, ready=True,
        offset=(index - 1) * size, limit=size)
    return page([digital_human(service, a) for a in rows], total, index, size)


def upload_avatar(service: Service, principal: Principal, body: wire.UploadAvatar) -> int:
    url = _url(body.fileUrl, "fileUrl")
    asset = _fetch(service, principal, MediaSource(url=url, max_bytes=IMAGE_MAX_BYTES),
                   {"image"}, "fileUrl", "10006")
    if asset.content_type not in IMAGE_TYPES:
        raise bad(f"fileUrl: {asset.content_type} is not accepted; use jpg, jpeg, png or webp")
    source = MediaSource(asset_id=asset.id)
    try:
        avatar = service.avatars.create(principal.account_id, source, profile="kreado",
                                        name=url.rsplit("/", 1)[-1][:200] or "photo")
    except FaceCheckError as exc:
        code = {"file_too_large": "10007", "image_too_small": "10002",
                "image_too_large": "10002", "bad_aspect_ratio": "10002",
                "unreadable_image": "10008"}.get(exc.code, "10010")
        prefix = "Face check failed" if code == "10010" else "Request parameter error"
        raise KreadoError(code, f"{prefix}: {exc.message} [{exc.code}]") from None
    return avatar.id


def upload_result(service: Service, principal: Principal, body: wire.JobQuery
                  ) -> dict[str, Any]:
    avatar_id = long_id(body.jobId, "jobId")
    try:
        avatar = service.avatars.get(principal.account_id, avatar_id)
    except NotFoundError:
        raise KreadoError("10009", f"Data does not exist: no uploaded photo {avatar_id}") \
            from None
    if avatar.account_id is None:  # built-ins were not uploaded by anyone
        raise KreadoError("10009", f"Data does not exist: no uploaded photo {avatar_id}")
    status = {"ready": 3, "checking": 2, "failed": 4}.get(avatar.status, 4)
    return {"status": status, "digitalHuman": digital_human(service, avatar)}


# ---- instant avatar clone (5.1, 5.2): a video avatar made by an avatar_clone job ---------


def upload_clone(service: Service, principal: Principal, body: wire.CloneVideo) -> int:
    """A video avatar from ``videoUrl`` under KreadoAI's rules (MP4/MOV, 5 s to 10 min,
    360p to 3840p, < 300 MB); the ``jobId`` is the avatar_clone job's id."""
    from facecast.media.video_reader import probe_video

    url = _url(body.videoUrl, "videoUrl")
    asset = _fetch(service, principal, MediaSource(url=url, max_bytes=VIDEO_MAX_BYTES),
                   {"video"}, "videoUrl", "10005")
    if asset.content_type not in CLONE_TYPES:
        raise bad(f"videoUrl: {asset.content_type} is not accepted; use mp4 or mov")
    local = service.assets.local_copy(asset)
    try:
        info = probe_video(local, CLONE_LIMITS)  # MP4/MOV, 5 s to 10 min, < 300 MB
    except FacecastError as exc:
        raise bad(f"videoUrl: {exc.message} [{exc.code}]") from None
    finally:
        local.unlink(missing_ok=True)
    if min(info.width, info.height) < CLONE_MIN_SIDE or \
            max(info.width, info.height) > CLONE_MAX_SIDE:
        raise bad(f"videoUrl: the video is {info.width}x{info.height}; it must be 360p to "
                  "3840p")
    name = re.sub(r"\.\w+$", "", url.rsplit("/", 1)[-1])[:200] or "clone"
    _avatar, job = service.create_video_avatar(principal, MediaSource(asset_id=asset.id),
                                               name, opts=JobOptions(origin=ORIGIN))
    return job.id


def clone_status(service: Service, principal: Principal, body: wire.JobQuery
                 ) -> dict[str, Any]:
    job = find_job(service, principal, long_id(body.jobId, "jobId"), ("avatar_clone",))
    avatar_id = int(job.params["avatar_id"])
    try:
        human = digital_human(service, service.avatars.get(principal.account_id, avatar_id))
    except NotFoundError:  # deleted since: the id stays, the files are gone
        human = {"digitalHumanId": avatar_id, "supportTypeId": VIDEO,
                 "digitalHumanThumbnailUrl": "", "digitalHumanPhotoUrl": "",
                 "digitalHumanPreviewVideoUrl": ""}
    # failReason, an extra field: why the clone failed (status 4), facecast's code in brackets
    reason = ""
    if job.status in ("failed", "canceled"):
        reason = f"{job.error_message or job.status} [{job.error_code or job.status}]"
    return {"status": status_of(job), "digitalHuman": human, "failReason": reason}


# ---- videos --------------------------------------------------------------------------------


def _audio(service: Service, principal: Principal, url: str | None, audio_id: Any,
           field: str) -> MediaSource:
    """The speech for a video: a textToSpeech fileId, else a downloaded mp3/wav/m4a."""
    if audio_id not in (None, ""):
        file_id = long_id(audio_id, "audioId")
        try:
            job = service.job(principal, file_id)
        except NotFoundError:
            raise KreadoError("10009", f"Data does not exist: no audio file {file_id}") \
                from None
        if job.kind != "tts" or job.status != "succeeded":
            raise KreadoError("10003", f"Audio file download failed: audio {file_id} is not "
                              "a finished textToSpeech result")
        return MediaSource(job_file=(file_id, "audio"))
    asset = _fetch(service, principal, MediaSource(url=_url(url, field)), {"audio"}, field,
                   "10003")
    if asset.content_type not in AUDIO_TYPES:
        raise bad(f"{field}: {asset.content_type} is not accepted; use mp3, wav or m4a")
    seconds = float(asset.info.get("duration") or 0.0)
    if not MIN_AUDIO_S <= seconds <= MAX_AUDIO_S:
        raise KreadoError("10004", f"The audio length must be between {MIN_AUDIO_S:g} and "
                          f"{MAX_AUDIO_S:g} seconds (it is {seconds:.1f} s)")
    return MediaSource(asset_id=asset.id)


def submit_lip(service: Service, principal: Principal, body: wire.LipTask) -> int:
    name = _task_name(body.taskName)
    video_url = _url(body.videoUrl, "videoUrl")
    audio = _audio(service, principal, body.audioUrl, body.audioId, "audioUrl")
    video = _fetch(service, principal, MediaSource(url=video_url, max_bytes=VIDEO_MAX_BYTES),
                   {"video"}, "videoUrl", "10005")
    job, _ = service.create_dub(principal, MediaSource(asset_id=video.id), audio=audio,
                                limits=LIP_LIMITS,
                                opts=JobOptions(origin=ORIGIN, extra={
                                    "taskName": name, "supportTypeId": VIDEO}))
    return job.id


def _scale(value: str | float | None, field: str) -> float:
    if value in (None, ""):
        return 1.0
    try:
        scale = float(value)  # type: ignore[arg-type]
    except ValueError:
        raise bad(f"{field} must be a number such as \"1.00\", not {value!r}") from None
    if not 0.1 <= scale <= 10.0:
        raise bad(f"{field} must be 0.10 to 10.00, not {value!r}")
    return round(scale, 2)


def _background(service: Service, principal: Principal, bg: wire.BackgroundIn | None
                ) -> dict[str, Any]:
    if bg is None or bg.type is None:
        return {}
    if bg.type == 302:
        color = _given(bg.color)
        if color is None:
            raise bad("background.color is required when background.type is 302")
        from facecast.render.compose import parse_color

        try:
            r, g, b = parse_color(color.replace(" (", "("))
        except InputError as exc:
            raise bad(f"background.color: {exc.message}") from None
        return {"background_color": f"#{r:02x}{g:02x}{b:02x}"}
    if bg.type == 303:
        images = [e for e in bg.backgroundElements or [] if e.elementType == 330]
        if not images:
            raise bad("background.backgroundElements needs an elementType 330 image when "
                      "background.type is 303")
        url = _url(images[0].fileUrl, "background.backgroundElements.fileUrl")
        asset = _fetch(service, principal, MediaSource(url=url, max_bytes=IMAGE_MAX_BYTES),
                       {"image", "video"}, "background", "10006")
        return {"background": MediaSource(asset_id=asset.id)}
    raise bad(f"background.type must be 302 or 303, not {bg.type}")


def submit_system_lip(service: Service, principal: Principal, body: wire.SystemLipTask
                      ) -> int:
    name = _task_name(body.taskName)
    if body.videoRatio not in CANVAS:
        raise bad("videoRatio must be 1 (16:9) or 2 (9:16)")
    human = body.digitalHuman
    if human is None or human.digitalHumanId in (None, ""):
        raise bad("digitalHuman.digitalHumanId is required")
    avatar_id = long_id(human.digitalHumanId, "digitalHuman.digitalHumanId")
    if human.mask not in (None, *MASKS):
        raise bad("digitalHuman.mask must be 0, 1 or 2")
    expression = None
    if human.templateId not in (None, ""):
        from facecast.motion.expressions import get_template

        try:
            expression = get_template(long_id(human.templateId,
                                              "digitalHuman.templateId")).key
        except InputError:
            raise bad(f"digitalHuman.templateId {human.templateId} is not an emoList "
                      "template") from None
    scale = _scale(human.resize, "digitalHuman.resize")
    try:
        avatar = service.avatars.get(principal.account_id, avatar_id)
    except NotFoundError:
        raise KreadoError("10020", "Digital human information does not exist: "
                          f"{avatar_id}") from None
    if avatar.status != "ready":
        raise KreadoError("10020", f"Digital human information does not exist: {avatar_id} "
                          f"is not ready (it is {avatar.status})")
    if body.audio is None:
        raise bad("audio.audioUrl is required")
    audio = _audio(service, principal, body.audio.audioUrl, body.audio.audioId,
                   "audio.audioUrl")
    canvas = CANVAS[body.videoRatio]
    placed: dict[str, Any] = {}
    if human.x is not None or human.y is not None:
        # KreadoAI places the avatar's top-left corner in canvas pixels
        placed = {"position": (float(human.x or 0), float(human.y or 0)), "units": "px",
                  "anchor": "top-left"}
    composition = None
    if avatar.kind != "video":
        # a clone (video avatar) keeps its recording's own frame: no canvas to place it on
        composition = CompositionSpec(
            canvas=canvas, mask=MASKS[human.mask or 0], scale=scale, **placed,
            **_background(service, principal, body.background))
    job, _ = service.create_talking_photo(
        principal, avatar_id=avatar_id, audio=audio, options=RenderOptions(expression=expression),
        composition=composition,
        opts=JobOptions(origin=ORIGIN, extra={
            "taskName": name, "supportTypeId": VIDEO if avatar.kind == "video" else PHOTO,
            "videoRatio": body.videoRatio,
            "templateId": human.templateId}))
    return job.id


def find_job(service: Service, principal: Principal, job_id: int, kinds: tuple[str, ...]
             ) -> Job:
    try:
        job = service.job(principal, job_id)
    except NotFoundError:
        job = None
    if job is None or job.origin != ORIGIN or job.kind not in kinds:
        raise KreadoError("10009", f"Data does not exist: no task {job_id}")
    return job


def _video_url(service: Service, job: Job) -> str:
    return service.job_files(job).get("video", {}).get("url", "")


def lip_result(service: Service, principal: Principal, body: wire.JobQuery) -> dict[str, Any]:
    job = find_job(service, principal, long_id(body.jobId, "jobId"), VIDEO_KINDS)
    return {"status": status_of(job),
            "videoTask": {"taskId": job.id, "videoUrl": _video_url(service, job)}}


def video(service: Service, job: Job) -> dict[str, Any]:
    inputs = job.params.get("inputs", {})
    extra = job.extra or {}
    info = (job.result or {}).get("info", {})
    seconds = float(info.get("duration") or 0.0)
    if not seconds and inputs.get("audio"):
        with service.db.session() as session:
            asset = session.get(Asset, inputs["audio"])
            seconds = float((asset.info or {}).get("duration") or 0.0) if asset else 0.0
    return {"taskId": job.id, "taskName": extra.get("taskName", ""), "status": status_of(job),
            "supportTypeId": int(extra.get("supportTypeId") or PHOTO),
            "videoUrl": _video_url(service, job),
            # the avatar photo stands in for a thumbnail (facecast makes none)
            "videoThumbnailUrl": _asset_url(service, inputs.get("photo")),
            "audioUrl": _asset_url(service, inputs.get("audio")),
            "audioDuration": _hms(seconds),
            "createTime": _time(job.created_at),
            "successTime": _time(job.finished_at) if job.status == "succeeded" else ""}


def video_detail(service: Service, principal: Principal, body: wire.TaskQuery
                 ) -> dict[str, Any]:
    job = find_job(service, principal, long_id(body.taskId, "taskId"), VIDEO_KINDS)
    return video(service, job)


def video_list(service: Service, principal: Principal, body: wire.VideoList) -> dict[str, Any]:
    index, size = _page(body.pageIndex, body.pageSize)
    if body.status is not None and body.status not in BY_STATUS:
        raise bad("status must be 1 to 5")
    rows: list[Job] = []
    total = 0
    statuses = BY_STATUS[body.status] if body.status is not None else [None]
    if len(statuses) == 1:
        rows, total = service.list_jobs(principal, origin=ORIGIN, kinds=VIDEO_KINDS,
                                        status=statuses[0], offset=(index - 1) * size,
                                        limit=size)
    else:  # "4 - failure" is two facecast statuses: merge them, newest first
        for status in statuses:
            part, count = service.list_jobs(principal, origin=ORIGIN, kinds=VIDEO_KINDS,
                                            status=status, offset=0, limit=index * size)
            rows += part
            total += count
        rows.sort(key=lambda j: (j.created_at, j.id), reverse=True)
        rows = rows[(index - 1) * size:index * size]
    return page([video(service, j) for j in rows], total, index, size)


def emo_templates(service: Service) -> list[dict[str, Any]]:
    """The expression templates in emoList's shape; the preview video and thumbnail URLs
    stay "" until facecast has rendered them (in the background, after the first list)."""
    return [{"id": t["id"], "emoVideoUrl": t["preview_url"],
             "emoVideoThumbnailUrl": t["thumbnail_url"], "emoZhDescription": t["name_zh"],
             "emoEnDescription": t["name"]} for t in service.expressions()]


def emo_list(body: wire.EmoList, service: Service) -> dict[str, Any]:
    index, size = _page(body.pageIndex, body.pageSize)
    # the table calls the request's id a "Language ID"; it filters by template id here
    rows = [t for t in emo_templates(service) if body.id is None or t["id"] == body.id]
    return page(rows[(index - 1) * size:index * size], len(rows), index, size)


# ---- account -------------------------------------------------------------------------------


def user_info(service: Service, principal: Principal) -> dict[str, Any]:
    info = service.account(principal)
    balance = int(info["account"].balance) - int(info["held"])
    # facecast has no membership that expires; clients parse vipExpireTime as a date
    return {"balance": f"{balance:.2f}", "vipExpireTime": NO_EXPIRY}


# ---- voices and speech ---------------------------------------------------------------------


def _language_names(code: str) -> tuple[str, str]:
    base = code.split("-")[0]
    return LANGUAGES.get(base, (base, ""))


def languages(service: Service, principal: Principal) -> list[dict[str, Any]]:
    voices, _ = service.voices(principal, page=1, page_size=10_000)
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for v in voices:
        en, zh = _language_names(v.language)
        city = f"{en} ({v.region})" if v.region else en
        groups.setdefault(en, {})[v.language] = {
            "languageId": v.language, "languageEn": en, "languageZh": zh,
            "languageCityType": city}
    return [{"language": name, "languageDetails": list(details.values())}
            for name, details in sorted(groups.items())]


def _voice(v: Any) -> dict[str, Any]:
    en, _ = _language_names(v.language)
    return {"id": v.id, "languageId": v.language,
            "languageCityType": f"{en} ({v.region})" if v.region else en,
            "voiceId": v.id, "voiceName": v.name, "defaultPhotoUrl": "", "defaultVoiceUrl": "",
            # facecast has one voice source; 1 is the one whose rate/pitch scale it takes
            "voiceClone": 1 if v.engine == "clone" else 0, "voiceSource": 1,
            "gender": v.gender or "", "ageGroup": v.age_group or "", "voiceStyles": []}


def voice_list(service: Service, principal: Principal, body: wire.VoiceList
               ) -> dict[str, Any]:
    index, size = _page(body.pageIndex, body.pageSize)
    if _given(body.language) is None:
        raise bad("language is required (e.g. English, Chinese)")
    if body.voiceClone not in (None, 0, 1):
        raise bad("voiceClone must be 0 or 1")
    if body.gender and body.gender.lower() not in ("male", "female"):
        raise bad("gender must be female or male")
    wanted = (body.language or "").strip().lower()
    voices, _ = service.voices(principal, page=1, page_size=10_000)
    rows = []
    for v in voices:
        en, _zh = _language_names(v.language)
        city = f"{en} ({v.region})" if v.region else en
        if wanted not in (en.lower(), v.language, v.base_language):
            continue
        if _given(body.languageCityType) and body.languageCityType not in (city, v.language):
            continue
        if body.gender and (v.gender or "") != body.gender.lower():
            continue
        if body.ageGroup and (v.age_group or "") != AGE_GROUPS.get(body.ageGroup.lower(),
                                                                  body.ageGroup.lower()):
            continue
        if (v.engine == "clone") != (body.voiceClone == 1):
            continue
        rows.append(v)
    return page([_voice(v) for v in rows[(index - 1) * size:index * size]], len(rows), index,
                size)


def _resolve_voice(service: Service, principal: Principal, body: wire.TextToSpeech,
                   text: str) -> str:
    """The facecast voice for a request. A KreadoAI voiceId facecast does not have (a
    vendor's voice) falls back to a facecast voice of the language and, when the id names
    one, the gender, so that code written for KreadoAI's catalogue still speaks."""
    voice_id = _given(body.voiceId)
    if voice_id is None:
        raise bad("voiceId is required")
    try:
        return str(service.voice(principal, voice_id).id)
    except FacecastError:
        pass
    if body.voiceClone == 1:
        raise KreadoError("10009", f"Data does not exist: no cloned voice {voice_id!r}")
    voices, _ = service.voices(principal, page=1, page_size=10_000)
    language = str(body.languageId or "").strip().lower()
    if not any(v.language == language for v in voices):
        language = "cmn" if re.search(r"[\u4e00-\u9fff]", text) else "en"
    lower = voice_id.lower()
    gender = "female" if "female" in lower else "male" if "male" in lower else None
    same = [v for v in voices if v.engine != "clone" and
            (v.language == language or v.base_language == language.split("-")[0])]
    preferred = [v for v in same if gender is None or v.gender == gender] or same
    if not preferred:
        raise KreadoError("10009", f"Data does not exist: no voice {voice_id!r}")
    return str(preferred[0].id)


def text_to_speech(service: Service, principal: Principal, body: wire.TextToSpeech
                   ) -> dict[str, Any]:
    text = _given(body.content)
    if text is None:
        raise bad("content is required")
    if body.voiceClone not in (None, 0, 1):
        raise bad("voiceClone must be 0 or 1")
    voice = _resolve_voice(service, principal, body, text)
    rate = 1.0
    pitch = 0.0
    if body.voiceSource in (None, 1):  # Microsoft's scale: percent changes around 0
        if body.prosodyRate is not None:
            if not -100 <= body.prosodyRate <= 200:
                raise bad("prosodyRate must be -100 to 200 for voiceSource 1")
            rate = max(0.5, min(2.0, 1.0 + body.prosodyRate / 100))
        if body.prosodyPitch is not None:
            if not -50 <= body.prosodyPitch <= 50:
                raise bad("prosodyPitch must be -50 to 50 for voiceSource 1")
            pitch = body.prosodyPitch / 50 * 6  # +-50 % -> +-6 semitones
    job, _ = service.create_tts(principal, text, voice, rate=rate, pitch=pitch,
                                opts=JobOptions(origin=ORIGIN))
    # KreadoAI answers with the audio: wait for the job, within a deadline
    deadline = time.monotonic() + TTS_DEADLINE_S
    while job.status in ("queued", "running"):
        if time.monotonic() > deadline:
            raise KreadoError("10011", "Processing timeout, please try again later "
                              f"(the audio is task {job.id})")
        time.sleep(0.1)
        job = service.job(principal, job.id)
    if job.status != "succeeded":
        raise KreadoError("10001", f"Internal system exception: speech failed: "
                          f"{job.error_message or job.error_code}")
    info = (job.result or {}).get("info", {})
    return {"taskId": str(job.id), "textToSpeech": {
        "fileId": job.id, "duration": int(math.ceil(float(info.get("duration") or 0))),
        "audioUrl": service.job_files(job).get("audio", {}).get("url", ""),
        "paymentMoney": str(job.cost if job.cost is not None else job.cost_estimate)}}


# ---- subtitle and watermark removal -------------------------------------------------------


def _areas(rects: list[wire.RectArea] | None, field: str) -> list[list[float]]:
    out = []
    for r in rects or []:
        if r.rb_x <= r.lt_x or r.rb_y <= r.lt_y:
            raise bad(f"{field}: the bottom-right corner must be below and right of the "
                      "top-left one")
        out.append([r.lt_x, r.lt_y, r.rb_x, r.rb_y])
    return out


def submit_removal(service: Service, principal: Principal, body: wire.SubtitleRemoval) -> int:
    name = _task_name(body.taskName)
    url = _url(body.srcFileUrl, "srcFileUrl")
    subtitles = _areas(body.rectAreaList, "rectAreaList")
    watermarks = _areas(body.customRectAreaList, "customRectAreaList")
    video_asset = _fetch(service, principal, MediaSource(url=url, max_bytes=CLEAN_MAX_BYTES),
                         {"video"}, "srcFileUrl", "10005")
    job, _ = service.create_clean(principal, MediaSource(asset_id=video_asset.id),
                                  subtitle_areas=subtitles, watermark_areas=watermarks,
                                  limits=REMOVAL_LIMITS,
                                  opts=JobOptions(origin=ORIGIN, extra={"taskName": name}))
    return job.id


def removal_result(service: Service, principal: Principal, body: wire.JobQuery
                   ) -> dict[str, Any]:
    job = find_job(service, principal, long_id(body.jobId, "jobId"), ("clean_video",))
    info = (job.result or {}).get("info", {})
    seconds = float(info.get("duration") or 0.0)
    if not seconds:
        with service.db.session() as session:
            asset = session.get(Asset, job.params.get("inputs", {}).get("video"))
            seconds = float((asset.info or {}).get("duration") or 0.0) if asset else 0.0
    process = 0
    if job.started_at is not None and job.finished_at is not None:
        process = int(round((job.finished_at - job.started_at).total_seconds()))
    done = _iso(job.finished_at) if job.status == "succeeded" else ""
    return {"jobId": job.id, "businessTaskId": str(job.id),
            "taskName": (job.extra or {}).get("taskName", ""), "status": status_of(job),
            "targetVideoUrl": _video_url(service, job), "processTime": process,
            "duration": int(round(seconds)), "createTime": _iso(job.created_at),
            # the table calls it successTime, the example completeTime: both are sent
            "successTime": done, "completeTime": done}
