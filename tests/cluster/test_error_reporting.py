"""SENTRY_DSN: errors of requests, sockets and jobs reach a Sentry-protocol endpoint, with the
request id and without secrets.

The endpoint is a tiny HTTP server in the test that stores every envelope it receives. Errors
are caused for real: a server and a worker whose database is unreachable (a closed port).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from backend.core.error_reporting import FILTERED, before_send
from backend.core.observability import request_id_var
from tests.e2e.conftest import LOG_DIR, Server, base_env, free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "42|" + "S3cretTokenPart" * 3  # shaped like a personal access token
PASSWORD = "hunter2-Very-Secret"
COOKIE = "sessionid=cookie-value-never-sent"

pytestmark = pytest.mark.timeout(180)


class Inbox:
    """Envelopes received by the fake Sentry endpoint."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding == "br":
                    # sentry-sdk compresses with brotli whenever the module is installed
                    # (locust brings it in).
                    import brotli

                    body = brotli.decompress(body)
                with inbox.lock:
                    inbox.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/1"

    def events(self) -> list[dict[str, Any]]:
        found = []
        with self.lock:
            bodies = list(self.bodies)
        for body in bodies:
            for line in body.split(b"\n"):
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict) and "level" in item and "event_id" in item:
                    found.append(item)
        return found

    def raw(self) -> bytes:
        with self.lock:
            return b"\n".join(self.bodies)

    def wait_for(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            time.sleep(0.2)
        raise AssertionError(f"no matching event in {timeout}s: {self.events()}")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    yield box
    box.server.shutdown()


def _assert_no_secrets(raw: bytes) -> None:
    for secret in (TOKEN, "S3cretTokenPart", PASSWORD, "cookie-value-never-sent"):
        at = raw.find(secret.encode())
        assert at < 0, (secret, raw[max(0, at - 400) : at + 60].decode("utf-8", "replace"))


# --- before_send on its own --------------------------------------------------------------------


def test_before_send_scrubs_headers_cookies_fields_and_token_shapes() -> None:
    event = {
        "request": {
            "headers": {"Authorization": f"Bearer {TOKEN}", "Cookie": COOKIE, "Accept": "x"},
            "cookies": {"sessionid": "cookie-value-never-sent"},
            "data": {"email": "a@example.com", "password": PASSWORD, "current_password": "p"},
        },
        "exception": {
            "values": [
                {
                    "stacktrace": {
                        "frames": [
                            {
                                "vars": {
                                    "frame": {"type": "auth", "token": TOKEN},
                                    "text": json.dumps({"type": "auth", "token": TOKEN}),
                                    "message": f"login failed for {TOKEN}",
                                }
                            }
                        ]
                    }
                }
            ]
        },
    }
    reset = request_id_var.set("rid-unit-1")
    try:
        sent = before_send(event, {})
    finally:
        request_id_var.reset(reset)
    _assert_no_secrets(json.dumps(sent).encode())
    assert sent["request"]["headers"]["Authorization"] == FILTERED
    assert sent["request"]["headers"]["Accept"] == "x"
    assert "cookies" not in sent["request"]
    assert sent["request"]["data"]["email"] == "a@example.com"
    assert sent["tags"]["request_id"] == "rid-unit-1"


# --- a real server and a real worker ---------------------------------------------------------


def _broken_database_env(inbox: Inbox, **extra: str) -> dict[str, str]:
    return base_env(
        SENTRY_DSN=inbox.dsn,
        # Nothing listens there: every query fails, which the server reports and answers 503.
        DATABASE_URL=f"mysql://root@127.0.0.1:{free_port()}/nowhere",
        DB_CONNECT_TIMEOUT="1",
        **extra,
    )


async def test_request_and_socket_errors_are_reported_without_secrets(inbox: Inbox) -> None:
    port = free_port()
    server = Server(
        "sentry",
        port,
        _broken_database_env(inbox),
        LOG_DIR / f"{os.getpid()}-sentry-{port}.log",
    )
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=15) as client:
            answer = await client.post(
                "/api/v1/auth/login",
                json={"email": "someone@example.com", "password": PASSWORD},
                headers={
                    "Authorization": f"Bearer {TOKEN}",
                    "Cookie": COOKIE,
                    "X-Request-ID": "rid-http-1",
                },
            )
        assert answer.status_code == 503, answer.text
        event = await asyncio.to_thread(
            inbox.wait_for, lambda e: e.get("tags", {}).get("request_id") == "rid-http-1"
        )
        assert event["request"]["url"].endswith("/api/v1/auth/login")

        conn = await connect(server.ws_url, open_timeout=10)
        await conn.send(json.dumps({"type": "auth", "token": TOKEN}))
        with_socket = await asyncio.to_thread(
            inbox.wait_for,
            lambda e: "socket" in json.dumps(e.get("logentry", e.get("logger", ""))),
        )
        await conn.close()
        assert with_socket["level"] == "error"
    finally:
        server.stop()
    _assert_no_secrets(inbox.raw())


def test_job_errors_are_reported_with_the_queuing_request_id(inbox: Inbox) -> None:
    from workers.celery import app

    queue = f"sentry-test-{os.getpid()}"
    broker = "redis://127.0.0.1:6379/15"
    env = _broken_database_env(
        inbox, CELERY_BROKER_URL=broker, REDIS_URL=broker, CELERY_QUEUE=queue, LOG_FORMAT="json"
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{os.getpid()}-sentry-worker-{time.monotonic_ns()}.log"
    worker_log = log_path.open("ab")
    worker = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "workers",
            "worker",
            "--pool",
            "solo",
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            "-Q",
            queue,
        ],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        reset = request_id_var.set("rid-job-1")
        try:
            with app.connection_for_write(broker) as connection:
                app.send_task("realtime.sweep_outbox", queue=queue, connection=connection)
        finally:
            request_id_var.reset(reset)
        try:
            event = inbox.wait_for(
                lambda e: e.get("tags", {}).get("request_id") == "rid-job-1", timeout=90
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\nworker log:\n{log_path.read_text()[-3000:]}") from None
        assert "celery" in json.dumps(event).lower()
    finally:
        worker.terminate()
        worker.wait(20)
        worker_log.close()
    _assert_no_secrets(inbox.raw())
    # The worker logs JSON lines (Celery does not replace Django's LOGGING), and the job's
    # lines carry the request id it was queued under.
    records = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    assert any(r.get("request_id") == "rid-job-1" and r["level"] == "ERROR" for r in records), (
        log_path.read_text()[-3000:]
    )
