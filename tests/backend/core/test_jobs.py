"""enqueue_on_commit: by name, after the commit, never for a rolled-back transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from celery import current_app
from django.core import mail
from django.db import transaction

from backend.accounts import services
from backend.core.jobs import UnknownJob, enqueue_on_commit
from tests.factories import UserFactory
from workers.celery import app as celery_app

pytestmark = pytest.mark.django_db

RESET_JOB = "accounts.send_password_reset_email"


@pytest.fixture
def embedded_jobs() -> Iterator[None]:
    """The embedded default: jobs run in this process (eager) once the commit happened."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = previous


class Rollback(Exception):
    pass


def test_an_unknown_job_name_fails_in_the_caller_at_once(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(UnknownJob):
        enqueue_on_commit("accounts.send_pasword_reset_email", user_id=1)
    assert callbacks == []


def test_job_arguments_must_be_json(django_capture_on_commit_callbacks) -> None:
    user = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(TypeError, match="JSON"):
        enqueue_on_commit(RESET_JOB, user_id=user)  # an instance, not its id
    assert callbacks == []


def test_the_job_runs_after_the_commit_not_before(
    embedded_jobs: None, django_capture_on_commit_callbacks
) -> None:
    user = UserFactory(email="reset.me@example.com")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit(RESET_JOB, user_id=user.pk)
        assert mail.outbox == []  # still inside the transaction
    assert len(callbacks) == 1
    assert [m.to for m in mail.outbox] == [[user.email]]


def test_a_rolled_back_transaction_queues_nothing(
    embedded_jobs: None, django_capture_on_commit_callbacks
) -> None:
    user = UserFactory()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Rollback),
        transaction.atomic(),
    ):
        enqueue_on_commit(RESET_JOB, user_id=user.pk)
        raise Rollback
    assert callbacks == []
    assert mail.outbox == []


def test_forgot_password_queues_the_mail_job_through_enqueue(
    embedded_jobs: None, django_capture_on_commit_callbacks
) -> None:
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.password_reset_request(email=user.email.upper())
        services.password_reset_request(email="nobody@example.com")
    assert [m.to for m in mail.outbox] == [[user.email]]


def test_the_mail_service_skips_inactive_and_missing_users() -> None:
    inactive = UserFactory(is_active=False)
    assert services.password_reset_mail_send(user_id=inactive.pk) is False
    assert services.password_reset_mail_send(user_id=inactive.pk + 1000) is False
    assert mail.outbox == []


def test_every_thread_sees_the_triton_app() -> None:
    """Services run in ASGI worker threads; there too current_app must be ours."""
    seen: list[str] = []
    thread = threading.Thread(target=lambda: seen.append(current_app.main))
    thread.start()
    thread.join(timeout=5)
    assert seen == [celery_app.main] == ["triton"]
