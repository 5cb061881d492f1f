"""The invoice sandbox: what a template may use, and what the PDF renderer may reach.

The PDFs are read back with pdftotext (poppler-utils, installed by scripts/ensure-services.sh).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from backend.commerce.rendering import TemplateInvalid, check_template, render_html, render_pdf

SECRET = "top-secret-canary-7f3a"


def pdf_text(pdf: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True, timeout=30
    )
    return done.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize(
    "source",
    [
        "{% debug %}",
        "{% load static %}",
        "{% include 'base.html' %}",
        "{% extends 'base.html' %}",
        "{% url 'admin:index' %}",
        "{% csrf_token %}",
        "{{ order|pprint }}",
        "{% ssi '/etc/passwd' %}",
        "{% block x %}{% endblock %}",
        "{% if %}",
    ],
)
def test_dangerous_or_broken_templates_do_not_compile(source: str) -> None:
    with pytest.raises(TemplateInvalid):
        check_template(source)


def test_templates_render_plain_data_autoescaped() -> None:
    html = render_html(
        "{{ order.id }}|{{ order.total_amount }}|{% for i in order.items %}"
        "{{ i.product.name }}x{{ i.quantity }};{% endfor %}|{{ user.name }}|{{ missing.thing }}",
        {
            "order": {
                "id": 7,
                "total_amount": "12.50",
                "items": [{"product": {"name": "Lamp"}, "quantity": 2}],
            },
            "user": {"name": "<script>alert(1)</script>"},
        },
    )
    assert html == "7|12.50|Lampx2;|&lt;script&gt;alert(1)&lt;/script&gt;|"


def test_oversized_template_is_refused() -> None:
    with pytest.raises(TemplateInvalid):
        check_template("x" * 200_001)


def test_pdf_has_the_rendered_text() -> None:
    pdf = render_pdf("<h1>Invoice 42</h1><p>Total 12.50</p>")
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    assert "Invoice 42" in text and "Total 12.50" in text


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(f"{SECRET}\n")
    return path


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str]

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = f"<html><body>{SECRET}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on loopback that hands out the secret and records every request."""
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_a_template_cannot_read_server_files(secret_file: Path) -> None:
    passwd_head = Path("/etc/passwd").read_text().splitlines()[0]
    urls = [f"file://{secret_file}", "file:///etc/passwd", str(secret_file), "/etc/passwd"]
    tags = "".join(
        f'<iframe src="{u}" width="600" height="200"></iframe>'
        f'<object data="{u}" type="text/plain" width="600" height="200"></object>'
        f'<embed src="{u}" type="text/plain" width="600" height="200">'
        f'<img src="{u}" alt="">'
        f'<link rel="stylesheet" href="{u}">'
        f'<div style="background: url({u})">bg</div>'
        for u in urls
    )
    html = render_html(
        "<p>visible marker</p>" + tags + "<style>@import url('file:///etc/passwd');</style>", {}
    )
    text = pdf_text(render_pdf(html))
    assert "visible marker" in text  # the renderer did run
    assert SECRET not in text
    assert passwd_head not in text and "root:" not in text


def test_a_template_cannot_reach_a_host(http_server: tuple[str, list[str]]) -> None:
    base, hits = http_server
    html = render_html(
        "<p>visible marker</p>"
        f'<iframe src="{base}/frame"></iframe><img src="{base}/img.png">'
        f'<link rel="stylesheet" href="{base}/style.css">'
        f'<script src="{base}/script.js"></script>'
        f"<script>document.write('{SECRET}-js')</script>",
        {},
    )
    text = pdf_text(render_pdf(html))
    assert "visible marker" in text
    assert SECRET not in text
    assert hits == []
