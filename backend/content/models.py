"""Posts (sanitized HTML, drafts and publishing) and uploaded files.

Rights on single posts and files are django-guardian object permissions (see
``backend/content/permissions.py``): the author of a post holds ``posts.view/update/delete``
on it, the owner of a file ``files.view/delete/share``, a colleague it was shared with
``files.view``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Post(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="posts"
    )
    title = models.CharField(max_length=200)
    # Sanitized on the way in (backend.core.html); stored as it is served.
    body_html = models.TextField(blank=True, default="")
    # Null: a draft, seen only by its author and posts.manage.
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (models.Index(fields=("published_at", "id"), name="post_published_idx"),)

    def __str__(self) -> str:
        return self.title

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class File(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="files"
    )
    # The client's name, made safe (backend.core.storage.safe_filename); only shown, never a path.
    filename = models.CharField(max_length=255)
    # Where the bytes are in the default storage: a random key, unrelated to the filename.
    storage_name = models.CharField(max_length=255, unique=True)
    size = models.PositiveBigIntegerField()
    # Sniffed from the content on upload, never taken from the client.
    mime_type = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return self.filename
