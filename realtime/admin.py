from django.contrib import admin

from realtime.models import OutboxEvent


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "event", "created_at", "relayed_at", "offset")
    list_filter = ("event", "relayed_at")
    search_fields = ("topic",)
    readonly_fields = ("topic", "event", "payload", "created_at", "relayed_at", "offset")
