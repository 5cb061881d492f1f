"""Fixed-window counters in the cache (Redis in production), shared by every process.

Counting is atomic: ``cache.add`` creates the window's counter (and its start time) only if
it does not exist yet, and ``cache.incr`` is a Redis INCR, so concurrent attempts each get
their own number and exactly ``limit`` of them fit in a window, however many arrive at once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

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


def _seconds_left(start_key: str, rate: Rate) -> int:
    started = cache.get(start_key)
    if started is None:
        return rate.window
    return max(1, int(started + rate.window - time.time()) + 1)


def hit(scope: str, ident: str, rate: Rate) -> int:
    """Count one attempt atomically; its number within the current window (1, 2, ...)."""
    count_key, start_key = _keys(scope, ident)
    for _ in range(3):
        if cache.add(count_key, 0, timeout=rate.window):
            cache.set(start_key, time.time(), timeout=rate.window)
        try:
            return int(cache.incr(count_key))
        except ValueError:  # the window expired between add and incr: open the next one
            continue
    return int(cache.incr(count_key))


def retry_after(scope: str, ident: str, rate: Rate) -> int | None:
    """Seconds until the window frees up, or None while under the limit (counts nothing)."""
    count_key, start_key = _keys(scope, ident)
    if (cache.get(count_key) or 0) < rate.limit:
        return None
    return _seconds_left(start_key, rate)


def clear(scope: str, ident: str) -> None:
    cache.delete_many(list(_keys(scope, ident)))


def check_and_record(scope: str, ident: str, rate: Rate, *, detail: str = "") -> None:
    """Count one attempt; raise Throttled when it is beyond the window's limit."""
    if hit(scope, ident, rate) > rate.limit:
        raise Throttled(
            detail=detail or "Too many requests; try again later.",
            retry_after=_seconds_left(_keys(scope, ident)[1], rate),
        )


def client_address(request: HttpRequest) -> str:
    """The caller's address, for per-client limits (the API and the admin site alike).

    With ``NUM_PROXIES`` reverse proxies in front, the address the outermost of them saw is
    the ``NUM_PROXIES``-th entry from the right of ``X-Forwarded-For``; anything further left
    was written by the client and is not trusted. Without proxies, ``REMOTE_ADDR``.
    """
    remote = request.META.get("REMOTE_ADDR") or "unknown"
    proxies = settings.NUM_PROXIES
    if proxies <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-min(proxies, len(hops))][:64]
