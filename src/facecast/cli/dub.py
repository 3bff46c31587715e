"""The ``facecast dub`` command: make the person in a video speak new audio (or text).

Thin like the rest of the CLI: it parses options, runs
:func:`facecast.pipeline.dub_video.dub_video` with a progress bar and prints the
result; bad input comes out as one line with its code (exit status 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from facecast.cli.remote import Remote, refuse_local_only, remote, run_job
from facecast.cli.support import (
    caption_choice,
    caption_options,
    check_speech,
    remote_captions,
    score_option,
    speech_options,
)
from facecast.errors import FacecastError

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut
    from facecast.client import Client


def _point(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        x, y = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter("give the point as X,Y in pixels, e.g. 640,300") from None
    return x, y


@click.command()
@click.option("--video", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Talking-head video: MP4, MOV, MKV, WebM or AVI (H.264, HEVC, VP9, "
                   "AV1, ...), longer than 5 s, up to 300 MB.")
@speech_options("New speech")
@click.option("--face", "face_index", default=0, show_default=True, type=click.IntRange(0, 20),
              help="With several faces: which one speaks (0 = the largest in the first "
                   "frame with faces, 1 = the next, ...).")
@click.option("--face-at", help="Or: the face nearest this pixel, as X,Y.")
@click.option("--export-visemes", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the mouth track: .json (facecast) or .tsv (Rhubarb A-H, X).")
@caption_options
@score_option
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def dub(video: str, audio: str | None, text: str | None, voice: str | None,
        transcript: str | None, output: Path, face_index: int, face_at: str | None,
        export_visemes: Path | None, score: bool | None, progress: bool,
        **caption_flags: Any) -> None:
    """Re-voice VIDEO: the person's lips speak AUDIO (or TEXT); the rest is the source.

    Longer speech loops the video seamlessly, shorter speech cuts it; the source's
    size and frame rate are kept, and frames without the face pass through.
    """
    from facecast.cli.support import fail as _fail
    from facecast.cli.support import print_captions, print_quality
    from facecast.cli.support import progress_bar as _progress_bar

    check_speech(audio, text, transcript)
    caption_files, burn = caption_choice(**caption_flags)
    target = remote()
    if target is not None:
        _dub_remote(target, video=video, audio=audio, text=text, voice=voice,
                    transcript=transcript, output=output, face_index=face_index,
                    face_at=face_at, export_visemes=export_visemes, progress=progress,
                    captions=remote_captions(caption_files, burn),
                    caption_file=caption_files[0] if caption_files else None, score=score)
        return
    from facecast.pipeline.dub_video import DubVideoSpec, dub_video

    spec = DubVideoSpec(video=video, output=output, audio=audio, text=text, voice=voice,
                        transcript=transcript, face_index=face_index,
                        face_point=_point(face_at), export_visemes=export_visemes,
                        captions=caption_files, burn_captions=burn)
    try:
        with _progress_bar(progress) as update:
            result = dub_video(spec, update)
    except FacecastError as exc:
        _fail(exc)
        return
    looped = (f", looped from frame {result.loop[0]} to {result.loop[1]}" if result.loop
              else "")
    click.echo(
        f"wrote {result.output} ({result.width}x{result.height} at {result.fps:g} fps, "
        f"{result.duration:.1f} s, {result.frames} frames, face dubbed in "
        f"{result.frames_with_face} of {result.source_frames} source frames{looped}, "
        f"in {result.timings['total']:.1f} s, mouth from {result.track.source})"
    )
    print_captions(result, caption_files, burned=burn is not None)
    print_quality(result.output, score=score, render_seconds=result.timings["total"],
                  duration=result.duration, fps=result.fps, width=result.width,
                  height=result.height)


def _dub_remote(target: Remote, *, video: str, audio: str | None, text: str | None,
                voice: str | None, transcript: str | None, output: Path, face_index: int,
                face_at: str | None, export_visemes: Path | None, progress: bool,
                captions: dict[str, Any] | None = None, caption_file: Path | None = None,
                score: bool | None = None) -> None:
    """``dub`` on a facecast service."""
    refuse_local_only(**{"--face-at": face_at})
    if export_visemes is not None and export_visemes.suffix.lower() != ".json":
        raise click.UsageError("with --server, --export-visemes writes the service's "
                               ".json track")

    def create(client: Client) -> JobOut:
        return client.dubs.create(Path(video), audio=Path(audio) if audio else None,
                                  text=text, voice=voice, transcript=transcript,
                                  face_index=face_index,
                                  captions=captions)

    downloads = {"video": output, **({"visemes": export_visemes} if export_visemes else {}),
                 **({"captions": caption_file} if caption_file else {})}
    job = run_job(target, create, progress, downloads)
    if job is None or job.result is None:
        return
    info = job.result.info
    click.echo(
        f"wrote {output} ({info['width']}x{info['height']} at {info['fps']:g} fps, "
        f"{info['duration']:.1f} s, {info['frames']} frames, face dubbed in "
        f"{info['frames_with_face']} frames{', looped' if info.get('looped') else ''}, "
        f"as {job.id} on {target.server}, mouth from {info['mouth_source']})")
    if caption_file is not None:
        click.echo(f"wrote {caption_file} ({info.get('caption_cues')} cues from "
                   f"{info.get('captions_source')} words)")
    from facecast.cli.support import print_remote_quality

    print_remote_quality(job, score)
