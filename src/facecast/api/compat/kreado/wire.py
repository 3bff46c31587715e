"""KreadoAI v3 wire shapes, with KreadoAI's exact field names.

Requests are parsed leniently: KreadoAI's own examples send ``null`` for
fields left out, ids as numbers or as strings ("jobId": "1862..."), and one
example (textToSpeech) even carries a trailing comma, which the routes
tolerate before these models see the body. Value rules (ranges, enums) are
checked by the mapper, which answers KreadoAI's own codes (10002 and the
like) rather than pydantic's generic complaint.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from facecast.api.wire import CheckedText


class _Lenient(CheckedText):
    model_config = ConfigDict(extra="ignore")


Id = int | str  # KreadoAI sends Long ids both as JSON numbers and as strings


class AvatarList(_Lenient):
    """``POST /avatar/v3/list``."""

    cloneDigitalHuman: int | None = Field(0, description="1: only your own (uploaded) "
                                                         "avatars; 0: the library and yours")
    supportTypeId: int | None = Field(100, description="100 photo, 101 video")
    digitalHumanId: Id | None = None
    tagIds: list[int] | None = Field(None, description="211 female, 210 male; 137 realistic, "
                                                       "138 featured, 139 premium")
    areaTypeIds: list[int] | None = Field(None, description="Region tags 140-146")
    pageIndex: int = 1
    pageSize: int = 10


class UploadAvatar(_Lenient):
    fileUrl: str | None = Field(None, description="jpg/jpeg/png/webp, <= 10 MB, 360-4000 px")


class JobQuery(_Lenient):
    jobId: Id | None = None


class TaskQuery(_Lenient):
    taskId: Id | None = None


class LipTask(_Lenient):
    """``POST /video/v3/submitLipTask``: a video of a person re-voiced."""

    taskName: str | None = None
    videoUrl: str | None = None
    audioUrl: str | None = None
    audioId: Id | None = Field(None, description="A textToSpeech fileId, used instead of "
                                                 "audioUrl")


class AudioIn(_Lenient):
    audioUrl: str | None = None
    audioId: Id | None = None


class DigitalHumanIn(_Lenient):
    digitalHumanId: Id | None = None
    mask: int | None = Field(None, description="0 none, 1 circle, 2 rectangle")
    x: float | None = Field(None, description="Left edge of the avatar on the canvas, px")
    y: float | None = Field(None, description="Top edge of the avatar on the canvas, px")
    resize: str | float | None = Field(None, description="Scale, e.g. \"1.00\"")
    templateId: Id | None = None


class BackgroundElement(_Lenient):
    elementType: int | None = None
    fileUrl: str | None = None
    resize: str | float | None = None


class BackgroundIn(_Lenient):
    type: int | None = Field(None, description="302 colour, 303 image")
    color: str | None = Field(None, description="e.g. rgb (0, 255, 0)")
    backgroundElements: list[BackgroundElement] | None = None


class SystemLipTask(_Lenient):
    """``POST /video/v3/submitSystemLipTask``: a digital human speaking audio."""

    taskName: str | None = None
    videoRatio: int | None = Field(None, description="1: 16:9, 2: 9:16")
    audio: AudioIn | None = None
    digitalHuman: DigitalHumanIn | None = None
    background: BackgroundIn | None = None


class VideoList(_Lenient):
    status: int | None = None
    pageIndex: int = 1
    pageSize: int = 10


class EmoList(_Lenient):
    id: int | None = None
    pageIndex: int = 1
    pageSize: int = 10


class CloneVideo(_Lenient):
    videoUrl: str | None = None


class VoiceList(_Lenient):
    language: str | None = None
    languageCityType: str | None = None
    gender: str | None = None
    ageGroup: str | None = None
    voiceClone: int | None = 0
    voiceSource: int | None = None
    pageIndex: int = 1
    pageSize: int = 10


class TextToSpeech(_Lenient):
    languageId: str | int | None = None
    content: str | None = None
    voiceId: str | None = None
    voiceClone: int | None = 0
    voiceSource: int | None = None
    styleId: str | None = None
    volume: float | None = None
    prosodyRate: float | None = None
    prosodyPitch: float | None = None


class RectArea(_Lenient):
    lt_x: float
    lt_y: float
    rb_x: float
    rb_y: float


class SubtitleRemoval(_Lenient):
    taskName: str | None = None
    srcFileUrl: str | None = None
    customRectAreaList: list[RectArea] | None = Field(None, description="Watermark areas")
    rectAreaList: list[RectArea] | None = Field(None, description="Subtitle areas")


class Envelope(BaseModel):
    """Every answer: ``code`` "200" on success, else a KreadoAI error code (a string)."""

    code: str = "200"
    message: str = "Success"
    data: Any = None
    requestId: str
