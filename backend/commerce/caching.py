"""Cache keys of the commerce area.

Catalog reads are cached with the catalog's version, which every committed product or stock
change bumps. A reader fetches the version and the cached entry in one round trip (MGET) and
uses the entry only when it carries the current version; on a miss it reads the database
*after* it got the version, and stores the page with that version, so a page read before a
commit is always filed under a version that commit made obsolete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction

CATALOG_VERSION_KEY = "commerce:catalog:version"
DASHBOARD_KEY = "commerce:dashboard"

logger = logging.getLogger(__name__)


def _fresh_version() -> int:
    # A lost version key restarts from the clock, never from a number used before.
    return time.time_ns() // 1000


def _bump_catalog_version() -> None:
    try:
        cache.incr(CATALOG_VERSION_KEY)
    except ValueError:  # no version yet, or it was evicted
        cache.add(CATALOG_VERSION_KEY, _fresh_version(), timeout=None)
        cache.incr(CATALOG_VERSION_KEY)


def catalog_changed() -> None:
    """Call inside the writing transaction: cached catalog pages go once it commits."""
    transaction.on_commit(_bump_catalog_version, robust=True)


def catalog_version() -> int:
    version = cache.get_or_set(CATALOG_VERSION_KEY, _fresh_version, timeout=None)
    return int(version if version is not None else _fresh_version())


def catalog_page_key(*parts: object) -> str:
    return "commerce:catalog:" + ":".join(str(part) for part in parts)


def catalog_cached(key: str, build: Callable[[], bytes], timeout: int) -> bytes:
    """The cached body under ``key`` when it carries the current catalog version, else
    ``build()`` (stored with the version read before it ran). One Redis round trip on a hit;
    a cache outage falls back to the database."""
    try:
        found = cache.get_many([CATALOG_VERSION_KEY, key])
        version = found.get(CATALOG_VERSION_KEY)
        if version is None:
            version = catalog_version()
    except Exception:
        logger.warning("catalog cache unavailable", exc_info=True)
        return build()
    entry = found.get(key)
    if isinstance(entry, tuple) and len(entry) == 2 and entry[0] == version:
        return bytes(entry[1])
    body = build()
    try:
        cache.set(key, (version, body), timeout)
    except Exception:
        logger.warning("catalog cache unavailable", exc_info=True)
    return body
