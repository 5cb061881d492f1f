"""Cache keys of the commerce area.

Catalog reads are cached with two counters kept in Redis: the catalog *version*, which every
committed product change (create, edit, delete, a stock edit by an editor) bumps, and the
*stock counter*, which every committed order or cancellation bumps (stock taken or returned).
A reader fetches both counters and the cached entry in one round trip (MGET). The entry is
served when it carries the current version and either the current stock counter or is younger
than ``CATALOG_STOCK_MAX_AGE`` seconds: stock moved by orders shows within that time, so a
burst of orders costs one rebuild per page per interval instead of one per order, while any
editor's change shows at once. Orders never rely on the shown stock (they take it with a
conditional UPDATE). On a miss the reader builds the entry *after* it read the counters and
stores it with them, so an entry built from rows read before a commit always carries a counter
that commit made obsolete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

CATALOG_VERSION_KEY = "commerce:catalog:version"
CATALOG_STOCK_KEY = "commerce:catalog:stock"
DASHBOARD_KEY = "commerce:dashboard"

logger = logging.getLogger(__name__)


def _fresh_counter() -> int:
    # A lost counter restarts from the clock, never from a number used before.
    return time.time_ns() // 1000


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # no counter yet, or it was evicted
        cache.add(key, _fresh_counter(), timeout=None)
        cache.incr(key)


def _bump_catalog_version() -> None:
    _bump(CATALOG_VERSION_KEY)


def _bump_stock_counter() -> None:
    _bump(CATALOG_STOCK_KEY)


def catalog_changed() -> None:
    """Call inside the writing transaction: cached catalog entries go once it commits."""
    transaction.on_commit(_bump_catalog_version, robust=True)


def stock_moved() -> None:
    """Call inside an order's transaction that took or returned stock: cached catalog entries
    are rebuilt at most ``CATALOG_STOCK_MAX_AGE`` seconds after they were built."""
    transaction.on_commit(_bump_stock_counter, robust=True)


def _counter(key: str) -> int:
    value = cache.get_or_set(key, _fresh_counter, timeout=None)
    return int(value if value is not None else _fresh_counter())


def catalog_version() -> int:
    return _counter(CATALOG_VERSION_KEY)


def catalog_page_key(*parts: object) -> str:
    return "commerce:catalog:" + ":".join(str(part) for part in parts)


def catalog_cached(key: str, build: Callable[[], bytes], timeout: int) -> bytes:
    """The cached body under ``key`` when it is current (see the module docstring), else
    ``build()``, stored with the counters read before it ran. One Redis round trip on a hit;
    a cache outage falls back to the database."""
    try:
        found = cache.get_many([CATALOG_VERSION_KEY, CATALOG_STOCK_KEY, key])
        version = found.get(CATALOG_VERSION_KEY)
        if version is None:
            version = catalog_version()
        stock = found.get(CATALOG_STOCK_KEY)
        if stock is None:
            stock = _counter(CATALOG_STOCK_KEY)
    except Exception:
        logger.warning("catalog cache unavailable", exc_info=True)
        return build()
    entry = found.get(key)
    if isinstance(entry, tuple) and len(entry) == 4 and entry[0] == version:
        _, built_stock, built_at, body = entry
        if built_stock == stock or time.time() - built_at < settings.CATALOG_STOCK_MAX_AGE:
            return bytes(body)
    built_at = time.time()
    body = build()
    try:
        cache.set(key, (version, stock, built_at, body), timeout)
    except Exception:
        logger.warning("catalog cache unavailable", exc_info=True)
    return body
