"""serve's children (facecast.server.Children): a child that dies is started again, after a
wait that doubles while it keeps dying young and starts over once it lived. Real child
processes; the clock is passed in, so no test waits for it. (The whole path, a live worker
killed under a running ``facecast serve`` and a new one taking streams, is in
test_live_placed.py.)"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from facecast.server import RESTART_WAIT_S, STABLE_S, Children


def _exits_at_once() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    try:
        yield kids
    finally:
        kids.stop()


def test_a_dead_child_is_started_again_after_a_growing_wait(children: Children) -> None:
    assert children.add("short-lived", _exits_at_once)
    assert not children.add("unwanted", lambda: None)  # not wanted here: nothing started
    (child,) = children._children
    first = child.proc
    first.wait()
    t0 = child.started
    children._check(child, t0 + 0.1)  # seen dead: due after the first wait
    assert child.due == pytest.approx(t0 + 0.1 + RESTART_WAIT_S[0])
    children._check(child, t0 + 0.5)
    assert child.proc is first and child.restarts == 0
    children._check(child, t0 + 1.2)
    assert child.proc is not first and child.restarts == 1 and child.started == t0 + 1.2
    # dead again a moment after its start: the wait doubles
    child.proc.wait()
    children._check(child, t0 + 2.0)
    assert child.due == pytest.approx(t0 + 2.0 + 2 * RESTART_WAIT_S[0])
    children._check(child, t0 + 4.1)
    assert child.restarts == 2
    # dead after living longer than STABLE_S: the first wait again
    child.proc.wait()
    later = t0 + 4.1 + STABLE_S + 1
    children._check(child, later)
    assert child.due == pytest.approx(later + RESTART_WAIT_S[0])


def test_the_wait_stops_growing_at_its_most(children: Children) -> None:
    children.add("short-lived", _exits_at_once)
    (child,) = children._children
    now = child.started
    for _ in range(12):
        child.proc.wait()
        children._check(child, now)
        assert child.due is not None and child.due - now <= RESTART_WAIT_S[1]
        now = child.due
        children._check(child, now)
    assert child.restarts == 12 and child.wait_s == RESTART_WAIT_S[1]


def test_stop_ends_the_children_and_restarts_nothing(children: Children) -> None:
    children.add("sleeper", lambda: subprocess.Popen([sys.executable, "-c",
                                                      "import time; time.sleep(600)"]))
    children.watch()
    (child,) = children._children
    children.stop()
    assert child.proc.poll() is not None and child.restarts == 0
