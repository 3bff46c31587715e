"""Avatars: the library (built in, and the operator's own folders) and each account's own.

Library avatars have no account and every account sees them:

- **Built in**: public-domain portraits that ship inside installed packages, so nothing
  is downloaded: the NASA astronaut Eileen Collins (in facecast itself; scikit-image's
  ``data.astronaut`` is the same photo and is used only if it differs), Grace Hopper
  (matplotlib's sample data). Each has gender, age, style and region metadata.
- **Operator folders** (``FACECAST_AVATAR_DIRS``): each image file or subfolder is an
  avatar, with optional ``avatar.json`` metadata (or ``<image stem>.json`` beside a
  bare image); a photo is face-checked when it is loaded and one that fails is skipped
  with the reason in the log. A subfolder holding a video-avatar package (the engine's
  ``avatar.json``) is a video avatar.

Custom avatars belong to an account: a photo that passed the face check (refused with
the check's reason, nothing kept), or a **video avatar** made from a 5 s to 10 min
recording by an ``avatar_clone`` job (status ``processing`` until the job ends, then
``ready`` or ``failed`` with the job's error).

Every avatar gets a thumbnail (a face-centred square crop, JPEG) when it is made; library
photos also get a preview (a short talking-photo render saying a sentence), rendered in
the background by a low-priority process so that it never delays a start; video avatars
bring the engine's own preview. A video avatar's package (the engine's folder) lives in
storage under ``avatars/<id>/package/`` with its file list in ``info``; renders copy it
to a local cache folder once.

Parts live in modules of their own: metadata (:mod:`facecast.service.avatar_meta`), the
built-in portraits (:mod:`facecast.service.avatar_builtins`), packages in storage
(:mod:`facecast.service.avatar_packages`), the preview process
(:mod:`facecast.service.avatar_previews`).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import String, cast, delete, false, func, or_, select, update

from facecast.errors import ConflictError, FaceCheckError, InputError, NotFoundError
from facecast.media.video_reader import DUB_LIMITS
from facecast.service import jobs
from facecast.service.assets import AssetService, MediaSource
from facecast.service.avatar_builtins import BUILTINS, BuiltIn
from facecast.service.avatar_meta import Meta, check_meta, check_name
from facecast.service.avatar_packages import (
    META_FILE,
    VIDEO_FORMAT,
    engine_name,
    package_prefix,
    package_record,
    store_package,
    video_engine,
)
from facecast.service.avatar_packages import local_package as local_package  # importers' name
from facecast.service.db import Database, rowcount
from facecast.service.models import Asset, Avatar, Job, utcnow
from facecast.service.settings import Settings
from facecast.service.storage import Storage

log = logging.getLogger("facecast.avatars")

KINDS = ("photo", "video")
SOURCES = ("builtin", "operator", "custom")
IMAGE_SUFFIXES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                  ".webp": "image/webp", ".bmp": "image/bmp", ".tif": "image/tiff",
                  ".tiff": "image/tiff", ".heic": "image/heic", ".heif": "image/heic",
                  ".avif": "image/avif"}
THUMB_SIDE = 256
PREVIEW_LONG_SIDE = 320  # previews are small: a few seconds at about 320 px
PREVIEW_TEXT = "Hello! I am {name}. Type any text, and I will say it for you."
PREVIEW_STALE_S = 900.0  # a claimed preview not done by then is claimed again
# what the video-avatar engine takes (its AVATAR_LIMITS): any decodable video in MP4, MOV,
# MKV, WebM or AVI, 5 s to 10 min, <= 300 MB; checked before a job exists so that a
# refusal costs nothing
CLONE_LIMITS = DUB_LIMITS


def _limits(profile: str) -> Any:
    """A vendor's photo rules: "default", "kreado" or "kling"."""
    from facecast.face import DEFAULT_LIMITS, KLING_LIMITS, KREADO_LIMITS

    return {"default": DEFAULT_LIMITS, "kreado": KREADO_LIMITS, "kling": KLING_LIMITS}[profile]


# ---- pictures: thumbnails ------------------------------------------------------------------


def thumbnail_jpeg(image: Any, face: dict[str, Any] | None) -> bytes:
    """A square JPEG around the face (the picture's centre when no face is known)."""
    import cv2
    import numpy as np

    from facecast.media import load_image

    rgb = load_image(image) if not isinstance(image, np.ndarray) else image
    h, w = rgb.shape[:2]
    if face and face.get("w"):
        cx = float(face["x"]) + float(face["w"]) / 2
        cy = float(face["y"]) + float(face["h"]) / 2
        # head and shoulders: a bit more than twice the face, centred a little below it
        side = min(max(float(face["w"]), float(face["h"])) * 2.4, w, h)
        cy += side * 0.03
    else:
        cx, cy, side = w / 2, h / 2, float(min(w, h))
    side = max(2.0, side)
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    crop = rgb[y0:y0 + int(side), x0:x0 + int(side)]
    crop = cv2.resize(crop, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 88])
    if not ok:
        raise InputError("the thumbnail could not be encoded", code="unreadable_image")
    return data.tobytes()


# ---- the service ---------------------------------------------------------------------------


class AvatarService:
    def __init__(self, db: Database, assets: AssetService, settings: Settings) -> None:
        self.db, self.assets, self.settings = db, assets, settings
        self._check_lock = threading.Lock()  # one face model at a time in the API process
        self._previews: subprocess.Popen[bytes] | None = None

    @property
    def storage(self) -> Storage:
        return self.assets.storage

    # ---- the library ---------------------------------------------------------------------

    def ensure_builtins(self) -> None:
        """The library's rows: built-ins made once (later starts find them and only fill
        in what an older version did not store), operator folders synchronised."""
        for b in BUILTINS:
            try:
                self._ensure_builtin(b)
            except OSError as exc:
                log.info("built-in avatar %s left out: %s", b.key, exc)
        for folder in self.settings.avatar_dirs:
            try:
                self.sync_folder(Path(folder).expanduser())
            except OSError as exc:
                log.warning("avatar folder %s not loaded: %s", folder, exc)

    def _ensure_builtin(self, b: BuiltIn) -> None:
        with self.db.session() as session:
            row = session.scalar(select(Avatar).where(Avatar.builtin_key == b.key))
            if row is not None and row.thumbnail_key and row.style:
                return
        path = b.path()  # OSError: a package without its sample data
        data = path.read_bytes()
        box = dict(zip(("x", "y", "w", "h"), b.face, strict=True)) if b.face else None
        face = row.face if row is not None else None
        if box is None and face is None:
            face = self._face(path)
        with self.db.session() as session:
            if row is None:
                asset = Asset(account_id=None, kind="image", filename=path.name,
                              content_type=b.content_type, size=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), storage_key="",
                              info={})
                session.add(asset)
                session.flush()
                asset.storage_key = f"builtin/avatars/{b.key}{path.suffix}"
                self.storage.put_file(asset.storage_key, path, b.content_type)
                row = Avatar(account_id=None, name=b.name, kind="photo", status="ready",
                             source="builtin", asset_id=asset.id, builtin_key=b.key,
                             tags=list(b.tags))
                session.add(row)
            else:
                row = session.merge(row)
            row.gender, row.age, row.style, row.region = b.gender, b.age, b.style, b.region
            row.face = face
            session.flush()
            row.thumbnail_key = self._put_thumbnail(row.id, path, box or face)
            if row.preview_key is None:
                row.preview_state = "pending"

    def _face(self, path: Path, profile: str = "default") -> dict[str, Any]:
        from facecast.face import check_face

        with self._check_lock:
            return check_face(str(path), _limits(profile)).to_dict()

    def _put_thumbnail(self, avatar_id: int, image: Any, face: dict[str, Any] | None) -> str:
        key = f"avatars/{avatar_id}/thumbnail.jpg"
        box = (face or {}).get("face") if face and "accepted" in face else face
        self.storage.put_bytes(key, thumbnail_jpeg(image, box), "image/jpeg")
        return key

    def sync_folder(self, root: Path) -> dict[str, int]:
        """Load an operator folder: new or changed entries added (photos face-checked;
        a failing one is skipped with the reason logged), vanished ones removed."""
        if not root.is_dir():
            raise OSError(f"{root} is not a folder")
        counts = {"added": 0, "updated": 0, "unchanged": 0, "skipped": 0, "removed": 0}
        tag = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
        seen: set[str] = set()
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                continue
            key = f"dir:{tag}/{entry.name}"[:100]
            try:
                outcome = self._sync_entry(key, entry)
            except (InputError, OSError, ValueError) as exc:
                code = getattr(exc, "code", type(exc).__name__)
                log.warning("avatar %s skipped: %s [%s]", entry, getattr(exc, "message", exc),
                            code)
                outcome = "skipped"
            if outcome is None:
                continue
            counts[outcome] += 1
            if outcome != "skipped":
                seen.add(key)
        with self.db.session() as session:
            gone = session.scalars(select(Avatar).where(
                Avatar.source == "operator", Avatar.deleted_at.is_(None),
                Avatar.builtin_key.like(f"dir:{tag}/%"))).all()
            for row in gone:
                if row.builtin_key not in seen:
                    row.deleted_at = utcnow()
                    row.builtin_key = None  # the name may come back as a new entry
                    counts["removed"] += 1
        log.info("avatar folder %s: %s", root, counts)
        return counts

    def _sync_entry(self, key: str, entry: Path) -> str | None:
        """One folder entry: "added", "updated", "unchanged", or None (not an avatar)."""
        meta_path: Path | None = None
        photo: Path | None = None
        video = False
        if entry.is_dir():
            meta_path = entry / META_FILE
            raw = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
            if isinstance(raw, dict) and raw.get("format") == VIDEO_FORMAT:
                video = True
            else:
                images = sorted(p for p in entry.iterdir()
                                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
                preferred = [p for p in images if p.stem.lower() in ("photo", "portrait")]
                photo = next(iter(preferred or images), None)
                if photo is None:
                    raise InputError(f"no image in {entry}", code="no_image")
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            photo = entry
            side = entry.with_suffix(".json")
            meta_path = side if side.is_file() else None
        else:
            return None
        raw = json.loads(meta_path.read_text()) if meta_path and meta_path.is_file() else {}
        if not isinstance(raw, dict):
            raise InputError(f"{meta_path} is not a JSON object", code="bad_metadata")
        name = check_name(str(raw.get("name") or entry.stem.replace("_", " ")
                               .replace("-", " ").strip()))
        meta = check_meta(raw.get("gender"), raw.get("age"), raw.get("style"),
                          raw.get("region"), raw.get("tags") or [])
        fingerprint = self._fingerprint(entry if video else photo, meta_path)  # type: ignore[arg-type]
        with self.db.session() as session:
            row = session.scalar(select(Avatar).where(Avatar.builtin_key == key))
        if row is not None and (row.info or {}).get("fingerprint") == fingerprint:
            if row.status == "failed":  # refused before and unchanged since: not checked again
                raise InputError(row.error_message or "refused", code=row.error_code or "")
            return "unchanged"
        try:
            if video:
                self._load_video_entry(key, entry, name, meta, fingerprint, row)
            else:
                assert photo is not None
                self._load_photo_entry(key, photo, name, meta, fingerprint, row)
        except InputError as exc:
            if exc.code != "video_avatars_unavailable":  # that one may change without the file
                self._remember_refusal(key, name, fingerprint, exc)
            raise
        return "added" if row is None or row.deleted_at is not None else "updated"

    def _remember_refusal(self, key: str, name: str, fingerprint: str,
                          exc: InputError) -> None:
        """A hidden ``failed`` row keeps a refused entry's fingerprint and reason, so the
        next start logs the reason again without checking the same file again."""
        with self.db.session() as session:
            row = session.scalar(select(Avatar).where(Avatar.builtin_key == key))
            if row is None:
                row = Avatar(account_id=None, source="operator", builtin_key=key, name=name)
                session.add(row)
            row.status, row.deleted_at = "failed", utcnow()
            row.info = {"fingerprint": fingerprint}
            row.error_code, row.error_message = exc.code, exc.message[:2000]

    @staticmethod
    def _fingerprint(path: Path, meta: Path | None) -> str:
        h = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in files:
            st = p.stat()
            h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        if meta is not None and meta.is_file():
            h.update(meta.read_bytes())
        return h.hexdigest()

    def _load_photo_entry(self, key: str, photo: Path, name: str, meta: Meta,
                          fingerprint: str, row: Avatar | None) -> None:
        verdict = self._face(photo)
        if not verdict["accepted"]:
            raise InputError(f"{photo.name}: {verdict['message']}",
                             code=verdict.get("reason") or "no_face")
        data = photo.read_bytes()
        content_type = IMAGE_SUFFIXES[photo.suffix.lower()]
        with self.db.session() as session:
            asset = Asset(account_id=None, kind="image", filename=photo.name,
                          content_type=content_type, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), storage_key="", info={})
            session.add(asset)
            session.flush()
            slug = hashlib.sha1(key.encode()).hexdigest()[:16]
            asset.storage_key = f"library/avatars/{slug}/{asset.id}{photo.suffix.lower()}"
            self.storage.put_file(asset.storage_key, photo, content_type)
            avatar = session.merge(row) if row is not None else Avatar(
                account_id=None, source="operator", builtin_key=key)
            avatar.name, avatar.kind, avatar.status, avatar.asset_id = name, "photo", "ready", \
                asset.id
            avatar.deleted_at = None
            self._apply(avatar, meta, {"fingerprint": fingerprint})
            avatar.face = verdict
            avatar.preview_key, avatar.preview_state = None, "pending"
            session.add(avatar)
            session.flush()
            avatar.thumbnail_key = self._put_thumbnail(avatar.id, photo, verdict)

    def _load_video_entry(self, key: str, folder: Path, name: str, meta: Meta,
                          fingerprint: str, row: Avatar | None) -> None:
        engine = video_engine()
        info = engine.load_video_avatar(folder)  # InputError(avatar_invalid)
        with self.db.session() as session:
            avatar = session.merge(row) if row is not None else Avatar(
                account_id=None, source="operator", builtin_key=key)
            avatar.name, avatar.kind, avatar.status = name, "video", "ready"
            avatar.deleted_at = None
            self._apply(avatar, meta, {"fingerprint": fingerprint})
            session.add(avatar)
            session.flush()
            prefix = package_prefix(avatar.id)
            self.storage.delete_prefix(f"avatars/{avatar.id}/")
            files = store_package(self.storage, prefix, folder)
            self.mark_ready(avatar, package_record(avatar.id, prefix, files, info))
            avatar.info = {**(avatar.info or {}), "fingerprint": fingerprint}

    @staticmethod
    def _apply(avatar: Avatar, meta: Meta, info: dict[str, Any]) -> None:
        avatar.gender, avatar.age, avatar.style, avatar.region = (meta.gender, meta.age,
                                                                   meta.style, meta.region)
        avatar.tags = list(meta.tags)
        avatar.info = info
        avatar.error_code = avatar.error_message = None

    @staticmethod
    def mark_ready(avatar: Avatar, package: dict[str, Any]) -> None:
        """A finished video avatar: ready, its package, thumbnail and preview recorded."""
        prefix = package["prefix"]
        avatar.status, avatar.package_key = "ready", prefix
        avatar.thumbnail_key = prefix + package["thumbnail"] if package.get("thumbnail") \
            else None
        avatar.preview_key = prefix + package["preview"] if package.get("preview") else None
        avatar.preview_state = "ready" if avatar.preview_key else None
        avatar.info = {**(avatar.info or {}), "package": package}
        avatar.error_code = avatar.error_message = None

    # ---- custom avatars --------------------------------------------------------------------

    def create(self, account_id: int, photo: MediaSource, name: str,
               gender: str | None = None, tags: list[str] | None = None,
               profile: str = "default", *, age: str | None = None, style: str | None = None,
               region: str | None = None, external_id: str | None = None) -> Avatar:
        """A custom photo avatar, if the photo passes the face check under ``profile``'s
        rules (refused with the check's reason otherwise; nothing is kept)."""
        from facecast.face import check_face

        name = check_name(name)
        meta = check_meta(gender, age, style, region, tags)
        asset = self.assets.from_source(account_id, photo, {"image"}, "photo")
        local = self.assets.local_copy(asset)
        try:
            with self._check_lock:
                verdict = check_face(str(local), _limits(profile))
            thumb = thumbnail_jpeg(local, verdict.to_dict().get("face")) \
                if verdict.accepted else b""
        finally:
            local.unlink(missing_ok=True)
        if not verdict.accepted:
            self.assets.delete(account_id, asset.id)
            raise FaceCheckError(verdict.message, code=verdict.reason or "no_face",
                                 verdict=verdict.to_dict())
        with self.db.session() as session:
            avatar = Avatar(account_id=account_id, name=name, kind="photo", status="ready",
                            source="custom", asset_id=asset.id, external_id=external_id,
                            face=verdict.to_dict())
            self._apply(avatar, meta, {})
            session.add(avatar)
            session.flush()
            avatar.thumbnail_key = f"avatars/{avatar.id}/thumbnail.jpg"
            self.storage.put_bytes(avatar.thumbnail_key, thumb, "image/jpeg")
            # the avatar's photo lives as long as the avatar, not as long as an upload
            session.get(Asset, asset.id).expires_at = None  # type: ignore[union-attr]
        return avatar

    def check(self, account_id: int, photo: MediaSource, profile: str = "default"
              ) -> dict[str, Any]:
        """The face check's verdict on a photo, which is not kept."""
        from facecast.face import check_face

        with self.assets.temporary(account_id, photo, {"image"}, "photo") as path, \
                self._check_lock:
            return check_face(str(path), _limits(profile)).to_dict()

    def clone_source(self, account_id: int, video: MediaSource) -> Asset:
        """A recording for a video avatar, checked before any job exists by the engine's
        own rules: MP4, MOV, MKV, WebM or AVI, 5 s to 10 min, at most 300 MB."""
        from facecast.media.video_reader import probe_video

        asset = self.assets.from_source(account_id, video, {"video"}, "video")
        local = self.assets.local_copy(asset)
        try:
            with self.assets.naming("video"):
                probe_video(local, CLONE_LIMITS)
        finally:
            local.unlink(missing_ok=True)
        return asset

    def new_video(self, account_id: int, name: str, meta: Meta,
                  external_id: str | None = None) -> Avatar:
        """The row of a video avatar being made (``processing`` until its job ends)."""
        with self.db.session() as session:
            avatar = Avatar(account_id=account_id, name=check_name(name), kind="video",
                            status="processing", source="custom", external_id=external_id)
            self._apply(avatar, meta, {})
            session.add(avatar)
        return avatar

    def attach_job(self, avatar_id: int, job_id: int) -> Avatar:
        with self.db.session() as session:
            row = session.get(Avatar, avatar_id)
            assert row is not None
            row.job_id = job_id
        return row

    def discard(self, avatar_id: int) -> None:
        """Remove a row whose job was refused (credits, queue cap): nothing half-made."""
        with self.db.session() as session:
            session.execute(delete(Avatar).where(Avatar.id == avatar_id))

    def create_video_now(self, account_id: int, video: Path, name: str, meta: Meta, *,
                         face_index: int = 0,
                         progress: Callable[[float, str], None] | None = None) -> Avatar:
        """A video avatar made here and now (the command line; the API uses a job)."""
        from facecast.media.video_reader import probe_video

        engine = video_engine()
        probe_video(video, CLONE_LIMITS)
        avatar = self.new_video(account_id, name, meta)
        try:
            with tempfile.TemporaryDirectory(prefix="facecast-avatar-") as tmp:
                folder = Path(tmp) / "package"
                info = engine.create_video_avatar(engine.VideoAvatarSpec(
                    video=video, folder=folder, name=engine_name(avatar.name),
                    face_index=face_index), progress)
                prefix = package_prefix(avatar.id)
                files = store_package(self.storage, prefix, folder)
            with self.db.session() as session:
                row = session.get(Avatar, avatar.id)
                assert row is not None
                self.mark_ready(row, package_record(avatar.id, prefix, files, info))
                return row
        except BaseException:
            self.discard(avatar.id)
            self.storage.delete_prefix(f"avatars/{avatar.id}/")
            raise

    # ---- reading ---------------------------------------------------------------------------

    def _visible(self, account_id: int | None) -> Any:
        if account_id is None:
            return Avatar.account_id.is_(None)
        return or_(Avatar.account_id == account_id, Avatar.account_id.is_(None))

    def get(self, account_id: int | None, avatar_id: int) -> Avatar:
        with self.db.session() as session:
            avatar = session.get(Avatar, avatar_id) if 0 < avatar_id < 2**63 else None
        if avatar is None or avatar.deleted_at is not None or (
                avatar.account_id is not None and avatar.account_id != account_id):
            raise NotFoundError(f"no avatar with id av_{avatar_id}", code="avatar_not_found")
        return self._sync([avatar])[0]

    def find(self, account_id: int | None, name_or_id: str) -> Avatar:
        """An avatar by id (``av_12`` or ``12``) or by its name (case-insensitive)."""
        text = (name_or_id or "").strip()
        found = re.fullmatch(r"(?:av_)?(\d{1,18})", text)
        if found:
            with contextlib.suppress(NotFoundError):
                return self.get(account_id, int(found.group(1)))
        with self.db.session() as session:
            rows = session.scalars(select(Avatar).where(
                self._visible(account_id), Avatar.deleted_at.is_(None),
                func.lower(Avatar.name) == text.lower()).order_by(Avatar.id)).all()
        if not rows:
            raise NotFoundError(f"no avatar named or numbered {text!r}",
                                code="avatar_not_found")
        if len(rows) > 1:
            ids = ", ".join(f"av_{r.id}" for r in rows)
            raise ConflictError(f"{len(rows)} avatars are named {text!r} ({ids}): give an id",
                                code="avatar_ambiguous")
        return self._sync(list(rows))[0]

    def by_external_id(self, account_id: int, external_id: str) -> Avatar | None:
        with self.db.session() as session:
            row = session.scalars(select(Avatar).where(
                Avatar.account_id == account_id, Avatar.external_id == external_id,
                Avatar.deleted_at.is_(None)).order_by(Avatar.id.desc())).first()
        return self._sync([row])[0] if row is not None else None

    def list(self, account_id: int | None, *, custom: bool | None = None,
             gender: str | None = None, kind: str | None = None,
             genders: Iterable[str] | None = None, ages: Iterable[str] | None = None,
             styles: Iterable[str] | None = None, regions: Iterable[str] | None = None,
             tag: str | None = None, query: str | None = None, source: str | None = None,
             ids: Iterable[int] | None = None, ready: bool = False, offset: int = 0,
             limit: int = 20
             ) -> tuple[list[Avatar], int]:
        """A page of the avatars ``account_id`` sees (library + its own), oldest first,
        and how many match. Each list filter matches any of its values."""
        where: list[Any] = [Avatar.deleted_at.is_(None)]
        if custom is True:
            # (account None is the library's own view: it has no custom avatars)
            where.append(Avatar.account_id == account_id if account_id is not None
                         else false())
        elif custom is False:
            where.append(Avatar.account_id.is_(None))
        else:
            where.append(self._visible(account_id))
        wanted_genders = [*(genders or ()), *([gender] if gender else [])]
        for column, values in ((Avatar.gender, wanted_genders), (Avatar.age, ages),
                               (Avatar.style, styles), (Avatar.region, regions)):
            values = list(values or ())
            if values:
                where.append(column.in_(values))
        if kind:
            where.append(Avatar.kind == kind)
        if ids is not None:
            where.append(Avatar.id.in_([i for i in ids if 0 < i < 2**63]))
        if source:
            where.append(Avatar.source == source)
        if ready:
            where.append(Avatar.status == "ready")
        if tag:
            # tags are a JSON list: match the quoted value in its text on every database
            quoted = json.dumps(tag.strip())[1:-1].replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_")
            where.append(cast(Avatar.tags, String).like(f'%"{quoted}"%', escape="\\"))
        if query:
            text = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_")
            where.append(func.lower(Avatar.name).like(f"%{text}%", escape="\\"))
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(Avatar).where(*where)) or 0
            rows = session.scalars(select(Avatar).where(*where).order_by(Avatar.id)
                                   .offset(offset).limit(limit)).all()
        return self._sync(list(rows)), total

    def _sync(self, rows: builtins.list[Avatar]) -> builtins.list[Avatar]:  # `list`: the method
        """Video avatars still ``processing`` whose job ended without success become
        ``failed`` with the job's error (a job that failed, was canceled or lost)."""
        pending = {r.job_id: r for r in rows if r.status == "processing" and r.job_id}
        if not pending:
            return rows
        with self.db.session() as session:
            done = session.execute(select(Job.id, Job.status, Job.error_code,
                                          Job.error_message, Job.deleted_at)
                                   .where(Job.id.in_(list(pending)))).all()
            for job_id, status, code, message, deleted in done:
                if status not in ("failed", "canceled") and deleted is None:
                    continue
                row = pending[job_id]
                code = code or ("canceled" if status == "canceled" else "avatar_failed")
                message = message or f"the avatar_clone job job_{job_id} {status}"
                changed = session.execute(update(Avatar).where(
                    Avatar.id == row.id, Avatar.status == "processing").values(
                    status="failed", error_code=code, error_message=message[:2000]))
                row.status, row.error_code, row.error_message = "failed", code, message
                if rowcount(changed):
                    self.storage.delete_prefix(f"avatars/{row.id}/")
        return rows

    def job_status(self, avatar: Avatar) -> str | None:
        """The status of the job making a video avatar (None: no job)."""
        if avatar.job_id is None:
            return None
        with self.db.session() as session:
            return session.scalar(select(Job.status).where(Job.id == avatar.job_id))

    def photo_key(self, avatar: Avatar) -> str | None:
        with self.db.session() as session:
            asset = session.get(Asset, avatar.asset_id) if avatar.asset_id else None
            return asset.storage_key if asset is not None else None

    def photo_asset(self, account_id: int, avatar_id: int) -> int:
        avatar = self.get(account_id, avatar_id)
        if avatar.status != "ready" or avatar.asset_id is None:
            raise NotFoundError(f"avatar av_{avatar_id} is not ready", code="avatar_not_ready")
        return avatar.asset_id

    def video_package(self, account_id: int, avatar_id: int) -> dict[str, Any]:
        """A ready video avatar's stored package (what a render job copies)."""
        avatar = self.get(account_id, avatar_id)
        package = (avatar.info or {}).get("package")
        if avatar.kind != "video" or avatar.status != "ready" or not package:
            what = "still being made" if avatar.status == "processing" else avatar.status
            raise ConflictError(f"video avatar av_{avatar_id} is {what}",
                                code="avatar_not_ready")
        return package

    def urls(self, avatar: Avatar) -> dict[str, str | None]:
        """Signed URLs of the avatar's photo, thumbnail and preview (None: not there)."""
        ttl = self.settings.url_ttl_s

        def signed(key: str | None, filename: str | None = None) -> str | None:
            return self.storage.url(key, ttl, filename) if key else None

        photo = self.photo_key(avatar) if avatar.asset_id is not None else None
        return {"photo": signed(photo), "thumbnail": signed(avatar.thumbnail_key),
                "preview": signed(avatar.preview_key)}

    def rename(self, account_id: int, avatar_id: int, name: str) -> Avatar:
        """Give one of the account's own avatars a new name (the library's are fixed)."""
        name = check_name(name)
        avatar = self.get(account_id, avatar_id)
        if avatar.account_id is None:
            raise ConflictError(f"avatar av_{avatar_id} is built in and cannot be renamed",
                                code="avatar_builtin")
        with self.db.session() as session:
            row = session.get(Avatar, avatar_id)
            assert row is not None
            row.name = name
        return self.get(account_id, avatar_id)

    def delete(self, account_id: int, avatar_id: int) -> None:
        avatar = self.get(account_id, avatar_id)
        if avatar.account_id is None:
            raise ConflictError(f"avatar av_{avatar_id} is built in and cannot be deleted",
                                code="avatar_builtin")
        if avatar.status == "processing" and avatar.job_id is not None:
            # The clone is canceled first: a package it still stores is discarded by its
            # worker (JobKind.discard) instead of outliving the avatar.
            with contextlib.suppress(ConflictError, NotFoundError):  # it has just ended
                jobs.cancel_job(self.db, account_id, avatar.job_id)
        with self.db.session() as session:
            row = session.get(Avatar, avatar_id)
            assert row is not None
            row.deleted_at = utcnow()
            row.external_id = None
        self.storage.delete_prefix(f"avatars/{avatar_id}/")

    # ---- previews --------------------------------------------------------------------------

    def previews_due(self) -> bool:
        with self.db.session() as session:
            return bool(session.scalar(select(func.count()).select_from(Avatar).where(
                Avatar.deleted_at.is_(None), Avatar.preview_state.in_(("pending",
                                                                       "rendering")))))

    def start_previews(self) -> None:
        """Render missing library previews in a background process at the workers'
        priority, which ends with this one; a start never waits for it."""
        if not self.settings.avatar_previews or not self.previews_due():
            return
        if self._previews is not None and self._previews.poll() is None:
            return
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
        self._previews = subprocess.Popen(
            [sys.executable, "-m", "facecast.service.avatar_previews"], env=env,
            stdin=subprocess.DEVNULL)

    def _claim_preview(self) -> Avatar | None:
        stale = utcnow() - timedelta(seconds=PREVIEW_STALE_S)
        with self.db.session() as session:
            ids = session.scalars(select(Avatar.id).where(
                Avatar.deleted_at.is_(None), Avatar.kind == "photo",
                or_(Avatar.preview_state == "pending",
                    (Avatar.preview_state == "rendering") & (Avatar.preview_at < stale)))
                .order_by(Avatar.id)).all()
        for avatar_id in ids:
            with self.db.session() as session:
                done = session.execute(update(Avatar).where(
                    Avatar.id == avatar_id,
                    or_(Avatar.preview_state == "pending",
                        (Avatar.preview_state == "rendering") & (Avatar.preview_at < stale)))
                    .values(preview_state="rendering", preview_at=utcnow()))
                if rowcount(done) == 1:
                    return session.get(Avatar, avatar_id)
        return None

    def render_previews(self) -> int:
        """Render every pending library preview (several processes may share the work:
        each avatar is claimed first). Returns how many were made."""
        made = 0
        while (avatar := self._claim_preview()) is not None:
            try:
                key = self._render_preview(avatar)
            except Exception as exc:  # one bad portrait must not stop the others
                log.warning("preview of av_%s failed: %s: %s", avatar.id, type(exc).__name__,
                            exc)
                with self.db.session() as session:
                    session.execute(update(Avatar).where(Avatar.id == avatar.id).values(
                        preview_state="failed"))
                continue
            with self.db.session() as session:
                session.execute(update(Avatar).where(Avatar.id == avatar.id).values(
                    preview_key=key, preview_state="ready"))
            made += 1
        return made

    def _render_preview(self, avatar: Avatar) -> str:
        from facecast.media import load_image
        from facecast.pipeline.talking_photo import TalkingPhotoSpec, render_talking_photo

        key = self.photo_key(avatar)
        if key is None:
            raise NotFoundError(f"av_{avatar.id} has no photo", code="asset_not_found")
        with tempfile.TemporaryDirectory(prefix="facecast-preview-") as tmp:
            photo = Path(tmp) / f"photo{Path(key).suffix}"
            self.storage.get_to_path(key, photo)
            h, w = load_image(photo).shape[:2]
            scale = PREVIEW_LONG_SIDE / max(w, h)
            size = f"{max(64, round(w * scale / 2) * 2)}x{max(64, round(h * scale / 2) * 2)}"
            out = Path(tmp) / "preview.mp4"
            render_talking_photo(TalkingPhotoSpec(
                photo=photo, output=out, text=PREVIEW_TEXT.format(name=avatar.name),
                size=size, seed=avatar.id, crf=26))
            preview = f"avatars/{avatar.id}/preview.mp4"
            self.storage.put_file(preview, out, "video/mp4")
        log.info("preview of av_%s rendered", avatar.id)
        return preview
