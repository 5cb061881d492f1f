"""A user's own to-do list."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

TITLE_MAX_LENGTH = 200
DETAILS_MAX_LENGTH = 10_000


class Task(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks"
    )
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    details = models.TextField(blank=True, default="")
    due_date = models.DateField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)
        indexes = (
            # The list is always one user's, filtered by completion or due date.
            models.Index(fields=("user", "completed_at"), name="task_user_completed"),
            models.Index(fields=("user", "due_date"), name="task_user_due"),
        )

    def __str__(self) -> str:
        return self.title
