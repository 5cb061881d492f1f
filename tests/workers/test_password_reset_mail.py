"""The whole reset path on real parts: the API queues the job on Redis, a real Celery worker
renders the mail and sends it over SMTP to a real server on loopback, and the token in that
mail resets the password through the API."""

from __future__ import annotations

import email
import queue
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from celery.contrib.testing.worker import start_worker

import workers.accounts  # noqa: F401  (registers the job on the app)
from tests.conftest import ApiClient
from tests.factories import DEFAULT_PASSWORD, UserFactory, bearer_for
from workers.celery import app as celery_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

MAIL_WAIT = 20.0
NEW_PASSWORD = "brand-New-harbour-42"


@dataclass
class Delivered:
    recipients: list[str]
    message: Message

    @property
    def body(self) -> str:
        payload = self.message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(self.message.get_content_charset() or "utf-8")


class Inbox:
    """aiosmtpd handler: every accepted mail lands in a thread-safe queue."""

    def __init__(self) -> None:
        self.mails: queue.Queue[Delivered] = queue.Queue()

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        self.mails.put(
            Delivered(list(envelope.rcpt_tos), email.message_from_bytes(envelope.content))
        )
        return "250 Message accepted for delivery"

    def wait(self, timeout: float = MAIL_WAIT) -> Delivered:
        try:
            return self.mails.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no mail reached the SMTP server within {timeout} s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def inbox(settings) -> Iterator[Inbox]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    try:
        yield handler
    finally:
        controller.stop()


@pytest.fixture
def worker(inbox: Inbox) -> Iterator[object]:
    """A real worker thread consuming the app's queue on the Redis broker (db 15).

    No ping check: it needs a result backend, and the app has none on purpose (jobs report
    through the database and events, never through results)."""
    queue_name = celery_app.conf.task_default_queue
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue_name)  # leftovers of earlier tests
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
    ) as running:
        yield running


def problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/problem+json")
    return response.json()


def _reset_link(mail: Delivered) -> tuple[str, str]:
    urls = re.findall(r"https?://\S+", mail.body)
    assert len(urls) == 1, mail.body
    query = parse_qs(urlsplit(urls[0]).query, strict_parsing=True)
    return query["email"][0], query["token"][0]


def test_reset_mail_arrives_and_its_token_resets_the_password(inbox: Inbox, worker: object) -> None:
    user = UserFactory(email="mail.me+reset@example.com", name="Rita Reset")
    old_tokens = [bearer_for(user), bearer_for(user)]
    anon = ApiClient()

    # An unknown address is answered the same and mails nothing: with one solo worker the
    # jobs run in order, so a mail for it would arrive before the one for the real user.
    assert anon.post("/auth/forgot-password", {"email": "nobody@example.com"}).status_code == 202
    assert anon.post("/auth/forgot-password", {"email": user.email}).status_code == 202

    mail = inbox.wait()
    assert mail.recipients == [user.email]
    assert mail.message["To"] == user.email
    assert "reset" in mail.message["Subject"].lower()
    assert "Rita Reset" in mail.body
    assert "&amp;" not in mail.body  # a text mail, not HTML-escaped
    link_email, token = _reset_link(mail)
    assert link_email == user.email
    assert f"Your reset token: {token}" in mail.body

    response = anon.post(
        "/auth/reset-password", {"email": user.email, "token": token, "password": NEW_PASSWORD}
    )
    assert response.status_code == 204

    for old in old_tokens:
        problem(ApiClient(old).get("/auth/me"), 401)
    problem(anon.post("/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}), 401)
    login = anon.post("/auth/login", {"email": user.email, "password": NEW_PASSWORD})
    assert login.status_code == 200
    assert ApiClient(login.json()["token"]).get("/auth/me").json()["id"] == user.pk

    # The mailed token is spent.
    again = anon.post(
        "/auth/reset-password",
        {"email": user.email, "token": token, "password": "yet-Another-pass-77"},
    )
    problem(again, 422)
    assert inbox.mails.empty()


def test_a_deactivated_user_gets_no_mail(inbox: Inbox, worker: object) -> None:
    inactive = UserFactory(is_active=False)
    active = UserFactory()
    anon = ApiClient()
    assert anon.post("/auth/forgot-password", {"email": inactive.email}).status_code == 202
    assert anon.post("/auth/forgot-password", {"email": active.email}).status_code == 202
    assert inbox.wait().recipients == [active.email]
