"""/auth, /users, /roles and /permissions. Thin: parse, call a service or selector, shape."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from api.accounts.schemas import (
    AcceptedOut,
    ForgotPasswordIn,
    LoginIn,
    MeOut,
    PermissionOut,
    RegisterIn,
    ResetPasswordIn,
    RoleOut,
    TokenOut,
    UserCreateIn,
    UserListQuery,
    UserOut,
    UserPatchIn,
    UserPutIn,
)
from api.errors import problem_responses
from api.pagination import Page, paginate
from api.security import client_address, current_token, current_user
from backend.accounts import selectors, services, tokens
from backend.accounts.services import SignedIn

auth_router = Router()
users_router = Router()
roles_router = Router()
permissions_router = Router()


def _signed_in(result: SignedIn) -> dict[str, Any]:
    return {
        "token": result.issued.plain_text,
        "token_type": "Bearer",
        "expires_at": result.issued.token.expires_at,
        "user": result.user,
    }


# --- /auth ----------------------------------------------------------------------------------
@auth_router.post(
    "/register",
    auth=None,
    response={201: TokenOut, **problem_responses(409, 422, 429)},
    summary="Create an account with the default role and get a token",
)
def register(request: HttpRequest, payload: RegisterIn) -> Status[dict[str, Any]]:
    result = services.user_register(
        name=payload.name,
        email=payload.email,
        password=payload.password,
        client_address=client_address(request),
    )
    return Status(201, _signed_in(result))


@auth_router.post(
    "/login",
    auth=None,
    response={200: TokenOut, **problem_responses(401, 422, 429)},
    summary="Exchange email and password for a token",
)
def login(request: HttpRequest, payload: LoginIn) -> Status[dict[str, Any]]:
    result = services.user_login(
        email=payload.email,
        password=payload.password,
        device_name=payload.device_name,
        client_address=client_address(request),
    )
    return Status(200, _signed_in(result))


@auth_router.post(
    "/logout",
    response={204: None, **problem_responses(401)},
    summary="Revoke the token this request was made with",
)
def logout(request: HttpRequest) -> Status[None]:
    tokens.token_revoke(token=current_token(request))
    return Status(204, None)


@auth_router.post(
    "/forgot-password",
    auth=None,
    response={202: AcceptedOut, **problem_responses(422, 429)},
    summary="Mail a password reset link (answered the same whether or not the email exists)",
)
def forgot_password(request: HttpRequest, payload: ForgotPasswordIn) -> Status[dict[str, str]]:
    services.password_reset_request(email=payload.email, client_address=client_address(request))
    return Status(
        202, {"detail": "If the address belongs to an account, a reset link is on its way."}
    )


@auth_router.post(
    "/reset-password",
    auth=None,
    response={204: None, **problem_responses(422)},
    summary="Set a new password with a mailed token; revokes every token of the user",
)
def reset_password(request: HttpRequest, payload: ResetPasswordIn) -> Status[None]:
    services.password_reset_complete(
        email=payload.email, token=payload.token, password=payload.password
    )
    return Status(204, None)


@auth_router.get(
    "/me",
    response={200: MeOut, **problem_responses(401)},
    summary="The signed-in user with roles and the flat permission list",
)
def me(request: HttpRequest) -> dict[str, Any]:
    return selectors.user_profile(current_user(request))


# --- /users ---------------------------------------------------------------------------------
@users_router.get(
    "",
    response={200: Page[UserOut], **problem_responses(401, 403, 422)},
    summary="List users (users.view)",
)
def user_list(request: HttpRequest, query: Query[UserListQuery]) -> dict[str, Any]:
    users = selectors.user_list_visible(actor=current_user(request), search=query.search)
    return paginate(users, query)


@users_router.post(
    "",
    response={201: UserOut, **problem_responses(401, 403, 409, 422)},
    summary="Create a user (users.create; roles other than the default also need users.update)",
)
def user_create(request: HttpRequest, payload: UserCreateIn) -> Status[Any]:
    user = services.user_create(
        actor=current_user(request),
        name=payload.name,
        email=payload.email,
        password=payload.password,
        roles=payload.roles,
    )
    return Status(201, user)


@users_router.get(
    "/{int:user_id}",
    response={200: UserOut, **problem_responses(401, 404)},
    summary="One user (self, or users.view)",
)
def user_detail(request: HttpRequest, user_id: int) -> Any:
    return selectors.user_get_visible(actor=current_user(request), user_id=user_id)


def _update(request: HttpRequest, user_id: int, payload: UserPatchIn) -> Any:
    return services.user_update(
        actor=current_user(request),
        user_id=user_id,
        changes=payload.model_dump(exclude_unset=True),
        token_id=current_token(request).pk,
    )


# 429: a wrong current_password counts as a failed login for that address.
_UPDATE_RESPONSES = {200: UserOut, **problem_responses(401, 403, 404, 409, 422, 429)}


@users_router.patch(
    "/{int:user_id}",
    response=_UPDATE_RESPONSES,
    summary="Change some fields (self: name, email, password; users.update: also is_active, roles)",
)
def user_patch(request: HttpRequest, user_id: int, payload: UserPatchIn) -> Status[Any]:
    return Status(200, _update(request, user_id, payload))


@users_router.put(
    "/{int:user_id}",
    response=_UPDATE_RESPONSES,
    summary="Replace the editable fields (name and email required)",
)
def user_put(request: HttpRequest, user_id: int, payload: UserPutIn) -> Status[Any]:
    return Status(200, _update(request, user_id, payload))


@users_router.delete(
    "/{int:user_id}",
    response={204: None, **problem_responses(401, 403, 404, 409)},
    summary="Delete a user (users.delete)",
)
def user_delete(request: HttpRequest, user_id: int) -> Status[None]:
    services.user_delete(actor=current_user(request), user_id=user_id)
    return Status(204, None)


# --- /roles, /permissions -------------------------------------------------------------------
@roles_router.get(
    "",
    response={200: list[RoleOut], **problem_responses(401)},
    summary="Every role with its permission names",
)
def role_list(request: HttpRequest) -> Any:
    return selectors.role_list()


@permissions_router.get(
    "",
    response={200: list[PermissionOut], **problem_responses(401)},
    summary="Every permission with its group (area) and description",
)
def permission_list(request: HttpRequest) -> Any:
    return selectors.catalog_permissions()
