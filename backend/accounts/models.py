from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Group, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields: Any) -> User:
        if not email:
            raise ValueError("An email is required")
        user = self.model(email=normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields: Any) -> User:
        fields.update(is_staff=True, is_superuser=True)
        fields.setdefault("name", email.split("@", 1)[0])
        return self._create(email, password, **fields)


def normalize_email(email: str) -> str:
    """Emails are compared case-insensitively everywhere, so store them lower-case."""
    return email.strip().lower()


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True, max_length=254)
    name = models.CharField(max_length=150)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the admin site.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["name"]

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.email


class Role(models.Model):
    """A role is a Django group with a description."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="role")
    description = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.group.name


class PersonalAccessTokenQuerySet(models.QuerySet["PersonalAccessToken"]):
    def live(self) -> PersonalAccessTokenQuerySet:
        """Tokens that authenticate: not revoked, not expired, of an active user."""
        return self.filter(
            revoked_at__isnull=True, expires_at__gt=timezone.now(), user__is_active=True
        )


class PersonalAccessToken(models.Model):
    """A bearer token shaped ``<id>|<secret>``; only a SHA-256 of the secret is stored.

    The secret is 256 bits of randomness, so a fast hash is enough (a slow password hash
    would cost every request); comparison is constant-time.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=255, blank=True, help_text="The device it was issued to.")
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True)

    objects = PersonalAccessTokenQuerySet.as_manager()

    class Meta:
        ordering = ("-id",)
        indexes = (models.Index(fields=("user", "revoked_at")),)

    def __str__(self) -> str:
        return f"token {self.pk} of {self.user_id}"
