"""Per-API-key rate limits, and per client address for failed authentications:
sliding-window counters, in this process on one
machine, in Redis (the `limits` package) when the queue is Redis, so several
API servers share the count. A refusal carries how long to wait (HTTP 429 +
Retry-After).

The in-process counter is our own: `limits`' memory storage starts a timer
thread for every expiry, which at a thousand requests a second costs more
than the rest of a status poll.
"""

from __future__ import annotations

import math
import threading
import time
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from facecast.errors import InputError, LimitError
from facecast.service.accounts import Principal
from facecast.service.settings import Settings


@lru_cache(maxsize=64)
def _items(spec: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(spec))


class SlidingWindows:
    """Sliding-window counters: the previous fixed window's count, weighted by how
    much of it still overlaps the sliding window, plus the current window's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int, int], int] = {}
        self._next_prune = 0.0

    def hit(self, key: str, amount: int, seconds: int, now: float | None = None
            ) -> float | None:
        """Count one request; None if allowed, else seconds to wait."""
        now = time.time() if now is None else now
        window = int(now // seconds)
        elapsed = now / seconds - window  # fraction of the current window gone
        with self._lock:
            current = self._counts.get((key, seconds, window), 0)
            previous = self._counts.get((key, seconds, window - 1), 0)
            if previous * (1 - elapsed) + current + 1 > amount:
                return max(0.001, (1 - elapsed) * seconds)
            self._counts[(key, seconds, window)] = current + 1
            if now >= self._next_prune:
                self._prune(now)
        return None

    def peek(self, key: str, amount: int, seconds: int, now: float | None = None
             ) -> float | None:
        """As :meth:`hit` would answer, without counting: None if one more is allowed."""
        now = time.time() if now is None else now
        window = int(now // seconds)
        elapsed = now / seconds - window
        with self._lock:
            current = self._counts.get((key, seconds, window), 0)
            previous = self._counts.get((key, seconds, window - 1), 0)
        if previous * (1 - elapsed) + current + 1 > amount:
            return max(0.001, (1 - elapsed) * seconds)
        return None

    def _prune(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if k[2] >= now // k[1] - 1}
        self._next_prune = now + 10.0


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.default = settings.rate_limit
        self.auth_failures = settings.auth_failure_limit
        _items(self.default)  # refuse a bad setting at start-up
        _items(self.auth_failures)
        url = settings.ratelimit_storage
        self.local = SlidingWindows() if url.startswith("memory://") else None
        self.shared = None if self.local else SlidingWindowCounterRateLimiter(
            storage_from_string(url))

    def check_spec(self, spec: str) -> None:
        """Refuse a limit the `limits` package cannot read (e.g. '10/fortnight')."""
        try:
            _items(spec)
        except ValueError as exc:
            raise InputError(f"rate limit {spec!r} is not valid: use e.g. '10/second;600/minute'",
                             code="bad_rate_limit") from exc

    def _wait(self, item: RateLimitItem, key: str) -> float | None:
        if self.local is not None:
            return self.local.hit(key, item.amount, item.get_expiry())
        assert self.shared is not None
        if self.shared.hit(item, key):
            return None
        return self.shared.get_window_stats(item, key).reset_time - time.time()

    def _peek(self, item: RateLimitItem, key: str) -> float | None:
        if self.local is not None:
            return self.local.peek(key, item.amount, item.get_expiry())
        assert self.shared is not None
        if self.shared.test(item, key):
            return None
        return self.shared.get_window_stats(item, key).reset_time - time.time()

    def check_address(self, address: str) -> None:
        """Refuse an address that failed to authenticate too often of late (keys are not
        guessed at speed); it is let in again once the window has room."""
        for item in _items(self.auth_failures):
            wait = self._peek(item, f"authfail:{address}")
            if wait is not None:
                wait_s = max(1, math.ceil(wait))
                raise LimitError(f"too many failed authentications from this address (the "
                                 f"limit is {item}); retry in {wait_s} s", code="rate_limited",
                                 retry_after=wait_s, limit=str(item))

    def auth_failed(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        for item in _items(self.auth_failures):
            self._wait(item, f"authfail:{address}")  # past the limit it stays full

    def hit(self, principal: Principal) -> None:
        key = principal.limit_key or f"key:{principal.key_id}"
        for item in _items(principal.rate_limit or self.default):
            wait = self._wait(item, key)
            if wait is not None:
                wait_s = max(1, math.ceil(wait))
                raise LimitError(f"rate limit of {item} exceeded for this API key; retry in "
                                 f"{wait_s} s", code="rate_limited", retry_after=wait_s,
                                 limit=str(item))
