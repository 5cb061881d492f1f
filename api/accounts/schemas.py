"""Request and response bodies of /auth, /users, /roles and /permissions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.contrib.auth.models import Group, Permission
from ninja import Schema
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from api.pagination import PageParams
from backend.accounts import selectors
from backend.accounts.models import User
from backend.core.permissions import catalog_name


def _encodable(value: str) -> str:
    """JSON allows lone surrogates (``"\\ud800"``); neither UTF-8 nor the database does."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("Text must be valid Unicode.") from exc
    if "\x00" in value:
        raise ValueError("Text must not contain NUL characters.")
    return value


# The constraints come before the validator: placed after one, pydantic skips them silently.
_utf8 = AfterValidator(_encodable)
_stripped = {"strip_whitespace": True}
Name = Annotated[str, StringConstraints(**_stripped, min_length=1, max_length=150), _utf8]
# Checked for shape by the service (422 with loc ["body", "email"]); only bounded here.
Email = Annotated[str, StringConstraints(**_stripped, max_length=254), _utf8]
# Long enough for any password manager, short enough that hashing it costs nothing.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024), _utf8]
RoleName = Annotated[str, StringConstraints(min_length=1, max_length=150), _utf8]
DeviceName = Annotated[str, StringConstraints(**_stripped, max_length=255), _utf8]
SearchTerm = Annotated[str, StringConstraints(**_stripped, max_length=100), _utf8]
ResetToken = Annotated[str, StringConstraints(**_stripped, min_length=1, max_length=200), _utf8]


class _Input(BaseModel):
    """A request body: a JSON object, nothing else. (ninja's ``Schema`` reads attributes off
    any value, so ``[]``, ``null`` or ``0`` would pass as an empty object.)"""


# --- users ----------------------------------------------------------------------------------
class UserBase(Schema):
    id: int
    name: str
    email: str
    is_active: bool
    roles: list[str] = Field(description="Role names, sorted.")
    created_at: datetime
    updated_at: datetime


class UserOut(UserBase):
    @staticmethod
    def resolve_roles(obj: User) -> list[str]:
        return selectors.user_role_names(obj)


class MeOut(UserBase):
    permissions: list[str] = Field(description="Flat list of permission names the user holds.")


class UserCreateIn(_Input):
    name: Name
    email: Email
    password: Password
    roles: list[RoleName] | None = Field(
        None, max_length=50, description="Role names; the default role when left out."
    )


class _NoNulls(_Input):
    """Fields may be left out; ``null`` is never a value."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("May be left out, but not null.")
        return value


class UserPatchIn(_NoNulls):
    """Self may change name, email and password; ``users.update`` also is_active and roles."""

    name: Name = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]
    password: Password = None  # type: ignore[assignment]
    is_active: bool = None  # type: ignore[assignment]
    roles: list[RoleName] = Field(None, max_length=50)  # type: ignore[assignment]


class UserPutIn(UserPatchIn):
    """The full editable representation: name and email are required."""

    name: Name
    email: Email


class UserListQuery(PageParams):
    search: SearchTerm = Field("", description="Case-insensitive match on name or email.")


# --- auth -----------------------------------------------------------------------------------
class RegisterIn(_Input):
    name: Name
    email: Email
    password: Password


class LoginIn(_Input):
    email: Email
    password: Password
    device_name: DeviceName = ""


class TokenOut(Schema):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: datetime
    user: UserOut


class ForgotPasswordIn(_Input):
    email: Email


class ResetPasswordIn(_Input):
    email: Email
    token: ResetToken
    password: Password


class AcceptedOut(Schema):
    detail: str


# --- roles and permissions ------------------------------------------------------------------
class RoleOut(Schema):
    id: int
    name: str
    description: str
    permissions: list[str]

    @staticmethod
    def resolve_description(obj: Group) -> str:
        try:
            return obj.role.description  # type: ignore[attr-defined,no-any-return]
        except Group.role.RelatedObjectDoesNotExist:  # type: ignore[attr-defined]
            return ""  # a group made by hand in the admin, without a Role row

    @staticmethod
    def resolve_permissions(obj: Group) -> list[str]:
        return sorted(catalog_name(permission) for permission in obj.permissions.all())


class PermissionOut(Schema):
    id: int
    name: str
    group: str
    description: str

    @staticmethod
    def resolve_name(obj: Permission) -> str:
        return catalog_name(obj)

    @staticmethod
    def resolve_group(obj: Permission) -> str:
        return catalog_name(obj).split(".", 1)[0]

    @staticmethod
    def resolve_description(obj: Permission) -> str:
        return obj.name
