"""Assets: media files callers hand the service, checked and kept in storage.

Every input (an upload, a base64 string, a URL the server downloads) goes the
same way: into a scratch file under the limits of :mod:`ingest`, decoded to
prove it is the kind of media it must be, then stored under
``assets/<id>/<name>`` with an expiry. A refused input leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select

from facecast.errors import InputError, LimitError, NotFoundError
from facecast.service import ingest
from facecast.service.db import Database
from facecast.service.models import Asset, Job, utcnow
from facecast.service.scratch import scratch
from facecast.service.settings import Settings
from facecast.service.storage import Storage

SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp",
          "image/bmp": ".bmp", "image/tiff": ".tif", "image/heic": ".heic", "image/avif": ".avif",
          "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/mpeg": ".mp3",
          "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/ogg": ".ogg", "audio/flac": ".flac",
          "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm",
          "video/x-matroska": ".mkv", "video/x-msvideo": ".avi"}


@dataclass(frozen=True)
class MediaSource:
    """Exactly one of ``url``, ``base64``, ``asset_id`` (an earlier upload) or
    ``job_file`` (``(job id, file name)``: a result of one of the caller's jobs,
    e.g. the audio of a TTS job)."""

    url: str | None = None
    base64: str | None = None
    asset_id: int | None = None
    job_file: tuple[int, str] | None = None
    filename: str | None = None
    allow_data_uri: bool = True  # Kling refuses "data:...;base64," prefixes
    max_bytes: int | None = None  # a vendor's own, smaller limit for this input

    def __post_init__(self) -> None:
        given = [x is not None for x in (self.url, self.base64, self.asset_id, self.job_file)]
        if sum(given) != 1:
            raise InputError("give exactly one of url, base64, asset_id or a job's result",
                             code="bad_request")


def _safe_name(name: str | None, fallback: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "").name)[:100].strip("._")
    return stem or fallback


class DownloadSlots:
    """How many URL downloads run at once in this process, in all and per account.

    A download holds the request thread that asked for it until it ends (up to the
    download time limit), so these caps keep most request threads free for everything
    else however slow the servers asked are, and keep one account from taking every
    download place. Past a cap the request is refused at once, without connecting.
    """

    def __init__(self, total: int, per_account: int) -> None:
        self.total, self.per_account = total, per_account
        self._lock = threading.Lock()
        self._running = 0
        self._by_account: dict[int, int] = {}

    @contextlib.contextmanager
    def slot(self, account_id: int) -> Iterator[None]:
        with self._lock:
            mine = self._by_account.get(account_id, 0)
            if mine >= self.per_account:
                raise LimitError(
                    f"this account already has {mine} downloads running (the limit is "
                    f"{self.per_account}); wait for one to finish, or upload the file",
                    code="too_many_downloads", limit=self.per_account)
            if self._running >= self.total:
                raise LimitError(
                    f"the server is already downloading {self._running} files (the limit is "
                    f"{self.total}); try again shortly, or upload the file",
                    code="too_many_downloads", limit=self.total)
            self._running += 1
            self._by_account[account_id] = mine + 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                left = self._by_account[account_id] - 1
                if left:
                    self._by_account[account_id] = left
                else:
                    del self._by_account[account_id]


class AssetService:
    def __init__(self, db: Database, storage: Storage, settings: Settings) -> None:
        self.db, self.storage, self.settings = db, storage, settings
        self.policy = ingest.UrlPolicy.from_settings(settings)
        self.downloads = DownloadSlots(settings.max_downloads, settings.max_downloads_per_account)

    def _scratch(self) -> contextlib.AbstractContextManager[Path]:
        return scratch(self.settings.scratch_root, "ingest-")

    def _keep(self, account_id: int, path: Path, accept: Collection[str], filename: str | None,
              source_url: str | None) -> Asset:
        media = ingest.verify_media(path, accept)
        name = _safe_name(filename, media.kind)
        if not Path(name).suffix:
            name += SUFFIX.get(media.content_type, "")
        with self.db.session() as session:
            asset = Asset(account_id=account_id, kind=media.kind, filename=name,
                          content_type=media.content_type, size=media.size, sha256=media.sha256,
                          storage_key="", source_url=source_url, info=media.info,
                          expires_at=utcnow() + timedelta(seconds=self.settings.upload_ttl_s))
            session.add(asset)
            session.flush()
            asset.storage_key = f"assets/{asset.id}/{name}"
            # stored inside the transaction: if storing fails, the row is rolled back too
            self.storage.put_file(asset.storage_key, path, media.content_type)
        return asset

    @contextlib.contextmanager
    def naming(self, what: str) -> Iterator[None]:
        """Input errors name the request field they came from."""
        try:
            yield
        except InputError as exc:
            exc.message = f"{what}: {exc.message}"
            exc.details.setdefault("field", what)
            raise

    def _fetch(self, account_id: int, source: MediaSource, path: Path) -> None:
        limit = min(source.max_bytes or self.settings.max_upload_bytes,
                    self.settings.max_upload_bytes)
        if source.url is not None:
            policy = self.policy
            if limit != policy.max_bytes:
                policy = dataclasses.replace(policy, max_bytes=limit)
            with self.downloads.slot(account_id):
                ingest.download(source.url, path, policy)
        elif source.job_file is not None:
            self._job_file(account_id, *source.job_file, path)
        else:
            assert source.base64 is not None
            ingest.decode_base64(source.base64, path, max_bytes=limit,
                                 allow_data_uri=source.allow_data_uri)

    def _job_file(self, account_id: int, job_id: int, name: str, path: Path) -> None:
        with self.db.session() as session:
            job = session.get(Job, job_id)
        if job is None or job.account_id != account_id or job.deleted_at is not None:
            raise NotFoundError(f"no job with id job_{job_id}", code="job_not_found")
        files = (job.result or {}).get("files", {})
        if job.status == "expired":
            raise InputError(f"the result of job_{job_id} has expired", code="result_expired")
        if job.status != "succeeded" or name not in files:
            raise InputError(f"job_{job_id} has no {name} result (it is {job.status})",
                             code="result_not_ready")
        self.storage.get_to_path(files[name]["key"], path)

    def _owned(self, account_id: int, asset_id: int, accept: Collection[str],
               what: str) -> Asset:
        asset = self.get(account_id, asset_id)
        if asset.kind not in accept:
            raise InputError(f"{what}: asset ast_{asset.id} is {asset.kind}, expected "
                             f"{' or '.join(sorted(accept))}", code="unsupported_media")
        return asset

    def from_source(self, account_id: int, source: MediaSource, accept: Collection[str],
                    what: str) -> Asset:
        """The asset for one input of a request (``what`` names it in errors)."""
        if source.asset_id is not None:
            return self._owned(account_id, source.asset_id, accept, what)
        with self._scratch() as tmp, self.naming(what):
            path = Path(tmp) / "input"
            self._fetch(account_id, source, path)
            name = source.filename or (Path(source.url).name if source.url else None)
            return self._keep(account_id, path, accept, name, source.url)

    @contextlib.contextmanager
    def temporary(self, account_id: int, source: MediaSource, accept: Collection[str],
                  what: str) -> Iterator[Path]:
        """A checked local file for one input that is not kept (e.g. a face check)."""
        if source.asset_id is not None:
            path = self.local_copy(self._owned(account_id, source.asset_id, accept, what))
            try:
                yield path
            finally:
                path.unlink(missing_ok=True)
            return
        with self._scratch() as tmp:
            path = Path(tmp) / "input"
            with self.naming(what):
                self._fetch(account_id, source, path)
                ingest.verify_media(path, accept)
            yield path

    def from_upload(self, account_id: int, stream: BinaryIO, filename: str | None,
                    accept: Collection[str]) -> Asset:
        with self._scratch() as tmp:
            path = Path(tmp) / "upload"
            ingest.save_upload(stream, path, max_bytes=self.settings.max_upload_bytes)
            return self._keep(account_id, path, accept, filename, None)

    def local_copy(self, asset: Asset) -> Path:
        """A temporary local copy of the asset's file; the caller deletes it."""
        fd, name = tempfile.mkstemp(prefix="facecast-asset-", suffix=Path(asset.filename).suffix)
        os.close(fd)
        try:
            self.storage.get_to_path(asset.storage_key, Path(name))
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def get(self, account_id: int, asset_id: int) -> Asset:
        with self.db.session() as session:
            asset = session.get(Asset, asset_id)
        if asset is None or asset.account_id != account_id or asset.deleted_at is not None:
            raise NotFoundError(f"no asset with id ast_{asset_id}", code="asset_not_found")
        return asset

    def list(self, account_id: int, *, kind: str | None = None, offset: int = 0,
             limit: int = 20) -> tuple[list[Asset], int]:
        where = [Asset.account_id == account_id, Asset.deleted_at.is_(None)]
        if kind:
            where.append(Asset.kind == kind)
        with self.db.session() as session:
            total = session.scalar(select(func.count()).select_from(Asset).where(*where)) or 0
            rows = session.scalars(select(Asset).where(*where).order_by(Asset.id.desc())
                                   .offset(offset).limit(limit)).all()
        return list(rows), total

    def delete(self, account_id: int, asset_id: int) -> None:
        with self.db.session() as session:
            asset = session.get(Asset, asset_id)
            if asset is None or asset.account_id != account_id or asset.deleted_at is not None:
                raise NotFoundError(f"no asset with id ast_{asset_id}", code="asset_not_found")
            asset.deleted_at = utcnow()
            key = asset.storage_key
        self.storage.delete(key)
