from django.contrib import admin

from backend.messaging.models import Mail, Message, Room, RoomMembership


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


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "sender", "room", "recipient", "created_at")
    raw_id_fields = ("sender", "room", "recipient")


@admin.register(Mail)
class MailAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "folder", "subject", "read_flag", "created_at")
    list_filter = ("folder", "read_flag")
    search_fields = ("subject",)
    raw_id_fields = ("user", "sender")
