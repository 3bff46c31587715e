"""The ``facecast expressions`` commands: list the expression templates, and render
their preview videos.

``facecast expressions [--json]`` prints the catalogue (id, key, titles, what
each does); ``facecast expressions previews -o DIR`` renders every template on
the built-in portrait with the built-in voice (skipping those already in DIR).
Use a template with ``facecast render --expression KEY``.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from facecast.cli.support import fail as _fail
from facecast.cli.support import progress_bar as _progress_bar
from facecast.cli.support import progress_option
from facecast.errors import FacecastError


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def expressions(ctx: click.Context, as_json: bool) -> None:
    """List expression templates (for render --expression)."""
    if ctx.invoked_subcommand is not None:
        return
    from facecast.motion.expressions import TEMPLATES

    if as_json:
        click.echo(json.dumps([t.to_dict() for t in TEMPLATES], indent=2, ensure_ascii=False))
        return
    for t in TEMPLATES:
        click.echo(f"{t.id:>3}  {t.key:<14} {t.name:<14} {t.name_zh:<4}  {t.description}")


@expressions.command("previews")
@click.option("-o", "--output", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for KEY.mp4 and KEY.jpg (existing ones are kept).")
@click.option("--expression", "keys", multiple=True, metavar="KEY",
              help="Only this template (repeatable); default all.")
@progress_option
def previews(out_dir: Path, keys: tuple[str, ...], progress: bool) -> None:
    """Render a short preview video and thumbnail of each template."""
    from facecast.pipeline.expression_previews import render_expression_previews

    try:
        with _progress_bar(progress) as update:
            videos = render_expression_previews(out_dir, keys or None, progress=update)
    except FacecastError as exc:
        _fail(exc)
        return
    for video in videos:
        click.echo(f"{video} {video.with_suffix('.jpg')}")
