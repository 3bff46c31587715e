"""The ``facecast avatar`` commands (list, create, show, delete) and the avatar lookup
behind ``facecast render --avatar``.

They work on the same embedded library that ``facecast serve`` uses (the database and
storage under ``$FACECAST_HOME``, or the URLs in ``FACECAST_DATABASE_URL`` /
``FACECAST_STORAGE_URL``), as the operator: the first admin account, made here when
``serve`` has never run (its API key is then printed once, as ``serve`` would). No
server needs to be running: a video avatar is analysed in this process, with a
progress bar. Refusals come out as one line with their code (exit status 2).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from facecast.errors import FacecastError

if TYPE_CHECKING:
    from facecast.captions import CaptionStyle


@dataclass
class Library:
    """The service facade over the embedded library, and the operator it acts as."""

    service: Any
    account_id: int

    def close(self) -> None:
        self.service.db.dispose()


@contextlib.contextmanager
def open_library() -> Iterator[Library]:
    from sqlalchemy import select

    from facecast.service.core import Service
    from facecast.service.models import Account
    from facecast.service.settings import Settings

    # nothing here enqueues a job: video avatars are made in this process
    service = Service(Settings(), enqueue=lambda _job_id: None)
    key = service.bootstrap(previews=False)
    if key:
        click.echo(f"first start: admin API key (shown once, keep it): {key}", err=True)
    with service.db.session() as session:
        account_id = session.scalar(select(Account.id).where(Account.is_admin.is_(True))
                                    .order_by(Account.id))
    assert account_id is not None  # bootstrap() makes the admin account
    library = Library(service, int(account_id))
    try:
        yield library
    finally:
        library.close()


def avatar_dict(library: Library, row: Any) -> dict[str, Any]:
    """An avatar as the native API shows it, plus local file paths where storage is a
    folder on this machine."""
    from facecast.service.storage import LocalStorage

    urls = library.service.avatars.urls(row)
    package = (row.info or {}).get("package") or {}
    out: dict[str, Any] = {
        "id": f"av_{row.id}", "name": row.name, "kind": row.kind, "status": row.status,
        "source": row.source, "gender": row.gender, "age": row.age, "style": row.style,
        "region": row.region, "tags": list(row.tags or []),
        "photo_url": urls["photo"], "thumbnail_url": urls["thumbnail"],
        "preview_url": urls["preview"],
        "video": {k: v for k, v in package.items()
                  if k not in ("avatar_id", "prefix", "files", "thumbnail", "preview")} or None,
        "error": {"code": row.error_code, "message": row.error_message}
        if row.status == "failed" else None,
        "created_at": row.created_at.isoformat() + "Z",
    }
    storage = library.service.storage
    if isinstance(storage, LocalStorage):
        for name, key in (("thumbnail_file", row.thumbnail_key),
                          ("preview_file", row.preview_key)):
            out[name] = str(storage.path_for(key)) if key else None
    return out


@click.group()
def avatar() -> None:
    """The avatar library: built-in portraits, the operator's folders, your own photo and
    video avatars (usable with `facecast render --avatar NAME`)."""


@avatar.command("list")
@click.option("--kind", type=click.Choice(["photo", "video"]))
@click.option("--custom/--built-in", default=None,
              help="Only your own avatars (or only the library: built-in and operator).")
@click.option("--gender", type=click.Choice(["female", "male"]))
@click.option("--age", type=click.Choice(["child", "young", "adult", "senior"]))
@click.option("--style", help="e.g. professional, casual.")
@click.option("--region", type=click.Choice(["western", "asian", "japanese_korean",
                                             "southeast_asian", "indian", "middle_eastern",
                                             "african"]))
@click.option("--tag", help="Only avatars with this tag.")
@click.option("--query", help="Text to find in the name.")
@click.option("--page", default=1, show_default=True, type=click.IntRange(1))
@click.option("--page-size", default=20, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(kind: str | None, custom: bool | None, gender: str | None, age: str | None,
             style: str | None, region: str | None, tag: str | None, query: str | None,
             page: int, page_size: int, as_json: bool) -> None:
    """List avatars (ids and names work with `render --avatar`)."""
    from facecast.cli.support import fail

    try:
        with open_library() as library:
            rows, total = library.service.avatars.list(
                library.account_id, kind=kind, custom=custom, gender=gender,
                ages=[age] if age else None, styles=[style] if style else None,
                regions=[region] if region else None, tag=tag, query=query,
                offset=(page - 1) * page_size, limit=page_size)
            items = [avatar_dict(library, r) for r in rows]
    except FacecastError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps({"items": items, "total": total, "page": page,
                               "page_size": page_size}, indent=2, ensure_ascii=False))
        return
    for a in items:
        click.echo(f"{a['id']:<8} {a['kind']:<6} {a['status']:<10} {a['source']:<8} "
                   f"{a['gender'] or '-':<7} {a['style'] or '-':<13} {a['region'] or '-':<9} "
                   f"{a['name']}")
    shown = (page - 1) * page_size + len(items)
    click.echo(f"-- {len(items)} shown ({shown} of {total})", err=True)


@avatar.command("create")
@click.option("--photo", type=click.Path(exists=True, dir_okay=False),
              help="A portrait (face-checked).")
@click.option("--video", type=click.Path(exists=True, dir_okay=False),
              help="A recording of the person: MP4, MOV, MKV, WebM or AVI "
                   "(H.264, HEVC, VP9, AV1, ...), 5 s to 10 min.")
@click.option("--name", required=True, help="The avatar's name (use it with --avatar).")
@click.option("--gender", type=click.Choice(["female", "male"]))
@click.option("--age", type=click.Choice(["child", "young", "adult", "senior"]))
@click.option("--style", help="A short word: professional, casual, ...")
@click.option("--region", type=click.Choice(["western", "asian", "japanese_korean",
                                             "southeast_asian", "indian", "middle_eastern",
                                             "african"]))
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--face", "face_index", default=0, show_default=True,
              type=click.IntRange(0, 20), help="--video with several faces: which one.")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
def create_cmd(photo: str | None, video: str | None, name: str, gender: str | None,
               age: str | None, style: str | None, region: str | None,
               tags: tuple[str, ...], face_index: int, progress: bool) -> None:
    """Add your own avatar from a photo or (analysed once, tens of seconds) a video."""
    from facecast.cli.support import fail, progress_bar
    from facecast.service.assets import MediaSource
    from facecast.service.avatars import check_meta

    if (photo is None) == (video is None):
        raise click.UsageError("give exactly one of --photo or --video")
    try:
        with open_library() as library:
            avatars = library.service.avatars
            meta = check_meta(gender, age, style, region, tags)
            if photo is not None:
                with open(photo, "rb") as stream:
                    asset = library.service.assets.from_upload(
                        library.account_id, stream, Path(photo).name, {"image"})
                row = avatars.create(library.account_id, MediaSource(asset_id=asset.id),
                                     name, gender, list(tags), age=age, style=style,
                                     region=region)
            else:
                with progress_bar(progress) as update:
                    row = avatars.create_video_now(library.account_id, Path(str(video)), name,
                                                   meta, face_index=face_index,
                                                   progress=update)
            shown = avatar_dict(library, row)
    except FacecastError as exc:
        fail(exc)
        return
    facts = ""
    if shown["video"]:
        v = shown["video"]
        facts = f", {v.get('width')}x{v.get('height')}, {v.get('duration', 0):.1f} s loop"
    click.echo(f"created {shown['id']} ({row.name}): {row.kind} avatar{facts}")


@avatar.command("show")
@click.argument("avatar_ref", metavar="NAME|ID")
def show_cmd(avatar_ref: str) -> None:
    """Print one avatar as JSON (metadata, thumbnail and preview)."""
    from facecast.cli.support import fail

    try:
        with open_library() as library:
            row = library.service.avatars.find(library.account_id, avatar_ref)
            click.echo(json.dumps(avatar_dict(library, row), indent=2, ensure_ascii=False))
    except FacecastError as exc:
        fail(exc)


@avatar.command("delete")
@click.argument("avatar_ref", metavar="NAME|ID")
def delete_cmd(avatar_ref: str) -> None:
    """Delete one of your own avatars (library avatars cannot be deleted)."""
    from facecast.cli.support import fail

    try:
        with open_library() as library:
            row = library.service.avatars.find(library.account_id, avatar_ref)
            library.service.avatars.delete(library.account_id, row.id)
    except FacecastError as exc:
        fail(exc)
        return
    click.echo(f"deleted av_{row.id} ({row.name})")


# ---- render --avatar -----------------------------------------------------------------------


def photo_for_render(avatar_ref: str, *, output: Path, audio: str | None, text: str | None,
                     voice: str | None, transcript: str | None, canvas_options: bool,
                     progress: bool, captions: Sequence[Path] = (),
                     burn_captions: CaptionStyle | None = None, score: bool | None = None
                     ) -> str | None:
    """``render --avatar NAME|ID``: a photo avatar's photo as a local file for the usual
    talking-photo render (removed when the command ends), or None when the avatar was a
    video avatar and its video is already written here."""
    import shutil

    from facecast.cli.support import fail
    from facecast.errors import NotFoundError
    from facecast.service.avatars import local_package

    try:
        with open_library() as library:
            avatars = library.service.avatars
            row = avatars.find(library.account_id, avatar_ref)
            if row.kind == "video":
                package = avatars.video_package(library.account_id, row.id)
                cache = library.service.settings.service_dir / "cache" / "avatars"
                folder = local_package(library.service.storage, package, cache)
            else:
                key = avatars.photo_key(row)
                if key is None or row.status != "ready":
                    raise NotFoundError(f"avatar av_{row.id} has no photo",
                                        code="avatar_not_ready")
                tmp = Path(tempfile.mkdtemp(prefix="facecast-avatar-"))
                click.get_current_context().call_on_close(
                    lambda: shutil.rmtree(tmp, ignore_errors=True))
                photo = tmp / f"avatar{Path(key).suffix}"
                library.service.storage.get_to_path(key, photo)
                return str(photo)
    except FacecastError as exc:
        fail(exc)
        return None
    if canvas_options:
        raise click.UsageError("a video avatar renders at its recording's own size: "
                               "--size, --aspect, --canvas and the composition options "
                               "do not apply")
    render_video_avatar(folder, output, audio, text, voice, transcript, progress, score,
                        captions=captions, burn_captions=burn_captions)
    return None


def render_video_avatar(folder: Path, output: Path, audio: str | None, text: str | None,
                        voice: str | None, transcript: str | None, progress: bool,
                        score: bool | None = None, *, captions: Sequence[Path] = (),
                        burn_captions: CaptionStyle | None = None) -> None:
    """``render --avatar`` with a video avatar: its recording speaks the new audio."""
    from facecast.cli.support import fail, print_captions, print_quality, progress_bar
    from facecast.service.avatars import video_engine

    try:
        engine = video_engine()
        with progress_bar(progress) as update:
            result = engine.render_video_avatar(engine.AvatarRenderSpec(
                avatar=folder, output=output, audio=audio, text=text, voice=voice,
                transcript=transcript, captions=captions, burn_captions=burn_captions),
                update)
    except FacecastError as exc:
        fail(exc)
        return
    click.echo(f"wrote {result.output} ({result.width}x{result.height} at {result.fps:g} fps, "
               f"{result.duration:.1f} s, {result.frames} frames, video avatar)")
    print_captions(result, captions, burned=burn_captions is not None)
    print_quality(result.output, score=score, render_seconds=result.timings["total"],
                  duration=result.duration, fps=result.fps, width=result.width,
                  height=result.height)
