"""Scratch folders of killed work are removed: the lock-file rule of
:mod:`facecast.service.scratch` with real processes killed by SIGKILL, and a real
``facecast serve`` whose worker is killed mid-render (as in test_service_durability)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facecast.service.scratch import LOCK_NAME, scratch, sweep
from service_support import ServerProcess, wait_for_job
from test_service_durability import FAST_RECOVERY, job_row, start_long_render

HOLDER = """
import sys
from pathlib import Path
from facecast.service.scratch import scratch
with scratch(Path(sys.argv[1]), "held-") as folder:
    (folder / "input.mp4").write_bytes(b"x" * 1000)
    (folder / "out.mp4.part").write_bytes(b"y" * 1000)
    print(folder, flush=True)
    sys.stdin.read()  # holds the folder until killed
"""


@pytest.fixture
def killed_holder(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(root, folder): a scratch folder whose process was killed with SIGKILL."""
    root = tmp_path / "scratch"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    folder = Path(proc.stdout.readline().strip())
    assert (folder / "out.mp4.part").is_file()
    assert sweep(root) == 0  # alive: kept
    assert folder.is_dir()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    yield root, folder
    if proc.stdin:
        proc.stdin.close()


def test_sweep_removes_folders_of_killed_processes(killed_holder: tuple[Path, Path]) -> None:
    root, folder = killed_holder
    assert folder.is_dir()  # a kill leaves it
    assert sweep(root) == 1
    assert not folder.exists()


def test_sweep_keeps_live_folders_of_this_process(tmp_path: Path) -> None:
    root = tmp_path / "scratch"
    with scratch(root, "job1-1-") as folder:
        (folder / "in_photo.png").write_bytes(b"p")
        assert folder.parent == root and folder.name.startswith("job1-1-")
        assert (folder / LOCK_NAME).is_file()
        assert sweep(root) == 0 and folder.is_dir()
    assert not folder.exists()  # the block's end removes it
    assert list(root.iterdir()) == []


@pytest.mark.parametrize(("name", "swept"), [("facecast-job7-abc", True), (".job8-1-new", False)])
def test_folders_without_a_lock(tmp_path: Path, name: str, swept: bool) -> None:
    """A folder nobody ever locked is left from older versions; a dot folder without its
    lock yet is one being made right now."""
    (tmp_path / name).mkdir()
    assert sweep(tmp_path) == int(swept)
    assert (tmp_path / name).exists() is not swept


@pytest.mark.slow
def test_killed_workers_scratch_is_removed(
    tmp_path: Path, killed_holder: tuple[Path, Path]
) -> None:
    home = tmp_path / "home"
    stale_root, stale = killed_holder
    root = home / "service" / "scratch"
    root.parent.mkdir(parents=True)
    stale_root.rename(root)  # work killed before this server started
    stale = root / stale.name
    assert stale.is_dir()
    # retention (and its sweep) every hour: what removes scratch below is the worker
    srv = ServerProcess(home, max_attempts=1, retention_interval_s=3600, **FAST_RECOVERY)
    srv.start()
    try:
        assert not stale.exists()  # serve swept at its start
        with srv.client() as client:
            job = start_long_render(client)
            row = job_row(home, job)
            mine = [p for p in root.iterdir() if p.name.startswith(f"job{row['id']}-1-")]
            assert len(mine) == 1, list(root.iterdir())
            assert any(p.name.startswith("in_") for p in mine[0].iterdir())
            os.kill(int(str(row["worker"]).rsplit(":", 1)[1]), signal.SIGKILL)
            done = wait_for_job(client, job, timeout=120)
            assert done["error"]["code"] == "worker_lost", done
            # the next job runs in the new worker process, which swept when it started
            tts = client.post("/api/v1/speech", json={"text": "The next job."})
            assert tts.status_code == 201, tts.text
            assert wait_for_job(client, tts.json()["id"], timeout=180)["status"] == "succeeded"
            assert not mine[0].exists()
            assert list(root.iterdir()) == []
    finally:
        srv.stop()
