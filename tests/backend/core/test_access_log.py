"""The JSON access log: one record per request, with the request id, through LOGGING."""

from __future__ import annotations

import json
import logging

import pytest
from django.conf import settings
from django.test import Client
from pythonjsonlogger.json import JsonFormatter


@pytest.mark.django_db
def test_each_request_logs_one_json_access_record_with_its_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="triton.access"):
        answer = Client().get("/api/v1/health", HTTP_X_REQUEST_ID="rid-access-1")
    records = [r for r in caplog.records if r.name == "triton.access"]
    assert len(records) == 1
    record = records[0]
    assert record.status == answer.status_code  # type: ignore[attr-defined]
    assert record.path == "/api/v1/health"  # type: ignore[attr-defined]
    # Formatted the way LOG_FORMAT=json writes it: the id that the response echoed.
    spec = settings.LOGGING["formatters"]["json"]
    formatter = JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"])
    from backend.core.observability import RequestIdFilter

    RequestIdFilter().filter(record)
    line = json.loads(formatter.format(record))
    assert line["request_id"] == answer["X-Request-ID"] == "rid-access-1"
    assert line["logger"] == "triton.access"
    assert line["method"] == "GET" and line["status"] == answer.status_code
    assert isinstance(line["duration_ms"], float)


def _records() -> list[logging.LogRecord]:
    logger = logging.getLogger("triton.test")
    extra = {"method": "GET", "path": "/é", "status": 200, "duration_ms": 1.5, "_hidden": 1}
    plain = logger.makeRecord("triton.test", logging.INFO, "f.py", 3, "%s x", ("a",), None)
    with_extra = logger.makeRecord(
        "triton.test", logging.WARNING, "f.py", 3, "m", (), None, "f", extra
    )
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logger.makeRecord(
            "triton.test", logging.ERROR, "f.py", 3, "failed", (), sys.exc_info(), "f", None
        )
    as_dict = logger.makeRecord("triton.test", logging.INFO, "f.py", 3, {"k": [1, 2]}, (), None)
    stacked = logger.makeRecord(
        "triton.test", logging.INFO, "f.py", 3, "s", (), None, "f", None, sinfo="Stack (most)"
    )
    for record in (plain, with_extra, failed, as_dict, stacked):
        record.created = 1_700_000_000.25  # both formatters see the same time
    return [plain, with_extra, failed, as_dict, stacked]


def test_the_json_formatter_writes_what_python_json_logger_writes() -> None:
    from backend.core.observability import JsonFormatter as OurFormatter
    from backend.core.observability import RequestIdFilter

    spec = settings.LOGGING["formatters"]["json"]
    assert spec["()"] == "backend.core.observability.JsonFormatter"
    theirs = JsonFormatter(spec["fmt"], rename_fields=spec["rename_fields"])
    ours = OurFormatter(spec["fmt"], rename_fields=spec["rename_fields"])
    for record in _records():
        RequestIdFilter().filter(record)
        assert ours.format(record) == theirs.format(record)


@pytest.mark.django_db
def test_the_access_record_names_this_module_as_its_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="triton.access"):
        Client().get("/api/v1/ping", REMOTE_ADDR="10.1.2.3")
    (record,) = [r for r in caplog.records if r.name == "triton.access"]
    assert record.getMessage() == "GET /api/v1/ping 200"
    assert record.remote_addr == "10.1.2.3"  # type: ignore[attr-defined]
    assert record.funcName == "_log" and record.pathname.endswith("access_log.py")
