"""The API's URL patterns grouped by their first path segment.

ninja gives one flat list of patterns (76 of them) and Django's resolver tries their regexes in
order, so ``/api/v1/ping`` met every pattern before its own: about a tenth of a small
request's CPU. Here each first segment (``products``, ``orders``, ...) becomes one ``include``
of its own patterns, so a path tries the group prefixes, then only its group. Names, the
``api-v1`` namespace, routes (``ResolverMatch.route``) and the order within a group are
ninja's; ``tests/api/test_url_groups.py`` checks every OpenAPI path resolves as before.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, include, path


def _split(route: str) -> tuple[str, str] | None:
    """(first segment, the rest with its leading slash) when the first segment is literal."""
    head, slash, rest = route.partition("/")
    if not head or "<" in head:
        return None
    return head, slash + rest


def grouped(urls: tuple[list[Any], str, str]) -> tuple[list[Any], str, str]:
    """``api.urls`` with its patterns grouped by first segment (same app name, namespace)."""
    patterns, app_name, namespace = urls
    groups: dict[str, list[URLPattern]] = {}
    order: list[str | URLPattern | URLResolver] = []
    for pattern in patterns:
        split = _split(str(pattern.pattern)) if isinstance(pattern, URLPattern) else None
        if split is None:
            order.append(pattern)
            continue
        head, rest = split
        if head not in groups:
            groups[head] = []
            order.append(head)
        groups[head].append(path(rest, pattern.callback, pattern.default_args, pattern.name))
    result: list[Any] = [
        path(item, include(groups[item])) if isinstance(item, str) else item for item in order
    ]
    return result, app_name, namespace
