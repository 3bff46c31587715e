"""Kling's wire shapes for the avatar image2video API, with Kling's exact field names.

Requests are parsed leniently on purpose: Kling clients send fields this API
does not use (``model_name`` and the like), and a value rule (an unknown
``mode``, a prompt too long) is refused by the mapper with Kling's 1201
"illegal value" rather than by pydantic, which would only know 1200.
Responses use Kling's documented types: ids, durations and deductions are
strings, times are integers in milliseconds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from facecast.api.wire import CheckedText
from facecast.rules import MAX_PROMPT_CHARS

TaskStatus = Literal["submitted", "processing", "succeed", "failed"]


class _Lenient(CheckedText):
    model_config = ConfigDict(extra="ignore")


class WatermarkInfoIn(_Lenient):
    enabled: bool = Field(False, description="true: also make a watermarked copy")


class Image2VideoCreate(_Lenient):
    """``POST /v1/videos/avatar/image2video``."""

    image: str = Field(description="Avatar reference image: a URL or bare base64 (no 'data:' "
                                   "prefix); .jpg/.jpeg/.png, <= 10 MB, >= 300 px, aspect "
                                   "1:2.5 to 2.5:1")
    audio_id: str | None = Field(None, description="A facecast TTS job's id (job_12 or 12) "
                                                   "whose audio is the sound; exclusive with "
                                                   "sound_file")
    sound_file: str | None = Field(None, description="A URL or bare base64 of .mp3/.wav/.m4a/"
                                                     ".aac audio, <= 5 MB, 2 to 300 s")
    prompt: str | None = Field(None, description=f"Up to {MAX_PROMPT_CHARS} characters "
                                                 "steering expression and motion; kept on the job")
    mode: str = Field("std", description="std or pro (slower, sharper encoding)")
    watermark_info: WatermarkInfoIn | None = None
    callback_url: str | None = Field(None, description="Receives the task (the query's data "
                                                       "object) on each status change")
    external_task_id: str | None = Field(None, description="Your own id, unique per account; "
                                                           "usable in queries")


class TaskInfo(BaseModel):
    external_task_id: str = Field(description="Your external_task_id, or an empty string")


class Video(BaseModel):
    id: str = Field(description="The video's id")
    url: str = Field(description="A signed, expiring download URL of the MP4")
    watermark_url: str = Field(description="The watermarked copy's URL (empty string when "
                                           "watermark_info.enabled was false)")
    duration: str = Field(description="Length in seconds, as a string")


class TaskResult(BaseModel):
    videos: list[Video] = Field(description="One video once the task succeeded, else empty")


class WatermarkInfoOut(BaseModel):
    enabled: bool


class CreatedTask(BaseModel):
    task_id: str
    task_status: TaskStatus
    task_info: TaskInfo
    created_at: int = Field(description="Unix time in ms")
    updated_at: int = Field(description="Unix time in ms")


class Task(BaseModel):
    task_id: str
    task_status: TaskStatus
    task_status_msg: str = Field(description="Why the task failed ('message [reason]'); "
                                             "empty otherwise")
    task_info: TaskInfo
    task_result: TaskResult
    watermark_info: WatermarkInfoOut
    final_unit_deduction: str = Field(description="Credits charged, as a string")
    created_at: int = Field(description="Unix time in ms")
    updated_at: int = Field(description="Unix time in ms")


class Envelope(BaseModel):
    code: int = Field(0, description="0 on success; see the error codes")
    message: str
    request_id: str


class CreateResponse(Envelope):
    data: CreatedTask


class TaskResponse(Envelope):
    data: Task


class TaskListResponse(Envelope):
    data: list[Task]


class ErrorResponse(Envelope):
    """Every refusal: a Kling code (1000s auth, 1100s account, 1200s parameters,
    1300s policy and limits, 5000s server) with the HTTP status Kling gives it."""
