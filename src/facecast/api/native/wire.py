"""Wire models of the native REST API (``/api/v1``): requests refuse unknown
fields, responses say exactly what they hold (the OpenAPI document is made
from these, and the fuzz test holds the server to it)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from facecast.api.wire import CheckedText
from facecast.pipeline.specs import QUALITY
from facecast.rules import (
    ASPECTS,
    CAPTION_FORMATS,
    CAPTION_POSITIONS,
    CAPTION_SIZE_RANGE,
    DEFAULT_CAPTION_SIZE,
    DEFAULT_FPS,
    DEFAULT_HEAD_MOTION,
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_SIZE,
    DEFAULT_VOLUME,
    LIVE_DEFAULT_SIZE,
    LIVE_DEFAULT_SIZE_WITH_ASPECT,
    LIVE_MAX_PIXELS,
    LIVE_MAX_SIDE,
    LIVE_MIN_SIDE,
    MAX_AUDIO_S,
    MAX_CORNER_RADIUS,
    MAX_FPS,
    MAX_HEAD_MOTION,
    MAX_LAYERS,
    MAX_PROMPT_CHARS,
    MAX_SCALE,
    MIN_AUDIO_S,
    MIN_FPS,
    MIN_SCALE,
    PITCH_RANGE,
    RATE_RANGE,
    TTS_FORMATS,
    VOLUME_RANGE,
)

# the database keeps naive UTC; the wire says so
Timestamp = Annotated[datetime, AfterValidator(
    lambda t: t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t)]

JobStatus = Literal["queued", "running", "succeeded", "failed", "canceled", "expired"]
JobKind = Literal["talking_photo", "dub_video", "clean_video", "tts", "voice_clone",
                  "avatar_clone", "avatar_video"]

# the wire's enums, built from the rules' lists (rules.ASPECTS: the canvas shapes the
# renderer takes); a type checker cannot read a Literal built at run time, so it sees str
if TYPE_CHECKING:
    Aspect: TypeAlias = str
    Quality: TypeAlias = str
    TtsFormat: TypeAlias = str
    CaptionFormat: TypeAlias = str
    CaptionPosition: TypeAlias = str
else:
    Aspect = Literal[tuple(ASPECTS)]
    Quality = Literal[tuple(QUALITY)]
    TtsFormat = Literal[tuple(TTS_FORMATS)]
    CaptionFormat = Literal[tuple(CAPTION_FORMATS)]
    CaptionPosition = Literal[tuple(CAPTION_POSITIONS)]

Url = Annotated[str, Field(min_length=8, max_length=4096, pattern=r"^https?://")]


class Request(CheckedText, BaseModel):  # BaseModel named for linters
    model_config = ConfigDict(extra="forbid")


class MediaInput(Request):
    """One media file: exactly one of ``url``, ``base64``, ``asset_id`` or ``job_result``."""

    url: Url | None = None
    base64: Annotated[str, Field(min_length=1)] | None = None
    asset_id: Annotated[str, Field(pattern=r"^ast_[0-9]{1,18}$")] | None = None
    job_result: Annotated[str, Field(pattern=r"^job_[0-9]{1,18}/[a-z_]{1,32}$")] | None = Field(
        None, description="A file of one of your finished jobs, e.g. 'job_12/audio'")
    filename: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _one(self) -> MediaInput:
        given = (self.url, self.base64, self.asset_id, self.job_result)
        if sum(x is not None for x in given) != 1:
            raise ValueError("give exactly one of url, base64, asset_id or job_result")
        return self


class JobCommon(Request):
    external_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Your own id, unique per account: repeating a create with it "
                          "returns the existing job.")
    callback_url: Url | None = Field(
        None, description="Receives a signed webhook (Standard Webhooks) on every status "
                          "change; signed with the account's webhook secret.")


Color = Annotated[str, Field(pattern=r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$",
                             description="#rrggbb")]
Size = Annotated[str, Field(pattern=r"^[0-9]{1,5}x[0-9]{1,5}$", description="WxH")]


class LayerIn(Request):
    """An image layer (``image``) or a colour rectangle (``color`` with a size)."""

    image: MediaInput | None = None
    color: Color | None = None
    x: Annotated[int, Field(ge=-10_000, le=10_000)] = 0
    y: Annotated[int, Field(ge=-10_000, le=10_000)] = 0
    width: Annotated[int, Field(ge=1, le=7680)] | None = None
    height: Annotated[int, Field(ge=1, le=7680)] | None = None
    z: Annotated[int, Field(ge=-16, le=16)] = Field(1, description="avatar = 0; < 0 below it")
    opacity: Annotated[float, Field(ge=0, le=1)] = 1.0

    @model_validator(mode="after")
    def _one(self) -> LayerIn:
        if (self.image is None) == (self.color is None):
            raise ValueError("a layer has an image or a color")
        return self


class CompositionIn(Request):
    """Where and how the avatar sits on the canvas."""

    canvas: Size | None = Field(None, description="Canvas WxH, up to 3840x2160")
    background_color: Color | None = None
    background: MediaInput | None = Field(None, description="An image, or a video (looped)")
    replace_background: bool = Field(False, description="Cut the person out of the photo")
    position: tuple[Annotated[float, Field(ge=-10_000, le=10_000)],
                    Annotated[float, Field(ge=-10_000, le=10_000)]] = (0.5, 0.5)
    units: Literal["fraction", "px"] = "fraction"
    anchor: Literal["center", "top-left"] = "center"
    scale: Annotated[float, Field(ge=MIN_SCALE, le=MAX_SCALE)] = 1.0
    avatar_size: Size | None = None
    mask: Literal["none", "circle", "rect"] = "none"
    corner_radius: Annotated[float, Field(ge=0, le=MAX_CORNER_RADIUS)] = 0.0
    layers: Annotated[list[LayerIn], Field(max_length=MAX_LAYERS)] = []


class CaptionsIn(Request):
    """Captions of the speech: a file in the job's result (``captions``) and/or burned
    into the video. Word timings come from the text (TTS) or the transcript; without
    either, English speech is recognised (other languages fail with captions_need_text)."""

    format: CaptionFormat | None = Field(
        CAPTION_FORMATS[0], description="srt or vtt; null: no file (burn only)")
    burn: bool = Field(False, description="Draw the captions into the video")
    position: CaptionPosition = Field(CAPTION_POSITIONS[0], description="bottom or top")
    size: Annotated[float, Field(ge=CAPTION_SIZE_RANGE[0], le=CAPTION_SIZE_RANGE[1])] = Field(
        DEFAULT_CAPTION_SIZE, description="Burned text height, a fraction of the frame's")


class TalkingPhotoCreate(JobCommon):
    photo: MediaInput | None = Field(None, description="The portrait; or give avatar_id.")
    avatar_id: Annotated[str, Field(pattern=r"^av_[0-9]{1,18}$")] | None = None
    audio: MediaInput | None = Field(
        None, description=f"Speech ({MIN_AUDIO_S:g} to {MAX_AUDIO_S:g} s); or give text.")
    text: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    voice: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="Voice id for text (see /voices); default the built-in voice.")
    transcript: Annotated[str, Field(max_length=10_000)] | None = Field(
        None, description="The words of an English audio, for exact lip shapes.")
    size: Annotated[str, Field(max_length=20)] = Field(
        DEFAULT_SIZE, description="source, 720p, 1080p, 4k or WxH")
    aspect: Aspect | None = None
    fps: Annotated[int, Field(ge=MIN_FPS, le=MAX_FPS)] = DEFAULT_FPS
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    head_motion: Annotated[float, Field(ge=0, le=MAX_HEAD_MOTION)] = DEFAULT_HEAD_MOTION
    blinks: bool = True
    quality: Quality = Field("std", description="pro: slower, sharper encoding")
    watermark: bool = Field(False, description="Also make a watermarked copy ('watermarked')")
    composition: CompositionIn | None = None
    expression: Annotated[str, Field(min_length=1, max_length=40)] | Annotated[
        int, Field(ge=1, le=10_000)] | None = Field(
        None, description="An expression template: its key or id (see /expressions); "
                          "default natural.")
    prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] | None = Field(
        None, description="Free text steering expression, head gestures and camera, e.g. "
                          "'while talking, nodding, then smiling; slow zoom in'. Parts it "
                          "cannot use are listed in the result's info.prompt_unused.")
    captions: CaptionsIn | None = None


Box = Annotated[list[Annotated[float, Field(ge=0, le=10_000)]],
                Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in pixels")]


class DubCreate(JobCommon):
    video: MediaInput = Field(description="MP4, MOV, MKV, WebM or AVI in any codec facecast "
                             "decodes, longer than 5 s, up to 300 MB")
    audio: MediaInput | None = None
    text: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    voice: Annotated[str, Field(max_length=200)] | None = None
    transcript: Annotated[str, Field(max_length=10_000)] | None = None
    face_index: Annotated[int, Field(ge=0, le=9)] = Field(
        0, description="With several faces: 0 is the largest")
    quality: Quality = "std"
    captions: CaptionsIn | None = Field(
        None, description="Captions of the new speech: a file ('captions') and/or burned in")


class CleanupCreate(JobCommon):
    video: MediaInput = Field(description="MP4, MOV, MKV, WebM or AVI, longer than 5 s, up "
                             "to 200 MB")
    subtitle_areas: Annotated[list[Box], Field(max_length=16)] = []
    watermark_areas: Annotated[list[Box], Field(max_length=16)] = Field(
        [], description="With no areas at all, subtitles and logos are found automatically")


class SpeechCreate(JobCommon):
    text: Annotated[str, Field(min_length=1, max_length=10_000)]
    voice: Annotated[str, Field(max_length=200)] | None = None
    rate: Annotated[float, Field(ge=RATE_RANGE[0], le=RATE_RANGE[1])] = DEFAULT_RATE
    pitch: Annotated[float, Field(ge=PITCH_RANGE[0], le=PITCH_RANGE[1])] = DEFAULT_PITCH
    volume: Annotated[float, Field(ge=VOLUME_RANGE[0], le=VOLUME_RANGE[1])] = DEFAULT_VOLUME
    format: TtsFormat = TTS_FORMATS[0]


class VoiceCloneCreate(JobCommon):
    sample: MediaInput
    name: Annotated[str, Field(min_length=1, max_length=100)]
    language: Annotated[str, Field(max_length=20)] | None = None


class FileOut(BaseModel):
    url: str
    content_type: str
    size: int
    url_expires_at: Timestamp


class JobError(BaseModel):
    code: str
    message: str


class QualityOut(BaseModel):
    """What the lip-sync measure saw on a rendered video (docs/API.md, "Quality report")."""

    verdict: Literal["good", "check", "poor"]
    reasons: list[str] = Field(description="Why the verdict is not good; empty when it is.")
    note: str = Field("", description="A caveat that does not change the verdict.")
    face_found_share: float = Field(description="Share of the measured frames with a face.")
    lag_ms: float | None = Field(description="Mouth ahead of the sound by this many ms "
                                 "(negative: behind); null without a face or sound.")
    r: float | None = Field(description="How closely the mouth follows the sound "
                            "(Pearson r at the lag; real speakers about 0.4).")
    motion: float | None = Field(description="Mouth motion: std of the lip gap over the "
                                 "eye distance (real speakers 0.013-0.055).")
    frames_measured: int
    seconds_measured: float
    video_seconds: float
    seconds_taken: float


class JobResult(BaseModel):
    files: dict[str, FileOut]
    info: dict[str, Any]
    quality: QualityOut | None = Field(
        None, description="Lip-sync quality report of a rendered video (talking_photo, "
        "dub_video, avatar_video); null for other kinds.")


class JobOut(BaseModel):
    id: str
    object: Literal["job"] = "job"
    kind: str
    status: JobStatus
    progress: int = Field(description="0 to 100")
    stage: str
    input: dict[str, Any]
    result: JobResult | None
    error: JobError | None
    cost_estimate: int
    cost: int | None
    external_id: str | None
    callback_url: str | None
    attempts: int
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    expires_at: Timestamp | None


class Page(BaseModel):
    total: int
    page: int
    page_size: int


class JobList(Page):
    items: list[JobOut]


class AdminJobOut(JobOut):
    account_id: str = Field(description="Whose job it is (acc_...)")


class AdminJobList(Page):
    items: list[AdminJobOut]


class AssetOut(BaseModel):
    id: str
    object: Literal["asset"] = "asset"
    kind: str
    filename: str
    content_type: str
    size: int
    sha256: str
    info: dict[str, Any]
    url: str
    created_at: Timestamp
    expires_at: Timestamp | None


class AssetList(Page):
    items: list[AssetOut]


class AssetImport(Request):
    url: Url | None = None
    base64: Annotated[str, Field(min_length=1)] | None = None
    filename: Annotated[str, Field(max_length=200)] | None = None

    @model_validator(mode="after")
    def _one(self) -> AssetImport:
        if (self.url is None) == (self.base64 is None):
            raise ValueError("give exactly one of url or base64")
        return self


class VoiceOut(BaseModel):
    id: str
    name: str
    language: str
    region: str | None
    gender: str | None
    age_group: str | None
    engine: str
    sample_rate: int
    custom: bool
    preview_url: str


class VoiceList(Page):
    items: list[VoiceOut]


class VoiceUpdate(Request):
    name: Annotated[str, Field(min_length=1, max_length=100)]


class RegionOut(BaseModel):
    code: str
    name: str
    voices: int


class ExpressionOut(BaseModel):
    id: int
    key: str
    name: str
    name_zh: str
    description: str
    controls: dict[str, Any] = Field(description="What the template sets: channel levels "
                                     "while speaking and in pauses, head gestures")
    preview_url: str = Field(description="A short preview video (MP4); empty until rendered")
    thumbnail_url: str = Field(description="Its thumbnail (JPEG); empty until rendered")


class PromptCheck(Request):
    prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


class PromptCheckOut(BaseModel):
    used: list[str] = Field(description="The parts understood (exact substrings)")
    unused: list[str] = Field(description="The parts that will not be rendered (exact "
                                          "substrings); a job lists the same in "
                                          "result.info.prompt_unused")
    actions: list[str] = Field(description="What the prompt will do, in words")


class ExpressionList(BaseModel):
    items: list[ExpressionOut]
    total: int


class LanguageOut(BaseModel):
    code: str
    name: str
    regions: list[RegionOut]


AvatarGender = Literal["female", "male"]
AvatarAge = Literal["child", "young", "adult", "senior"]
AvatarRegion = Literal["western", "asian", "japanese_korean", "southeast_asian", "indian",
                       "middle_eastern", "african"]
AvatarStyle = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
                                   description="e.g. professional, casual, formal")]


class AvatarUpdate(Request):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class AvatarCreate(Request):
    """A photo avatar (face-checked at once) or a video avatar (made by an
    ``avatar_clone`` job from a 5 s to 10 min recording: ``processing`` until it ends)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    photo: MediaInput | None = Field(None, description="A portrait; or give video.")
    video: MediaInput | None = Field(None, description="A recording of the person speaking "
                                                       "(MP4, MOV, MKV, WebM or AVI, 5 s to "
                                                       "10 min, <= 300 MB)")
    face_index: Annotated[int, Field(ge=0, le=20)] = Field(
        0, description="video: with several faces, which one (0 = the largest)")
    gender: AvatarGender | None = None
    age: AvatarAge | None = None
    style: AvatarStyle | None = None
    region: AvatarRegion | None = None
    tags: Annotated[list[Annotated[str, Field(max_length=50)]], Field(max_length=20)] = []

    @model_validator(mode="after")
    def _one(self) -> AvatarCreate:
        if (self.photo is None) == (self.video is None):
            raise ValueError("give exactly one of photo or video")
        return self


class FaceCheckRequest(Request):
    photo: MediaInput
    profile: Literal["default", "kreado", "kling"] = Field(
        "default", description="Whose photo rules to apply (sizes, aspect, file size)")


class FaceCheckOut(BaseModel):
    accepted: bool
    reason: str | None = Field(description="Why it was refused: no_face, multiple_faces, ...")
    message: str
    image: dict[str, int] | None
    face: dict[str, Any] | None
    pose: dict[str, Any] | None
    faces: int


class AvatarError(BaseModel):
    code: str
    message: str


class AvatarOut(BaseModel):
    id: str
    object: Literal["avatar"] = "avatar"
    name: str
    kind: Literal["photo", "video"]
    status: Literal["ready", "processing", "failed"]
    custom: bool
    source: Literal["builtin", "operator", "custom"] = Field(
        description="builtin: ships with facecast; operator: FACECAST_AVATAR_DIRS; custom: yours")
    gender: str | None
    age: str | None
    style: str | None
    region: str | None
    tags: list[str]
    photo_url: str | None = Field(description="The portrait (photo avatars)")
    thumbnail_url: str | None = Field(description="Square face crop, JPEG (null until made)")
    preview_url: str | None = Field(description="A short talking MP4 (null until rendered)")
    face: dict[str, Any] | None
    video: dict[str, Any] | None = Field(
        description="Video avatars: width, height, fps, duration, source_duration, ...")
    job_id: str | None = Field(description="The avatar_clone job that makes a video avatar")
    error: AvatarError | None
    created_at: Timestamp


class AvatarList(Page):
    items: list[AvatarOut]


WebhookEvent = Literal["job.queued", "job.running", "job.succeeded", "job.failed",
                       "job.canceled", "job.expired", "webhook.test"]


class WebhookCreate(Request):
    url: Url
    events: Annotated[list[WebhookEvent], Field(max_length=10)] = Field(
        [], description="Event types to receive; empty: all.")
    description: Annotated[str, Field(max_length=500)] = ""


class WebhookUpdate(Request):
    url: Url | None = None
    events: Annotated[list[WebhookEvent], Field(max_length=10)] | None = None
    description: Annotated[str, Field(max_length=500)] | None = None
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    description: str
    enabled: bool
    secret: str
    created_at: Timestamp


class WebhookMessage(BaseModel):
    """The body of a native webhook delivery (Standard Webhooks; what
    ``facecast.client.verify_webhook`` returns): the event, when it happened and its data
    (a job's ``id``, ``kind``, ``status``, ``progress``, ``external_id``, ``error``,
    ``cost``)."""

    type: str = Field(description="job.running, job.succeeded, ..., webhook.test")
    timestamp: Timestamp
    data: dict[str, Any]


class DeliveryOut(BaseModel):
    id: str
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint_id: str | None
    job_id: str | None
    url: str
    event_type: str
    msg_id: str
    status: str
    attempts: int
    attempts_log: list[dict[str, Any]]
    payload: dict[str, Any]
    next_attempt_at: Timestamp | None
    created_at: Timestamp
    finished_at: Timestamp | None


class DeliveryList(Page):
    items: list[DeliveryOut]


class AccountOut(BaseModel):
    id: str
    object: Literal["account"] = "account"
    name: str
    is_admin: bool
    balance: int
    held: int = Field(description="Credits held by unfinished jobs")
    available: int
    credits_spent: int
    webhook_secret: str
    jobs_by_status: dict[str, int]
    limits: dict[str, Any]
    prices: dict[str, int]
    created_at: Timestamp


class LedgerOut(BaseModel):
    id: int
    amount: int
    kind: str
    job_id: str | None
    balance_after: int
    note: str
    created_at: Timestamp


class LedgerList(Page):
    items: list[LedgerOut]


class KeyCreate(Request):
    name: Annotated[str, Field(max_length=200)] = ""


class KeyOut(BaseModel):
    id: str
    object: Literal["api_key"] = "api_key"
    name: str
    prefix: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown only now.")


class VendorCredentialCreate(Request):
    vendor: Literal["akool", "kling"]
    name: Annotated[str, Field(max_length=200)] = ""


class VendorCredentialOut(BaseModel):
    id: str
    object: Literal["vendor_credential"] = "vendor_credential"
    vendor: str
    client_id: str = Field(description="Akool clientId / Kling access key")
    name: str
    created_at: Timestamp
    revoked_at: Timestamp | None


class VendorCredentialCreated(VendorCredentialOut):
    client_secret: str = Field(description="Akool clientSecret / Kling secret key: shown "
                                           "only now")


class AccountCreate(Request):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    credits: Annotated[int, Field(ge=0, le=10**12)] | None = None
    is_admin: bool = False
    rate_limit: Annotated[str, Field(max_length=100, pattern=r"^[0-9]+ *(/|per) *[0-9a-z ;/]+$")] \
        | None = Field(None, description="Per-key rate limit, e.g. '10/second;600/minute'")
    max_queued_jobs: Annotated[int, Field(ge=1, le=10_000)] | None = None


class AccountCreated(BaseModel):
    id: str
    name: str
    is_admin: bool
    balance: int
    api_key: str


class AccountBrief(BaseModel):
    id: str
    name: str
    is_admin: bool
    balance: int
    created_at: Timestamp


class WorkerOut(BaseModel):
    id: str = Field(description="wrk_...: one worker process")
    object: Literal["worker"] = "worker"
    hostname: str
    pid: int
    queue: Literal["sqlite", "redis"] = Field(description="The queue it takes jobs from")
    state: Literal["idle", "busy", "lost"] = Field(
        description="busy: running job_id; lost: no heartbeat for lost_after_s seconds "
                    "(killed, or its machine is gone)")
    started_at: Timestamp
    last_seen: Timestamp
    job_id: str | None = Field(None, description="The job it runs now (job_...)")
    job_kind: str | None = None
    jobs_done: int = Field(description="Jobs it finished since it started")
    jobs_failed: int


class WorkerList(BaseModel):
    object: Literal["list"] = "list"
    items: list[WorkerOut]
    lost_after_s: float = Field(description="A worker silent this long shows as lost")


class CreditGrant(Request):
    amount: Annotated[int, Field(ge=-(10**12), le=10**12)]
    note: Annotated[str, Field(max_length=500)] = ""


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    queued: int
    running: int


# ---- live avatars (issue #16) -------------------------------------------------------------

StreamStatus = Literal["starting", "live", "ended"]


class StreamCreate(Request):
    avatar_id: Annotated[str, Field(pattern=r"^av_[0-9]{1,18}$")] | None = Field(
        None, description="The avatar to stream; or give photo.")
    photo: MediaInput | None = Field(None, description="A portrait (as a talking photo takes "
                                     "it); or give avatar_id. Not kept.")
    voice: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="Voice id for spoken text (see /voices); default the built-in voice.")
    size: Annotated[str, Field(max_length=20)] | None = Field(
        None, description=f"source, 480p, 720p or WxH (sides {LIVE_MIN_SIDE} to "
                          f"{LIVE_MAX_SIDE}, at most {LIVE_MAX_PIXELS} pixels: 720p either "
                          f"way); default {LIVE_DEFAULT_SIZE[0]}x{LIVE_DEFAULT_SIZE[1]} "
                          f"({LIVE_DEFAULT_SIZE_WITH_ASPECT} with an aspect)")
    aspect: Aspect | None = None
    expression: Annotated[str, Field(min_length=1, max_length=40)] | Annotated[
        int, Field(ge=1, le=10_000)] | None = Field(
        None, description="An expression template: its key or id (see /expressions).")


class StreamOut(BaseModel):
    id: str
    object: Literal["live_stream"] = "live_stream"
    status: StreamStatus
    avatar_id: str | None
    width: int
    height: int
    voice: str | None
    expression: str | None
    whep_url: str = Field(description="POST an SDP offer here (WHEP, RFC 9725): the API key "
                          "as Bearer token, or this URL's signed token as it is.")
    events_url: str = Field(description="Server-sent events: utterances and words")
    created_at: Timestamp
    expires_at: Timestamp = Field(description="The latest the stream ends (maximum duration)")
    ended_at: Timestamp | None
    ended_reason: str | None = Field(description="deleted, idle, max_duration, "
                                     "insufficient_credits, process_exited, shutdown")
    viewers: int
    media_seconds: float
    minutes_charged: int
    credits_charged: int
    price_per_minute: int


class StreamList(BaseModel):
    items: list[StreamOut]


class SpeakIn(Request):
    text: Annotated[str, Field(min_length=1, max_length=10_000)] | None = None
    audio: MediaInput | None = Field(
        None, description=f"Speech to play (up to {MAX_AUDIO_S:g} s); or give text.")
    rate: Annotated[float, Field(ge=RATE_RANGE[0], le=RATE_RANGE[1])] = DEFAULT_RATE
    pitch: Annotated[float, Field(ge=PITCH_RANGE[0], le=PITCH_RANGE[1])] = DEFAULT_PITCH
    volume: Annotated[float, Field(ge=VOLUME_RANGE[0], le=VOLUME_RANGE[1])] = DEFAULT_VOLUME

    @model_validator(mode="after")
    def _one(self) -> SpeakIn:
        if (self.text is None) == (self.audio is None):
            raise ValueError("give exactly one of text or audio")
        return self


class UtteranceOut(BaseModel):
    id: str
    object: Literal["utterance"] = "utterance"
    stream_id: str


class InterruptOut(BaseModel):
    interrupted: str | None = Field(description="The utterance cut, or null when none played")
    stream_id: str
