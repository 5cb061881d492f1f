"""`make run` (scripts/run.sh -> scripts/supervise.py) started for real, then stopped.

Each test runs the script with a fresh TRITON_VAR_DIR (its own SQLite file, media, valkey data,
socket and logs) on a free port, talks HTTP and websocket to it, kills its children, stops it
and checks that nothing it started is left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Set by tests/settings.py or pytest-django for this process; the script must not inherit them.
_SCRUBBED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_TASK_ALWAYS_EAGER",
    "TRITON_EMBEDDED_REDIS",
    "TRITON_VALKEY_SERVER",
    "DJANGO_SECRET_KEY",
    "TEST_DATABASE_URL",
    "TEST_REDIS_URL",
    "PYTEST_CURRENT_TEST",
    "PYTEST_ADDOPTS",
    # Celery exports these to the environment of the process that configured its logging.
    "CELERY_LOG_LEVEL",
    "CELERY_LOG_FILE",
    "CELERY_LOG_REDIRECT",
    "CELERY_LOG_REDIRECT_LEVEL",
    # tests/settings.py sets these for the test process; make run must use its own defaults.
    "STATIC_MANIFEST",
    "STATIC_USE_FINDERS",
    "SERVE_STATIC",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
)
# How the supervisor's children show in /proc/<pid>/cmdline.
_CHILD_PATTERNS = {
    "valkey": re.compile(r"valkey-server"),
    "worker": re.compile(r"celery -A workers worker"),
    "beat": re.compile(r"celery -A workers beat"),
    "server": re.compile(r"daphne -b|uvicorn backend\.asgi"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _parent_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rsplit(") ", 1)[1].split()[1])


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                parents[int(entry.name)] = parent
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Running:
    def __init__(self, process: subprocess.Popen[str], port: int, var: Path) -> None:
        self.process = process
        self.port = port
        self.var = var
        self.lines: list[str] = []
        # Every process it ever started, so that a restarted child's leftovers are checked too.
        self.seen: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line.startswith(">> Triton is up") for line in self.lines):
                self.note_descendants()
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"make run did not come up:\n{self.output}")

    def wait_for_line(self, text: str, timeout: float = 30) -> None:
        _wait_for(lambda: any(text in line for line in self.lines), timeout, repr(text))

    def note_descendants(self) -> set[int]:
        found = _descendants(self.process.pid)
        self.seen |= found
        return found

    def child_pid(self, name: str) -> int | None:
        """The pid of the supervisor's live child called `name` (valkey, worker, beat, server)."""
        supervisor = self.supervisor_pid()
        for pid in _descendants(supervisor):
            if _parent_of(pid) != supervisor or not _alive(pid):
                continue
            try:
                args = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if _CHILD_PATTERNS[name].search(args):
                return pid
        return None

    def supervisor_pid(self) -> int:
        # run.sh execs the supervisor (same pid); `make run` has it as its child.
        if "make" in Path(f"/proc/{self.process.pid}/comm").read_text():
            (child,) = [
                pid for pid in _descendants(self.process.pid) if _parent_of(pid) == self.process.pid
            ]
            return child
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, object] | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.url(path),
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, json.loads(raw) if raw else None

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: dict[str, object]) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def healthy(self) -> bool:
        try:
            status, _ = self.get("/health")
        except OSError:
            return False
        return status == 200

    def stop(self, signum: int = signal.SIGTERM, *, group: bool = False) -> list[int]:
        """Signal it (its whole process group, like a terminal's Ctrl-C, when `group`), wait
        for it to exit, and answer the pids it started that are still alive."""
        self.note_descendants()
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        _wait_for_quiet(self.seen)
        return sorted(pid for pid in self.seen if _alive(pid))


def _wait_for_quiet(pids: set[int]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)


@pytest.fixture
def start_script(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []
    var = tmp_path / "var"

    def start(*, via_make: bool = False, **extra_env: str) -> Running:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        port = _free_port()
        env.update(
            HOST="127.0.0.1",
            PORT=str(port),
            TRITON_VAR_DIR=str(var),
            LOG_FORMAT="text",
            **extra_env,
        )
        command = ["make", "-s", "run"] if via_make else ["bash", "scripts/run.sh"]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, as a terminal gives a foreground job.
            start_new_session=True,
        )
        running = Running(process, port, var)
        started.append(running)
        return running

    yield start
    for running in started:
        running.note_descendants()
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait(10)
        for pid in running.seen:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


class _AssetLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.links.append(value)


def _assert_docs_page_is_self_contained(running: Running) -> None:
    with urllib.request.urlopen(running.url("/api/v1/docs"), timeout=10) as response:
        page = response.read().decode()
    parser = _AssetLinks()
    parser.feed(page)
    assert parser.links, page
    external = [link for link in parser.links if "//" in link]
    assert external == [], f"the Swagger page loads from other hosts: {external}"
    for link in parser.links:
        try:
            with urllib.request.urlopen(running.url(link), timeout=10) as response:
                assert response.status == 200, link
                assert response.read(), link
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{link}: {exc.code}\n{running.output[-3000:]}") from exc


def test_run_script_with_embedded_valkey(start_script: Callable[..., Running]) -> None:
    running = start_script(
        DJANGO_SUPERUSER_EMAIL="root@example.com", DJANGO_SUPERUSER_PASSWORD="Super-user-pass-1"
    )
    running.wait_until_up()
    assert ">> starting embedded valkey-server on unix://" in running.output
    assert ">> starting celery worker" in running.output
    assert "ensure_superuser: root@example.com is a superuser" in running.output
    assert (running.var / "triton.sqlite3").exists()
    # No DJANGO_SECRET_KEY: a random one, kept private.
    key_file = running.var / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) >= 50

    # The worker answers pings a little after the server is up: poll for it.
    deadline = time.monotonic() + 60
    while True:
        status, body = running.get("/api/v1/health")
        if body["checks"].get("workers") == "ok" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    assert body["checks"] == dict.fromkeys(
        ["database", "cache", "disk", "channel_layer", "broker", "workers"], "ok"
    )
    _assert_docs_page_is_self_contained(running)

    status, body = running.post(
        "/api/v1/auth/register",
        {"name": "Run Script", "email": "run@example.com", "password": "Run-script-pass-77"},
    )
    assert status == 201, body
    assert body["user"]["roles"] == ["Customer"]
    status, body = running.post(
        "/api/v1/auth/login", {"email": "root@example.com", "password": "Super-user-pass-1"}
    )
    assert status == 200, body
    assert "Admin" in body["user"]["roles"]

    # A second `make run` on the same folder refuses instead of sharing its files.
    second = start_script()
    assert second.process.wait(timeout=60) == 1
    second._reader.join(timeout=10)
    assert "another 'make run' is using" in second.output

    valkey_socket = running.var / "run" / "valkey.sock"
    assert valkey_socket.is_socket()
    left = running.stop()
    assert left == [], f"children still running: {left}\n{running.output}"
    assert running.process.returncode == 0
    assert running.output.rstrip().endswith(">> stopped")
    assert not valkey_socket.exists()


def test_make_run_restarts_killed_children_and_ctrl_c_leaves_none(
    start_script: Callable[..., Running],
) -> None:
    running = start_script(via_make=True)
    running.wait_until_up()
    status, body = running.post(
        "/api/v1/auth/register",
        {"name": "Mail Reader", "email": "mail@example.com", "password": "Mail-reader-pass-7"},
    )
    assert status == 201, body

    for name in ("valkey", "worker", "beat", "server"):
        old = running.child_pid(name)
        assert old is not None, f"no {name} running:\n{running.output}"
        running.note_descendants()
        os.kill(old, signal.SIGKILL)
        running.wait_for_line(f"!! {name} (pid {old}) died (killed by SIGKILL)")
        new = _wait_for(
            lambda name=name, old=old: (pid := running.child_pid(name)) and pid != old and pid,
            30,
            f"{name} to come back",
        )
        running.wait_for_line(f">> restarted {name} (pid {new}")
        _wait_for(running.healthy, 60, f"/health to answer 200 after killing {name}")
        running.note_descendants()

    # The restarted worker runs jobs from the restarted broker: the reset mail is printed
    # (console mail backend) into the worker's log.
    status, _ = running.post("/api/v1/auth/forgot-password", {"email": "mail@example.com"})
    assert status == 202
    worker_log = running.var / "log" / "worker.log"
    _wait_for(
        lambda: "Reset your Triton password" in worker_log.read_text(),
        60,
        "the reset mail in the worker's log",
    )

    # Ctrl-C in a terminal signals the whole foreground process group: make and the script.
    left = running.stop(signal.SIGINT, group=True)
    assert left == [], f"children still running: {left}\n{running.output}"
    assert "make: ***" not in running.output, running.output
    assert running.output.rstrip().endswith(">> stopped")
    # make re-raises SIGINT on itself once its recipe ended without error.
    assert running.process.returncode in (0, -signal.SIGINT)


def _socket_replay(
    running: Running, token: str, topic: str, since: str | None, events: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Subscribe (with `since`), answer the `subscribed` frame and the next `events` frames."""
    with connect(f"ws://127.0.0.1:{running.port}/ws/v1/", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=10))["type"] == "auth.ok"
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if since is not None:
            frame["since"] = since
        ws.send(json.dumps(frame))
        subscribed = json.loads(ws.recv(timeout=10))
        received = [json.loads(ws.recv(timeout=10)) for _ in range(events)]
    return subscribed, received


def _rename(running: Running, token: str, user_id: int, name: str) -> None:
    status, body = running.request("PATCH", f"/api/v1/users/{user_id}", {"name": name}, token)
    assert status == 200, body


def test_history_survives_valkey_and_make_run_restarts(
    start_script: Callable[..., Running],
) -> None:
    running = start_script()
    running.wait_until_up()
    status, body = running.post(
        "/api/v1/auth/register",
        {"name": "Zero", "email": "history@example.com", "password": "History-pass-123"},
    )
    assert status == 201, body
    token, user_id = body["token"], body["user"]["id"]
    topic = f"user.{user_id}"

    with connect(f"ws://127.0.0.1:{running.port}/ws/v1/", open_timeout=10) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=10))["type"] == "auth.ok"
        ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        _rename(running, token, user_id, "One")
        first = json.loads(ws.recv(timeout=10))
    assert first["type"] == "event" and first["data"]["name"] == "One", first

    valkey = running.child_pid("valkey")
    assert valkey is not None
    os.kill(valkey, signal.SIGKILL)
    running.wait_for_line(">> restarted valkey")
    _wait_for(running.healthy, 60, "/health after the valkey restart")
    _rename(running, token, user_id, "Two")

    subscribed, replayed = _socket_replay(running, token, topic, first["offset"], 1)
    assert subscribed["recovered"] is True, subscribed
    assert replayed[0]["data"]["name"] == "Two", replayed
    second_offset = replayed[0]["offset"]
    assert subscribed["offset"] == second_offset

    key = (running.var / "secret_key").read_text()
    assert running.stop() == []

    again = start_script()
    again.wait_until_up()
    assert (again.var / "secret_key").read_text() == key
    subscribed, replayed = _socket_replay(again, token, topic, first["offset"], 1)
    assert subscribed["recovered"] is True, subscribed
    assert subscribed["offset"] == second_offset
    assert replayed[0]["offset"] == second_offset
    assert replayed[0]["data"]["name"] == "Two"
    # Even a supervisor killed outright takes its children with it (they get SIGTERM).
    left = again.stop(signal.SIGKILL)
    assert left == [], f"orphans after kill -9 of the supervisor: {left}"


def test_run_script_falls_back_when_valkey_cannot_start(
    start_script: Callable[..., Running],
) -> None:
    running = start_script(TRITON_VALKEY_SERVER="/bin/false")
    running.wait_until_up()
    assert "!! falling back to the in-process defaults" in running.output
    assert ">> no broker: background jobs run in-process" in running.output
    status, body = running.get("/health")
    assert status == 200, body
    assert body["checks"]["broker"] == "ok"
    assert running.stop() == []
    assert running.process.returncode == 0


def test_run_script_without_embedded_redis(start_script: Callable[..., Running]) -> None:
    running = start_script(TRITON_EMBEDDED_REDIS="0", DJANGO_SECRET_KEY="x" * 50)
    running.wait_until_up()
    assert "valkey" not in running.output
    status, _ = running.get("/api/v1/health")
    assert status == 200
    # A key from the environment is used as it is: none is generated.
    assert not (running.var / "secret_key").exists()
    assert running.stop() == []


def test_migrate_creates_a_missing_var_dir(tmp_path: Path) -> None:
    var = tmp_path / "not" / "there" / "yet"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["TRITON_VAR_DIR"] = str(var)
    env["DJANGO_SECRET_KEY"] = "migrate-test-" + "k" * 50
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (var / "triton.sqlite3").is_file()
