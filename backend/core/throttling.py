"""Fixed-window counters in the cache (Redis in production), shared by every process."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache

from backend.core.errors import Throttled


@dataclass(frozen=True)
class Rate:
    limit: int
    window: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        """``"100/3600"``: at most 100 in any 3600-second window."""
        limit, _, window = text.partition("/")
        return cls(int(limit), int(window or 60))


def _keys(scope: str, ident: str) -> tuple[str, str]:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"throttle:{scope}:{digest}:n", f"throttle:{scope}:{digest}:t"


def retry_after(scope: str, ident: str, rate: Rate) -> int | None:
    """Seconds until the window frees up, or None while under the limit."""
    count_key, start_key = _keys(scope, ident)
    values = cache.get_many([count_key, start_key])
    if values.get(count_key, 0) < rate.limit:
        return None
    started = values.get(start_key, time.time())
    return max(1, int(started + rate.window - time.time()) + 1)


def record_hit(scope: str, ident: str, rate: Rate) -> None:
    count_key, start_key = _keys(scope, ident)
    if cache.add(count_key, 0, timeout=rate.window):
        cache.set(start_key, time.time(), timeout=rate.window)
    try:
        cache.incr(count_key)
    except ValueError:  # expired between add and incr: start a new window
        cache.set(count_key, 1, timeout=rate.window)
        cache.set(start_key, time.time(), timeout=rate.window)


def clear(scope: str, ident: str) -> None:
    cache.delete_many(list(_keys(scope, ident)))


def check_and_record(scope: str, ident: str, rate: Rate) -> None:
    """Count one attempt; raise Throttled once the window is full."""
    wait = retry_after(scope, ident, rate)
    if wait is not None:
        raise Throttled(detail="Too many requests; try again later.", retry_after=wait)
    record_hit(scope, ident, rate)
