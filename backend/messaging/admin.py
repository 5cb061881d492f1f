from django.contrib import admin

from backend.messaging.models import Room, RoomMembership


class RoomMembershipInline(admin.TabularInline):
    model = RoomMembership
    raw_id_fields = ("user",)
    extra = 0


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_by", "created_at")
    search_fields = ("name",)
    raw_id_fields = ("created_by",)
    inlines = (RoomMembershipInline,)
