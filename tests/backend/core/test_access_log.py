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
