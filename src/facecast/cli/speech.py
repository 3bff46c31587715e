"""The ``facecast`` speech commands: voices, languages, tts, clone-voice and the
``voice`` group (rename, delete) for custom voices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from facecast.cli.remote import Remote, remote, run_job
from facecast.cli.support import fail as _fail
from facecast.errors import FacecastError

if TYPE_CHECKING:
    from facecast.api.native.wire import JobOut
    from facecast.client import Client
    from facecast.pipeline.specs import TtsOptions
from facecast.rules import (
    DEFAULT_PITCH,
    DEFAULT_RATE,
    DEFAULT_VOLUME,
    PITCH_RANGE,
    RATE_RANGE,
    VOLUME_RANGE,
)


@click.command()
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


@click.command()
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


@click.command()
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
    from facecast.pipeline.specs import TtsOptions

    try:
        # the same request shape as the service's TTS jobs, checked before any synthesis
        options = TtsOptions(rate=rate, pitch=pitch, volume=volume,
                             format=output.suffix.lower().lstrip("."))
        options.check()
    except FacecastError as exc:
        _fail(exc)
        return
    target = remote()
    if target is not None:
        _tts_remote(target, text, voice, options, output)
        return
    from facecast.speech import save_speech, synthesize

    try:
        speech = synthesize(text, voice, rate=options.rate, pitch=options.pitch,
                            volume=options.volume)
        audio_path, timing_path = save_speech(speech, output)
    except FacecastError as exc:
        _fail(exc)
        return
    click.echo(f"wrote {audio_path} ({speech.audio.duration:.2f} s, voice {speech.voice}) "
               f"and {timing_path}")


def _tts_remote(target: Remote, text: str, voice: str | None, options: TtsOptions,
                output: Path) -> None:
    """``tts`` on a facecast service: the audio and its timings file, as here."""
    from facecast.speech.synth import timings_path

    def create(client: Client) -> JobOut:
        return client.speech.create(text, voice=voice, rate=options.rate,
                                    pitch=options.pitch, volume=options.volume,
                                    format=options.format)

    timings = timings_path(output)
    job = run_job(target, create, True, {"audio": output, "timings": timings})
    if job is None or job.result is None:
        return
    info = job.result.info
    click.echo(f"wrote {output} ({info['duration']:.2f} s, voice {info['voice']}) and "
               f"{timings}, as {job.id} on {target.server}")


@click.command("clone-voice")
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


@click.group()
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
