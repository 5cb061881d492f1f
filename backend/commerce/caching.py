"""Cache keys of the commerce area.

Catalog reads are cached under a version that every committed product or stock change
bumps: a reader takes the version *before* it reads the database, so a page read before a
commit can only be stored under the version that commit made obsolete.
"""

from __future__ import annotations

import time

from django.core.cache import cache
from django.db import transaction

CATALOG_VERSION_KEY = "commerce:catalog:version"
DASHBOARD_KEY = "commerce:dashboard"
DASHBOARD_GATE_KEY = "commerce:dashboard:gate"


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
    return int(cache.get_or_set(CATALOG_VERSION_KEY, _fresh_version, timeout=None))


async def acatalog_version() -> int:
    return int(await cache.aget_or_set(CATALOG_VERSION_KEY, _fresh_version, timeout=None))


def catalog_page_key(version: int, *parts: object) -> str:
    return f"commerce:catalog:{version}:" + ":".join(str(part) for part in parts)
