"""Queueing background jobs by name, so domain code never imports ``workers/``.

``enqueue_on_commit("accounts.send_password_reset_email", user_id=7)`` looks the task up in
the Celery app's registry (an unknown name raises at once, inside the caller's transaction)
and sends it when the surrounding transaction commits: a job never sees rows that were
rolled back or not committed yet. In the embedded default (memory broker,
``CELERY_TASK_ALWAYS_EAGER``) the job runs in this process, right after the commit.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from celery import Task, current_app
from django.db import transaction

logger = logging.getLogger(__name__)

_discovery_lock = threading.Lock()
_discovered = False


class UnknownJob(LookupError):
    """No task is registered under this name (a typo, or its workers module is missing)."""


def registered_task(task_name: str) -> Task:
    """The Celery task registered under ``task_name`` (the workers modules are imported the
    first time); for the rare caller that needs Celery's own options, such as a countdown."""
    global _discovered
    app = current_app._get_current_object()
    if not _discovered:
        with _discovery_lock:
            if not _discovered:
                # The app's job modules (``include``): their @shared_task decorators
                # register the tasks. Not import_default_modules(): that would also run
                # the worker-side Django fixup (setup, system checks) in this process.
                for module_name in app.loader.default_modules:
                    app.loader.import_task_module(module_name)
                _discovered = True
    try:
        return app.tasks[task_name]
    except KeyError:
        raise UnknownJob(f"no job is registered as {task_name!r}") from None


def enqueue_on_commit(task_name: str, /, **kwargs: Any) -> None:
    """Queue the job ``task_name`` with these keyword arguments once the current
    transaction commits (at once outside a transaction). Arguments must be JSON (ids, not
    model instances): checked here, so a mistake fails in the caller, not in the broker."""
    task = registered_task(task_name)
    try:
        json.dumps(kwargs)
    except TypeError as exc:
        raise TypeError(f"{task_name}: job arguments must be JSON values ({exc})") from exc

    def send() -> None:
        task.apply_async(kwargs=kwargs)

    # robust: the commit already happened; a broker outage must not fail the request.
    transaction.on_commit(send, robust=True)
