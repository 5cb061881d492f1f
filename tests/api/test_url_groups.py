"""The API's patterns grouped by first segment (api/urls.py) resolve every documented path to
the view, name and route ninja's flat list gives, and the OpenAPI document is unchanged."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.urls.exceptions import Resolver404

from api.main import api
from api.urls import grouped

PREFIX = "/api/v1/"


def _flat_resolver() -> URLResolver:
    from django.urls import path

    return get_resolver(type("FlatUrls", (), {"urlpatterns": [path("api/v1/", api.urls)]}))


def _sample(route: str) -> str:
    """A concrete path for an OpenAPI route: ``{x}`` becomes a number or a word."""
    return re.sub(r"\{(\w+)\}", lambda m: "abc" if m.group(1) == "token" else "7", route)


def _view(func: Any) -> Any:
    """What a ninja view wrapper serves (its PathView; ``api.urls`` makes new wrappers on each
    call), or the function itself."""
    cells = [cell.cell_contents for cell in getattr(func, "__closure__", None) or ()]
    owners = [cell for cell in cells if type(cell).__name__ == "PathView"]
    return owners[0] if owners else getattr(func, "func", func)


def _documented_paths() -> list[str]:
    document: dict[str, Any] = Client().get("/api/v1/openapi.json").json()
    assert document["paths"]
    return [_sample(route) for route in document["paths"]]


def test_every_documented_path_resolves_as_in_the_flat_list() -> None:
    flat, grouped_resolver = _flat_resolver(), get_resolver()
    documented = _documented_paths()
    paths = [*documented, "/api/v1/openapi.json", "/api/v1/docs", "/api/v1/"]
    for path in paths:
        before, after = flat.resolve(path), grouped_resolver.resolve(path)
        if path in documented:
            assert type(_view(after.func)).__name__ == "PathView", path
        assert _view(after.func) is _view(before.func), path
        assert (after.url_name, after.namespace, after.route, after.kwargs) == (
            before.url_name,
            before.namespace,
            before.route,
            before.kwargs,
        ), path


def test_unknown_paths_still_miss() -> None:
    for path in ("/api/v1/productsx", "/api/v1/products/x", "/api/v1/nope", "/api/v1/orders/1/x"):
        try:
            get_resolver().resolve(path)
        except Resolver404:
            continue
        raise AssertionError(f"{path} resolved")


def test_names_reverse_as_before() -> None:
    assert reverse("api-v1:product_detail", kwargs={"product_id": 3}) == "/api/v1/products/3"
    assert reverse("api-v1:product_list") == "/api/v1/products"
    assert reverse("api-v1:api-root") == PREFIX


def test_the_api_is_grouped_by_first_segment() -> None:
    patterns, app_name, namespace = grouped(api.urls)
    assert (app_name, namespace) == api.urls[1:]
    # Far fewer entries than ninja's flat list: a path tries a few prefixes, then its group.
    assert len(patterns) < len(api.urls[0]) / 2
    products = [p for p in patterns if str(p.pattern) == "products"]
    assert len(products) == 1 and isinstance(products[0], URLResolver)


def test_the_openapi_document_is_unchanged() -> None:
    document = Client().get("/api/v1/openapi.json").json()
    assert document == api.get_openapi_schema(path_prefix=PREFIX)
