"""Scratch folders of running work (a job attempt's input copies and partial outputs, an
upload being checked), all under one root the service owns (``Settings.scratch_root``).

Each folder holds a lock file its process keeps an exclusive ``flock`` on for as long as
the work runs. The kernel drops the lock when the process ends however it ends, SIGKILL
and power loss included, so :func:`sweep` can tell a live folder from one whose work is
gone without asking the database or trusting reused process ids: a folder whose lock it
can take is removed. Workers sweep when they start, ``facecast serve`` when it starts and
its maintenance thread on the retention interval.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("facecast.scratch")

LOCK_NAME = ".owner.lock"
# a folder is made under a dot name, locked, then renamed: a sweep never sees it unlocked
_NEW_PREFIX = "."


@contextlib.contextmanager
def scratch(root: Path, prefix: str) -> Iterator[Path]:
    """A new folder under ``root``, locked by this process, removed when the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX + prefix, dir=root))
    fd = os.open(new / LOCK_NAME, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        folder = new.with_name(new.name[len(_NEW_PREFIX) :])
        os.rename(new, folder)
    except BaseException:
        os.close(fd)
        shutil.rmtree(new, ignore_errors=True)
        raise
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)  # after the removal: a sweep must not take the folder while it goes


def sweep(root: Path) -> int:
    """Remove every folder under ``root`` whose owner is gone; returns how many."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    removed = 0
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        try:
            fd = os.open(os.path.join(entry.path, LOCK_NAME), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            # a dot folder between mkdtemp and its lock is being made now; any other folder
            # without a lock was never owned by a live process
            if not entry.name.startswith(_NEW_PREFIX):
                shutil.rmtree(entry.path, ignore_errors=True)
                removed += 1
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its owner is alive (locks are per open file, so this process too)
        else:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        finally:
            os.close(fd)
    if removed:
        log.info("removed %d scratch folder(s) of work that no longer runs in %s", removed, root)
    return removed
