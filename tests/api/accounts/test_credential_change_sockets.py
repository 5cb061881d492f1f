"""Changing one's own password or email through the API closes the sockets of the user's
other tokens (4401) and keeps the socket of the token that made the change."""

from __future__ import annotations

import pytest

from tests.conftest import ApiClient
from tests.factories import DEFAULT_PASSWORD, UserFactory, bearer_for
from tests.realtime.conftest import open_socket, run_sync

__all__ = ["open_socket"]  # the fixture, used by name below

pytestmark = pytest.mark.django_db(transaction=True)


def _change_password(token: str, user_id: int) -> int:
    response = ApiClient(token).patch(
        f"/users/{user_id}",
        {"password": "glacier-Otter-517", "current_password": DEFAULT_PASSWORD},
    )
    return response.status_code


async def test_own_password_change_closes_the_other_sockets_only(open_socket) -> None:
    user = await run_sync(UserFactory)
    used_token = await run_sync(bearer_for, user)
    other_token = await run_sync(bearer_for, user, "laptop")
    kept = await open_socket(used_token)
    doomed = await open_socket(other_token)
    assert await run_sync(_change_password, used_token, user.pk) == 200
    assert await doomed.recv_close(timeout=2) == 4401
    await kept.send({"type": "ping"})
    assert await kept.recv() == {"type": "pong"}
