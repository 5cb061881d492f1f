from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from guardian.admin import GuardedModelAdminMixin

from backend.accounts.models import PersonalAccessToken, Role, User


@admin.register(User)
class UserAdmin(GuardedModelAdminMixin, DjangoUserAdmin):
    ordering = ("id",)
    list_display = ("id", "email", "name", "is_active", "is_staff", "created_at")
    list_filter = ("is_active", "is_staff", "is_superuser", "groups")
    search_fields = ("email", "name")
    readonly_fields = ("created_at", "updated_at", "last_login")
    fieldsets = (
        (None, {"fields": ("email", "name", "password")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "name", "password1", "password2")}),
    )


class RoleInline(admin.StackedInline):
    model = Role
    can_delete = False


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(DjangoGroupAdmin):
    inlines = (RoleInline,)


@admin.register(PersonalAccessToken)
class PersonalAccessTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "name", "created_at", "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__email", "name")
    raw_id_fields = ("user",)
    readonly_fields = ("token_hash", "created_at", "last_used_at")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        from backend.accounts.tokens import token_revoke

        for token in queryset:
            token_revoke(token=token)

    actions = ("revoke",)
