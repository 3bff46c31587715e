"""The ``facecast`` command line: demo, render, check-face, voices, languages, tts,
clone-voice, voice management, expressions, and the service (serve, worker).

Thin by design: it parses options, calls the pipeline with a progress bar and
prints results; errors come out as one clear line (and exit code 2 for bad
input) rather than a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from facecast import __version__
from facecast.cli_support import fail as _fail
from facecast.cli_support import progress_bar as _progress_bar
from facecast.cli_support import progress_option
from facecast.errors import FacecastError
from facecast.pipeline.specs import check_speech_choice
from facecast.rules import (
    ASPECTS,
    DEFAULT_FPS,
    DEFAULT_HEAD_MOTION,
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_SIZE,
    DEFAULT_VOLUME,
    MAX_AUDIO_S,
    MAX_CORNER_RADIUS,
    MAX_FPS,
    MAX_HEAD_MOTION,
    MAX_PROMPT_CHARS,
    MAX_SCALE,
    MIN_AUDIO_S,
    MIN_FPS,
    MIN_SCALE,
    PITCH_RANGE,
    RATE_RANGE,
    VOLUME_RANGE,
)

DEMO_TEXT = (
    "Hello! I am Eileen Collins, and I flew the space shuttle. "
    "This video was made on your own computer, from one photo and a sentence."
)


def _quiet_native_logs() -> None:
    # MediaPipe and TensorFlow Lite print banner lines on stderr; users do not need them.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@click.group()
@click.version_option(__version__, prog_name="facecast")
def main() -> None:
    """facecast: talking-avatar videos from a photo and speech, on your own machine."""
    _quiet_native_logs()


def _render(progress: bool, **kwargs) -> None:
    from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

    spec = TalkingPhotoSpec(**kwargs)
    try:
        with _progress_bar(progress) as update:
            result = render_talking_photo(spec, update)
    except FacecastError as exc:
        _fail(exc)
        return
    click.echo(
        f"wrote {result.output} ({result.width}x{result.height}, {result.duration:.1f} s, "
        f"{result.frames} frames, rendered in {result.timings['total']:.1f} s, "
        f"mouth from {result.track.source})"
    )
    if spec.expression is not None or spec.prompt:
        did = "; ".join(result.prompt_actions) or "nothing"
        click.echo(f"expression {result.expression}" + (f"; prompt: {did}" if spec.prompt else ""))
    if result.prompt_unused:
        # Said, not dropped: the user should know which wishes the video does not follow.
        click.echo("warning: prompt parts not used: "
                   + "; ".join(repr(part) for part in result.prompt_unused), err=True)


size_option = click.option("--size", default=DEFAULT_SIZE, show_default=True,
                           help="Output size: source, 720p, 1080p, 4k or WxH.")
aspect_option = click.option("--aspect", type=click.Choice(list(ASPECTS)),
                             help="Canvas shape; the portrait is fitted whole.")


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("facecast-demo.mp4"), show_default=True)
@size_option
@aspect_option
@progress_option
def demo(output: Path, size: str, aspect: str | None, progress: bool) -> None:
    """Render the bundled astronaut portrait speaking a sentence (built-in voice)."""
    from facecast.assets import asset_path

    _render(progress, photo=asset_path("astronaut.png"), text=DEMO_TEXT, output=output,
            size=size, aspect=aspect)


@main.command()
@click.option("--photo", type=click.Path(exists=True, dir_okay=False),
              help="Portrait: JPEG, PNG, WebP, TIFF, BMP, HEIC/HEIF or AVIF.")
@click.option("--avatar", "avatar_ref", metavar="NAME|ID",
              help="Or an avatar of the library (`facecast avatar list`): a photo avatar "
                   "renders from its photo, a video avatar from its recording.")
@click.option("--audio", type=click.Path(exists=True, dir_okay=False),
              help="Speech: wav, mp3, m4a, aac, ogg/opus, flac "
              f"({MIN_AUDIO_S:g} to {MAX_AUDIO_S:g} s).")
@click.option("--text", help="Text to speak with the built-in voice instead of --audio.")
@click.option("--voice", help="Voice id from `facecast voices`, or a piper .onnx (with --text).")
@click.option("--transcript", help="The words of --audio (English), for exact lip shapes.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
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
@progress_option
def render(photo: str | None, avatar_ref: str | None, audio: str | None, text: str | None,
           voice: str | None, transcript: str | None, output: Path, size: str,
           aspect: str | None, fps: int, seed: int, head_motion: float, no_blinks: bool,
           export_visemes: Path | None,
           canvas: str | None, background: str | None, replace_background: bool, mask: str,
           corner_radius: float, position: str | None, anchor: str, scale: float,
           avatar_size: str | None, layers: tuple[str, ...], expression: str | None,
           prompt: str | None, progress: bool) -> None:
    """Make PHOTO (or an --avatar) speak AUDIO (or TEXT) and write an MP4."""
    if (photo is None) == (avatar_ref is None):
        raise click.UsageError("give exactly one of --photo or --avatar")
    try:
        check_speech_choice(audio, text)  # the spec's rule, told as a usage error
    except FacecastError:
        raise click.UsageError("give exactly one of --audio or --text") from None
    if transcript and not audio:
        raise click.UsageError("--transcript goes with --audio")
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
    if avatar_ref is not None:
        from facecast.cli_avatar import photo_for_render

        photo = photo_for_render(
            avatar_ref, output=output, audio=audio, text=text, voice=voice,
            transcript=transcript, progress=progress,
            canvas_options=composition is not None or aspect is not None
            or size.strip().lower() != "source")
        if photo is None:
            return  # a video avatar: its video is written already
    _render(progress, photo=photo, audio=audio, text=text, voice=voice, transcript=transcript,
            output=output, size=size, aspect=aspect, fps=fps, seed=seed,
            head_motion=head_motion, blinks=not no_blinks, export_visemes=export_visemes,
            composition=composition, expression=expression, prompt=prompt)


@main.command("check-face")
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


@main.command()
@click.option("--language", help="Base language (de) or with region (en-gb).")
@click.option("--region", help="Region code, e.g. US, GB, BR.")
@click.option("--gender", type=click.Choice(["male", "female"]))
@click.option("--age-group", type=click.Choice(["child", "young", "adult", "senior"]))
@click.option("--engine", type=click.Choice(["piper", "espeak", "clone"]))
@click.option("--custom/--built-in", default=None, help="Only custom (or only built-in) voices.")
@click.option("--query", help="Text to find in the id or name.")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--page-size", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def voices(language: str | None, region: str | None, gender: str | None,
           age_group: str | None, engine: str | None, custom: bool | None, query: str | None,
           page: int, page_size: int, as_json: bool) -> None:
    """List voices (ids work with tts, render --voice and everywhere else)."""
    from facecast.speech import search_voices

    try:
        found = search_voices(language=language, region=region, gender=gender,
                              age_group=age_group, engine=engine, custom=custom, query=query,
                              page=page, page_size=page_size)
    except FacecastError as exc:
        _fail(exc)
        return
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        return
    for v in found.items:
        click.echo(f"{v.id:<32} {v.language:<8} {v.gender or '-':<7} {v.engine:<7} {v.name}")
    shown = (page - 1) * page_size + len(found.items)
    click.echo(f"-- {len(found.items)} shown ({shown} of {found.total})", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def languages(as_json: bool) -> None:
    """List languages with their regional variants."""
    from facecast.speech import languages as all_languages

    langs = all_languages()
    if as_json:
        click.echo(json.dumps([lang.to_dict() for lang in langs], indent=2, ensure_ascii=False))
        return
    for lang in langs:
        regions = ", ".join(r["code"] for r in lang.regions if r["code"])
        click.echo(f"{lang.code:<6} {lang.name}" + (f"  [{regions}]" if regions else ""))


@main.command()
@click.option("--text", required=True, help="What to say (up to 10,000 characters).")
@click.option("--voice", help="Voice id (see `facecast voices`); default the neural voice.")
@click.option("--rate", default=DEFAULT_RATE, show_default=True, type=float,
              help=f"Speed, {RATE_RANGE[0]:g} to {RATE_RANGE[1]:.1f}.")
@click.option("--pitch", default=DEFAULT_PITCH, show_default=True, type=float,
              help=f"Semitones, {PITCH_RANGE[0]:g} to {PITCH_RANGE[1]:+g}.")
@click.option("--volume", default=DEFAULT_VOLUME, show_default=True, type=float,
              help=f"{VOLUME_RANGE[0]:g} to {VOLUME_RANGE[1]:g}.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="speech.mp3 or speech.wav; timings go to speech.timings.json beside it.")
def tts(text: str, voice: str | None, rate: float, pitch: float, volume: float,
        output: Path) -> None:
    """Speak TEXT to an audio file with word and phoneme timings beside it."""
    from facecast.speech import save_speech, synthesize

    try:
        speech = synthesize(text, voice, rate=rate, pitch=pitch, volume=volume)
        audio_path, timing_path = save_speech(speech, output)
    except FacecastError as exc:
        _fail(exc)
        return
    click.echo(f"wrote {audio_path} ({speech.audio.duration:.2f} s, voice {speech.voice}) "
               f"and {timing_path}")


@main.command("clone-voice")
@click.option("--sample", required=True, type=click.Path(exists=True, dir_okay=False),
              help="2 to 300 s of the speaker's speech (wav, mp3, m4a, ogg...).")
@click.option("--name", required=True, help="A name for the new voice.")
@click.option("--language", help="The speaker's language code (default English).")
def clone_voice(sample: str, name: str, language: str | None) -> None:
    """Create a custom voice that sounds like the speaker in SAMPLE."""
    from facecast.media import load_audio
    from facecast.speech.clone import build_profile, default_store

    try:
        audio = load_audio(sample)
        profile = build_profile(audio, name)
        profile.language = language
        default_store().save(profile)
    except FacecastError as exc:
        _fail(exc)
        return
    click.echo(f"created voice clone:{profile.id} ({name}): median pitch "
               f"{profile.f0_median:.0f} Hz, {profile.speaking_rate:.1f} syllables/s")


@main.group()
def voice() -> None:
    """Manage custom (cloned) voices."""


@voice.command("rename")
@click.argument("voice_id")
@click.argument("name")
def voice_rename(voice_id: str, name: str) -> None:
    """Rename the cloned voice VOICE_ID to NAME."""
    from facecast.speech.clone import default_store

    try:
        default_store().rename(voice_id.removeprefix("clone:"), name)
    except FacecastError as exc:
        _fail(exc)
        return
    click.echo(f"renamed {voice_id} to {name!r}")


@voice.command("delete")
@click.argument("voice_id")
def voice_delete(voice_id: str) -> None:
    """Delete the cloned voice VOICE_ID."""
    from facecast.speech.clone import default_store

    try:
        default_store().delete(voice_id.removeprefix("clone:"))
    except FacecastError as exc:
        _fail(exc)
        return
    click.echo(f"deleted {voice_id}")


@main.command()
@click.option("--host", help="Address to listen on (FACECAST_HOST, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (FACECAST_PORT, default 8000).")
@click.option("--workers", type=click.IntRange(0, 64),
              help="Worker processes to start (FACECAST_WORKERS, default 1; 0: none here).")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False),
              help="Serve HTTPS with this PEM certificate (chain) (FACECAST_SSL_CERTFILE).")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False),
              help="The certificate's PEM private key (FACECAST_SSL_KEYFILE).")
def serve(host: str | None, port: int | None, workers: int | None, ssl_certfile: str | None,
          ssl_keyfile: str | None) -> None:
    """Run the HTTP API, its workers, database and storage on this machine."""
    from facecast.server import serve as run_server
    from facecast.service.settings import Settings

    overrides = {k: v for k, v in (("host", host), ("port", port), ("workers", workers),
                                   ("ssl_certfile", ssl_certfile), ("ssl_keyfile", ssl_keyfile))
                 if v is not None}
    for name, value in overrides.items():
        os.environ[f"FACECAST_{name.upper()}"] = str(value)  # the worker child reads these too
    run_server(Settings())


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default 1).")
def worker(workers: int | None) -> None:
    """Run jobs from the shared queue (FACECAST_DATABASE_URL, _QUEUE_URL, _STORAGE_URL)."""
    from facecast.service.consumer import run_consumer

    run_consumer(workers)


from facecast.cli_dub import dub  # noqa: E402, I001
main.add_command(dub)

from facecast.cli_clean import clean  # noqa: E402, I001
main.add_command(clean)

from facecast.cli_avatar import avatar  # noqa: E402, I001
main.add_command(avatar)

from facecast.cli_expressions import expressions  # noqa: E402, I001
main.add_command(expressions)

if __name__ == "__main__":
    main()
