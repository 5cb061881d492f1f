"""The NinjaAPI instance: every router is mounted here under /api/v1/."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from api import errors
from api.security import token_auth

_BODY_METHODS = frozenset({"post", "put", "patch"})
_HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class TritonAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document tells every error answer an operation can give, as
    ``application/problem+json``: the statuses each view declares, plus those the platform
    answers on its own (see :func:`document_problem_responses`). Built once per process, not
    on every request (about 30 ms of CPU each time, on a public URL)."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        key = (path_prefix, tuple(sorted((path_params or {}).items())))
        cache: dict[Any, OpenAPISchema] = self.__dict__.setdefault("_openapi_cache", {})
        if key not in cache:
            schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
            document_problem_responses(schema)
            cache[key] = schema
        return cache[key]


def _platform_statuses(method: str, operation: dict[str, Any]) -> set[int]:
    """What any operation of this shape can answer whatever its view says: a malformed
    request (400), a missing or bad token (401), a body too large or not JSON (413, 415),
    failed validation (422), a dependency down (503)."""
    statuses = {400, 503}
    if operation.get("security"):
        statuses.add(401)
    if method in _BODY_METHODS:
        statuses |= {413, 415}
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    return statuses


def document_problem_responses(schema: dict[str, Any]) -> None:
    """Every error answer of every operation, as RFC 9457 problem details: declared ones keep
    their schema (ProblemOut, or the health failure shape) under the problem content type;
    the platform's own are added."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = errors.ProblemOut.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name, definition in problem_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(errors.ProblemOut.__name__, problem_schema)
    problem_ref = {"$ref": f"#/components/schemas/{errors.ProblemOut.__name__}"}
    for path_item in schema.get("paths", {}).values():
        for method in _HTTP_METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            # ninja keys them by int; JSON keys are strings: one spelling, or duplicates.
            responses = {
                str(code): answer for code, answer in operation.get("responses", {}).items()
            }
            operation["responses"] = responses
            for platform_status in sorted(_platform_statuses(method, operation)):
                responses.setdefault(
                    str(platform_status),
                    {
                        "description": errors.title_for(platform_status),
                        "content": {errors.PROBLEM_CONTENT_TYPE: {"schema": problem_ref}},
                    },
                )
            for status, response in responses.items():
                if not (status.isdigit() and int(status) >= 400):
                    continue
                content = response.get("content") or {"": {"schema": problem_ref}}
                body = next(iter(content.values()), {}) or {"schema": problem_ref}
                response["content"] = {errors.PROBLEM_CONTENT_TYPE: body}
                if int(status) in (429, 503):
                    # 503: sent when a dependency (database, Redis, broker) is down.
                    response.setdefault("headers", {})["Retry-After"] = {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer", "minimum": 1},
                        "required": int(status) == 429,
                    }


api = TritonAPI(
    title="Triton API",
    version="1.0.0",
    description="Triton v3: accounts, commerce, content and app modules, with realtime events "
    "over /ws/v1/. Errors are RFC 9457 problem details (application/problem+json).",
    urls_namespace="api-v1",
    auth=token_auth,
)
errors.install(api)


def _mount_routers() -> None:
    from api.accounts.router import auth_router, permissions_router, roles_router, users_router
    from api.commerce.router import (
        dashboard_router,
        invoice_templates_router,
        invoices_router,
        orders_router,
        products_router,
    )
    from api.content.router import files_router, posts_router
    from api.content.storage import router as storage_router
    from api.messaging.router import mails_router, messages_router, rooms_router
    from api.operations.router import router as operations_router
    from api.todos.router import router as tasks_router

    api.add_router("/auth", auth_router, tags=["auth"])
    api.add_router("/users", users_router, tags=["users"])
    api.add_router("/roles", roles_router, tags=["roles"])
    api.add_router("/permissions", permissions_router, tags=["roles"])
    api.add_router("/products", products_router, tags=["commerce"])
    api.add_router("/orders", orders_router, tags=["commerce"])
    api.add_router("/invoices", invoices_router, tags=["commerce"])
    api.add_router("/invoice-templates", invoice_templates_router, tags=["commerce"])
    api.add_router("/dashboard", dashboard_router, tags=["commerce"])
    api.add_router("/posts", posts_router, tags=["posts"])
    api.add_router("/files", files_router, tags=["files"])
    api.add_router("/storage", storage_router, tags=["files"])
    api.add_router("/tasks", tasks_router, tags=["tasks"])
    api.add_router("/rooms", rooms_router, tags=["chat"])
    api.add_router("/messages", messages_router, tags=["chat"])
    api.add_router("/mails", mails_router, tags=["mail"])
    api.add_router("/", operations_router, tags=["operations"])


_mount_routers()
