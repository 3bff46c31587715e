"""Job kinds: how the service prices a job and which pipeline function runs it.

A runner gets a :class:`RunContext` (its parameters, local copies of its input
assets, a scratch folder and a progress callback) and returns the files it
made plus a few facts about them; the worker stores the files and finishes the
job. Runners call the pipeline and speech functions the CLI uses, with the
same checks, so the API can do whatever the command line can.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from facecast.pipeline.specs import DubOptions, RenderOptions, TtsOptions
from facecast.service.composition import build as build_composition
from facecast.service.models import CustomVoice, Job
from facecast.service.settings import Settings
from facecast.service.storage import Storage

Progress = Callable[[float, str], None]
# the content types caption files are served with
CAPTION_TYPES = {".srt": "application/x-subrip", ".vtt": "text/vtt"}
Hold = Callable[[int], None]


@dataclass
class RunContext:
    job_id: int
    account_id: int
    params: dict[str, Any]
    inputs: dict[str, Path]  # parameter name -> local copy of the asset
    workdir: Path
    progress: Progress
    settings: Settings
    # holds the job's real price in place of its estimate, before the costly work
    # (raises insufficient_credits when the account cannot cover it)
    hold: Hold = field(default=lambda _cost: None)

    def speech_ready(self, seconds: float) -> None:
        """A video of ``seconds`` will be made: hold what it will cost."""
        self.hold(video_cost(self.settings, seconds))


@dataclass
class Output:
    """What a runner made: files to store (name -> (path, content type)) and facts."""

    files: dict[str, tuple[Path, str]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0  # seconds of output media, for the price
    quality: dict[str, Any] | None = None  # the lip-sync report of a video (result.quality)


def video_cost(settings: Settings, seconds: float) -> int:
    return max(1, math.ceil(seconds)) * settings.price_per_video_second


def tts_cost(settings: Settings, text: str) -> int:
    return max(1, math.ceil(len(text) / 100)) * settings.price_per_100_tts_chars


def _watermarked_copy(ctx: RunContext, video: Path) -> tuple[Path, str]:
    """A visibly watermarked copy of ``video``: the last 10 % of the job's progress."""
    from facecast.media.watermark import add_watermark

    ctx.progress(0.9, "watermarking a copy")
    return add_watermark(video, ctx.workdir / "watermarked.mp4"), "video/mp4"


def _quality(video: Path, render_seconds: float) -> dict[str, Any] | None:
    """The quality report of a rendered video, on a sample costing about 10 % of the
    render's time; None when it cannot be measured (the video itself is fine)."""
    from facecast.errors import FacecastError
    from facecast.quality.report import quality_report

    try:
        return quality_report(video, render_seconds=render_seconds).to_dict()
    except FacecastError:
        return None


def _caption_file(ctx: RunContext, fmt: str | None) -> Path | None:
    """Where a job's caption file is written (None: no file asked)."""
    return ctx.workdir / f"captions.{fmt}" if fmt else None


def _caption_info(result: Any) -> dict[str, Any]:
    """The result info's caption figures, when the render made captions."""
    if not result.captions_source:
        return {}
    return {"caption_cues": len(result.captions), "captions_source": result.captions_source}


def run_talking_photo(ctx: RunContext) -> Output:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    p = ctx.params
    options = RenderOptions.from_params(p)  # stored by the spec; its defaults fill old jobs
    out = ctx.workdir / "video.mp4"
    captions = _caption_file(ctx, options.captions)
    spec = TalkingPhotoSpec(
        photo=ctx.inputs["photo"], output=out, audio=ctx.inputs.get("audio"),
        text=p.get("text"), voice=p.get("voice"), transcript=p.get("transcript"),
        export_visemes=ctx.workdir / "visemes.json",
        composition=build_composition(p["composition"], ctx.inputs)
        if p.get("composition") else None,
        on_speech=ctx.speech_ready, captions=[captions] if captions else [],
        **options.engine_kwargs())
    watermark = options.watermark
    result = render_talking_photo(
        spec, lambda f, stage: ctx.progress(f * 0.9 if watermark else f, stage))
    quality = _quality(out, result.timings["total"])
    files = {"video": (out, "video/mp4"),
             "visemes": (ctx.workdir / "visemes.json", "application/json")}
    if captions is not None:
        files["captions"] = (captions, CAPTION_TYPES[captions.suffix])
    if watermark:
        files["watermarked"] = _watermarked_copy(ctx, out)
    return Output(
        files=files,
        info={"duration": round(result.duration, 3), "width": result.width,
              "height": result.height, "frames": result.frames, "fps": spec.fps,
              "mouth_source": result.track.source, "expression": result.expression,
              # what the prompt asked that the renderer could not do, said rather than dropped
              "prompt_unused": result.prompt_unused, "prompt_actions": result.prompt_actions,
              **_caption_info(result)},
        duration=result.duration, quality=quality)


def run_dub(ctx: RunContext) -> Output:
    from facecast.pipeline.dub_video import DubVideoSpec, dub_video

    p = ctx.params
    out = ctx.workdir / "video.mp4"
    options = DubOptions.from_params(p)
    captions = _caption_file(ctx, options.captions)
    result = dub_video(DubVideoSpec(
        video=ctx.inputs["video"], output=out, audio=ctx.inputs.get("audio"), text=p.get("text"),
        voice=p.get("voice"), transcript=p.get("transcript"),
        face_index=options.face_index, captions=[captions] if captions else [],
        burn_captions=options.caption_style(),
        export_visemes=ctx.workdir / "visemes.json", on_speech=ctx.speech_ready),
        ctx.progress)
    quality = _quality(out, result.timings["total"])
    files = {"video": (out, "video/mp4"),
             "visemes": (ctx.workdir / "visemes.json", "application/json")}
    if captions is not None:
        files["captions"] = (captions, CAPTION_TYPES[captions.suffix])
    return Output(
        files=files,
        info={"duration": round(result.duration, 3), "width": result.width,
              "height": result.height, "frames": result.frames, "fps": result.fps,
              "frames_with_face": result.frames_with_face,
              "looped": result.loop is not None, "mouth_source": result.track.source,
              **_caption_info(result)},
        duration=result.duration, quality=quality)


def run_clean(ctx: RunContext) -> Output:
    from facecast.pipeline.clean_video import CleanVideoSpec, clean_video

    p = ctx.params
    out = ctx.workdir / "video.mp4"
    result = clean_video(CleanVideoSpec(
        video=ctx.inputs["video"], output=out, subtitle_areas=p.get("subtitle_areas") or (),
        watermark_areas=p.get("watermark_areas") or ()), ctx.progress)

    def box(a: Any) -> list[int]:
        return [a.x1, a.y1, a.x2, a.y2]

    return Output(
        files={"video": (out, "video/mp4")},
        info={"duration": round(result.duration, 3), "width": result.width,
              "height": result.height, "fps": result.fps, "detected": result.detected,
              "subtitle_areas": [box(a) for a in result.subtitle_areas],
              "watermark_areas": [box(a) for a in result.watermark_areas],
              "text_frames": result.text_frames},
        duration=result.duration)


def run_tts(ctx: RunContext) -> Output:
    from facecast.speech import save_speech, synthesize

    p = ctx.params
    options = TtsOptions.from_params(p)
    ctx.progress(0.05, "synthesising speech")
    speech = synthesize(p["text"], p.get("voice"), rate=options.rate, pitch=options.pitch,
                        volume=options.volume)
    fmt = options.format
    audio_path, timing_path = save_speech(speech, ctx.workdir / f"speech.{fmt}")
    ctx.progress(0.95, "saving")
    return Output(
        files={"audio": (audio_path, "audio/mpeg" if fmt == "mp3" else "audio/wav"),
               "timings": (timing_path, "application/json")},
        info={"duration": round(speech.audio.duration, 3), "voice": speech.voice,
              "characters": len(p["text"]), "sample_rate": speech.audio.sample_rate},
        duration=speech.audio.duration)


def run_voice_clone(ctx: RunContext) -> Output:
    from facecast.media import load_audio
    from facecast.speech.clone import build_profile, default_store

    p = ctx.params
    ctx.progress(0.05, "analysing the sample")
    profile = build_profile(load_audio(ctx.inputs["sample"]), p["name"])
    profile.language = p.get("language")
    default_store().save(profile)
    return Output(info={"voice_id": f"clone:{profile.id}", "name": profile.name,
                        "f0_median": round(profile.f0_median, 1),
                        "speaking_rate": round(profile.speaking_rate, 2)})


def record_clone(session: Session, job: Job) -> None:
    """The cloned voice belongs to the job's account (listed, renamed, deleted by it)."""
    info = (job.result or {}).get("info", {})
    session.add(CustomVoice(account_id=job.account_id, voice_id=info["voice_id"],
                            name=info["name"], job_id=job.id))


@dataclass(frozen=True)
class JobKind:
    name: str
    run: Callable[[RunContext], Output]
    price: Callable[[Settings, dict[str, Any], Output], int]
    queue_group: str = "video"
    # runs in the transaction that marks the job succeeded
    on_success: Callable[[Session, Job], None] | None = None
    # removes what ``run`` stored outside the job's own files, when the job's result is
    # not kept after all (canceled or taken over while it ran)
    discard: Callable[[Storage, dict[str, Any]], None] | None = None


KINDS: dict[str, JobKind] = {
    "talking_photo": JobKind("talking_photo", run_talking_photo,
                             lambda s, _p, out: video_cost(s, out.duration)),
    "dub_video": JobKind("dub_video", run_dub, lambda s, _p, out: video_cost(s, out.duration)),
    "clean_video": JobKind("clean_video", run_clean,
                           lambda s, _p, out: video_cost(s, out.duration), "text_removal"),
    "tts": JobKind("tts", run_tts, lambda s, p, _out: tts_cost(s, p["text"]), "speech"),
    "voice_clone": JobKind("voice_clone", run_voice_clone,
                           lambda s, _p, _out: s.price_voice_clone, "speech", record_clone),
}


def register_kind(kind: JobKind) -> None:
    """Other use cases (video dubbing, text removal, ...) add their kinds here."""
    KINDS[kind.name] = kind


# ---- video avatars: made from a recording (avatar_clone), then rendered (avatar_video) -----


def _storage(settings: Settings) -> Any:
    from facecast.service.storage import open_storage

    return open_storage(settings.storage, signing_key=settings.signing_key,
                        base_url=settings.base_url)


def run_avatar_clone(ctx: RunContext) -> Output:
    """Analyse the recording once into a package and store it under the avatar's prefix
    (not as a job result: the avatar outlives the job's retention)."""
    from facecast.service.avatar_packages import (
        engine_name,
        package_prefix,
        package_record,
        store_package,
        video_engine,
    )

    engine = video_engine()
    p = ctx.params
    folder = ctx.workdir / "package"
    info = engine.create_video_avatar(
        engine.VideoAvatarSpec(video=ctx.inputs["video"], folder=folder,
                               name=engine_name(p["name"]),
                               # the spec's own default when the request named no face
                               **({"face_index": p["face_index"]} if "face_index" in p else {})),
        lambda f, stage: ctx.progress(f * 0.95, stage))
    ctx.progress(0.95, "storing the avatar")
    prefix = package_prefix(p["avatar_id"])
    files = store_package(_storage(ctx.settings), prefix, folder)
    package = package_record(p["avatar_id"], prefix, files, info)
    return Output(info={"avatar_id": f"av_{p['avatar_id']}", "package": package,
                        **{k: v for k, v in package.items()
                           if k not in ("avatar_id", "prefix", "files")}})


def record_avatar(session: Session, job: Job) -> None:
    """The video avatar is ready, in the transaction that marks its job succeeded."""
    from facecast.service.avatars import AvatarService
    from facecast.service.models import Avatar

    avatar = session.get(Avatar, job.params["avatar_id"])
    if avatar is None or avatar.deleted_at is not None:
        return  # deleted while it was being made
    AvatarService.mark_ready(avatar, (job.result or {}).get("info", {})["package"])


def run_avatar_video(ctx: RunContext) -> Output:
    """A new video of a video avatar's person speaking the audio (or text)."""
    from facecast.service.avatar_packages import local_package, video_engine

    engine = video_engine()
    p = ctx.params
    ctx.progress(0.0, "fetching the avatar")
    folder = local_package(_storage(ctx.settings), p["avatar_package"],
                           ctx.settings.service_dir / "cache" / "avatars")
    out = ctx.workdir / "video.mp4"
    watermark = p.get("watermark", False)
    options = RenderOptions.from_params(p)  # the caption fields, stored as a talking photo's
    captions = _caption_file(ctx, options.captions)
    result = engine.render_video_avatar(
        engine.AvatarRenderSpec(avatar=folder, output=out, audio=ctx.inputs.get("audio"),
                                text=p.get("text"), voice=p.get("voice"),
                                transcript=p.get("transcript"), on_speech=ctx.speech_ready,
                                captions=[captions] if captions else [],
                                burn_captions=options.caption_style()),
        lambda f, stage: ctx.progress(f * 0.9 if watermark else f, stage))
    quality = _quality(out, result.timings["total"])
    files = {"video": (out, "video/mp4")}
    if captions is not None:
        files["captions"] = (captions, CAPTION_TYPES[captions.suffix])
    if watermark:
        files["watermarked"] = _watermarked_copy(ctx, out)
    return Output(
        files=files,
        info={"duration": round(result.duration, 3), "width": result.width,
              "height": result.height, "frames": result.frames, "fps": result.fps,
              "avatar_id": f"av_{p['avatar_id']}", **_caption_info(result)},
        duration=result.duration, quality=quality)


def discard_avatar_package(storage: Storage, params: dict[str, Any]) -> None:
    """A clone canceled (its avatar deleted) after its package was stored."""
    from facecast.service.avatar_packages import package_prefix

    storage.delete_prefix(package_prefix(params["avatar_id"]))


register_kind(JobKind("avatar_clone", run_avatar_clone,
                      lambda s, _p, _out: s.price_avatar_clone, "video", record_avatar,
                      discard_avatar_package))
register_kind(JobKind("avatar_video", run_avatar_video,
                      lambda s, _p, out: video_cost(s, out.duration)))
