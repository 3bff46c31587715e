"""The in-process sliding-window rate counter, on a clock the test controls."""

from __future__ import annotations

from facecast.service.ratelimit import SlidingWindows


def test_allows_up_to_the_limit_then_says_how_long_to_wait() -> None:
    windows = SlidingWindows()
    t0 = 1_000_000.0  # the start of a 10 s window
    assert [windows.hit("a", 3, 10, t0 + i * 0.1) for i in range(3)] == [None] * 3
    wait = windows.hit("a", 3, 10, t0 + 1.0)
    assert wait is not None and abs(wait - 9.0) < 1e-6
    assert windows.hit("b", 3, 10, t0 + 1.0) is None  # keys count apart


def test_the_previous_window_counts_by_its_overlap() -> None:
    windows = SlidingWindows()
    t0 = 1_000_000.0
    for i in range(4):
        assert windows.hit("k", 4, 10, t0 + 9 + i * 0.1) is None
    # 2.5 s into the next window, 75 % of the previous 4 still count: 3 + 1 fits, 4 + 1 not
    assert windows.hit("k", 4, 10, t0 + 12.5) is None
    assert windows.hit("k", 4, 10, t0 + 12.6) is not None
    # a whole window later the old requests no longer count
    assert windows.hit("k", 4, 10, t0 + 25.0) is None


def test_refused_requests_are_not_counted() -> None:
    windows = SlidingWindows()
    t0 = 2_000_000.0
    assert windows.hit("k", 1, 1, t0) is None
    assert all(windows.hit("k", 1, 1, t0 + 0.1 * i) is not None for i in range(1, 9))
    assert windows.hit("k", 1, 1, t0 + 2.0) is None
