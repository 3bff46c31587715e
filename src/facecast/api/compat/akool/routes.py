"""Akool's v3 endpoints (mounted at ``/api/open/v3``).

Each route checks its wire model, calls the mapper (which calls the
:class:`~facecast.service.core.Service`) and wraps the result in Akool's
envelope ``{code: 1000, msg, data}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from facecast.api.deps import guarded_auth, ingesting
from facecast.errors import FacecastError
from facecast.service.core import Service

from . import auth, mapper, wire
from .auth import Caller

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": wire.ErrorResponse, "description": text} for status, text in (
        (400, "1003 parameter error or parameter can not be empty"),
        (401, "1101 invalid authorization or expired token, 1102 authorization empty"),
        (402, "1006 your quota is not enough"),
        (403, "1009 no permission, 1200 account banned"),
        (404, "1008 the content does not exist (or no such endpoint)"),
        (429, "1006 rate limit or too many unfinished tasks"),
        (500, "1015 create video error, 1109 create avatar video error, "
              "1201 create audio error"))
}
ERRORS["default"] = {"model": wire.ErrorResponse, "description": "Any refusal, same envelope"}

router = APIRouter(responses=ERRORS)


def _service(request: Request) -> Service:
    return request.app.state.service


def ok(data: Any) -> wire.DataResponse:
    return wire.DataResponse(code=1000, msg=mapper.OK_MSG, data=data)


@router.post("/getToken", response_model=wire.TokenResponse, tags=["auth"],
             summary="A bearer token for a clientId/clientSecret pair")
def get_token(body: wire.TokenRequest, request: Request) -> wire.TokenResponse:
    # a wrong clientSecret is a failed authentication like a wrong key
    return wire.TokenResponse(token=guarded_auth(request, lambda: auth.issue_token(
        _service(request), body.clientId, body.clientSecret)))


@router.get("/avatar/list", response_model=wire.DataResponse, tags=["avatar"],
            summary="Avatars: from 2 (facecast's library) or 3 (your own)")
def avatar_list(request: Request, caller: Caller,
                source: Annotated[int | None, Query(alias="from")] = None,
                type: int | None = None,
                page: int = 1, size: int = 100) -> wire.DataResponse:
    return ok(mapper.list_avatars(_service(request), caller, source, type, page, size))


@router.get("/avatar/detail", response_model=wire.DataResponse, tags=["avatar"],
            summary="One avatar by its _id (or avatar_id), as a one-item array")
def avatar_detail(request: Request, caller: Caller, id: str = "") -> wire.DataResponse:
    service = _service(request)
    if not id.strip():
        raise mapper.bad("id can not be empty")
    return ok([mapper.avatar_item(service, mapper.find_avatar(service, caller, id))])


@router.post("/avatar/create", response_model=wire.DataResponse, tags=["avatar"],
             summary="Make a (video) avatar from a recording: status 1 -> 2 -> 3 or 4 in "
                     "avatar/detail")
@ingesting  # its inputs may be URLs to download
def avatar_create(body: wire.AvatarCreate, request: Request,
                  caller: Caller) -> wire.DataResponse:
    return ok(mapper.upload_avatar(_service(request), caller, body))


@router.post("/talkingavatar/create", response_model=wire.DataResponse, tags=["video"],
             summary="Create a talking avatar video from elements")
@ingesting  # its inputs may be URLs to download
def talking_avatar_create(body: wire.TalkingAvatarCreate, request: Request,
                          caller: Caller) -> wire.DataResponse:
    service = _service(request)
    try:
        job = mapper.create_talking_avatar(service, caller, body)
    except FacecastError as exc:
        raise mapper.from_facecast(exc, 1015) from None
    return ok(mapper.video_record(service, job, caller))


@router.post("/content/video/createbytalkingphoto", response_model=wire.DataResponse,
             tags=["video"], summary="Create a talking photo video")
@ingesting  # its inputs may be URLs to download
def talking_photo_create(body: wire.TalkingPhotoCreate, request: Request,
                         caller: Caller) -> wire.DataResponse:
    service = _service(request)
    try:
        job = mapper.create_talking_photo(service, caller, body)
    except FacecastError as exc:
        raise mapper.from_facecast(exc, 1015) from None
    return ok(mapper.video_record(service, job, caller))


@router.get("/content/video/infobymodelid", response_model=wire.DataResponse, tags=["video"],
            summary="A video's status and URL by its _id")
def video_info(request: Request, caller: Caller,
               video_model_id: str = "") -> wire.DataResponse:
    service = _service(request)
    if not video_model_id.strip():
        raise mapper.bad("video_model_id can not be empty")
    return ok(mapper.video_record(service, mapper.find_video(service, caller, video_model_id),
                                  caller))


@router.post("/audio/create", response_model=wire.DataResponse, tags=["audio"],
             summary="Text to speech")
def audio_create(body: wire.AudioCreate, request: Request, caller: Caller
                 ) -> wire.DataResponse:
    service = _service(request)
    try:
        job = mapper.create_audio(service, caller, body)
    except FacecastError as exc:
        raise mapper.from_facecast(exc, 1201) from None
    return ok(mapper.audio_record(service, job, caller))


@router.post("/audio/clone", response_model=wire.DataResponse, tags=["audio"],
             summary="Speech in a voice cloned from voice_url (or a voice_id)")
@ingesting  # its inputs may be URLs to download
def audio_clone(body: wire.AudioClone, request: Request, caller: Caller
                ) -> wire.DataResponse:
    service = _service(request)
    try:
        job = mapper.clone_audio(service, caller, body)
    except FacecastError as exc:
        raise mapper.from_facecast(exc, 1201) from None
    return ok(mapper.audio_record(service, job, caller))


@router.get("/voice/list", response_model=wire.DataResponse, tags=["audio"],
            summary="Voices usable as voice_id (facecast voice ids)")
def voice_list(request: Request, caller: Caller, page: int = 1,
               size: int = 100) -> wire.DataResponse:
    return ok(mapper.list_voices(_service(request), caller, page, size))
