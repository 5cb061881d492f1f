"""The request id follows a job: queued with it in the task headers, set while the job runs.

So a job's log lines and error reports carry the id of the request that queued it.
"""

from __future__ import annotations

from contextvars import Token
from typing import Any

from backend.core.observability import request_id_var

HEADER = "triton_request_id"
_tokens: dict[str, Token[str]] = {}


def add_request_id_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Celery before_task_publish: the current request id into the message headers."""
    request_id = request_id_var.get()
    if headers is not None and request_id != "-":
        headers.setdefault(HEADER, request_id)


def job_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    """Celery task_prerun: the queuing request's id for the job's logs and reports."""
    request = getattr(task, "request", None)
    request_id = getattr(request, HEADER, None) if request is not None else None
    if request_id is None and request is not None:
        request_id = (getattr(request, "headers", None) or {}).get(HEADER)
    _tokens[task_id or ""] = request_id_var.set(str(request_id or task_id or "-"))


def job_finished(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context
            request_id_var.set("-")


def connect_celery_signals() -> None:
    from celery import signals

    signals.before_task_publish.connect(
        add_request_id_header, weak=False, dispatch_uid="job_request_id.publish"
    )
    signals.task_prerun.connect(job_started, weak=False, dispatch_uid="job_request_id.prerun")
    signals.task_postrun.connect(job_finished, weak=False, dispatch_uid="job_request_id.postrun")
