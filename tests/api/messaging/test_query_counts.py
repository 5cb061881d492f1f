"""Lists cost a fixed number of queries, however many rows they show."""

from __future__ import annotations

import pytest

from backend.accounts.models import User
from tests.conftest import ApiClient
from tests.factories import MailFactory, MessageFactory, RoomFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def _queries(client: ApiClient, path: str, django_assert_max_num_queries) -> None:
    # Token lookup and last_used_at, the right check, the page and at most one prefetch/count.
    with django_assert_max_num_queries(8):
        assert client.get(path).status_code == 200


def test_list_queries_do_not_grow_with_rows(
    as_customer: ApiClient, customer: User, django_assert_max_num_queries
) -> None:
    others = [UserFactory() for _ in range(3)]
    rooms = [RoomFactory(members=[customer, *others]) for _ in range(15)]
    for _ in range(15):
        MessageFactory(room=rooms[0], sender=customer)
        MailFactory(user=customer)
        TaskFactory(user=customer)
    for path in (
        "/rooms",
        f"/rooms/{rooms[0].pk}/messages",
        f"/rooms/{rooms[0].pk}/members",
        "/mails",
        "/mails/counts",
        "/tasks",
    ):
        _queries(as_customer, path, django_assert_max_num_queries)
