"""Akool's wire shapes for the v3 open API, with Akool's exact field names.

Requests are parsed leniently on purpose: Akool clients send fields this API
does not use, and value rules (a canvas other than 3840x2160, a rate outside
0%-100%) are refused by the mapper with Akool's 1003 "parameter error".
Numbers are accepted as JSON numbers; ``type`` of an avatar upload may be a
string or a number, as Akool's own table and example disagree.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from facecast.api.wire import CheckedText


class _Lenient(CheckedText):
    model_config = ConfigDict(extra="ignore")


class Element(_Lenient):
    """One element of ``talkingavatar/create``: avatar, image or audio."""

    type: str = Field(description="avatar, image or audio")
    url: str | None = Field(None, description="image: a URL or a colour code (#RRGGBB); "
                                              "avatar: an image or video URL (avatar_from 3); "
                                              "audio: an audio URL (wins over input_text)")
    scale_x: float | None = None
    scale_y: float | None = None
    offset_x: float | None = Field(None, description="left edge, pixels of the 3840x2160 canvas")
    offset_y: float | None = Field(None, description="top edge, pixels of the 3840x2160 canvas")
    width: float | None = None
    height: float | None = None
    avatar_id: str | None = Field(None, description="An avatar_id from avatar/list")
    input_text: str | None = Field(None, description="Text to speak, with voice_id")
    voice_id: str | None = Field(None, description="A facecast voice id (voice/list)")


class TalkingAvatarCreate(_Lenient):
    width: int = Field(3840, description="must be 3840")
    height: int = Field(2160, description="must be 2160")
    avatar_from: int = Field(3, description="2: a listed avatar, 3: your own or a URL")
    webhookUrl: str | None = None
    elements: list[Element] = Field(default_factory=list)


class TalkingPhotoCreate(_Lenient):
    talking_photo_url: str | None = None
    audio_url: str | None = None
    webhookUrl: str | None = None


class AudioCreate(_Lenient):
    input_text: str | None = None
    voice_id: str | None = None
    rate: str | None = Field(None, description="0% to 100%; 100% is the normal speed")
    webhookUrl: str | None = None


class AudioClone(_Lenient):
    input_text: str | None = None
    rate: str | None = None
    voice_url: str | None = None
    voice_id: str | None = None
    webhookUrl: str | None = None


class AvatarCreate(_Lenient):
    url: str | None = None
    avatar_id: str | None = None
    name: str | None = None
    type: str | int | None = None


class TokenRequest(_Lenient):
    clientId: str | None = None
    clientSecret: str | None = None


class Envelope(BaseModel):
    code: int = Field(1000, description="1000 on success; see the codes")
    msg: str


class DataResponse(Envelope):
    data: Any = None


class TokenResponse(BaseModel):
    code: int = 1000
    token: str


class ErrorResponse(Envelope):
    """Every refusal: Akool's code (1003 parameters, 1006 quota, 1008 not found, 1009
    permission, 1015 video error, 1101/1102 authorization, 1109 avatar error, 1200
    banned, 1201 audio error) with a matching HTTP status."""
