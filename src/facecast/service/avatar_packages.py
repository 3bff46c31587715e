"""Video-avatar packages in storage: the engine's avatar folder stored under
``avatars/<id>/package/`` with its file list, copied once to a local cache folder for
renders, and the record of it kept in the avatar's ``info``.

The service's avatar library (:mod:`facecast.service.avatars`) and the job runners
(:mod:`facecast.service.runners`) both use it; the engine itself is imported only when
a video avatar is made or rendered.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from facecast.errors import InputError
from facecast.service.storage import Storage

META_FILE = "avatar.json"
VIDEO_FORMAT = "facecast-video-avatar"  # the engine's avatar.json "format"


def package_prefix(avatar_id: int) -> str:
    return f"avatars/{avatar_id}/package/"


def store_package(storage: Storage, prefix: str, folder: Path) -> list[dict[str, Any]]:
    """Every file of a package folder to ``prefix``; returns the file list (storage has no
    listing, so the list is what later finds the files)."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        content_type = {
            ".json": "application/json",
            ".mp4": "video/mp4",
            ".jpg": "image/jpeg",
            ".png": "image/png",
            ".npz": "application/octet-stream",
        }.get(path.suffix.lower(), "application/octet-stream")
        storage.put_file(prefix + rel, path, content_type)
        files.append({"path": rel, "size": path.stat().st_size})
    return files


def package_version(package: dict[str, Any]) -> str:
    text = json.dumps([package.get("prefix"), package.get("files")], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def local_package(storage: Storage, package: dict[str, Any], cache_root: Path) -> Path:
    """The package as a local folder: copied from storage once into ``cache_root`` (a
    folder per version; concurrent copies race harmlessly, the first rename wins)."""
    final = cache_root / f"av{package.get('avatar_id', 'x')}-{package_version(package)}"
    if (final / META_FILE).is_file():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_root))
    try:
        for f in package["files"]:
            dest = tmp / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            storage.get_to_path(package["prefix"] + f["path"], dest)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / META_FILE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def video_engine() -> Any:
    """The video-avatar engine (:mod:`facecast.pipeline.video_avatar`); InputError
    ``video_avatars_unavailable`` when this installation lacks it."""
    try:
        from facecast.pipeline import video_avatar
    except ImportError:
        raise InputError(
            "this installation has no video-avatar engine", code="video_avatars_unavailable"
        ) from None
    return video_avatar


def engine_name(name: str) -> str:
    """The avatar's name as the engine keeps it (it takes up to 120 characters)."""
    return name[:120]


def _info_dict(info: Any) -> dict[str, Any]:
    """The engine's VideoAvatarInfo facts that the service shows and keeps."""
    out: dict[str, Any] = {}
    for name in (
        "width",
        "height",
        "fps",
        "duration",
        "source_duration",
        "frames_with_face",
        "mouth_samples",
    ):
        value = getattr(info, name, None)
        if isinstance(value, int | float):
            out[name] = round(float(value), 3) if isinstance(value, float) else value
    return out


def _rel(info: Any, name: str) -> str | None:
    path = getattr(info, name, None)
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path(info.folder).resolve()).as_posix()
    except ValueError:
        return None


def package_record(
    avatar_id: int, prefix: str, files: list[dict[str, Any]], info: Any
) -> dict[str, Any]:
    """What the avatar row keeps about its stored package."""
    return {
        "avatar_id": avatar_id,
        "prefix": prefix,
        "files": files,
        "thumbnail": _rel(info, "thumbnail"),
        "preview": _rel(info, "preview"),
        **_info_dict(info),
    }
