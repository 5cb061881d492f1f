"""Celery over SQS: a job sent through a loopback SQS endpoint (moto's server mode) is run by a
real worker started with CELERY_BROKER_URL=sqs://... and the settings' SQS transport options.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from django.db import connection
from moto.server import ThreadedMotoServer

from tests.e2e.conftest import LOG_DIR, base_env, free_port

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(180),
]


@pytest.fixture
def sqs_endpoint() -> Iterator[int]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield port
    server.stop()


def test_a_job_sent_through_sqs_is_run_by_a_real_worker(sqs_endpoint: int) -> None:
    from workers.celery import app

    queue = f"triton-sqs-{os.getpid()}"
    broker = f"sqs://testing:testing@127.0.0.1:{sqs_endpoint}"
    env = base_env(
        DATABASE_URL=f"mysql://root@127.0.0.1:3306/{connection.settings_dict['NAME']}",
        CELERY_BROKER_URL=broker,
        CELERY_QUEUE=queue,
        SQS_REGION=REGION,
        SQS_WAIT_TIME_SECONDS="1",
        SQS_POLLING_INTERVAL="0.2",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
    )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{os.getpid()}-sqs-worker-{time.monotonic_ns()}.log"
    with log_path.open("ab") as worker_log:
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
        task_id = str(uuid.uuid4())
        # The producer side with the same transport options the settings build for sqs://.
        options = {"region": REGION, "wait_time_seconds": 1, "polling_interval": 0.2}
        with app.connection_for_write(broker, transport_options=options) as conn:
            app.send_task("realtime.sweep_outbox", queue=queue, task_id=task_id, connection=conn)
        sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{sqs_endpoint}",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert queue in " ".join(sqs.list_queues().get("QueueUrls", []))

        deadline = time.monotonic() + 120
        done = f"Task realtime.sweep_outbox[{task_id}] succeeded"
        while time.monotonic() < deadline and done not in log_path.read_text():
            assert worker.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.3)
        assert done in log_path.read_text(), log_path.read_text()[-3000:]
        assert "sqs://" in log_path.read_text()  # the worker's banner names its transport

        # Acknowledged: the message is gone from the queue (none visible, none in flight).
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            counts = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if set(counts.values()) == {"0"}:
                break
            time.sleep(0.3)
        assert set(counts.values()) == {"0"}, counts
    finally:
        worker.terminate()
        worker.wait(20)
