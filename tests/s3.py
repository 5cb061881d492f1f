"""A real S3 endpoint on loopback: moto's server mode in a subprocess.

``s3_server`` (session) starts ``moto_server`` on a free port and stops it at the end;
``s3_storage`` gives a test its own empty bucket and points Django's default storage at it
(the same ``STORAGE_URL`` parsing production uses). ``s3_environment`` is the environment a
server process needs to use that bucket (e2e).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import pytest
from django.core.files.storage import Storage, storages

from backend.core.storage import storage_backend_from_url

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
STARTUP_TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    endpoint_url: str
    proc: subprocess.Popen[bytes]

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(self) -> str:
        bucket = f"triton-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def storage_url(self, bucket: str, **params: str) -> str:
        query = "&".join(
            f"{k}={v}"
            for k, v in {"region": REGION, "endpoint_url": self.endpoint_url, **params}.items()
        )
        return f"s3://{bucket}?{query}"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "AWS_DEFAULT_REGION": REGION},
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited:\n{log_path.read_text()}")
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto_server not ready:\n{log_path.read_text()}") from None
            time.sleep(0.1)
    try:
        yield S3Server(endpoint_url=endpoint, proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass
class S3Storage:
    server: S3Server
    bucket: str
    storage: Storage


@pytest.fixture
def s3_storage(s3_server: S3Server, settings) -> S3Storage:  # type: ignore[no-untyped-def]
    """Django's default storage on a fresh bucket of the loopback S3 server, encrypted at rest
    (AES256), with explicit test credentials."""
    bucket = s3_server.create_bucket()
    backend = storage_backend_from_url(
        s3_server.storage_url(bucket, sse="AES256"), link_expiry=settings.STORAGE_LINK_EXPIRY
    )
    backend["OPTIONS"].update(access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    # Assigning STORAGES resets django's storage handler (setting_changed), and again on undo.
    settings.STORAGES = {**settings.STORAGES, "default": backend}
    return S3Storage(server=s3_server, bucket=bucket, storage=storages["default"])


def s3_environment(server: S3Server, bucket: str) -> dict[str, str]:
    """What a server process (e2e) needs in its environment to store into ``bucket``."""
    return {
        "STORAGE_URL": server.storage_url(bucket),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
