"""Writing untrusted inputs to disk all-or-nothing under a size limit: inline base64
(optionally a data URI) and uploaded files. A writer writes to a temporary name beside
``dest`` and renames it on success; on any failure ``dest`` does not exist.
"""

from __future__ import annotations

import binascii
import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from facecast.errors import InputError

_CHUNK = 256 * 1024


_URLSAFE = str.maketrans("-_", "+/")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")


def _size_text(n: int) -> str:
    mib = 1024 * 1024
    if n >= mib:
        return f"{n / mib:g} MiB" if n % mib == 0 else f"{n / mib:.1f} MiB"
    return f"{n} bytes"


def _too_large(what: str, max_bytes: int, **details: Any) -> InputError:
    return InputError(
        f"{what} is larger than the {_size_text(max_bytes)} limit",
        code="file_too_large",
        max_bytes=max_bytes,
        **details,
    )


@contextlib.contextmanager
def _no_file_on_failure(dest: Path) -> Iterator[None]:
    """On any failure remove ``dest``: no half-written file, nor an older one that a
    retry could mistake for this input."""
    try:
        yield
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _atomic_output(dest: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``dest`` and rename it there on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
    try:
        with open(tmp, "xb") as out:
            yield out
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def decode_base64(
    data: str | bytes, dest: Path, *, max_bytes: int, allow_data_uri: bool = True
) -> int:
    """Decode base64 ``data`` into ``dest`` and return the decoded size.

    Accepts the standard and URL-safe alphabets, with or without ``=`` padding,
    with whitespace anywhere (line-wrapped base64). A ``data:...;base64,``
    prefix is accepted only when ``allow_data_uri``. The decoded size is worked
    out from the length and checked before anything is decoded. Raises
    :class:`InputError` with code ``bad_base64`` or ``file_too_large``.
    """
    dest = Path(dest)
    with _no_file_on_failure(dest):
        return _decode_base64(data, dest, max_bytes, allow_data_uri)


def _decode_base64(data: str | bytes, dest: Path, max_bytes: int, allow_data_uri: bool) -> int:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("ascii")
        except UnicodeDecodeError as exc:
            raise InputError("base64 data contains non-ASCII bytes", code="bad_base64") from exc
    text = data.lstrip()
    if text[:5].lower() == "data:":
        if not allow_data_uri:
            raise InputError(
                "a data: URI is not accepted here: send the bare base64 string",
                code="bad_base64",
            )
        comma = text.find(",", 0, 1024)
        if comma < 0:
            raise InputError("the data: URI has no ',' before its data", code="bad_base64")
        if not text[5:comma].strip().lower().endswith(";base64"):
            raise InputError("the data: URI is not base64 (no ';base64')", code="bad_base64")
        text = text[comma + 1 :]
    compact = "".join(text.split())
    if "-" in compact or "_" in compact:
        compact = compact.translate(_URLSAFE)
    body = compact.rstrip("=")
    padding = len(compact) - len(body)
    if not body:
        raise InputError("the base64 data is empty", code="bad_base64")
    if bad := _NOT_BASE64.search(body):
        char = bad.group()
        problem = "'=' padding inside the data" if char == "=" else f"the character {char!r}"
        raise InputError(f"invalid base64: {problem}", code="bad_base64")
    if len(body) % 4 == 1 or padding > 2 or (padding and (len(body) + padding) % 4):
        raise InputError("invalid base64: the length or padding is wrong", code="bad_base64")
    size = len(body) * 3 // 4  # exact for valid base64 without its padding
    if size > max_bytes:
        raise _too_large("the base64 data", max_bytes, bytes=size)
    body += "=" * (-len(body) % 4)
    step = 4 * 65536  # whole quanta, so each piece decodes on its own
    with _atomic_output(dest) as out:
        for start in range(0, len(body), step):
            try:
                out.write(binascii.a2b_base64(body[start : start + step]))
            except binascii.Error as exc:
                raise InputError(f"invalid base64: {exc}", code="bad_base64") from exc
    return size


class SupportsRead(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def save_upload(stream: SupportsRead, dest: Path, *, max_bytes: int) -> int:
    """Copy a binary upload stream into ``dest`` and return its size.

    Stops reading as soon as ``max_bytes`` is passed (code ``file_too_large``).
    """
    size = 0
    dest = Path(dest)
    with _no_file_on_failure(dest), _atomic_output(dest) as out:
        while chunk := stream.read(_CHUNK):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise TypeError(f"the upload stream must give bytes, not {type(chunk).__name__}")
            size += len(chunk)
            if size > max_bytes:
                raise _too_large("the upload", max_bytes)
            out.write(chunk)
    return size
