"""Error reporting to Sentry (or any Sentry-protocol endpoint) when SENTRY_DSN is set.

Covers requests (Django integration), socket frame handlers and the hub (their
``logger.exception`` calls become events through the logging integration) and Celery jobs
(Celery integration). Every event carries the request id (``request_id`` tag: the HTTP
request's, or the one the job was queued under) and nothing secret: ``before_send`` removes
Authorization and Cookie headers, cookies, any field named like a password, token or secret
(the socket's ``auth`` frame included, wherever it appears), and anything shaped like a
Triton token or a bearer credential inside strings.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from backend.core.observability import request_id_var

FILTERED = "[Filtered]"
# Keys whose values never leave the process (compared lower-case, "-" read as "_").
SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "current_password",
        "new_password",
        "password1",
        "password2",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "secret_key",
        "api_key",
        "x_api_key",
        "csrftoken",
        "csrfmiddlewaretoken",
        "sessionid",
        "plain_text",
        "dsn",
    }
)
# A Triton personal access token ("<id>|<43 url-safe characters>") or a bearer credential.
_SECRET_IN_TEXT = re.compile(
    r"(\b\d+\|[A-Za-z0-9_-]{32,})|((?i:bearer)\s+[A-Za-z0-9._~+/|=-]+)"
    r"|(\"(?:token|password|current_password|new_password)\"\s*:\s*\"[^\"]*\")"
    # reprs of objects holding one: ParsedToken(token_id=1, secret='...')
    r"|((?:secret|password|token|plain_text)=(?:'[^']*'|\"[^\"]*\"))"
)


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in SECRET_KEYS


def scrub_text(text: str) -> str:
    return _SECRET_IN_TEXT.sub(FILTERED, text)


def scrub(value: Any) -> Any:
    """A copy of ``value`` with secret keys' values and secret-looking substrings removed."""
    if isinstance(value, dict):
        return {k: FILTERED if _is_secret_key(k) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def before_send(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        # Cookies are never needed to understand an error.
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: FILTERED if _is_secret_key(k) else v for k, v in headers.items()
            }
    scrubbed = scrub(event)
    tags = scrubbed.setdefault("tags", {})
    request_id = request_id_var.get()
    if request_id and request_id != "-" and isinstance(tags, dict):
        tags.setdefault("request_id", request_id)
    return scrubbed


def init_error_reporting(
    dsn: str, *, environment: str = "production", release: str | None = None
) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        # No user emails, IP addresses or request bodies unless scrubbed above.
        send_default_pii=False,
        max_request_body_size="small",
        traces_sample_rate=0.0,
        integrations=[
            DjangoIntegration(),
            CeleryIntegration(),
            LoggingIntegration(event_level=logging.ERROR),
        ],
        # sentry's Event is a TypedDict of the same dicts before_send reads and returns.
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send,  # type: ignore[arg-type]
    )
