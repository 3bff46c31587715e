"""Where the service keeps uploads and results, and the signed URLs results are served at.

One URL picks the backend (``Settings.storage``):

- ``file:///abs/path``: :class:`LocalStorage`, a folder on this machine. Its download URLs
  point at the service itself (``{base_url}/files/{key}?exp=...&sig=...``, served by
  :func:`facecast.api.files.files_router`) and are signed with HMAC-SHA256.
- ``s3://bucket/optional/prefix?endpoint_url=...&region=...``: :class:`S3Storage`, any
  S3-compatible object store; download URLs are the store's own presigned GET URLs.

Both backends take the same keys (``jobs/12/1/video.mp4``): relative, ``/``-separated, made of
``[A-Za-z0-9._-]`` segments that do not start with a dot. Keys are checked the same way on both
so that a key that works on a developer's laptop works on S3 and the other way round.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from facecast.errors import FacecastError
from facecast.service import origin

__all__ = [
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageFull",
    "StorageMissing",
    "check_key",
    "check_prefix",
    "content_disposition",
    "open_storage",
]

MAX_KEY_LENGTH = 1024  # S3's limit, applied to both backends
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_TMP_PREFIX = ".facecast-tmp-"  # leading dot: no valid key can ever name a temp file
# SigV4 presigned URLs are refused by S3 beyond one week
_S3V4_MAX_EXPIRES_S = 7 * 86400


# a write that ran out of room (the disk, or the user's quota on it)
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


class StorageFull(FacecastError):
    """No room left to write a file; what was partly written is removed. The API answers
    507 ``storage_full``, a job fails with that code."""

    code = "storage_full"


class StorageMissing(Exception):
    """The key is not in storage (never stored, deleted, or removed by retention)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no stored file under key {key!r}")
        self.key = key


@runtime_checkable
class Storage(Protocol):
    """What the service needs from a place that keeps files."""

    def put_file(self, key: str, path: Path, content_type: str) -> None: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    def get_to_path(self, key: str, dest: Path) -> None:
        """Copy the stored file to ``dest``; raise :class:`StorageMissing` if absent."""
        ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None: ...

    def delete(self, key: str) -> None:
        """Remove the key; removing a key that is not there is not an error."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (a plain string prefix, as in S3).

        Returns how many keys were removed.
        """
        ...

    def url(self, key: str, expires_s: float, filename: str | None = None) -> str:
        """A download URL that works for ``expires_s`` seconds without other credentials.

        With ``filename`` the download is offered as an attachment under that name.
        """
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid storage key, else raise ValueError saying why."""
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"storage key is longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise ValueError(f"storage key {key!r} must be relative, not absolute")
    if "\\" in key:
        raise ValueError(f"storage key {key!r} must use '/', not backslashes")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"storage key {key!r} has an empty, '.' or '..' segment")
        if not _SEGMENT.fullmatch(segment):
            raise ValueError(
                f"storage key {key!r}: segments are [A-Za-z0-9._-] and do not start with '.'")
    return key


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a valid key prefix (``jobs/12/``, ``jobs/1``), else ValueError.

    The empty prefix is refused: it would delete everything, which no caller means to do.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError("storage prefix must be a non-empty string")
    # a prefix is a key whose last segment may be cut short or empty
    check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def _check_filename(filename: str) -> str:
    if not filename or len(filename) > 255:
        raise ValueError("download filename must be 1 to 255 characters")
    if any(ch in filename for ch in '/\\"') or any(ord(ch) < 32 or ord(ch) == 127
                                                    for ch in filename):
        raise ValueError(f"download filename {filename!r} has a path separator, quote "
                         "or control character")
    return filename


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """The Content-Disposition value for ``filename``, as Starlette's FileResponse writes it.

    Both backends give the same header, so a client sees the same download either way.
    """
    quoted = quote(filename)
    if quoted != filename:
        return f"{disposition}; filename*=utf-8''{quoted}"
    return f'{disposition}; filename="{filename}"'


# ---------------------------------------------------------------------------------------------
# local folder


class LocalStorage:
    """Files in a folder; URLs signed with HMAC-SHA256 and served by the service's files route.

    Every write goes to a temp file in the destination folder and is moved into place with
    :func:`os.replace`, so a reader (the files route, a worker) sees the old file or the new one,
    never a half-written one. The ``content_type`` given to ``put_*`` is not stored: the files
    route guesses it from the key's suffix, which the service always sets.
    """

    def __init__(self, root: Path, signing_key: bytes, base_url: str) -> None:
        if not signing_key:
            raise ValueError("LocalStorage needs a non-empty signing key")
        self.root = Path(root).absolute()
        self.signing_key = bytes(signing_key)
        self.base_url = base_url.rstrip("/")

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def path_for(self, key: str) -> Path:
        """The file that holds ``key`` (which may not exist); ValueError for an invalid key."""
        return self.root.joinpath(*check_key(key).split("/"))

    # -- writing

    @contextlib.contextmanager
    def _atomic_target(self, dest: Path) -> Iterator[BinaryIO]:
        """Yield a temp file beside ``dest``; on success it replaces ``dest`` in one step.
        A full disk raises :class:`StorageFull` (the temp file is gone by then)."""
        try:
            with self._replacing(dest) as out:
                yield out
        except OSError as exc:
            if exc.errno not in _FULL_ERRNOS:
                raise
            raise StorageFull(f"no space left to store {dest.name!r}: {exc.strerror}; "
                              "try again later") from exc

    @contextlib.contextmanager
    def _replacing(self, dest: Path) -> Iterator[BinaryIO]:
        for _attempt in range(5):
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd, tmp_name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=dest.parent)
                break
            except FileNotFoundError:
                # delete_prefix removed the (empty) folder between mkdir and mkstemp: make it again
                continue
        else:
            raise OSError(f"could not create a temp file in {dest.parent}")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                # durable before it is visible: after a crash the key holds old or new bytes
                os.fsync(fh.fileno())
            # mkstemp makes 0600 files; stored files are plain data other local tools may read
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        dest = self.path_for(key)
        with open(path, "rb") as src, self._atomic_target(dest) as out:
            shutil.copyfileobj(src, out, 1024 * 1024)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        dest = self.path_for(key)
        with self._atomic_target(dest) as out:
            out.write(data)

    # -- reading

    def get_to_path(self, key: str, dest: Path) -> None:
        source = self.path_for(key)
        try:
            # opened before copying: a delete during the copy cannot cut it short
            src = open(source, "rb")  # noqa: SIM115
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise StorageMissing(key) from None
        with src, self._atomic_target(Path(dest)) as out:
            shutil.copyfileobj(src, out, 1024 * 1024)

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def size(self, key: str) -> int | None:
        path = self.path_for(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return st.st_size if path.is_file() else None

    # -- deleting

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            path.unlink()
            self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        folder_key, _, partial = prefix.rpartition("/")
        base = self.root.joinpath(*folder_key.split("/")) if folder_key else self.root
        try:
            entries = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        count = 0
        for entry in entries:
            # dot names are writers' temp files in progress, never keys
            if not entry.name.startswith(partial) or entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                count += self._delete_tree(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    count += 1
        self._prune(base)
        return count

    def _delete_tree(self, folder: Path) -> int:
        count = 0
        for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
            for name in filenames:
                if name.startswith("."):
                    continue  # a writer's temp file in progress (no key starts with a dot)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(dirpath, name))
                    count += 1
            for name in dirnames:
                with contextlib.suppress(OSError):  # not empty: a writer is still in there
                    os.rmdir(os.path.join(dirpath, name))
        with contextlib.suppress(OSError):
            os.rmdir(folder)
        return count

    def _prune(self, folder: Path) -> None:
        """Remove ``folder`` and its parents up to the root while they are empty."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    # -- signed URLs

    def _signature(self, key: str, exp: int, filename: str | None) -> str:
        # JSON keeps the fields apart whatever they contain; the tag keeps these signatures
        # from being valid for anything else signed with the same key
        message = json.dumps(["facecast-file-url-v1", key, exp, filename],
                             separators=(",", ":"), ensure_ascii=True)
        return hmac.new(self.signing_key, message.encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, expires_s: float, filename: str | None = None) -> str:
        check_key(key)
        if filename is not None:
            _check_filename(filename)
        exp = math.ceil(time.time() + expires_s)
        query: dict[str, str | int] = {"exp": exp}
        if filename is not None:
            query["filename"] = filename
        query["sig"] = self._signature(key, exp, filename)
        base = origin.base(self.base_url)  # the request's scheme and host, if any
        return f"{base}/files/{key}?{urlencode(query, quote_via=quote)}"

    def signature_valid(self, key: str, exp: int, sig: str, filename: str | None = None) -> bool:
        """True when ``sig`` was made by :meth:`url` for these values (expired or not)."""
        expected = self._signature(key, exp, filename)
        return hmac.compare_digest(expected.encode(), sig.encode("ascii", "replace"))

    def verify(self, key: str, exp: int, sig: str, filename: str | None = None, *,
               now: float | None = None) -> bool:
        """True when the signature is valid and ``exp`` has not passed."""
        if not self.signature_valid(key, exp, sig, filename):
            return False
        return (time.time() if now is None else now) <= exp


# ---------------------------------------------------------------------------------------------
# S3 and S3-compatible stores


class S3Storage:
    """Objects in an S3 bucket (AWS, MinIO, R2, Ceph...), under an optional key prefix.

    Download URLs are presigned GETs made by boto3 from the configured credentials; the store
    checks them, so the service is not in the download path. Credentials come from the
    arguments or, when those are absent, boto3's usual chain (``AWS_ACCESS_KEY_ID``...).
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        signature_version: str = "s3v4",
        public_endpoint_url: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix)
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.signature_version = signature_version

        def client(endpoint: str | None) -> Any:
            s3_options: dict[str, Any] = {}
            extra: dict[str, Any] = {}
            if endpoint:
                # custom endpoints (MinIO, s3rver, Ceph) rarely resolve bucket subdomains
                s3_options["addressing_style"] = "path"
                # botocore >= 1.36 adds CRC checksums to every upload, which several
                # S3-compatible stores reject; they are only sent where S3 requires them
                extra["request_checksum_calculation"] = "when_required"
                extra["response_checksum_validation"] = "when_required"
            config = Config(signature_version=signature_version, s3=s3_options,
                            retries={"max_attempts": 4, "mode": "standard"},
                            connect_timeout=10, read_timeout=120, **extra)
            return boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
                aws_secret_access_key=secret_key, config=config)

        self.client = client(endpoint_url)
        # where the store is reached from inside (http://minio:9000) may not be where
        # downloaders reach it; presigning needs no network, so a second client just signs
        self._signer = client(public_endpoint_url) if public_endpoint_url else self.client

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix})"

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    @staticmethod
    def _is_missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return False
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return error.get("Code") in ("404", "NoSuchKey", "NotFound") or status == 404

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key),
                                ExtraArgs={"ContentType": content_type})

    def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                               ContentType=content_type)

    def get_to_path(self, key: str, dest: Path) -> None:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            # s3transfer downloads to a temp name beside dest and renames it: atomic as well
            self.client.download_file(self.bucket, self._key(key), str(dest))
        except Exception as exc:
            if self._is_missing(exc):
                raise StorageMissing(key) from None
            raise

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if self._is_missing(exc):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def delete(self, key: str) -> None:
        # S3 answers 204 for a key that is not there: idempotent already
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_prefix(self, prefix: str) -> int:
        full = self.prefix + check_prefix(prefix)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        # one page holds at most 1000 keys, the most one delete_objects call takes
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if not objects:
                continue
            reply = self.client.delete_objects(Bucket=self.bucket,
                                               Delete={"Objects": objects, "Quiet": True})
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise OSError(f"S3 refused to delete {len(errors)} object(s) under {full!r}, "
                              f"e.g. {first.get('Key')!r}: {first.get('Code')} "
                              f"{first.get('Message')}")
            count += len(objects)
        return count

    def url(self, key: str, expires_s: float, filename: str | None = None) -> str:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(_check_filename(filename))
        expires = math.ceil(expires_s)
        if self.signature_version == "s3v4":
            expires = min(expires, _S3V4_MAX_EXPIRES_S)
        return self._signer.generate_presigned_url("get_object", Params=params,
                                                   ExpiresIn=expires)


# ---------------------------------------------------------------------------------------------

_S3_OPTIONS = {"endpoint_url", "region", "access_key", "secret_key", "signature_version",
               "public_endpoint_url"}


def open_storage(url: str, *, signing_key: bytes, base_url: str) -> Storage:
    """The storage a URL names: ``file:///abs/path`` or ``s3://bucket/prefix?options``.

    S3 options (query parameters): ``endpoint_url``, ``region``, ``access_key``, ``secret_key``,
    ``signature_version`` (``s3v4``, the default, or ``s3`` for stores that only know SigV2) and
    ``public_endpoint_url`` (the endpoint put in download URLs, when clients reach the store at
    another address than the service does).
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file storage URL must be file:///absolute/path, not {url!r}")
        path = Path(unquote(parts.path))
        if not path.is_absolute():
            raise ValueError(f"file storage URL needs an absolute path: {url!r}")
        return LocalStorage(path, signing_key, base_url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"S3 storage URL needs a bucket: s3://bucket/prefix, not {url!r}")
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
        unknown = set(query) - _S3_OPTIONS
        if unknown:
            raise ValueError(f"unknown S3 storage option(s) {sorted(unknown)}; "
                             f"known: {sorted(_S3_OPTIONS)}")
        options = {name: values[-1] for name, values in query.items() if values[-1]}
        return S3Storage(parts.netloc, unquote(parts.path), **options)
    raise ValueError(f"storage URL must start with file:// or s3://, not {url!r}")
