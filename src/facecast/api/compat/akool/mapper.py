"""Akool wire values <-> :class:`facecast.service.core.Service` calls.

Everything Akool-specific lives here: the ``{code, msg, data}`` envelope's codes,
24-hex ``_id`` values (a facecast id written as 24 hex digits, parsed back), the
status numbers 1 queueing / 2 processing / 3 completed / 4 failed, the element
model of ``talkingavatar/create`` turned into a :class:`CompositionSpec`, and the
decrypted callback data.

Akool's codes (from its documents): 1000 success, 1003 parameter error, 1006
quota not enough, 1008 content does not exist, 1009 no permission, 1015 create
video error, 1101 invalid or expired authorization, 1102 authorization empty,
1109 create avatar video error, 1200 account banned, 1201 create audio error.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from facecast.api.compat.kit import ErrorTable, VendorError
from facecast.errors import (
    ConflictError,
    FacecastError,
    InputError,
    LimitError,
    NotFoundError,
)
from facecast.service.accounts import AuthError, Principal
from facecast.service.assets import MediaSource
from facecast.service.composition import CompositionSpec, LayerSpec
from facecast.service.core import JobOptions, RenderOptions, Service
from facecast.service.models import Avatar, Job, WebhookDelivery

from . import wire

ORIGIN = "akool"
OK_MSG = "OK"

# Akool renders at 3840x2160 and documents it as the only size; elements are placed in
# that space. facecast renders that size too, unless the operator caps the longest side
# (FACECAST_AKOOL_MAX_SIDE): then the same picture scaled down, and the records say so.
CANVAS = (3840, 2160)
INPUT_TEXT_MAX = 5000  # Akool's Pro plan, the smallest that has the API
AVATAR_PAGE_SIZE_MAX = 100
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi")
AVATAR_ID = re.compile(r"^[A-Za-z0-9]+$")
HEX_COLOR = re.compile(r"^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")
RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
# facecast's speaking-rate factor for Akool's 0% and 100% (the normal speed)
RATE_AT_0, RATE_AT_100 = 0.5, 1.0
AUDIO_WAIT_S = 60.0  # Akool answers audio/create with the finished audio

MAX_ID = 2**62

STATUS = {"queued": 1, "running": 2, "succeeded": 3, "failed": 4, "canceled": 4,
          "expired": 4}
# Akool's "type" numbers of a content record
TYPE_TALKING_PHOTO, TYPE_TALKING_AVATAR = 5, 2
# Voice ids that appear in Akool's own documents: no facecast voice has them, so they
# stand for facecast's default voice and the documented examples run as written
DOC_VOICE_IDS = frozenset({"6889b628662160e2caad5dbc", "LcfcDJNUP1GQjkzn1xUU"})


class AkoolError(VendorError):
    """A refusal in Akool's terms: Akool code, message, HTTP status (what kind of failure
    it was: Akool answers HTTP 200 with the outcome in ``code``)."""


def bad(message: str) -> AkoolError:
    return AkoolError(1003, f"Parameter error: {message}", 400)


# facecast errors -> (HTTP status, Akool code)
ERRORS = ErrorTable(
    by_code={
        "insufficient_credits": (402, 1006),
        "rate_limited": (429, 1006),
        "too_many_queued_jobs": (429, 1006),
        "forbidden": (403, 1009),
        "account_disabled": (403, 1200),
    },
    by_class=((AuthError, (401, 1101)), (NotFoundError, (404, 1008)),
              (InputError, (400, 1003)), (LimitError, (429, 1006)),
              (ConflictError, (400, 1003))),
    failure=(500, 1015))


def from_facecast(exc: FacecastError, failure: int = 1015) -> AkoolError:
    """The Akool refusal for a service error; ``failure`` is the code of the operation
    (1015 video, 1201 audio) for errors that are not the caller's."""
    status, code, message, headers = ERRORS.translate(exc, failure=failure)
    return AkoolError(code, message, status, headers)


# ---- ids and times -------------------------------------------------------------------------


def oid(number: int) -> str:
    """A facecast id as Akool's 24-hex ``_id``."""
    return f"{number:024x}"


def parse_oid(value: str, what: str) -> int:
    text = (value or "").strip()
    # facecast ids are database integers: a larger value (an id of Akool's) names nothing
    if not re.fullmatch(r"[0-9a-fA-F]{24}", text) or int(text, 16) > MAX_ID:
        raise AkoolError(1008, f"The content you get does not exist: no {what} "
                               f"{value!r}", 404)
    return int(text, 16)


def ms(moment: datetime | None) -> int:
    if moment is None:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(round(moment.timestamp() * 1000))


def _given(value: Any) -> Any:
    """Akool's examples send "" for fields left out."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


# ---- jobs as Akool records -----------------------------------------------------------------


def _file_url(service: Service, job: Job, name: str) -> str:
    files = service.job_files(job)
    return files[name]["url"] if name in files else ""


def video_record(service: Service, job: Job, principal: Principal,
                 status: str | None = None) -> dict[str, Any]:
    """A video job as Akool's content record (the union of the documented fields)."""
    status = status or job.status
    done = status == "succeeded"
    info = (job.result or {}).get("info", {}) if done else {}
    duration = float(info.get("duration") or 0.0)
    extra = job.extra or {}
    return {
        "_id": oid(job.id), "uid": principal.account_id, "task_id": oid(job.id),
        "video_id": f"{job.id:032x}",
        "type": int(extra.get("akool_type") or TYPE_TALKING_AVATAR),
        "from": 3, "faceswap_quality": 2, "storage_loc": 1,
        "video_status": STATUS.get(status, 4),
        "video": _file_url(service, job, "video") if done else "",
        "external_video": "", "talking_photo": str(extra.get("akool_photo") or ""),
        "video_lock_duration": round(duration, 3),
        "deduction_duration": int(job.cost or 0) if done else 0,
        "deduction_lock_duration": int(job.cost_estimate or 0),
        "create_time": ms(job.created_at), "__v": 0,
        "error_msg": _failure(job) if STATUS.get(status) == 4 else "",
        **_size_fields(job, info),
    }


def _failure(job: Job) -> str:
    if job.status == "expired":
        return "the result was deleted when its retention time ended [result_expired]"
    if job.error_code:
        return f"{job.error_message or job.error_code} [{job.error_code}]"
    return "the task failed"


def audio_record(service: Service, job: Job, principal: Principal) -> dict[str, Any]:
    extra = job.extra or {}
    params = job.params or {}
    return {
        "_id": oid(job.id), "uid": principal.account_id, "create_time": ms(job.created_at),
        "from": 3, "input_text": params.get("text") or "",
        "rate": str(extra.get("akool_rate") or "100%"),
        "voice_model_id": str(extra.get("akool_voice_id") or params.get("voice") or ""),
        "url": _file_url(service, job, "audio"), "status": STATUS.get(job.status, 4), "__v": 0,
    }


def find_video(service: Service, principal: Principal, video_model_id: str) -> Job:
    job_id = parse_oid(video_model_id, "video_model_id")
    try:
        job = service.job(principal, job_id)
    except NotFoundError:
        job = None
    if job is None or job.origin != ORIGIN or job.kind not in ("talking_photo",
                                                                 "avatar_video"):
        raise AkoolError(1008, f"The content you get does not exist: no video "
                               f"{video_model_id}", 404)
    return job


# ---- avatars -------------------------------------------------------------------------------


def _avatar_key(avatar: Avatar) -> str:
    return avatar.external_id or avatar.builtin_key or f"av{avatar.id}"


def _avatar_status(service: Service, avatar: Avatar) -> int:
    """1 queueing, 2 processing, 3 completed, 4 failed (a video avatar's job decides 1/2)."""
    if avatar.status == "processing":
        return 1 if service.avatars.job_status(avatar) == "queued" else 2
    return {"ready": 3, "failed": 4}.get(avatar.status, 4)


def avatar_item(service: Service, avatar: Avatar, kind: int = 1) -> dict[str, Any]:
    """An avatar as Akool lists it; ``kind`` 2 when listed as a streaming avatar."""
    urls = service.avatars.urls(avatar)
    # "url: you can preview the avatar via the link": the photo, or a video avatar's preview
    url = urls["photo"] or urls["preview"] or ""
    return {"_id": oid(avatar.id), "uid": avatar.account_id or 0, "type": kind,
            "from": 2 if avatar.account_id is None else 3,
            "status": _avatar_status(service, avatar), "disabled": False, "sort": avatar.id,
            "name": avatar.name, "avatar_id": _avatar_key(avatar), "url": url,
            "modify_url": url, "thumbnailUrl": urls["thumbnail"] or url,
            "gender": avatar.gender or "", "crop_arr": [],
            "create_time": ms(avatar.created_at),
            # an extra field, as in video records: why a video avatar failed (status 4)
            "error_msg": _avatar_failure(avatar) if avatar.status == "failed" else ""}


def _avatar_failure(avatar: Avatar) -> str:
    if avatar.error_code:
        return f"{avatar.error_message or avatar.error_code} [{avatar.error_code}]"
    return "the avatar could not be made"


def list_avatars(service: Service, principal: Principal, source: int | None,
                 kind: int | None, page: int, size: int) -> list[dict[str, Any]]:
    if source not in (None, 2, 3):
        raise bad(f"from must be 2 or 3, not {source}")
    if kind not in (None, 1, 2):
        raise bad(f"type must be 1 or 2, not {kind}")
    if page < 1:
        raise bad(f"page must be 1 or more, not {page}")
    if not 1 <= size <= AVATAR_PAGE_SIZE_MAX:
        raise bad(f"size must be 1 to {AVATAR_PAGE_SIZE_MAX}, not {size}")
    custom = None if source is None else source == 3
    rows, _total = service.avatars.list(principal.account_id, custom=custom,
                                        offset=(page - 1) * size, limit=size)
    # every avatar streams live (POST /api/v1/streams): type 2 lists them all as such
    return [avatar_item(service, row, 2 if kind == 2 else 1) for row in rows]


def find_avatar(service: Service, principal: Principal, value: str) -> Avatar:
    """An avatar by its ``_id`` (24 hex), or by its ``avatar_id`` (a built-in's key, or
    the avatar_id given to avatar/create)."""
    text = (value or "").strip()
    avatar_id: int | None = None
    if re.fullmatch(r"[0-9a-fA-F]{24}", text) and int(text, 16) <= MAX_ID:
        avatar_id = int(text, 16)
    elif re.fullmatch(r"av\d{1,18}", text):
        avatar_id = int(text[2:])
    if avatar_id is None and text:
        own = service.avatars.by_external_id(principal.account_id, text)
        if own is not None:
            return own
        rows, _ = service.avatars.list(principal.account_id, custom=False, limit=1000)
        avatar_id = next((r.id for r in rows if r.builtin_key == text), None)
    if avatar_id is not None:
        try:
            return service.avatars.get(principal.account_id, avatar_id)
        except NotFoundError:
            pass
    raise AkoolError(1008, f"The content you get does not exist: no avatar {value!r}", 404)


def upload_avatar(service: Service, principal: Principal, body: wire.AvatarCreate
                  ) -> list[dict[str, Any]]:
    """A video avatar from ``url`` (Akool's "upload talking avatar"): made by an
    avatar_clone job, status 1 queueing -> 2 processing -> 3 completed / 4 failed in
    avatar/detail. The same ``avatar_id`` again answers the avatar it already names."""
    url = _given(body.url)
    if url is None:
        raise bad("url can not be empty")
    _check_suffix("url", url, VIDEO_SUFFIXES)
    avatar_id = _given(body.avatar_id)
    if avatar_id is not None and not AVATAR_ID.match(str(avatar_id)):
        raise bad("avatar_id can only contain letters and digits")
    if body.type is not None and str(body.type).strip() not in ("1", ""):
        raise bad(f"type must be 1 (talking avatar), not {body.type!r}")
    if avatar_id is not None:
        existing = service.avatars.by_external_id(principal.account_id, str(avatar_id))
        if existing is not None:
            return [avatar_item(service, existing)]
    name = str(_given(body.name) or avatar_id or PurePosixPath(urlsplit(url).path).stem
               or "avatar")[:200]
    try:
        avatar, _job = service.create_video_avatar(
            principal, MediaSource(url=url), name,
            external_id=str(avatar_id) if avatar_id is not None else None,
            opts=JobOptions(origin=ORIGIN))
    except FacecastError as exc:
        raise from_facecast(exc, 1109) from None
    return [avatar_item(service, avatar)]


# ---- media rules ---------------------------------------------------------------------------


def _suffix(url: str) -> str:
    return PurePosixPath(urlsplit(url).path).suffix.lower()


def _check_url(field: str, value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://", value.strip()):
        raise bad(f"{field} must be an http(s) URL")
    return value.strip()


def _check_suffix(field: str, url: str, allowed: tuple[str, ...]) -> None:
    url = _check_url(field, url)
    if _suffix(url) not in allowed:
        raise bad(f"{field}: only {', '.join(allowed)} files are supported")


def _check_webhook(service: Service, principal: Principal, url: str | None) -> None:
    if url is None:
        return
    from facecast.service.ingest import UrlPolicy, check_url

    try:
        check_url(url, UrlPolicy.from_settings(service.settings))
    except InputError as exc:
        raise bad(f"webhookUrl: {exc.message} [{exc.code}]") from None
    # the callback is encrypted with the account's Akool client secret: without one there
    # is nothing to encrypt with, so refuse now rather than fail every delivery later
    if service.vendor_secret(principal.account_id, "akool") is None:
        raise bad("webhookUrl needs an Akool clientId/clientSecret on the account to encrypt "
                  "callbacks with (POST /api/v1/vendor-credentials {\"vendor\": \"akool\"})")


def _voice(value: Any) -> str | None:
    voice = _given(value)
    if voice is None:
        return None
    return None if str(voice) in DOC_VOICE_IDS else str(voice)


def _rate(value: Any) -> float:
    text = _given(value)
    if text is None:
        return 1.0
    found = RATE.match(str(text))
    if not found or not 0 <= float(found.group(1)) <= 100:
        raise bad(f"rate must be a percentage from 0% to 100%, not {value!r}")
    return RATE_AT_0 + (RATE_AT_100 - RATE_AT_0) * float(found.group(1)) / 100


def _opts(webhook: str | None, kind: str, **extra: Any) -> JobOptions:
    data: dict[str, Any] = {"akool_kind": kind, **extra}
    if webhook:
        data["callback_format"] = "akool"
    return JobOptions(callback_url=webhook, origin=ORIGIN, extra=data)


def _first_frame(service: Service, principal: Principal, url: str) -> MediaSource:
    """A video avatar as a photo: its first frame (facecast animates photos)."""
    import av
    import cv2

    with service.assets.temporary(principal.account_id, MediaSource(url=url), {"video"},
                                  "avatar") as path, av.open(str(path)) as container:
        frame = next(container.decode(video=0), None)
        if frame is None:
            raise bad("the avatar video has no frames")
        ok, png = cv2.imencode(".png", frame.to_ndarray(format="bgr24"))
    if not ok:
        raise bad("the avatar video's first frame could not be read")
    return MediaSource(base64=base64.b64encode(png.tobytes()).decode(), filename="avatar.png")


# ---- talking avatar ------------------------------------------------------------------------


def _num(element: wire.Element, name: str, default: float | None = None) -> float | None:
    value = getattr(element, name)
    return default if value is None else float(value)


def output_canvas(service: Service) -> tuple[tuple[int, int], float]:
    """The size a talking avatar is rendered at and its scale from Akool's 3840x2160: the
    size asked for, or less where the operator caps the longest side."""
    scale = min(1.0, service.settings.akool_max_side / max(CANVAS))
    # H.264 4:2:0 needs even sides; the scale follows the rounded width exactly
    width = max(2, 2 * round(CANVAS[0] * scale / 2))
    height = max(2, 2 * round(CANVAS[1] * scale / 2))
    return (width, height), width / CANVAS[0]


def _size_fields(job: Job, info: dict[str, Any]) -> dict[str, Any]:
    """The video's size (facecast's addition to Akool's record), and a note when the
    operator's cap made it smaller than the 3840x2160 asked for."""
    extra = job.extra or {}
    planned = extra.get("akool_size")
    if not planned:
        return {}
    width, height = int(info.get("width") or planned[0]), int(info.get("height") or planned[1])
    fields: dict[str, Any] = {"width": width, "height": height}
    if extra.get("akool_capped"):
        fields["size_note"] = (f"rendered at {width}x{height}, not {CANVAS[0]}x{CANVAS[1]}: "
                               f"this server caps the longest side at "
                               f"{extra['akool_capped']} px (elements scaled with it)")
    return fields


def _box(element: wire.Element, index: int, need_size: bool, s: float
         ) -> tuple[int, int, int | None, int | None]:
    """x, y, width, height on facecast's canvas (Akool's 3840x2160 scaled by ``s``)."""
    x, y = _num(element, "offset_x"), _num(element, "offset_y")
    sx, sy = _num(element, "scale_x", 1.0), _num(element, "scale_y", 1.0)
    if x is None or y is None:
        raise bad(f"elements[{index}]: offset_x and offset_y are required for "
                  f"{element.type} elements")
    if (sx or 0) <= 0 or (sy or 0) <= 0:
        raise bad(f"elements[{index}]: scale_x and scale_y must be above 0")
    w, h = _num(element, "width"), _num(element, "height")
    if need_size and (w is None or h is None):
        raise bad(f"elements[{index}]: width and height are required")
    if (w is not None and w <= 0) or (h is not None and h <= 0):
        raise bad(f"elements[{index}]: width and height must be above 0")
    return (round(x * s), round(y * s),  # type: ignore[operator]
            None if w is None else max(2, round(w * sx * s)),  # type: ignore[operator]
            None if h is None else max(2, round(h * sy * s)))  # type: ignore[operator]


def create_talking_avatar(service: Service, principal: Principal,
                          body: wire.TalkingAvatarCreate) -> Job:
    if body.width != CANVAS[0] or body.height != CANVAS[1]:
        raise bad(f"width and height must be {CANVAS[0]} and {CANVAS[1]}, not {body.width} "
                  f"and {body.height}")
    if body.avatar_from not in (2, 3):
        raise bad(f"avatar_from must be 2 or 3, not {body.avatar_from}")
    webhook = _given(body.webhookUrl)
    elements = body.elements or []
    avatars = [(i, e) for i, e in enumerate(elements) if e.type == "avatar"]
    audios = [(i, e) for i, e in enumerate(elements) if e.type == "audio"]
    unknown = [f"{i}:{e.type!r}" for i, e in enumerate(elements)
               if e.type not in ("avatar", "image", "audio")]
    if unknown:
        raise bad(f"element type must be avatar, image or audio ({', '.join(unknown)})")
    if len(avatars) != 1:
        raise bad(f"exactly one avatar element is required, not {len(avatars)}")
    if len(audios) != 1:
        raise bad(f"exactly one audio element is required, not {len(audios)}")
    _check_webhook(service, principal, webhook)
    canvas, scale = output_canvas(service)

    # audio: its url wins over input_text + voice_id (Akool's rule)
    _, audio_el = audios[0]
    audio_url, text = _given(audio_el.url), _given(audio_el.input_text)
    voice = None
    if audio_url is not None:
        _check_url("audio url", audio_url)
        text = None
    else:
        if text is None or _given(audio_el.voice_id) is None:
            raise bad("the audio element needs a url, or both input_text and voice_id")
        if len(text) > INPUT_TEXT_MAX:
            raise bad(f"input_text has {len(text)} characters; at most {INPUT_TEXT_MAX}")
        voice = _voice(audio_el.voice_id)

    # the avatar: a listed one by avatar_id (from 2, or 3 for the account's own) or a URL
    avatar_index, avatar_el = avatars[0]
    avatar_url, avatar_key = _given(avatar_el.url), _given(avatar_el.avatar_id)
    x, y, w, h = _box(avatar_el, avatar_index, need_size=False, s=scale)
    photo: MediaSource | None = None
    avatar_id: int | None = None
    video_avatar = False
    if avatar_key is not None and (body.avatar_from == 2 or avatar_url is None):
        found = find_avatar(service, principal, str(avatar_key))
        avatar_id, video_avatar = found.id, found.kind == "video"
    elif avatar_url is not None:
        if body.avatar_from != 3:
            raise bad("an avatar given by url needs avatar_from 3")
        _check_suffix("avatar url", avatar_url, IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    else:
        raise bad("the avatar element needs an avatar_id or a url")

    layers: list[LayerSpec] = []
    background_color = "#000000"
    for i, element in enumerate(elements):
        if element.type != "image":
            continue
        value = _given(element.url)
        if value is None:
            raise bad(f"elements[{i}]: an image element needs a url or a colour code")
        z = -1 if i < avatar_index else 1  # the list order is the stacking order
        if isinstance(value, str) and HEX_COLOR.match(value.strip()):
            if element.width is None and element.height is None:
                background_color = value.strip()  # a colour without a size fills the canvas
                continue
            lx, ly, lw, lh = _box(element, i, need_size=True, s=scale)
            layers.append(LayerSpec(color=value.strip(), x=lx, y=ly, width=lw, height=lh, z=z))
            continue
        _check_suffix(f"elements[{i}].url", value, IMAGE_SUFFIXES)
        lx, ly, lw, lh = _box(element, i, need_size=False, s=scale)
        layers.append(LayerSpec(image=MediaSource(url=value.strip()), x=lx, y=ly, width=lw,
                                height=lh, z=z))

    composition = CompositionSpec(
        canvas=canvas, background_color=background_color, position=(x, y), units="px",
        anchor="top_left", avatar_size=(w, h) if w and h else None, layers=tuple(layers))
    if avatar_url is not None and avatar_id is None:
        photo = (_first_frame(service, principal, avatar_url)
                 if _suffix(avatar_url) in VIDEO_SUFFIXES else MediaSource(url=avatar_url))
    job, _created = service.create_talking_photo(
        principal, photo=photo, avatar_id=avatar_id,
        audio=MediaSource(url=audio_url) if audio_url else None, text=text,
        voice=voice if text is not None else None,
        options=RenderOptions(),
        # a video avatar (avatar/create) keeps its recording's own frame: no canvas
        composition=None if video_avatar else composition,
        opts=_opts(webhook, "talking avatar", akool_type=TYPE_TALKING_AVATAR,
                   akool_photo=avatar_url or "",
                   # a video avatar renders at its recording's size (the result tells)
                   akool_size=None if video_avatar else list(canvas),
                   akool_capped=service.settings.akool_max_side
                   if canvas != CANVAS and not video_avatar else 0))
    return job


def create_talking_photo(service: Service, principal: Principal,
                         body: wire.TalkingPhotoCreate) -> Job:
    photo_url, audio_url = _given(body.talking_photo_url), _given(body.audio_url)
    if photo_url is None or audio_url is None:
        raise bad("talking_photo_url and audio_url can not be empty")
    _check_url("talking_photo_url", photo_url)
    _check_url("audio_url", audio_url)
    webhook = _given(body.webhookUrl)
    _check_webhook(service, principal, webhook)
    job, _created = service.create_talking_photo(
        principal, photo=MediaSource(url=photo_url), audio=MediaSource(url=audio_url),
        opts=_opts(webhook, "talking photo", akool_type=TYPE_TALKING_PHOTO,
                   akool_photo=photo_url))
    return job


# ---- audio ---------------------------------------------------------------------------------


def wait(service: Service, principal: Principal, job: Job, timeout: float,
         clock: Callable[[], float] = time.monotonic) -> Job:
    """The job once it is finished, or as it is when ``timeout`` runs out. Polls the
    database: the API process has no other signal from the worker."""
    deadline = clock() + timeout
    while job.status in ("queued", "running") and clock() < deadline:
        time.sleep(0.1)
        job = service.job(principal, job.id)
    return job


def _text(value: Any) -> str:
    text = _given(value)
    if text is None:
        raise bad("input_text can not be empty")
    if len(str(text)) > INPUT_TEXT_MAX:
        raise bad(f"input_text has {len(str(text))} characters; at most {INPUT_TEXT_MAX}")
    return str(text)


def create_audio(service: Service, principal: Principal, body: wire.AudioCreate) -> Job:
    text = _text(body.input_text)
    if _given(body.voice_id) is None:
        raise bad("voice_id can not be empty")
    rate = _rate(body.rate)
    webhook = _given(body.webhookUrl)
    _check_webhook(service, principal, webhook)
    job, _created = service.create_tts(
        principal, text, _voice(body.voice_id), rate=rate, format="mp3",
        opts=_opts(webhook, "audio", akool_rate=body.rate or "100%",
                   akool_voice_id=str(body.voice_id)))
    return wait(service, principal, job, AUDIO_WAIT_S)


def clone_audio(service: Service, principal: Principal, body: wire.AudioClone) -> Job:
    text = _text(body.input_text)
    rate = _rate(body.rate)
    voice_url, voice_id = _given(body.voice_url), _given(body.voice_id)
    if (voice_url is None) == (voice_id is None):
        raise bad("give one of voice_id and voice_url")
    webhook = _given(body.webhookUrl)
    _check_webhook(service, principal, webhook)
    voice = _voice(voice_id)
    if voice_url is not None:
        _check_url("voice_url", voice_url)
        clone, _ = service.create_voice_clone(principal, MediaSource(url=voice_url),
                                              f"akool clone {int(time.time())}",
                                              opts=JobOptions(origin=ORIGIN))
        clone = wait(service, principal, clone, AUDIO_WAIT_S)
        if clone.status != "succeeded":
            raise AkoolError(1201, "Create audio error, please try again later: the voice clone "
                                   f"is {clone.status} ({_failure(clone)})",
                             500 if clone.status == "failed" else 503)
        voice = str((clone.result or {}).get("info", {}).get("voice_id"))
    job, _created = service.create_tts(
        principal, text, voice, rate=rate, format="mp3",
        opts=_opts(webhook, "audio", akool_rate=body.rate or "100%",
                   akool_voice_id=voice or ""))
    return wait(service, principal, job, AUDIO_WAIT_S)


def list_voices(service: Service, principal: Principal, page: int, size: int
                ) -> list[dict[str, Any]]:
    if page < 1 or not 1 <= size <= 500:
        raise bad("page must be 1 or more and size 1 to 500")
    rows, _total = service.voices(principal, page=page, page_size=size)
    return [{"_id": v.id, "voice_id": v.id, "name": v.name, "gender": v.gender or "",
             "language": v.language, "preview": "", "from": 3 if v.custom else 2,
             "type": 1} for v in rows]


# ---- callbacks -----------------------------------------------------------------------------


def callback_data(service: Service, delivery: WebhookDelivery) -> dict[str, Any]:
    """The decrypted callback data: ``{_id, status, type, url}`` as the job was at the
    delivery's status change, with a fresh result URL."""
    if delivery.job_id is None:
        raise ValueError(f"delivery {delivery.id} is about no job")
    with service.db.session() as session:
        job = session.get(Job, delivery.job_id)
        if job is None:
            raise ValueError(f"job {delivery.job_id} of delivery {delivery.id} is gone")
        session.expunge(job)
    status = (delivery.payload.get("data") or {}).get("status") or job.status
    name = "audio" if job.kind == "tts" else "video"
    url = _file_url(service, job, name) if status == "succeeded" else ""
    return {"_id": oid(job.id), "status": STATUS.get(status, 4),
            "type": str((job.extra or {}).get("akool_kind") or name), "url": url}
