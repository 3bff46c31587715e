"""Pieces every facecast command shares: the progress bar, the one-line error exit,
the --progress option and the speech options of the commands that make a face speak.
Command modules import these from here (never from ``facecast.cli``, which imports
them back to register their commands)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from facecast.errors import FacecastError
from facecast.pipeline.specs import check_speech_choice
from facecast.rules import (
    CAPTION_POSITIONS,
    CAPTION_SAFE_AREA_RANGE,
    CAPTION_SIZE_RANGE,
    DEFAULT_CAPTION_SAFE_AREA,
    DEFAULT_CAPTION_SIZE,
    MAX_AUDIO_S,
    MIN_AUDIO_S,
)

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut
    from facecast.captions import CaptionStyle

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[float, str], None]]:
    """Report progress on stderr: a bar on a terminal, else one line per stage.

    A bar redraws with carriage returns, which in a log file, CI output or a pipe piles
    up as hundreds of fragments; there a stage's name, once, says as much.
    """
    if not enabled:
        yield lambda _fraction, _stage: None
    elif _is_terminal(sys.stderr):
        with _bar() as update:
            yield update
    else:
        yield _stage_lines()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


@contextmanager
def _bar() -> Iterator[Callable[[float, str], None]]:
    from tqdm import tqdm

    bar = tqdm(total=100, unit="%", dynamic_ncols=True, mininterval=0.5,
               bar_format="{desc:<20} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    def update(fraction: float, stage: str) -> None:
        bar.set_description_str(stage)
        bar.n = round(100 * min(max(fraction, 0.0), 1.0))
        bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def _stage_lines() -> Callable[[float, str], None]:
    started = time.monotonic()
    last = ""

    def update(fraction: float, stage: str) -> None:
        nonlocal last
        if not stage or stage == last:
            return
        last = stage
        done = round(100 * min(max(fraction, 0.0), 1.0))
        click.echo(f"{stage} ({done}%, {time.monotonic() - started:.1f} s)", err=True)

    return update


def fail(exc: FacecastError) -> None:
    click.echo(f"error: {exc.message} [{exc.code}]", err=True)
    sys.exit(2)


progress_option = click.option("--progress/--no-progress", default=True,
                               help="Show a progress bar.")

score_option = click.option(
    "--score/--no-score", default=None,
    help="Measure the lip sync of the output and print a quality verdict (good, check, "
    "poor). Default: on when it costs under 10 % of the render's time.")


def print_remote_quality(job: JobOut, score: bool | None) -> None:
    """The quality line of a service's job (its ``result.quality``), unless --no-score."""
    quality = job.result.quality if job.result is not None else None
    if score is False or quality is None:
        return
    from facecast.quality.words import summary_line

    click.echo(summary_line(quality.model_dump()))


def print_quality(video: Path, *, score: bool | None, render_seconds: float, duration: float,
                  fps: float, width: int, height: int) -> None:
    """The quality report's line under a local render's summary (``--score``; by
    default only when it costs under 10 % of the render's time)."""
    if score is False:
        return
    from facecast.quality.report import COST_SHARE, cheap_enough, quality_report

    if score is None and not cheap_enough(duration, fps, render_seconds, width * height):
        click.echo(f"quality: not measured (it would take over {100 * COST_SHARE:.0f} % of "
                   "this render's time; --score measures it)")
        return
    try:
        report = quality_report(video, render_seconds=render_seconds)
    except FacecastError as exc:
        click.echo(f"quality: not measured ({exc.message})", err=True)
        return
    click.echo(report.summary())


def speech_options(audio_help: str) -> Callable[[F], F]:
    """--audio, --text, --voice, --transcript and -o/--output, as render and dub take them;
    ``audio_help`` names what the audio is (the formats and the length limit follow)."""
    options = [
        click.option("--audio", type=click.Path(exists=True, dir_okay=False),
                     help=f"{audio_help}: wav, mp3, m4a, aac, ogg/opus, flac "
                     f"({MIN_AUDIO_S:g} to {MAX_AUDIO_S:g} s)."),
        click.option("--text", help="Text to speak with the built-in voice instead of --audio."),
        click.option("--voice",
                     help="Voice id from `facecast voices`, or a piper .onnx (with --text)."),
        click.option("--transcript",
                     help="The words of --audio (English), for exact lip shapes."),
        click.option("-o", "--output", required=True,
                     type=click.Path(dir_okay=False, path_type=Path)),
    ]

    def apply(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def check_speech(audio: str | None, text: str | None, transcript: str | None) -> None:
    """The spec's speech rules, told as usage errors (exit code 2 with click's usage)."""
    try:
        check_speech_choice(audio, text)
    except FacecastError:
        raise click.UsageError("give exactly one of --audio or --text") from None
    if transcript and not audio:
        raise click.UsageError("--transcript goes with --audio")


def caption_options(command: F) -> F:
    """--captions (repeatable .srt / .vtt files), --burn-captions and its style flags."""
    options = [
        click.option("--captions", "captions", multiple=True,
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write captions: a .srt or .vtt file (repeatable), from the "
                          "exact word timings (text, or --transcript), else recognised "
                          "English speech."),
        click.option("--burn-captions", is_flag=True,
                     help="Draw the captions into the video."),
        click.option("--caption-size", type=click.FloatRange(*CAPTION_SIZE_RANGE),
                     default=DEFAULT_CAPTION_SIZE, show_default=True,
                     help="Burned text height, as a fraction of the frame height."),
        click.option("--caption-colour", "caption_colour", default="#ffffff",
                     show_default=True, help="Burned text colour (#rrggbb)."),
        click.option("--caption-outline", default="#000000", show_default=True,
                     help="Burned text outline colour (#rrggbb)."),
        click.option("--caption-position", type=click.Choice(list(CAPTION_POSITIONS)),
                     default=CAPTION_POSITIONS[0], show_default=True),
        click.option("--caption-safe-area", type=click.FloatRange(*CAPTION_SAFE_AREA_RANGE),
                     default=DEFAULT_CAPTION_SAFE_AREA, show_default=True,
                     help="Margin kept clear at the frame's edges, a fraction of each side."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def caption_choice(*, captions: tuple[Path, ...], burn_captions: bool, caption_size: float,
                   caption_colour: str, caption_outline: str, caption_position: str,
                   caption_safe_area: float) -> tuple[list[Path], Any]:
    """The caption files and the burn-in style (None: not burned) the flags ask for;
    a bad file type or colour is a usage error."""
    from facecast.captions import CaptionStyle

    paths = caption_paths(captions)
    style = None
    try:
        if burn_captions:
            style = CaptionStyle(size=caption_size, colour=caption_colour,
                                 outline_colour=caption_outline, position=caption_position,
                                 safe_area=caption_safe_area)
            style.check()
    except FacecastError as exc:
        raise click.UsageError(exc.message) from None
    return paths, style


def caption_paths(captions: tuple[Path, ...]) -> list[Path]:
    """The --captions files, each a .srt or .vtt (else a usage error)."""
    from facecast.captions import caption_format

    try:
        for path in captions:
            caption_format(path)
    except FacecastError as exc:
        raise click.UsageError(exc.message) from None
    return list(captions)


def remote_captions(paths: Sequence[Path], burn: CaptionStyle | None
                     ) -> dict[str, Any] | None:
    """The API's ``captions`` for the caption flags: one file, and of the burn-in style
    the size and position (the service's colours and safe area are the defaults)."""
    from facecast.captions import CaptionStyle, caption_format

    if not paths and burn is None:
        return None
    if len(paths) > 1:
        raise click.UsageError("with --server, --captions writes one file")
    out: dict[str, Any] = {"format": caption_format(paths[0]) if paths else None,
                           "burn": burn is not None}
    if burn is not None:
        default = CaptionStyle()
        if (burn.colour, burn.outline_colour, burn.outline, burn.safe_area) != (
                default.colour, default.outline_colour, default.outline, default.safe_area):
            raise click.UsageError("with --server, burned captions take --caption-size and "
                                   "--caption-position only")
        out.update(position=burn.position, size=burn.size)
    return out


def captions_said(result: Any, paths: Sequence[str | os.PathLike[str]], *,
                  burned: bool) -> list[str]:
    """What a local render did with its captions (``result`` has ``captions`` and
    ``captions_source``), one line per file and one when they were burned in."""
    made = f"{len(result.captions)} cues from {result.captions_source} words"
    return [f"wrote {p} ({made})" for p in paths] + ([f"captions burned in ({made})"]
                                                     if burned else [])


def print_captions(result: Any, paths: Sequence[str | os.PathLike[str]], *, burned: bool) -> None:
    for line in captions_said(result, paths, burned=burned):
        click.echo(line)
