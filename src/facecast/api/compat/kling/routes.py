"""Kling's avatar image2video endpoints (mounted at ``/v1``).

Each route checks its wire model, calls the mapper (which calls the
:class:`~facecast.service.core.Service`) and wraps the result in Kling's
envelope ``{code: 0, message, request_id, data}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from facecast.api.deps import ingesting
from facecast.service.core import Service

from . import mapper, wire
from .auth import Caller

PATH = "/videos/avatar/image2video"

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": wire.ErrorResponse, "description": text} for status, text in (
        (400, "1200 bad request, 1201 illegal parameter value (Kling's input rules)"),
        (401, "1000 authentication failed, 1001 no Authorization, 1002 invalid token, "
              "1003 not yet valid, 1004 expired"),
        (403, "1103 not allowed"),
        (404, "1202 no such endpoint, 1203 no such task"),
        (429, "1102 no credits left, 1302 rate limit, 1303 too many unfinished tasks"),
        (500, "5000 server error"))
}
# also keeps FastAPI from documenting its own 422 shape, which this API never sends
ERRORS["default"] = {"model": wire.ErrorResponse, "description": "Any refusal, same envelope"}

router = APIRouter(responses=ERRORS)


def _service(request: Request) -> Service:
    return request.app.state.service


def request_id(request: Request) -> str:
    """One id per request, shared by the answer and any error it ends in."""
    rid = getattr(request.state, "kling_request_id", None)
    if rid is None:
        rid = request.state.kling_request_id = mapper.new_request_id()
    return rid


@router.post(PATH, response_model=wire.CreateResponse, tags=["avatar"],
             summary="Create an avatar (talking photo) task from an image and a sound")
@ingesting  # its inputs may be URLs to download
def create_task(body: wire.Image2VideoCreate, request: Request,
                caller: Caller) -> wire.CreateResponse:
    job = mapper.create(_service(request), caller, body)
    return wire.CreateResponse(message=mapper.OK_MESSAGE, request_id=request_id(request),
                               data=mapper.created_task(job))


@router.get(PATH + "/{task_id}", response_model=wire.TaskResponse, tags=["avatar"],
            summary="Query one task by task_id or external_task_id")
def get_task(task_id: str, request: Request, caller: Caller) -> wire.TaskResponse:
    service = _service(request)
    job = mapper.find_task(service, caller, task_id)
    return wire.TaskResponse(message=mapper.OK_MESSAGE, request_id=request_id(request),
                             data=mapper.task(service, job))


@router.get(PATH, response_model=wire.TaskListResponse, tags=["avatar"],
            summary="Query tasks, newest first")
def list_tasks(request: Request, caller: Caller,
               page_num: Annotated[int, Query(alias="pageNum")] = 1,
               page_size: Annotated[int, Query(alias="pageSize")] = 30
               ) -> wire.TaskListResponse:
    tasks = mapper.list_tasks(_service(request), caller, page_num, page_size)
    return wire.TaskListResponse(message=mapper.OK_MESSAGE, request_id=request_id(request),
                                 data=tasks)
