"""KreadoAI v3 endpoints (mounted at ``/apis/open``), sections 3 to 8 of its document.

Bodies are read by hand rather than by FastAPI's body parameter: KreadoAI's
own textToSpeech example has a trailing comma, which strict JSON refuses, and
every refusal must be KreadoAI's ``10002`` envelope, not FastAPI's 422. The
request models still appear in the OpenAPI document. Service calls block, so
they run in the thread pool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from facecast.api.deps import in_ingest_threads
from facecast.api.errors import why_unparsable
from facecast.service.accounts import Principal
from facecast.service.core import Service

from . import mapper, wire
from .auth import principal_of

router = APIRouter()

_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def request_id(request: Request) -> str:
    """One id per request, shared by the answer and any error it ends in."""
    rid = getattr(request.state, "kreado_request_id", None)
    if rid is None:
        rid = request.state.kreado_request_id = mapper.new_request_id()
    return rid


def envelope(request: Request, data: Any) -> JSONResponse:
    return JSONResponse({"code": mapper.OK, "message": "Success", "data": data,
                         "requestId": request_id(request)})


async def parse(request: Request, model: type[BaseModel]) -> Any:
    raw = (await request.body()).strip()
    if request.method == "GET" or not raw:
        value: Any = {}
    else:
        try:
            text = raw.decode("utf-8")
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                # KreadoAI's own examples carry trailing commas; its server accepts them
                value = json.loads(_TRAILING_COMMA.sub(r"\1", text))
        except (ValueError, RecursionError) as exc:
            reason = why_unparsable(exc) if not isinstance(exc, json.JSONDecodeError) else exc
            raise mapper.bad(f"the body is not valid JSON: {reason} [malformed_json]") from None
    if not isinstance(value, dict):
        raise mapper.bad("the body must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()]
        raise mapper.bad("; ".join(problems[:3])) from None


Handler = Callable[[Service, Principal, Any], Any]


def endpoint(path: str, model: type[BaseModel] | None, handler: Handler, summary: str,
             tag: str, methods: tuple[str, ...] = ("POST",), ingest: bool = False) -> None:
    """``ingest``: the handler may download URL inputs (it runs in an ingest thread)."""
    run = in_ingest_threads if ingest else run_in_threadpool

    async def route(request: Request) -> JSONResponse:
        principal = await run_in_threadpool(principal_of, request)
        body = await parse(request, model) if model is not None else None
        data = await run(handler, request.app.state.service, principal, body)
        return envelope(request, data)

    extra = None
    if model is not None:
        extra = {"requestBody": {"content": {"application/json": {
            "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}
    route.__name__ = path.strip("/").replace("/", "_")
    router.add_api_route(path, route, methods=list(methods), summary=summary, tags=[tag],
                         openapi_extra=extra, response_model=wire.Envelope)


endpoint("/avatar/v3/list", wire.AvatarList, mapper.list_avatars,
         "3.1 Digital avatar list", "avatars")
endpoint("/avatar/v3/uploadAvatar", wire.UploadAvatar,
         lambda s, p, b: {"jobId": mapper.upload_avatar(s, p, b)},
         "3.2 Upload a custom photo (face-checked)", "avatars", ingest=True)
endpoint("/avatar/v3/getUploadCustomAvatar", wire.JobQuery, mapper.upload_result,
         "3.3 Photo upload result", "avatars")
endpoint("/video/v3/submitLipTask", wire.LipTask,
         lambda s, p, b: {"jobId": mapper.submit_lip(s, p, b)},
         "4.1 Lip-sync a video to audio", "videos", ingest=True)
endpoint("/video/v3/submitSystemLipTask", wire.SystemLipTask,
         lambda s, p, b: {"jobId": mapper.submit_system_lip(s, p, b)},
         "4.2 A digital human speaks audio", "videos", ingest=True)
endpoint("/video/v3/getLipVideoResult", wire.JobQuery, mapper.lip_result,
         "4.3 Video task result", "videos")
endpoint("/video/v3/list", wire.VideoList, mapper.video_list, "4.4 Video list", "videos")
endpoint("/video/v3/detail", wire.TaskQuery, mapper.video_detail, "4.5 Video detail",
         "videos")
endpoint("/video/v3/emoList", wire.EmoList, lambda s, p, b: mapper.emo_list(b, s),
         "4.6 Expression templates (facecast's catalogue, with previews)", "videos")


endpoint("/video/v3/uploadCloneVideo", wire.CloneVideo,
         lambda s, p, b: {"jobId": mapper.upload_clone(s, p, b)},
         "5.1 Instant avatar clone upload (a video avatar from a recording)", "clone", ingest=True)
endpoint("/video/v3/getUploadCloneVideoStatus", wire.JobQuery, mapper.clone_status,
         "5.2 Instant avatar clone status", "clone")
endpoint("/user/v3/getInfo", None, lambda s, p, _b: mapper.user_info(s, p),
         "6.1 Balance and membership expiry", "account", ("GET", "POST"))
endpoint("/voice/v3/getVoiceLanguage", None, lambda s, p, _b: mapper.languages(s, p),
         "7.1 Text-to-speech languages", "voices", ("GET", "POST"))
endpoint("/voice/v3/getVoiceList", wire.VoiceList, mapper.voice_list, "7.2 Voice list",
         "voices")
endpoint("/voice/v3/textToSpeech", wire.TextToSpeech, mapper.text_to_speech,
         "7.3 Text to speech (waits for the audio)", "voices")
endpoint("/subtitle_removal/v3/submitTask", wire.SubtitleRemoval,
         lambda s, p, b: {"jobId": mapper.submit_removal(s, p, b)},
         "8.1 Submit subtitle/watermark removal", "removal", ingest=True)
for _path in ("/subtitle_removal/v3/taskResult", "/subtitle_removal/v3/detail"):
    # the document's table names taskResult, its example calls detail: both answer
    endpoint(_path, wire.JobQuery, mapper.removal_result,
             "8.2 Subtitle/watermark removal result", "removal")
