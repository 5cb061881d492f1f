"""Uploads against real uvicorn and daphne processes over real sockets: oversized bodies are
refused with 413 before they are read (declared length) or as soon as they pass the limit
(chunked); uploads within the limit are stored and streamed back, on local disk and on S3."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import httpx
import pytest

from tests.e2e.conftest import Server, ServerPool, make_user
from tests.e2e.content_servers import fresh_server
from tests.s3 import S3Server, s3_environment

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

LIMIT = 25 * 1024 * 1024  # the default FILE_UPLOAD_MAX_BYTES of the servers
PDF_HEAD = b"%PDF-1.4\n"


def _read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
    return data


def _parse(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.fixture(params=["uvicorn", "daphne"])
def server(servers: ServerPool, request: pytest.FixtureRequest) -> Server:
    """Both servers refuse before reading (backend/core/body_limit.py): daphne through its
    patched request, uvicorn through the ASGI middleware."""
    return servers.get(f"content-{request.param}", TRITON_SERVER=request.param)


def _upload_head(server: Server, token: str, *, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"{framing}\r\n\r\n"
    ).encode()


_PART_HEAD = b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n\r\n'


async def test_declared_oversize_is_answered_before_the_body_is_sent(server: Server) -> None:
    _, issued = await make_user(["Customer"])
    declared = LIMIT + 10 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        # Headers and 1 KiB of a body that claims 35 MiB; the rest is never sent.
        sock.sendall(_upload_head(server, issued.plain_text, length=declared))
        sock.sendall(_PART_HEAD + PDF_HEAD + b"x" * 1024)
        started = time.monotonic()
        response = _read_until_closed(sock, timeout=5)
    status, headers, body = _parse(response)
    assert status == 413, response[:500]
    assert time.monotonic() - started < 3
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["status"] == 413
    assert httpx.get(f"{server.http}/health", timeout=10).status_code in (200, 503)


async def test_expect_continue_gets_the_413_instead_of_100(server: Server) -> None:
    _, issued = await make_user(["Customer"])
    head = _upload_head(server, issued.plain_text, length=LIMIT * 2)
    head = head[:-2] + b"Expect: 100-continue\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head)
        response = _read_until_closed(sock, timeout=5)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"100 Continue" not in response


async def test_chunked_body_is_cut_off_once_over_the_limit(server: Server) -> None:
    _, issued = await make_user(["Customer"])
    chunk = os.urandom(1024 * 1024)
    total_to_send = LIMIT + 40 * 1024 * 1024
    sent = 0
    send_error: list[BaseException] = []
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(_upload_head(server, issued.plain_text, length=None))
        first = _PART_HEAD + PDF_HEAD

        def sender() -> None:
            nonlocal sent
            try:
                payload = first
                while sent < total_to_send:
                    sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                    sent += len(payload)
                    payload = chunk
                sock.sendall(b"0\r\n\r\n")
            except OSError as exc:
                send_error.append(exc)

        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        response = _read_until_closed(sock, timeout=20)
        thread.join(timeout=20)
    status, headers, _ = _parse(response)
    assert status == 413, response[:300]
    assert headers["content-type"] == "application/problem+json"
    # The server stopped taking the body: the client could not send all of it.
    assert send_error, f"the whole {total_to_send} bytes were accepted"
    assert sent < total_to_send


def _peak_rss_bytes(server: Server) -> int:
    """The server process's peak resident memory so far (Linux VmHWM)."""
    assert server.proc is not None
    status = open(f"/proc/{server.proc.pid}/status").read()  # noqa: SIM115
    kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(kib) * 1024


async def test_upload_within_the_limit_is_stored_and_streamed_back(servers: ServerPool) -> None:
    server = fresh_server(servers)
    _, issued = await make_user(["Customer"])
    size = 20 * 1024 * 1024
    content = PDF_HEAD + os.urandom(size)
    auth = {"Authorization": f"Bearer {issued.plain_text}"}
    async with httpx.AsyncClient(base_url=server.http, timeout=60, headers=auth) as client:
        # Warm the process up (imports, connections) so the peak below is the upload's.
        assert (await client.get("/api/v1/files")).status_code == 200
        peak_before = _peak_rss_bytes(server)
        created = await client.post("/api/v1/files", files={"file": ("scan.pdf", content)})
        assert created.status_code == 201, created.text
        # Streamed to a temporary file and on to storage: the server never held the whole
        # upload in memory (Twisted's own form parsing would cost ~12x the upload's size).
        assert _peak_rss_bytes(server) - peak_before < size // 2
        body = created.json()
        assert body["size"] == len(content) and body["mime_type"] == "application/pdf"
        download = await client.get(f"/api/v1/files/{body['id']}/download")
        assert download.status_code == 200
        assert download.content == content
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"].startswith("attachment; ")
        assert (await client.delete(f"/api/v1/files/{body['id']}")).status_code == 204


@pytest.fixture(scope="module")
def e2e_bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket()


async def test_upload_and_download_on_s3(
    servers: ServerPool, s3_server: S3Server, e2e_bucket: str
) -> None:
    s3 = fresh_server(servers, "content-s3", **s3_environment(s3_server, e2e_bucket))
    _, issued = await make_user(["Customer"])
    content = PDF_HEAD + os.urandom(512 * 1024)
    auth = {"Authorization": f"Bearer {issued.plain_text}"}
    async with httpx.AsyncClient(base_url=s3.http, timeout=30, headers=auth) as client:
        created = await client.post("/api/v1/files", files={"file": ("Déjà vu.pdf", content)})
        assert created.status_code == 201, created.text
        file_id = created.json()["id"]
        redirect = await client.get(f"/api/v1/files/{file_id}/download")
        assert redirect.status_code == 302
        link = redirect.headers["location"]
        assert link.startswith(s3_server.endpoint_url)
    async with httpx.AsyncClient(timeout=30) as anonymous:
        fetched = await anonymous.get(link)
    assert fetched.status_code == 200
    assert fetched.content == content
    assert "filename*=UTF-8''D%C3%A9j%C3%A0%20vu.pdf" in fetched.headers["content-disposition"]
    objects = s3_server.client().list_objects_v2(Bucket=e2e_bucket)
    assert objects["KeyCount"] == 1
