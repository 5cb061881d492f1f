from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from guardian.admin import GuardedModelAdminMixin

from backend.accounts.models import PersonalAccessToken, Role, User
from backend.accounts.services import (
    VisibleUserState,
    role_permissions_changed,
    user_authenticate,
    user_saved_elsewhere,
)
from backend.core.errors import Throttled, Unauthorized
from backend.core.throttling import client_address


class LimitedAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin site's login under the API's limits: its failures count toward the same
    per-email window, and its attempts toward the same per-address limit."""

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if email is not None and password:
            try:
                address = client_address(self.request) if self.request is not None else None
                self.user_cache = user_authenticate(
                    email=email, password=password, client_address=address
                )
            except Throttled as exc:
                raise ValidationError(
                    "Too many failed logins; try again in %(seconds)s seconds.",
                    code="throttled",
                    params={"seconds": exc.retry_after},
                ) from exc
            except Unauthorized as exc:
                raise self.get_invalid_login_error() from exc
            # What django.contrib.auth.authenticate() would have recorded on the user.
            self.user_cache.backend = "django.contrib.auth.backends.ModelBackend"
            self.confirm_login_allowed(self.user_cache)  # staff only
        return self.cleaned_data


admin.site.login_form = LimitedAdminAuthenticationForm


@admin.register(User)
# guardian annotates change_form_template as an instance str, django-stubs as a ClassVar.
class UserAdmin(GuardedModelAdminMixin, DjangoUserAdmin):  # type: ignore[misc]
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

    def save_model(self, request, obj, form, change) -> None:  # type: ignore[no-untyped-def]
        stored = User.objects.filter(pk=obj.pk).first() if change else None
        request._user_before_admin_save = VisibleUserState.of(stored) if stored else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:  # type: ignore[no-untyped-def]
        super().save_related(request, form, formsets, change)
        # Groups are saved only now: publish, revoke and re-authorize like the API does.
        user_saved_elsewhere(
            user_id=form.instance.pk, before=getattr(request, "_user_before_admin_save", None)
        )


class RoleInline(admin.StackedInline):
    model = Role
    can_delete = False


admin.site.unregister(Group)


@admin.register(Group)
class RoleGroupAdmin(DjangoGroupAdmin):
    inlines = (RoleInline,)

    def save_related(self, request, form, formsets, change) -> None:  # type: ignore[no-untyped-def]
        before = set(form.instance.permissions.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        if change and before != set(form.instance.permissions.values_list("pk", flat=True)):
            role_permissions_changed(group=form.instance)


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
