"""Media inputs as a caller has them, turned into the API's ``MediaInput``.

A path (``str`` or ``os.PathLike``), ``bytes`` or a binary file object is uploaded as an
asset first (``POST /assets``, multipart: no base64 inflation, no JSON size limit) and
referenced by its id. A string that is an http(s) URL, an asset id (``ast_12``) or a
job's result (``job_12/video``) is passed on for the server to use; an ``AssetOut``, a
``MediaInput`` or a dict of its fields as they are. What counts as an asset id or a job
result is the wire model's rule (:class:`facecast.api.native.wire.MediaInput`)."""

from __future__ import annotations

import io
import mimetypes
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Union, cast

from pydantic import ValidationError

from facecast.api.native.wire import AssetOut, MediaInput
from facecast.client._plan import Plan, Upload, call

# what create(photo=..., audio=..., video=...) takes
Media = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], AssetOut,
              MediaInput, Mapping[str, Any]]


def _reference(text: str) -> dict[str, str] | None:
    """``text`` as a URL, asset id or job result the server resolves, or None (a path)."""
    if text.startswith(("http://", "https://")):
        return {"url": text}
    for key in ("asset_id", "job_result"):
        try:
            MediaInput.model_validate({key: text})
        except ValidationError:
            continue
        return {key: text}
    return None


def upload_of(source: str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes],
              filename: str | None = None) -> Upload:
    """A local file, bytes or a binary file object as a multipart upload."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        name = filename or path.name
        return Upload(name, lambda: open(path, "rb"), _content_type(name))
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = filename or "upload"
        return Upload(name, lambda: io.BytesIO(data), _content_type(name))
    stream = source
    name = filename or Path(str(getattr(stream, "name", "") or "upload")).name
    start = stream.tell() if stream.seekable() else None
    sent = False

    def reopen() -> IO[bytes]:
        # a retry sends the file again: from where it started, if the stream can seek
        nonlocal sent
        if start is not None:
            stream.seek(start)
        elif sent:
            raise OSError(f"{name}: a stream that cannot seek is sent only once")
        sent = True
        return cast(IO[bytes], _Unclosed(stream))

    return Upload(name, reopen, _content_type(name))


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class _Unclosed(io.RawIOBase):
    """The caller's file object, read by a request without being closed by it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def media_input(value: Media | None) -> Plan[dict[str, Any] | None]:
    """The ``MediaInput`` body for ``value`` (None stays None), uploading local data."""
    if value is None:
        return None
    if isinstance(value, MediaInput):
        return value.model_dump(exclude_none=True)
    if isinstance(value, AssetOut):
        return {"asset_id": value.id}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        found = _reference(value)
        if found is not None:
            return found
    asset = yield from call("POST", "/assets", AssetOut, upload=upload_of(value))
    return {"asset_id": asset.id}
