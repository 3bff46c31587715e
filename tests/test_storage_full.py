"""A full disk under the storage: a real 1 MB tmpfs as the storage root (mounting needs
root; without it those tests skip saying so), plus an ENOSPC raised at the storage
boundary itself. A write that does not fit is refused with ``storage_full`` (507 on the
native API, each vendor's own code on its paths), a job fails with that code, nothing
half-written stays, and the server keeps answering on the same connection."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from facecast.service.storage import LocalStorage, StorageFull
from service_support import ServerProcess, wait_for_job

SIGNING_KEY = b"test-signing-key-0123456789abcdef"


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "1m") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk") as folder:
        yield folder


def fill(folder: Path, leave: int) -> Path:
    """Fill ``folder``'s file system up to ``leave`` free bytes; the filler's path."""
    filler = folder / ".filler"  # a dot name: never a storage key
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def all_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_local_storage_full_disk_raises_storage_full_and_leaves_nothing(small_disk: Path) -> None:
    storage = LocalStorage(small_disk, SIGNING_KEY, "http://127.0.0.1")
    with pytest.raises(StorageFull) as caught:
        storage.put_bytes("jobs/1/1/video.mp4", os.urandom(2 * 1024 * 1024), "video/mp4")
    assert caught.value.code == "storage_full"
    assert "no space left" in caught.value.message
    assert all_files(small_disk) == set()  # no temp file, no half of a file
    storage.put_bytes("jobs/1/1/small.json", b"{}", "application/json")  # room is back
    assert storage.exists("jobs/1/1/small.json")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_enospc_at_the_storage_boundary(tmp_path: Path, code: int) -> None:
    """Without a small disk: the OS error a full disk gives, raised by the writer itself."""

    class FullSource:
        def read(self, _size: int = -1) -> bytes:
            raise OSError(code, os.strerror(code))

    storage = LocalStorage(tmp_path / "store", SIGNING_KEY, "http://127.0.0.1")
    with pytest.raises(StorageFull), storage._atomic_target(storage.path_for("a/b.bin")) as out:
        out.write(b"partial")
        out.write(FullSource().read())
    assert all_files(tmp_path / "store") == set()
    # other OS errors are not a full disk
    with pytest.raises(PermissionError), storage._atomic_target(storage.path_for("a/c.bin")) as out:
        raise PermissionError(errno.EACCES, "denied")


@pytest.fixture
def full_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    with tmpfs(tmp_path / "disk") as disk:
        srv = ServerProcess(
            tmp_path / "home", storage_url=f"file://{disk}", maintenance_interval_s=0.2
        )
        srv.start()
        try:
            yield srv, disk
        finally:
            srv.stop()


def png(size: int = 256) -> bytes:
    noise = np.random.default_rng(1).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", noise)[1].tobytes()


def test_server_answers_storage_full_and_keeps_going(
    full_server: tuple[ServerProcess, Path],
) -> None:
    server, disk = full_server
    filler = fill(disk, leave=16 * 1024)
    before = all_files(disk)  # the library's portraits, stored at start, and the filler
    with server.client() as client:  # one connection, kept alive across the refusals
        r = client.post("/api/v1/assets", files={"file": ("noise.png", png(), "image/png")})
        assert r.status_code == 507, r.text
        assert r.json()["error"]["code"] == "storage_full", r.text
        assert client.get("/health").status_code == 200  # the same connection answers
        assert client.get("/api/v1/assets").json()["total"] == 0  # no row for a lost file
        assert all_files(disk) == before

        # a job whose result does not fit fails with the same code and stores nothing
        job = client.post(
            "/api/v1/speech",
            json={
                "text": "This sentence makes an audio file that will not fit on the disk. " * 4,
                "format": "wav",
            },
        )
        assert job.status_code == 201, job.text
        done = wait_for_job(client, job.json()["id"], timeout=180)
        assert done["status"] == "failed", done
        assert done["error"]["code"] == "storage_full", done
        assert all_files(disk) == before

        # vendors answer in their own envelopes
        key = client.post("/api/v1/accounts", json={"name": "v", "credits": 100}).json()
        r = httpx.post(
            f"{server.url}/api/open/v3/audio/create",
            timeout=120,
            headers={"x-api-key": key["api_key"]},
            json={
                "input_text": "Hello there, this will not fit. " * 6,
                "voice_id": "6889b628662160e2caad5dbc",
            },
        )
        assert r.status_code == 200, r.text  # Akool: HTTP 200, the error in code
        body = r.json()
        if body["code"] == 1000:  # it waited its time; the audio failed after
            assert body["data"]["status"] == 4, body
        else:
            assert body["code"] == 1201, body

        filler.unlink()  # room again: the service works as before
        r = client.post("/api/v1/assets", files={"file": ("noise.png", png(64), "image/png")})
        assert r.status_code == 201, r.text
    log = server.log.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]
