from django.contrib import admin

from backend.todos.models import Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "title", "due_date", "completed_at", "created_at")
    search_fields = ("title",)
    raw_id_fields = ("user",)
