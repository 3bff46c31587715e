"""The ``facecast`` rendering commands: demo, render and check-face.

Each parses its options, calls the talking-photo pipeline with a progress bar and
prints the result; errors come out as one clear line (exit code 2 for bad input).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from facecast.cli.remote import Remote, remote, run_job
from facecast.cli.support import (
    caption_choice,
    caption_options,
    captions_said,
    check_speech,
    print_quality,
    print_remote_quality,
    progress_option,
    remote_captions,
    score_option,
    speech_options,
)
from facecast.cli.support import fail as _fail
from facecast.cli.support import progress_bar as _progress_bar
from facecast.errors import ConflictError, FacecastError, NotFoundError
from facecast.rules import (
    ASPECTS,
    DEFAULT_FPS,
    DEFAULT_HEAD_MOTION,
    DEFAULT_SIZE,
    MAX_CORNER_RADIUS,
    MAX_FPS,
    MAX_HEAD_MOTION,
    MAX_PROMPT_CHARS,
    MAX_SCALE,
    MIN_FPS,
    MIN_SCALE,
)

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut
    from facecast.client import Client
    from facecast.render.composition import Composition

DEMO_TEXT = (
    "Hello! I am Eileen Collins, and I flew the space shuttle. "
    "This video was made on your own computer, from one photo and a sentence."
)



def _render(progress: bool, score: bool | None = None, **kwargs) -> None:
    from facecast.motion.recognition_process import start_recogniser

    # Started before the pipeline's imports (about 0.25 s of CPU): the recogniser's child
    # then imports and decodes beside them, and the whole render ends that much sooner.
    recogniser = start_recogniser(kwargs.get("audio"), kwargs.get("text"),
                                  kwargs.get("transcript"))
    try:
        from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

        spec = TalkingPhotoSpec(**kwargs)
    except BaseException:
        if recogniser is not None:
            recogniser.close()
        raise
    try:
        with _progress_bar(progress) as update:
            result = render_talking_photo(spec, update, recogniser=recogniser)
    except FacecastError as exc:
        _fail(exc)
        return
    _report(f"wrote {result.output} ({result.width}x{result.height}, {result.duration:.1f} s, "
            f"{result.frames} frames, rendered in {result.timings['total']:.1f} s, "
            f"mouth from {result.track.source})"
            + "".join("\n" + line for line in captions_said(
                result, spec.captions, burned=spec.burn_captions is not None)),
            asked=spec.expression is not None or bool(spec.prompt), prompt=bool(spec.prompt),
            expression=result.expression, actions=result.prompt_actions,
            unused=result.prompt_unused)
    print_quality(result.output, score=score, render_seconds=result.timings["total"],
                  duration=result.duration, fps=float(spec.fps), width=result.width,
                  height=result.height)


def _report(wrote: str, *, asked: bool, prompt: bool, expression: str,
            actions: Sequence[str], unused: Sequence[str]) -> None:
    """What a render did, said the same way whether it ran here or on a service."""
    click.echo(wrote)
    if asked:
        did = "; ".join(actions) or "nothing"
        click.echo(f"expression {expression}" + (f"; prompt: {did}" if prompt else ""))
    if unused:
        # Said, not dropped: the user should know which wishes the video does not follow.
        click.echo("warning: prompt parts not used: "
                   + "; ".join(repr(part) for part in unused), err=True)


def _render_remote(target: Remote, *, photo: str | None, avatar_ref: str | None,
                   audio: str | None, output: Path, export_visemes: Path | None,
                   composition: Composition | None, expression: str | None,
                   prompt: str | None, progress: bool, caption_file: Path | None = None,
                   score: bool | None = None,
                   **options: Any) -> None:
    """``render`` on a facecast service: the same flags as the API request."""
    if export_visemes is not None and export_visemes.suffix.lower() != ".json":
        raise click.UsageError("with --server, --export-visemes writes the service's "
                               ".json track")

    def create(client: Client) -> JobOut:
        return client.talking_photos.create(
            photo=Path(photo) if photo else None,
            avatar_id=_remote_avatar(client, avatar_ref) if avatar_ref else None,
            audio=Path(audio) if audio else None,
            composition=_composition_body(composition) if composition else None,
            expression=int(expression) if expression and expression.isdigit() else expression,
            prompt=prompt, **options)

    downloads = {"video": output, **({"visemes": export_visemes} if export_visemes else {}),
                 **({"captions": caption_file} if caption_file else {})}
    job = run_job(target, create, progress, downloads)
    if job is None or job.result is None:
        return
    info = job.result.info
    took = (job.finished_at - job.started_at).total_seconds() \
        if job.finished_at and job.started_at else 0.0
    _report(f"wrote {output} ({info['width']}x{info['height']}, {info['duration']:.1f} s, "
            f"{info['frames']} frames, rendered in {took:.1f} s as {job.id} on "
            f"{target.server}, mouth from {info['mouth_source']})",
            asked=expression is not None or bool(prompt), prompt=bool(prompt),
            expression=info.get("expression", ""), actions=info.get("prompt_actions") or (),
            unused=info.get("prompt_unused") or ())
    if caption_file is not None:
        click.echo(f"wrote {caption_file} ({info.get('caption_cues')} cues from "
                   f"{info.get('captions_source')} words)")
    print_remote_quality(job, score)


def _remote_avatar(client: Client, ref: str) -> str:
    """An avatar id of the service: ``av_12`` as it is, else the one avatar of that name."""
    if re.fullmatch(r"av_[0-9]+", ref):
        return ref
    found = [a for a in client.avatars.list(query=ref, page_size=100).items
             if a.name.casefold() == ref.casefold()]
    if not found:
        raise NotFoundError(f"no avatar named {ref!r} on the server", code="avatar_not_found")
    if len(found) > 1:
        raise ConflictError(f"{len(found)} avatars are named {ref!r}: use an id ("
                            + ", ".join(a.id for a in found) + ")", code="avatar_ambiguous")
    return found[0].id


def _composition_body(c: Composition) -> dict[str, Any]:
    """The CLI's composition (parsed and checked here) as the API's ``composition``; its
    background and layer files are uploaded by the client."""
    from facecast.render.composition import ColorFill

    def hex_rgb(rgb: tuple[int, int, int]) -> str:
        return "#{:02x}{:02x}{:02x}".format(*rgb)

    out: dict[str, Any] = {
        "replace_background": c.replace_background, "position": list(c.position),
        "units": c.units, "anchor": "top-left" if c.anchor == "top_left" else "center",
        "scale": c.scale, "mask": c.mask, "corner_radius": c.corner_radius, "layers": []}
    if c.avatar_size is not None:
        out["avatar_size"] = "{}x{}".format(*c.avatar_size)
    if isinstance(c.background, ColorFill):
        out["background_color"] = hex_rgb(c.background.rgb)
    elif c.background is not None:
        out["background"] = c.background.path  # type: ignore[union-attr]
    for layer in c.layers:
        item: dict[str, Any] = {"x": layer.x, "y": layer.y, "z": layer.z,
                                "opacity": layer.opacity}
        if layer.width is not None:
            item["width"], item["height"] = layer.width, layer.height
        if isinstance(layer.source, Path):
            item["image"] = layer.source
        else:
            item["color"] = hex_rgb(layer.source)  # type: ignore[arg-type]
        out["layers"].append(item)
    return out


size_option = click.option("--size", default=DEFAULT_SIZE, show_default=True,
                           help="Output size: source, 720p, 1080p, 4k or WxH.")
aspect_option = click.option("--aspect", type=click.Choice(list(ASPECTS)),
                             help="Canvas shape; the portrait is fitted whole.")


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("facecast-demo.mp4"), show_default=True)
@size_option
@aspect_option
@score_option
@progress_option
def demo(output: Path, size: str, aspect: str | None, score: bool | None,
         progress: bool) -> None:
    """Render the bundled astronaut portrait speaking a sentence (built-in voice)."""
    from facecast.assets import asset_path

    target = remote()
    if target is not None:
        _render_remote(target, photo=str(asset_path("astronaut.png")), avatar_ref=None,
                       audio=None, text=DEMO_TEXT, output=output, export_visemes=None,
                       composition=None, expression=None, prompt=None, progress=progress,
                       score=score, size=size, aspect=aspect)
        return
    _render(progress, score, photo=asset_path("astronaut.png"), text=DEMO_TEXT,
            output=output, size=size, aspect=aspect)


@click.command()
@click.option("--photo", type=click.Path(exists=True, dir_okay=False),
              help="Portrait: JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF or AVIF.")
@click.option("--avatar", "avatar_ref", metavar="NAME|ID",
              help="Or an avatar of the library (`facecast avatar list`): a photo avatar "
                   "renders from its photo, a video avatar from its recording.")
@speech_options("Speech")
@size_option
@aspect_option
@click.option("--fps", default=DEFAULT_FPS, show_default=True,
              type=click.IntRange(MIN_FPS, MAX_FPS))
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed for blinks and head motion (same seed, same video).")
@click.option("--head-motion", default=DEFAULT_HEAD_MOTION, show_default=True,
              type=click.FloatRange(0, MAX_HEAD_MOTION),
              help="Head motion amount; 0 keeps the head still.")
@click.option("--no-blinks", is_flag=True, help="Keep the eyes open.")
@click.option("--export-visemes", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the mouth track: .json (facecast) or .tsv (Rhubarb A-H, X).")
@click.option("--canvas", help="Canvas: WxH (up to 3840x2160) or a shape (16:9, 9:16, 1:1...) "
              "sized by --size.")
@click.option("--background", help="Canvas background: a colour (#00ff00, 'rgb(0,255,0)'), "
              "an image, or a video (looped).")
@click.option("--replace-background", is_flag=True,
              help="Cut the person out of the photo and put them on --background.")
@click.option("--mask", type=click.Choice(["none", "circle", "rect"]), default="none",
              show_default=True, help="Shape of the avatar.")
@click.option("--corner-radius", type=click.FloatRange(0, MAX_CORNER_RADIUS), default=0.0,
              help="Rounded corners for --mask rect, as a fraction of the shorter side.")
@click.option("--position", help="Where the avatar goes: X,Y in pixels, or percentages "
              "(50%,60%) of the canvas; default its centre at the canvas centre.")
@click.option("--anchor", type=click.Choice(["center", "top-left"]), default="center",
              show_default=True, help="Which point of the avatar --position places.")
@click.option("--scale", type=click.FloatRange(MIN_SCALE, MAX_SCALE), default=1.0,
              show_default=True,
              help="Avatar size, relative to the photo fitted whole (or to --avatar-size).")
@click.option("--avatar-size", help="WxH box for the avatar in pixels; the photo covers it, "
              "cropped around the face.")
@click.option("--layer", "layers", multiple=True,
              help="Image layer PATH@X,Y[,WxH][,below][,opacity=O] (PATH may be a #colour; "
              "top-left X,Y in pixels; above the avatar unless 'below'). Repeatable.")
@click.option("--expression", metavar="KEY",
              help="Expression template: key or id from `facecast expressions` "
              "(happy, amazed, serious, thinking, nodding, ...).")
@click.option("--prompt", help="Free text steering expression, head and camera, e.g. "
              f"'while talking, nodding, then smiling; slow zoom in' (up to {MAX_PROMPT_CHARS} "
              "characters).")
@caption_options
@score_option
@progress_option
def render(photo: str | None, avatar_ref: str | None, audio: str | None, text: str | None,
           voice: str | None, transcript: str | None, output: Path, size: str,
           aspect: str | None, fps: int, seed: int, head_motion: float, no_blinks: bool,
           export_visemes: Path | None,
           canvas: str | None, background: str | None, replace_background: bool, mask: str,
           corner_radius: float, position: str | None, anchor: str, scale: float,
           avatar_size: str | None, layers: tuple[str, ...], expression: str | None,
           prompt: str | None, score: bool | None, progress: bool,
           **caption_flags: Any) -> None:
    """Make PHOTO (or an --avatar) speak AUDIO (or TEXT) and write an MP4."""
    if (photo is None) == (avatar_ref is None):
        raise click.UsageError("give exactly one of --photo or --avatar")
    captions, burn = caption_choice(**caption_flags)
    check_speech(audio, text, transcript)
    if canvas is not None:
        if ":" in canvas:
            if aspect is not None:
                raise click.UsageError("give either --canvas W:H or --aspect, not both")
            aspect = canvas
        elif size.strip().lower() != "source":
            raise click.UsageError("give either --canvas WxH or --size, not both")
        else:
            size = canvas.strip().lower()
    composition = None
    if (background is not None or replace_background or mask != "none" or corner_radius
            or position is not None or anchor != "center" or scale != 1.0
            or avatar_size is not None or layers):
        from facecast.render.compose import (
            Composition,
            parse_layer,
            parse_position,
            parse_wxh,
        )

        try:
            pos, units = parse_position(position) if position else ((0.5, 0.5), "fraction")
            composition = Composition(
                background=background, replace_background=replace_background, position=pos,
                units=units, anchor="top_left" if anchor == "top-left" else "center",
                scale=scale, avatar_size=parse_wxh(avatar_size) if avatar_size else None,
                mask=mask, corner_radius=corner_radius,  # type: ignore[arg-type]
                layers=tuple(parse_layer(t) for t in layers))
        except FacecastError as exc:
            _fail(exc)
            return
    target = remote()
    if target is not None:
        _render_remote(target, photo=photo, avatar_ref=avatar_ref, audio=audio, text=text,
                       captions=remote_captions(captions, burn),
                       caption_file=captions[0] if captions else None,
                       voice=voice, transcript=transcript, output=output, size=size,
                       aspect=aspect, fps=fps, seed=seed, head_motion=head_motion,
                       blinks=not no_blinks, export_visemes=export_visemes,
                       composition=composition, expression=expression, prompt=prompt,
                       progress=progress, score=score)
        return
    if avatar_ref is not None:
        from facecast.cli.avatar import photo_for_render

        photo = photo_for_render(
            avatar_ref, output=output, audio=audio, text=text, voice=voice,
            transcript=transcript, progress=progress, score=score,
            canvas_options=composition is not None or aspect is not None
            or size.strip().lower() != "source", captions=captions, burn_captions=burn)
        if photo is None:
            return  # a video avatar: its video is written already
    extra: dict[str, Any] = {}
    if captions:
        extra["captions"] = captions
    if burn is not None:
        extra["burn_captions"] = burn
    _render(progress, score, photo=photo, audio=audio, text=text, voice=voice,
            transcript=transcript,
            output=output, size=size, aspect=aspect, fps=fps, seed=seed,
            head_motion=head_motion, blinks=not no_blinks, export_visemes=export_visemes,
            composition=composition, expression=expression, prompt=prompt, **extra)


@click.command("check-face")
@click.argument("image", type=click.Path(dir_okay=False))
@click.option("--profile", type=click.Choice(["default", "kreado", "kling"]), default="default",
              show_default=True, help="Which limits to apply (the vendors' own differ).")
def check_face_cmd(image: str, profile: str) -> None:
    """Print the face-check verdict for IMAGE as JSON (exit 1 when refused)."""
    from facecast.face import DEFAULT_LIMITS, KLING_LIMITS, KREADO_LIMITS, check_face

    limits = {"default": DEFAULT_LIMITS, "kreado": KREADO_LIMITS, "kling": KLING_LIMITS}[profile]
    result = check_face(Path(image), limits)
    click.echo(json.dumps(result.to_dict(), indent=2))
    sys.exit(0 if result.accepted else 1)
