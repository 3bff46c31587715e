"""Avatars: the built-in library and each account's own face-checked photos.

Built-in avatars are portraits that ship inside installed packages (the NASA
astronaut in facecast itself, Grace Hopper in matplotlib's sample data), so
nothing is downloaded. A custom avatar is an uploaded photo that passed the
face check; a photo that fails is refused with the check's reason and nothing
is kept.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select

from facecast.errors import ConflictError, FaceCheckError, NotFoundError
from facecast.service.assets import AssetService, MediaSource
from facecast.service.db import Database
from facecast.service.models import Asset, Avatar, utcnow
from facecast.service.settings import Settings


def _astronaut() -> Path:
    from facecast.assets import asset_path

    return asset_path("astronaut.png")


def _grace_hopper() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@dataclass(frozen=True)
class BuiltIn:
    key: str
    name: str
    gender: str
    tags: tuple[str, ...]
    path: Callable[[], Path]
    content_type: str


BUILTINS = (
    BuiltIn("eileen_collins", "Eileen Collins", "female", ("photo", "professional", "space"),
            _astronaut, "image/png"),
    BuiltIn("grace_hopper", "Grace Hopper", "female", ("photo", "professional", "senior"),
            _grace_hopper, "image/jpeg"),
)


def _limits(profile: str) -> Any:
    """A vendor's photo rules: "default", "kreado" or "kling"."""
    from facecast.face import DEFAULT_LIMITS, KLING_LIMITS, KREADO_LIMITS

    return {"default": DEFAULT_LIMITS, "kreado": KREADO_LIMITS, "kling": KLING_LIMITS}[profile]


class AvatarService:
    def __init__(self, db: Database, assets: AssetService, settings: Settings) -> None:
        self.db, self.assets, self.settings = db, assets, settings
        self._check_lock = threading.Lock()  # one face model at a time in the API process

    def ensure_builtins(self) -> None:
        """Create the library's rows (and stored photos) once; later starts find them."""
        for b in BUILTINS:
            with self.db.session() as session:
                if session.scalar(select(Avatar.id).where(Avatar.builtin_key == b.key)):
                    continue
                try:
                    path = b.path()
                    data = path.read_bytes()
                except OSError:
                    continue  # a package without its sample data: that avatar is left out
                asset = Asset(account_id=None, kind="image", filename=path.name,
                              content_type=b.content_type, size=len(data),
                              sha256=hashlib.sha256(data).hexdigest(), storage_key="",
                              info={})
                session.add(asset)
                session.flush()
                asset.storage_key = f"builtin/avatars/{b.key}{path.suffix}"
                self.assets.storage.put_file(asset.storage_key, path, b.content_type)
                session.add(Avatar(account_id=None, name=b.name, kind="photo", status="ready",
                                   asset_id=asset.id, builtin_key=b.key, gender=b.gender,
                                   tags=list(b.tags)))

    def create(self, account_id: int, photo: MediaSource, name: str,
               gender: str | None = None, tags: list[str] | None = None,
               profile: str = "default") -> Avatar:
        """A custom avatar, if the photo passes the face check under ``profile``'s rules."""
        from facecast.face import check_face

        asset = self.assets.from_source(account_id, photo, {"image"}, "photo")
        local = self.assets.local_copy(asset)
        try:
            with self._check_lock:
                verdict = check_face(str(local), _limits(profile))
        finally:
            local.unlink(missing_ok=True)
        if not verdict.accepted:
            self.assets.delete(account_id, asset.id)
            raise FaceCheckError(verdict.message, code=verdict.reason or "no_face",
                                 verdict=verdict.to_dict())
        with self.db.session() as session:
            avatar = Avatar(account_id=account_id, name=name, kind="photo", status="ready",
                            asset_id=asset.id, gender=gender, tags=list(tags or []),
                            face=verdict.to_dict())
            session.add(avatar)
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

    def get(self, account_id: int, avatar_id: int) -> Avatar:
        with self.db.session() as session:
            avatar = session.get(Avatar, avatar_id)
        if avatar is None or avatar.deleted_at is not None or (
                avatar.account_id is not None and avatar.account_id != account_id):
            raise NotFoundError(f"no avatar with id av_{avatar_id}", code="avatar_not_found")
        return avatar

    def photo_key(self, avatar: Avatar) -> str | None:
        with self.db.session() as session:
            asset = session.get(Asset, avatar.asset_id) if avatar.asset_id else None
            return asset.storage_key if asset is not None else None

    def photo_asset(self, account_id: int, avatar_id: int) -> int:
        avatar = self.get(account_id, avatar_id)
        if avatar.status != "ready" or avatar.asset_id is None:
            raise NotFoundError(f"avatar av_{avatar_id} is not ready", code="avatar_not_ready")
        return avatar.asset_id

    def list(self, account_id: int, *, custom: bool | None = None, gender: str | None = None,
             kind: str | None = None, offset: int = 0, limit: int = 20
             ) -> tuple[list[Avatar], int]:
        where: list[Any] = [Avatar.deleted_at.is_(None)]
        if custom is True:
            where.append(Avatar.account_id == account_id)
        elif custom is False:
            where.append(Avatar.account_id.is_(None))
        else:
            where.append(or_(Avatar.account_id == account_id, Avatar.account_id.is_(None)))
        if gender:
            where.append(Avatar.gender == gender)
        if kind:
            where.append(Avatar.kind == kind)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(Avatar).where(*where)) or 0
            rows = session.scalars(select(Avatar).where(*where).order_by(Avatar.id)
                                   .offset(offset).limit(limit)).all()
        return list(rows), total

    def delete(self, account_id: int, avatar_id: int) -> None:
        avatar = self.get(account_id, avatar_id)
        if avatar.account_id is None:
            raise ConflictError(f"avatar av_{avatar_id} is built in and cannot be deleted",
                                code="avatar_builtin")
        with self.db.session() as session:
            row = session.get(Avatar, avatar_id)
            assert row is not None
            row.deleted_at = utcnow()
