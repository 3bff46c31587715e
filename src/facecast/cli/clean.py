"""The ``facecast clean`` command: burned-in subtitles and watermarks out of a video.

Thin like the rest of the CLI: it parses the areas, runs
:func:`facecast.pipeline.clean_video.clean_video` under a progress bar and
prints what was cleaned (and, without areas, what was found).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facecast.cli.remote import Remote, refuse_local_only, remote, run_job
from facecast.cli.support import fail as _fail
from facecast.cli.support import progress_bar as _progress_bar
from facecast.cli.support import progress_option
from facecast.errors import FacecastError

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut
    from facecast.client import Client

DEFAULT_CRF, DEFAULT_PRESET = 18, "veryfast"  # the local encoder's; a service uses its own
AREA_HELP = "x1,y1,x2,y2 in pixels (left-top, right-bottom); repeat for more areas."


@click.command()
@click.option("--video", required=True, type=click.Path(exists=True, dir_okay=False),
              help="MP4, MOV, MKV, WebM or AVI, longer than 5 s, up to 200 MB.")
@click.option("--subtitle-area", "subtitle_areas", multiple=True, metavar="X1,Y1,X2,Y2",
              help="Where burned-in subtitles are: " + AREA_HELP)
@click.option("--watermark-area", "watermark_areas", multiple=True, metavar="X1,Y1,X2,Y2",
              help="Where a watermark or logo is: " + AREA_HELP)
@click.option("--detect/--no-detect", default=None,
              help="Find subtitles and watermarks automatically (default: when no area is "
                   "given); with areas, --detect adds what it finds to them.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crf", default=DEFAULT_CRF, show_default=True, type=click.IntRange(0, 51),
              help="H.264 quality (lower is better and bigger).")
@click.option("--preset", default=DEFAULT_PRESET, show_default=True,
              type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast",
                                 "medium"]), help="H.264 speed against size.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@progress_option
def clean(video: str, subtitle_areas: tuple[str, ...], watermark_areas: tuple[str, ...],
          detect: bool | None, output: Path, crf: int, preset: str, as_json: bool,
          progress: bool) -> None:
    """Remove burned-in subtitles and watermarks from a video and write an MP4.

    Only the text and logo pixels are replaced: with the background from other
    frames where it was visible, filled in where it never was. Audio, size,
    frame rate and duration are kept.
    """
    target = remote()
    if target is not None:
        _clean_remote(target, video=video, subtitle_areas=subtitle_areas,
                      watermark_areas=watermark_areas, output=output, as_json=as_json,
                      progress=progress, **{"--detect/--no-detect": detect is not None,
                                            "--crf": crf != DEFAULT_CRF,
                                            "--preset": preset != DEFAULT_PRESET})
        return
    from facecast.pipeline.clean_video import CleanVideoSpec, clean_video

    spec = CleanVideoSpec(video=video, output=output, subtitle_areas=list(subtitle_areas),
                          watermark_areas=list(watermark_areas), detect=detect, crf=crf,
                          preset=preset)
    try:
        with _progress_bar(progress and not as_json) as update:
            result = clean_video(spec, update)
    except FacecastError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if result.detection is not None:
        click.echo(result.detection.summary())
    for overlay in result.overlays:
        area = overlay["area"]
        how = {"semi-transparent": f"semi-transparent (opacity {overlay['opacity']:.2f}), "
                                   "taken off",
               "opaque": "opaque, filled in",
               "none": "no logo found in it"}[overlay["kind"]]
        click.echo(f"watermark {area['x1']},{area['y1']},{area['x2']},{area['y2']}: {how}")
    click.echo(
        f"wrote {result.output} ({result.width}x{result.height}, {result.duration:.1f} s, "
        f"{result.frames} frames, subtitles cleaned in {result.text_frames}, "
        f"{'audio kept' if result.has_audio else 'no audio'}, "
        f"in {result.timings['total']:.1f} s)"
    )


def _area(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise click.BadParameter(f"{text!r}: give an area as " + AREA_HELP)
    return box


def _clean_remote(target: Remote, *, video: str, subtitle_areas: tuple[str, ...],
                  watermark_areas: tuple[str, ...], output: Path, as_json: bool,
                  progress: bool, **local_only: bool) -> None:
    """``clean`` on a facecast service (it finds the areas itself when none are given)."""
    refuse_local_only(**local_only)

    def create(client: Client) -> JobOut:
        return client.cleanups.create(Path(video),
                                      subtitle_areas=[_area(a) for a in subtitle_areas],
                                      watermark_areas=[_area(a) for a in watermark_areas])

    job = run_job(target, create, progress and not as_json, {"video": output})
    if job is None or job.result is None:
        return
    info = job.result.info
    if as_json:
        click.echo(json.dumps({"output": str(output), "job": job.id, **info}, indent=2))
        return
    for kind in ("subtitle", "watermark"):
        for x1, y1, x2, y2 in info.get(f"{kind}_areas") or ():
            click.echo(f"{kind} area {x1},{y1},{x2},{y2}")
    click.echo(
        f"wrote {output} ({info['width']}x{info['height']}, {info['duration']:.1f} s, "
        f"subtitles cleaned in {info['text_frames']} frames, as {job.id} on {target.server})")
