"""message_send under concurrency: one stored message per sender and client_msg_id."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from backend.messaging.models import Message
from backend.messaging.services import message_send
from realtime.models import OutboxEvent
from tests.factories import RoomFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_retries_store_one_message() -> None:
    sender = UserFactory()
    room = RoomFactory(members=[sender])
    start = threading.Barrier(4)
    results: list[tuple[int, bool]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            start.wait(timeout=10)
            sent = message_send(actor=sender, room_id=room.pk, body="hi", client_msg_id="k-1")
            results.append((sent.message.pk, sent.created))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(results) == 4
    assert len({pk for pk, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Message.objects.count() == 1
    assert OutboxEvent.objects.filter(event="message.created").count() == 1
