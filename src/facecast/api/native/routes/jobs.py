"""Native routes for work: talking photos, speech, voice clones, and jobs."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from facecast.api.deps import Caller, ServiceDep, ingesting, parse_id
from facecast.api.errors import ERROR_RESPONSES
from facecast.api.native import views
from facecast.api.native import wire as s
from facecast.api.native.mapper import (
    caption_options,
    composition,
    job_options,
    media,
    naive_utc,
    render_options,
)
from facecast.service.accounts import Principal
from facecast.service.core import Service
from facecast.service.models import Job

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)

CREATED: dict[int | str, dict[str, Any]] = {
    200: {"model": s.JobOut, "description": "An existing job with this external_id"}}


def _created(service: ServiceDep, response: Response, job: Job, created: bool) -> s.JobOut:
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/jobs/job_{job.id}"
    return views.job(service, job)


@router.post("/talking-photos", status_code=201, response_model=s.JobOut, responses=CREATED,
             tags=["jobs"], summary="Make a talking-photo video (photo or avatar + speech)")
@ingesting  # its inputs may be URLs to download
def create_talking_photo(body: s.TalkingPhotoCreate, service: ServiceDep, caller: Caller,
                         response: Response) -> s.JobOut:
    job, created = service.create_talking_photo(
        caller, photo=media(body.photo),
        avatar_id=parse_id("av", body.avatar_id, "avatar") if body.avatar_id else None,
        audio=media(body.audio), text=body.text, voice=body.voice, transcript=body.transcript,
        options=render_options(body),
        composition=composition(body.composition), opts=job_options(body))
    return _created(service, response, job, created)


@router.post("/dubs", status_code=201, response_model=s.JobOut, responses=CREATED,
             tags=["jobs"], summary="Re-voice a video of a person with new audio or text")
@ingesting  # its inputs may be URLs to download
def create_dub(body: s.DubCreate, service: ServiceDep, caller: Caller,
               response: Response) -> s.JobOut:
    video = media(body.video)
    assert video is not None
    job, created = service.create_dub(
        caller, video, audio=media(body.audio), text=body.text, voice=body.voice,
        transcript=body.transcript, face_index=body.face_index, quality=body.quality,
        **caption_options(body.captions), opts=job_options(body))
    return _created(service, response, job, created)


@router.post("/cleanups", status_code=201, response_model=s.JobOut, responses=CREATED,
             tags=["jobs"], summary="Remove burned-in subtitles and watermarks from a video")
@ingesting  # its inputs may be URLs to download
def create_cleanup(body: s.CleanupCreate, service: ServiceDep, caller: Caller,
                   response: Response) -> s.JobOut:
    video = media(body.video)
    assert video is not None
    job, created = service.create_clean(caller, video, subtitle_areas=body.subtitle_areas,
                                        watermark_areas=body.watermark_areas,
                                        opts=job_options(body))
    return _created(service, response, job, created)


@router.post("/speech", status_code=201, response_model=s.JobOut, responses=CREATED,
             tags=["jobs"], summary="Text to speech (audio + word and phoneme timings)")
def create_speech(body: s.SpeechCreate, service: ServiceDep, caller: Caller,
                  response: Response) -> s.JobOut:
    job, created = service.create_tts(caller, body.text, body.voice, rate=body.rate,
                                      pitch=body.pitch, volume=body.volume, format=body.format,
                                      opts=job_options(body))
    return _created(service, response, job, created)


@router.post("/voices/clones", status_code=201, response_model=s.JobOut, responses=CREATED,
             tags=["jobs"], summary="Clone a voice from 2 to 300 s of speech")
@ingesting  # its inputs may be URLs to download
def create_voice_clone(body: s.VoiceCloneCreate, service: ServiceDep, caller: Caller,
                       response: Response) -> s.JobOut:
    sample = media(body.sample)
    assert sample is not None
    job, created = service.create_voice_clone(caller, sample, body.name,
                                              language=body.language, opts=job_options(body))
    return _created(service, response, job, created)


@router.get("/jobs", response_model=s.JobList, tags=["jobs"], summary="List jobs, newest first")
def list_jobs(service: ServiceDep, caller: Caller,
              kind: Annotated[s.JobKind | None, Query()] = None,
              status: Annotated[s.JobStatus | None, Query()] = None,
              created_after: datetime | None = None, created_before: datetime | None = None,
              page: Annotated[int, Query(ge=1, le=100_000)] = 1,
              page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> s.JobList:
    rows, total = service.list_jobs(caller, kinds=[kind] if kind else None, status=status,
                                    created_after=naive_utc(created_after),
                                    created_before=naive_utc(created_before),
                                    offset=(page - 1) * page_size, limit=page_size)
    return s.JobList(items=[views.job(service, r) for r in rows], total=total, page=page,
                     page_size=page_size)


@router.get("/admin/jobs", response_model=s.AdminJobList, tags=["admin"],
            summary="Every account's jobs, newest first (admin key): recent failures, the "
                    "queue")
def list_all_jobs(service: ServiceDep, caller: Caller,
                  kind: Annotated[s.JobKind | None, Query()] = None,
                  status: Annotated[s.JobStatus | None, Query()] = None,
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> s.AdminJobList:
    rows, total = service.all_jobs(caller, kinds=[kind] if kind else None, status=status,
                                   offset=(page - 1) * page_size, limit=page_size)
    items = [s.AdminJobOut(**views.job(service, r).model_dump(), account_id=f"acc_{r.account_id}")
             for r in rows]
    return s.AdminJobList(items=items, total=total, page=page, page_size=page_size)


@router.get("/jobs/{job_id}", response_model=s.JobOut, tags=["jobs"], summary="One job")
async def get_job(job_id: str, request: Request, service: ServiceDep,
                  caller: Caller) -> s.JobOut:
    # the status poll: answered on the event loop from a row read in the last 0.25 s
    jid = parse_id("job", job_id, "job")
    job = service.recent_job(caller, jid) or await _read_job(request, service, caller, jid)
    return views.job(service, job)


async def _read_job(request: Request, service: Service, caller: Principal, jid: int) -> Job:
    """One database read per job at a time, however many polls miss the cache at once.

    When the cached row expires, every poll that arrives before the fresh row is back
    would otherwise start its own read: with 200 pollers that is a burst of reads
    queued on the thread pool, and the polls behind them wait seconds.
    """
    reads: dict[tuple[int, int], asyncio.Future[Job]] = request.app.state.job_reads
    key = (caller.account_id, jid)  # the read checks ownership: one per account
    read = reads.get(key)
    if read is None:
        read = asyncio.ensure_future(run_in_threadpool(service.job, caller, jid))
        reads[key] = read
        read.add_done_callback(lambda _done: reads.pop(key, None))
    return await asyncio.shield(read)  # a poller that hangs up leaves the read to the rest


# :path: an external id may hold '/' (order-17/a), which the client sends as %2F and the
# server decodes before routing
@router.get("/jobs/external/{external_id:path}", response_model=s.JobOut, tags=["jobs"],
            summary="One job by your external_id")
def get_job_by_external_id(external_id: str, service: ServiceDep, caller: Caller) -> s.JobOut:
    return views.job(service, service.job_by_external_id(caller, external_id))


@router.post("/jobs/{job_id}/cancel", response_model=s.JobOut, tags=["jobs"],
             summary="Cancel a queued or running job (costs nothing)")
def cancel_job(job_id: str, service: ServiceDep, caller: Caller) -> s.JobOut:
    return views.job(service, service.cancel_job(caller, parse_id("job", job_id, "job")))


@router.delete("/jobs/{job_id}", status_code=204, tags=["jobs"],
               summary="Delete a finished job and its files")
def delete_job(job_id: str, service: ServiceDep, caller: Caller) -> Response:
    service.delete_job(caller, parse_id("job", job_id, "job"))
    return Response(status_code=204)


@router.get("/jobs/{job_id}/deliveries", response_model=s.DeliveryList, tags=["webhooks"],
            summary="Webhook deliveries about one job")
def job_deliveries(job_id: str, service: ServiceDep, caller: Caller,
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                   page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> s.DeliveryList:
    jid = parse_id("job", job_id, "job")
    service.job(caller, jid)
    rows, total = service.deliveries(caller, job_id=jid, offset=(page - 1) * page_size,
                                     limit=page_size)
    return s.DeliveryList(items=[views.delivery(r) for r in rows], total=total, page=page,
                          page_size=page_size)
