"""Request and response bodies of /auth, /users, /roles and /permissions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from django.contrib.auth.models import Group, Permission
from ninja import Schema
from pydantic import Field

from api.pagination import PageParams
from api.schemas import (
    DeviceName,
    Email,
    EmailLookup,
    Input,
    Name,
    NewPassword,
    Omitted,
    PartialInput,
    Password,
    ResetToken,
    RoleName,
    SearchTerm,
)
from backend.accounts import selectors
from backend.accounts.models import User
from backend.core.permissions import catalog_name


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


class UserCreateIn(Input):
    name: Name
    email: Email
    password: NewPassword
    roles: list[RoleName] | None = Field(
        None, max_length=50, description="Role names; the default role when left out."
    )


class UserPatchIn(PartialInput):
    """Self may change name, email and password; ``users.update`` also is_active and roles."""

    name: Name | Omitted = None
    email: Email | Omitted = None
    password: NewPassword | Omitted = None
    is_active: bool | Omitted = None
    roles: Annotated[list[RoleName], Field(max_length=50)] | Omitted = None
    current_password: Password | Omitted = Field(
        None,
        description="Your current password: required to change your own password or email "
        "(422 on this field when missing or wrong). Not needed by users.update for others.",
    )


class UserPutIn(UserPatchIn):
    """The full editable representation: name and email are required."""

    name: Name
    email: Email


class UserListQuery(PageParams):
    search: SearchTerm = Field("", description="Case-insensitive match on name or email.")


# --- auth -----------------------------------------------------------------------------------
class RegisterIn(Input):
    name: Name
    email: Email
    password: NewPassword


class LoginIn(Input):
    email: EmailLookup
    password: Password
    device_name: DeviceName = ""


class TokenOut(Schema):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: Literal["Bearer"] = "Bearer"
    expires_at: datetime
    user: UserOut


class ForgotPasswordIn(Input):
    email: EmailLookup


class ResetPasswordIn(Input):
    email: EmailLookup
    token: ResetToken
    password: NewPassword


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
            return obj.role.description
        except Group.role.RelatedObjectDoesNotExist:
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
