"""Native routes for what jobs use: voices, languages, expression templates, avatars and
uploaded assets."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Response, UploadFile
from fastapi.responses import FileResponse

from facecast.api.deps import Caller, ServiceDep, ingesting, parse_id
from facecast.api.errors import ERROR_RESPONSES
from facecast.api.native import views
from facecast.api.native import wire as s
from facecast.api.native.mapper import media
from facecast.service import origin

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

PageNo = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


@router.get("/voices", response_model=s.VoiceList, tags=["voices"],
            summary="Voices, filtered and paged")
def list_voices(service: ServiceDep, caller: Caller,
                language: Annotated[str | None, Query(max_length=20)] = None,
                region: Annotated[str | None, Query(max_length=10)] = None,
                gender: Literal["male", "female"] | None = None,
                age_group: Literal["child", "young", "adult", "senior"] | None = None,
                engine: Literal["piper", "espeak", "clone"] | None = None,
                custom: bool | None = None,
                query: Annotated[str | None, Query(max_length=100)] = None,
                page: PageNo = 1, page_size: PageSize = 50) -> s.VoiceList:
    rows, total = service.voices(caller, page=page, page_size=page_size, language=language,
                                 region=region, gender=gender, age_group=age_group,
                                 engine=engine, custom=custom, query=query)
    base = origin.base(service.settings.base_url)
    return s.VoiceList(items=[views.voice(base, v) for v in rows], total=total, page=page,
                       page_size=page_size)


@router.get("/voices/{voice_id}", response_model=s.VoiceOut, tags=["voices"])
def get_voice(voice_id: str, service: ServiceDep, caller: Caller) -> s.VoiceOut:
    return views.voice(origin.base(service.settings.base_url), service.voice(caller, voice_id))


@router.get("/voices/{voice_id}/preview", tags=["voices"], response_class=FileResponse,
            responses={200: {"content": {"audio/mpeg": {}}}},
            summary="A short sample of the voice (MP3)")
def voice_preview(voice_id: str, service: ServiceDep, caller: Caller) -> FileResponse:
    from facecast.speech.preview import preview

    v = service.voice(caller, voice_id)
    return FileResponse(preview(v.id), media_type="audio/mpeg")


@router.patch("/voices/{voice_id}", response_model=s.VoiceOut, tags=["voices"],
              summary="Rename one of your cloned voices")
def rename_voice(voice_id: str, body: s.VoiceUpdate, service: ServiceDep,
                 caller: Caller) -> s.VoiceOut:
    service.rename_voice(caller, voice_id, body.name)
    return views.voice(origin.base(service.settings.base_url), service.voice(caller, voice_id))


@router.delete("/voices/{voice_id}", status_code=204, tags=["voices"],
               summary="Delete one of your cloned voices")
def delete_voice(voice_id: str, service: ServiceDep, caller: Caller) -> Response:
    service.delete_voice(caller, voice_id)
    return Response(status_code=204)


@router.get("/languages", response_model=list[s.LanguageOut], tags=["voices"],
            summary="Languages with their regional variants and voice counts")
def list_languages(caller: Caller) -> list[s.LanguageOut]:
    from facecast.speech.voices import languages

    return [s.LanguageOut(code=lang.code, name=lang.name,
                          regions=[s.RegionOut(code=r["code"], name=r["name"],
                                               voices=int(r["voices"])) for r in lang.regions])
            for lang in languages()]


@router.get("/expressions", response_model=s.ExpressionList, tags=["expressions"],
            summary="Expression templates with preview videos (for talking photos' expression)")
def list_expressions(service: ServiceDep, caller: Caller) -> s.ExpressionList:
    items = [s.ExpressionOut(**row) for row in service.expressions()]
    return s.ExpressionList(items=items, total=len(items))


@router.post("/prompt-check", response_model=s.PromptCheckOut, tags=["expressions"],
             summary="What a talking photo's prompt would do, and which parts it would not "
                     "use (nothing is made)")
def prompt_check(body: s.PromptCheck, service: ServiceDep, caller: Caller) -> s.PromptCheckOut:
    return s.PromptCheckOut(**service.read_prompt(body.prompt))


@router.get("/avatars", response_model=s.AvatarList, tags=["avatars"],
            summary="The library and your own avatars, filtered and paged")
def list_avatars(service: ServiceDep, caller: Caller,
                 custom: Annotated[bool | None, Query(
                     description="true: only yours; false: only the library")] = None,
                 kind: Literal["photo", "video"] | None = None,
                 gender: s.AvatarGender | None = None, age: s.AvatarAge | None = None,
                 style: Annotated[str | None, Query(max_length=32)] = None,
                 region: s.AvatarRegion | None = None,
                 tag: Annotated[str | None, Query(max_length=50)] = None,
                 query: Annotated[str | None, Query(max_length=100,
                                                    description="Text in the name")] = None,
                 page: PageNo = 1, page_size: PageSize = 20) -> s.AvatarList:
    rows, total = service.avatars.list(
        caller.account_id, custom=custom, kind=kind, gender=gender,
        ages=[age] if age else None, styles=[style] if style else None,
        regions=[region] if region else None, tag=tag, query=query,
        offset=(page - 1) * page_size, limit=page_size)
    return s.AvatarList(items=[views.avatar(service, r) for r in rows], total=total,
                        page=page, page_size=page_size)


@router.post("/avatars", status_code=201, response_model=s.AvatarOut, tags=["avatars"],
             summary="Your own avatar: a photo (refused with the reason if the face check "
                     "fails) or a video (processing until its avatar_clone job ends)")
@ingesting  # its inputs may be URLs to download
def create_avatar(body: s.AvatarCreate, service: ServiceDep, caller: Caller) -> s.AvatarOut:
    if body.video is not None:
        video = media(body.video)
        assert video is not None
        row, _job = service.create_video_avatar(
            caller, video, body.name, gender=body.gender, age=body.age, style=body.style,
            region=body.region, tags=body.tags, face_index=body.face_index)
        return views.avatar(service, row)
    photo = media(body.photo)
    assert photo is not None
    row = service.avatars.create(caller.account_id, photo, body.name, body.gender, body.tags,
                                 age=body.age, style=body.style, region=body.region)
    return views.avatar(service, row)


@router.post("/face-check", response_model=s.FaceCheckOut, tags=["avatars"],
             summary="Would this photo make a good avatar? (the verdict; nothing is kept)")
@ingesting  # its inputs may be URLs to download
def face_check(body: s.FaceCheckRequest, service: ServiceDep,
               caller: Caller) -> s.FaceCheckOut:
    photo = media(body.photo)
    assert photo is not None
    return s.FaceCheckOut(**service.avatars.check(caller.account_id, photo, body.profile))


@router.get("/avatars/{avatar_id}", response_model=s.AvatarOut, tags=["avatars"])
def get_avatar(avatar_id: str, service: ServiceDep, caller: Caller) -> s.AvatarOut:
    row = service.avatars.get(caller.account_id, parse_id("av", avatar_id, "avatar"))
    return views.avatar(service, row)


@router.patch("/avatars/{avatar_id}", response_model=s.AvatarOut, tags=["avatars"],
              summary="Rename one of your avatars")
def rename_avatar(avatar_id: str, body: s.AvatarUpdate, service: ServiceDep,
                  caller: Caller) -> s.AvatarOut:
    row = service.avatars.rename(caller.account_id, parse_id("av", avatar_id, "avatar"),
                                 body.name)
    return views.avatar(service, row)


@router.delete("/avatars/{avatar_id}", status_code=204, tags=["avatars"])
def delete_avatar(avatar_id: str, service: ServiceDep, caller: Caller) -> Response:
    service.avatars.delete(caller.account_id, parse_id("av", avatar_id, "avatar"))
    return Response(status_code=204)


@router.post("/assets", status_code=201, response_model=s.AssetOut, tags=["assets"],
             summary="Upload a photo, audio or video file (multipart/form-data, field 'file')")
def upload_asset(file: Annotated[UploadFile, File()], service: ServiceDep,
                 caller: Caller) -> s.AssetOut:
    row = service.assets.from_upload(caller.account_id, file.file, file.filename,
                                     {"image", "audio", "video"})
    return views.asset(service, row)


@router.post("/assets/import", status_code=201, response_model=s.AssetOut, tags=["assets"],
             summary="Add a file by URL (downloaded by the server) or base64")
@ingesting  # its inputs may be URLs to download
def import_asset(body: s.AssetImport, service: ServiceDep, caller: Caller) -> s.AssetOut:
    from facecast.service.assets import MediaSource

    row = service.assets.from_source(
        caller.account_id, MediaSource(url=body.url, base64=body.base64, filename=body.filename),
        {"image", "audio", "video"}, "file")
    return views.asset(service, row)


@router.get("/assets", response_model=s.AssetList, tags=["assets"])
def list_assets(service: ServiceDep, caller: Caller,
                kind: Literal["image", "audio", "video"] | None = None,
                page: PageNo = 1, page_size: PageSize = 20) -> s.AssetList:
    rows, total = service.assets.list(caller.account_id, kind=kind,
                                      offset=(page - 1) * page_size, limit=page_size)
    return s.AssetList(items=[views.asset(service, r) for r in rows], total=total, page=page,
                       page_size=page_size)


@router.get("/assets/{asset_id}", response_model=s.AssetOut, tags=["assets"])
def get_asset(asset_id: str, service: ServiceDep, caller: Caller) -> s.AssetOut:
    return views.asset(service, service.assets.get(caller.account_id,
                                                   parse_id("ast", asset_id, "asset")))


@router.delete("/assets/{asset_id}", status_code=204, tags=["assets"])
def delete_asset(asset_id: str, service: ServiceDep, caller: Caller) -> Response:
    service.assets.delete(caller.account_id, parse_id("ast", asset_id, "asset"))
    return Response(status_code=204)
