from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change that caused it.

    ``on_commit`` relays it at once; the sweeper relays whatever a crash between COMMIT and
    the hook left behind, so no committed change goes without its event.
    """

    topic = models.CharField(max_length=200)
    event = models.CharField(max_length=100)
    payload = models.TextField(help_text="The event's data, serialized once as JSON.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    relayed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    offset = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = (
            # A topic's unrelayed rows, in id order: the relay locks just these.
            models.Index(fields=("topic", "relayed_at"), name="outbox_topic_unrelayed"),
        )

    def __str__(self) -> str:
        return f"{self.event} on {self.topic}"
