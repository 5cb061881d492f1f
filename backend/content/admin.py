from typing import Any

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from backend.content.models import File, Post
from backend.core.html import sanitize_html


@admin.register(Post)
class PostAdmin(GuardedModelAdmin):
    list_display = ("id", "title", "user", "published_at", "created_at")
    list_filter = (("published_at", admin.EmptyFieldListFilter),)
    search_fields = ("title",)
    raw_id_fields = ("user",)

    def save_model(self, request: Any, obj: Post, form: Any, change: bool) -> None:
        # The same rule as the API: stored HTML is sanitized HTML.
        obj.body_html = sanitize_html(obj.body_html)
        super().save_model(request, obj, form, change)


@admin.register(File)
class FileAdmin(GuardedModelAdmin):
    list_display = ("id", "filename", "user", "size", "mime_type", "created_at")
    search_fields = ("filename",)
    raw_id_fields = ("user",)
    # The stored bytes are managed by the API (sniffing, limits): not editable here.
    readonly_fields = ("storage_name", "size", "mime_type")
