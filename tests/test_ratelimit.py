"""The in-process sliding-window rate counter, on a clock the test controls."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from facecast.errors import LimitError
from facecast.service.ratelimit import RateLimiter, SlidingWindows
from facecast.service.settings import Settings
from scale_support import ServerMissing, redis_server


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


def test_peek_answers_as_hit_would_without_counting() -> None:
    windows = SlidingWindows()
    t0 = 1_000_000.0
    for i in range(2):
        assert windows.peek("p", 2, 10, t0 + i) is None
        assert windows.hit("p", 2, 10, t0 + i) is None
    waits = [windows.peek("p", 2, 10, t0 + 3), windows.hit("p", 2, 10, t0 + 3)]
    assert waits == [pytest.approx(7.0)] * 2


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_failed_authentications_block_an_address_until_the_window_has_room(
        backend: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        url = None
        if backend == "redis":
            try:
                url = stack.enter_context(redis_server(tmp_path)).url
            except ServerMissing as exc:
                pytest.skip(str(exc))
        limiter = RateLimiter(Settings(home=tmp_path, ratelimit_url=url,
                                       auth_failure_limit="3/minute"))
        for _ in range(3):
            limiter.check_address("192.0.2.1")
            limiter.auth_failed("192.0.2.1")
        with pytest.raises(LimitError) as refused:
            limiter.check_address("192.0.2.1")
        assert refused.value.code == "rate_limited"
        assert 1 <= refused.value.retry_after <= 60
        limiter.check_address("192.0.2.2")  # another address is not affected
        for _ in range(5):  # checks alone never use the budget up
            limiter.check_address("192.0.2.3")
