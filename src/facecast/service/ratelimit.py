"""Per-API-key rate limits with the `limits` package: in memory on one
machine, in Redis when the queue is Redis (so several API servers share the
count). A refusal carries how long to wait (HTTP 429 + Retry-After)."""

from __future__ import annotations

import math
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


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.default = settings.rate_limit
        self._items = _items(self.default)  # refuse a bad setting at start-up
        storage = storage_from_string(settings.ratelimit_storage)
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    def check_spec(self, spec: str) -> None:
        """Refuse a limit the `limits` package cannot read (e.g. '10/fortnight')."""
        try:
            _items(spec)
        except ValueError as exc:
            raise InputError(f"rate limit {spec!r} is not valid: use e.g. '10/second;600/minute'",
                             code="bad_rate_limit") from exc

    def hit(self, principal: Principal) -> None:
        for item in _items(principal.rate_limit or self.default):
            key = principal.limit_key or f"key:{principal.key_id}"
            if not self.limiter.hit(item, key):
                reset = self.limiter.get_window_stats(item, key)
                wait = max(1, math.ceil(reset.reset_time - time.time()))
                raise LimitError(f"rate limit of {item} exceeded for this API key; retry in "
                                 f"{wait} s", code="rate_limited", retry_after=wait,
                                 limit=str(item))
