"""The invoice job on real workers: a worker process SIGKILLed in the middle of a render,
and a restarted one that finishes it (Redis redelivers the unacknowledged job after the
visibility timeout): exactly one ready invoice, one PDF, one invoice.ready event."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from backend.commerce import services
from backend.commerce.models import Invoice
from realtime.models import OutboxEvent
from tests.factories import InvoiceTemplateFactory, ProductFactory, UserFactory, place_order
from workers.celery import app as celery_app

# About 20-30 s here (a worker boot, a kill, a restart, the redelivery after 6 s): part of
# make test. Generous timeouts for a loaded machine.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(200)]

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
LOG_DIR = Path("/tmp/triton-e2e")
VISIBILITY_TIMEOUT = 6
# Thousands of table rows: wkhtmltopdf needs seconds, long enough to be caught mid-render.
SLOW_TEMPLATE = (
    "<h1>Invoice {{ invoice.id }}</h1><table>"
    '{% for n in "' + "x" * 6000 + '" %}<tr><td>row {{ forloop.counter }}</td>'
    "<td>{{ order.total_amount }}</td></tr>{% endfor %}</table>"
)


def _worker_env() -> dict[str, str]:
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SET"))}
    env.update(
        DJANGO_SETTINGS_MODULE="backend.settings",
        DATABASE_URL=f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/"
        f"{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        CELERY_QUEUE=settings.CELERY_TASK_DEFAULT_QUEUE,
        CACHE_KEY_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        CHANNEL_LAYER_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        REALTIME_KEY_PREFIX=settings.REALTIME_KEY_PREFIX,
        MEDIA_ROOT=str(settings.MEDIA_ROOT),
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
        LOG_FORMAT="text",
    )
    return env


class Worker:
    def __init__(self, name: str) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{os.getpid()}-{name}.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(CELERY), "-A", "workers", "worker", "--pool", "prefork",
                 "--concurrency", "1", "--loglevel", "INFO", "--without-mingle",
                 "--without-gossip", "--without-heartbeat"],
                cwd=ROOT, env=_worker_env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: main process, pool child, wkhtmltopdf."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(celery_app.conf.task_default_queue)
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def _renderer_running_under(pid: int) -> bool:
    """A wkhtmltopdf process in the worker's process group (i.e. a render in progress)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pid:
                continue
            if b"wkhtmltopdf" in (entry / "cmdline").read_bytes():
                return True
        except (OSError, ProcessLookupError):
            continue
    return False


def _wait_for(condition, timeout: float, what: str, pause: float = 0.05) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(pause)
    raise AssertionError(f"{what} not within {timeout} s")


def test_a_render_killed_midway_is_finished_once_after_restart(workers: list[Worker]) -> None:
    owner = UserFactory()
    order = place_order(owner, (ProductFactory(), 1))
    template = InvoiceTemplateFactory(html_template=SLOW_TEMPLATE)
    invoice = services.invoice_request(actor=owner, order_id=order.pk, template_id=template.pk)

    first = Worker("first")
    workers.append(first)
    _wait_for(lambda: _renderer_running_under(first.proc.pid), 60, "render start\n" + first.log())
    first.kill()
    assert Invoice.objects.get(pk=invoice.pk).status == "pending"

    second = Worker("second")
    workers.append(second)
    took = _wait_for(
        lambda: Invoice.objects.get(pk=invoice.pk).status != "pending",
        120,
        "the redelivered render\n" + second.log(),
        pause=0.5,
    )
    print(f"ready {took:.1f} s after the restart")
    fresh = Invoice.objects.get(pk=invoice.pk)
    assert fresh.status == "ready", (fresh.failure_reason, second.log())
    _, files = services.default_storage().listdir("invoices")
    stem = Path(fresh.pdf_name).stem
    assert [f for f in files if f.startswith(stem)] == [Path(fresh.pdf_name).name]
    assert OutboxEvent.objects.filter(topic=f"user.{owner.pk}", event="invoice.ready").count() == 1
