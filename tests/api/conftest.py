"""Helpers shared by the API tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ServerPool

PROBLEM_CONTENT_TYPE = "application/problem+json"


def check_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with this status; returns its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE), response["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"] and isinstance(body["detail"], str)
    return body


@pytest.fixture
def problem() -> Callable[[Any, int], dict[str, Any]]:
    return check_problem


@pytest.fixture(scope="module")
def server_pool_here(django_db_setup: None) -> Iterator[ServerPool]:
    """Real daphne servers for this module only (started on demand by ``.get(name, **env)``),
    on pytest-django's test database; stopped when the module ends."""
    from django.db import connection

    pool = ServerPool(connection.settings_dict["NAME"])
    yield pool
    pool.stop_all()
