"""Limit/offset lists as the contract shapes them: ``{"items": [...], "count": N}``.

Use ``Query[PageParams]`` (or a subclass with the list's own filters) as the view's query
parameters, ``Page[ItemSchema]`` as its response, and :func:`paginate` to cut the queryset.
Out-of-range limits (0, 1000, -1) fail validation (422) instead of being clamped silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db.models import QuerySet
from ninja import Schema
from pydantic import Field

T = TypeVar("T")

DEFAULT_LIMIT: int = settings.NINJA_PAGINATION_PER_PAGE
MAX_LIMIT: int = settings.NINJA_PAGINATION_MAX_LIMIT
# Far beyond any real list, and far below what the database's LIMIT clause accepts.
MAX_OFFSET = 10**9


class PageParams(Schema):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Items to skip.")


class Page(Schema, Generic[T]):
    items: list[T]
    count: int


def paginate(
    queryset: QuerySet[Any],
    params: PageParams,
    represent: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """One page of the queryset and the total; the COUNT query is skipped when the page
    itself shows the total (first page, not full). ``represent`` shapes each item (a
    selector's ``*_representation``) when the schema cannot read the model directly."""
    items = list(queryset[params.offset : params.offset + params.limit])
    page_shows_total = params.offset == 0 and len(items) < params.limit
    count = len(items) if page_shows_total else queryset.count()
    if represent is not None:
        items = [represent(item) for item in items]
    return {"items": items, "count": count}
