"""Operations endpoints against the real MariaDB and Redis: health, metrics, OpenAPI, docs.

Failures are real: a dependency is pointed at a loopback port where nothing listens (or at a
socket that accepts and never answers), never replaced by a mock.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import Client, override_settings

from api.errors import PROBLEM_CONTENT_TYPE

CHECK_NAMES = {"database", "cache", "disk", "channel_layer", "broker", "workers"}


def _closed_port() -> int:
    """A loopback port with no listener: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (kernel backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def _redis_cache(url: str, socket_timeout: float = 2) -> dict[str, dict[str, object]]:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": socket_timeout},
        }
    }


def _assert_failed(response, failing: str) -> dict[str, object]:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)
    body = response.json()
    assert body["status"] == "error"
    assert set(body["checks"]) == CHECK_NAMES
    assert body["checks"][failing].startswith("error: "), body
    assert failing in body["detail"]
    assert body["title"] == "Service unavailable"
    return body


# --- health: everything up ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/health", "/health"])
def test_health_ok_against_real_services(db: None, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    # No Celery worker runs for this test: reported, and still a 200 (see backend.core.health).
    assert body["checks"].pop("workers") == "error: RuntimeError: no Celery worker answered a ping"
    assert body == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "cache": "ok",
            "disk": "ok",
            "channel_layer": "ok",
            "broker": "ok",
        },
    }


def test_health_workers_ok_when_a_worker_answers(db: None) -> None:
    from celery.contrib.testing.worker import start_worker

    from workers.celery import app as celery_app

    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        checks = Client().get("/health").json()["checks"]
    assert checks["workers"] == "ok", checks


def test_health_workers_ok_when_jobs_run_in_process(db: None) -> None:
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        response = Client().get("/health")
    assert response.status_code == 200
    assert response.json()["checks"]["workers"] == "ok"


def test_health_needs_no_token_and_echoes_request_id(db: None) -> None:
    response = Client().get("/api/v1/health", headers={"X-Request-ID": "probe-42.a"})
    assert response.status_code == 200
    assert response["X-Request-ID"] == "probe-42.a"
    assert response["Cache-Control"] == "no-store"


# --- health: one dependency really down at a time ----------------------------------------------


def test_health_503_when_cache_is_down(db: None) -> None:
    with override_settings(CACHES=_redis_cache(f"redis://127.0.0.1:{_closed_port()}/0")):
        response = Client().get("/api/v1/health")
    body = _assert_failed(response, "cache")
    others = CHECK_NAMES - {"cache", "workers"}  # no worker runs here
    assert {k: body["checks"][k] for k in others} == dict.fromkeys(others, "ok")


def test_health_503_when_channel_layer_is_down(db: None) -> None:
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{_closed_port()}/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers):
        response = Client().get("/health")
    body = _assert_failed(response, "channel_layer")
    assert body["checks"]["cache"] == "ok"


def test_health_503_when_broker_is_down(db: None) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    with override_settings(CELERY_BROKER_URL=url, CELERY_TASK_ALWAYS_EAGER=False):
        started = time.monotonic()
        response = Client().get("/api/v1/health")
        elapsed = time.monotonic() - started
    body = _assert_failed(response, "broker")
    assert body["checks"]["database"] == "ok"
    assert elapsed < 5


def test_broker_counts_as_ok_when_jobs_run_in_process(db: None) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    with override_settings(CELERY_BROKER_URL=url, CELERY_TASK_ALWAYS_EAGER=True):
        response = Client().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["checks"]["broker"] == "ok"


def test_health_503_when_database_is_down(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # The probe opens its own connection from these settings; the test's open connection
    # (and its transaction) is left alone.
    monkeypatch.setitem(connections["default"].settings_dict, "HOST", "127.0.0.1")
    monkeypatch.setitem(connections["default"].settings_dict, "PORT", str(_closed_port()))
    response = Client().get("/api/v1/health")
    body = _assert_failed(response, "database")
    assert "OperationalError" in body["checks"]["database"]


def test_health_503_when_disk_is_below_the_minimum(db: None) -> None:
    with override_settings(HEALTH_MIN_FREE_DISK_BYTES=2**62):
        response = Client().get("/api/v1/health")
    body = _assert_failed(response, "disk")
    assert "below" in body["checks"]["disk"]


def test_health_503_when_media_root_is_not_writable(db: None, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with override_settings(MEDIA_ROOT=str(blocker / "media")):
        response = Client().get("/api/v1/health")
    _assert_failed(response, "disk")


def test_a_hanging_dependency_cannot_hang_health(db: None, silent_port: int) -> None:
    # Redis that accepts the connection and never answers: the cache client waits up to its
    # socket timeout (3 s), the health check gives up after HEALTH_CHECK_TIMEOUT.
    cache = _redis_cache(f"redis://127.0.0.1:{silent_port}/0", socket_timeout=3)
    with override_settings(CACHES=cache, HEALTH_CHECK_TIMEOUT=0.5):
        started = time.monotonic()
        response = Client().get("/api/v1/health")
        elapsed = time.monotonic() - started
    body = _assert_failed(response, "cache")
    assert body["checks"]["cache"] == "error: timed out after 0.5s"
    assert elapsed < 2.5


def test_health_never_500_when_all_is_down(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setitem(connections["default"].settings_dict, "PORT", str(port))
    monkeypatch.setitem(connections["default"].settings_dict, "HOST", "127.0.0.1")
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
        }
    }
    with override_settings(
        CACHES=_redis_cache(f"redis://127.0.0.1:{port}/0"),
        CHANNEL_LAYERS=layers,
        CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0",
        CELERY_TASK_ALWAYS_EAGER=False,
        HEALTH_MIN_FREE_DISK_BYTES=2**62,
    ):
        response = Client().get("/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert all(value.startswith("error: ") for value in checks.values()), checks


def test_reasons_do_not_leak_url_credentials() -> None:
    from backend.core.health import _reason

    reason = _reason(ConnectionError("cannot reach redis://user:s3cret@cache:6379/0 now"))
    assert "s3cret" not in reason
    assert reason.startswith("ConnectionError: ")


# --- metrics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/metrics", "/metrics"])
def test_metrics_in_prometheus_text_format(db: None, path: str) -> None:
    client = Client()
    client.get("/api/v1/health")  # at least one request has been counted
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "# TYPE django_http_requests_total_by_method_total counter" in text
    assert 'django_http_requests_total_by_method_total{method="GET"}' in text
    assert "django_http_responses_total_by_status_total" in text


@pytest.mark.parametrize("path", ["/api/v1/metrics", "/metrics"])
def test_metrics_show_whether_a_worker_is_alive(db: None, path: str) -> None:
    text = Client().get(path).content.decode()
    assert 'triton_health_check_ok{check="workers"} 0.0' in text


@pytest.mark.parametrize("path", ["/api/v1/metrics", "/metrics"])
@pytest.mark.parametrize("address", ["10.0.0.7", "192.168.1.1", "2001:db8::1", "garbage"])
def test_metrics_hidden_from_other_networks(db: None, path: str, address: str) -> None:
    response = Client(REMOTE_ADDR=address).get(path, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 404
    assert b"django_http" not in response.content


def test_metrics_allowed_networks_and_bearer_token(db: None, settings) -> None:
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.METRICS_BEARER_TOKEN = "scrape-me-7"
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client().get("/metrics").status_code == 404  # loopback no longer listed
    outsider = Client(REMOTE_ADDR="203.0.113.9")
    assert outsider.get("/metrics").status_code == 404
    wrong = outsider.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-8")
    assert wrong.status_code == 404
    right = outsider.get("/api/v1/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7")
    assert right.status_code == 200


# --- OpenAPI and docs --------------------------------------------------------------------------


def test_openapi_lists_auth_and_operations() -> None:
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Triton API"
    paths = document["paths"]
    for path in ("/api/v1/auth/login", "/api/v1/health", "/api/v1/metrics"):
        assert path in paths, sorted(paths)
    health = paths["/api/v1/health"]["get"]
    assert {"200", "503"} <= set(health["responses"])
    assert not health.get("security")


def test_docs_page_is_served() -> None:
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content


def test_admin_login_page_is_served(db: None) -> None:
    response = Client().get("/admin/login/")
    assert response.status_code == 200


# --- manage.py ensure_superuser ----------------------------------------------------------------


def test_ensure_superuser_is_idempotent(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from django.core.management import call_command

    from backend.accounts.models import User

    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Boss@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Boss-pass-2024!")
    monkeypatch.setenv("DJANGO_SUPERUSER_NAME", "The Boss")
    for _ in range(2):
        call_command("ensure_superuser", stdout=StringIO())
    users = User.objects.filter(email="boss@example.com")
    assert users.count() == 1
    boss = users.get()
    assert boss.is_superuser and boss.is_staff
    assert boss.name == "The Boss"
    assert boss.check_password("Boss-pass-2024!")
    assert list(boss.groups.values_list("name", flat=True)) == ["Admin"]


def test_ensure_superuser_skips_unset(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from io import StringIO

    from django.core.management import call_command

    from backend.accounts.models import User

    monkeypatch.delenv("DJANGO_SUPERUSER_EMAIL", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = StringIO()
    call_command("ensure_superuser", stdout=out)
    assert "skipped" in out.getvalue()
    assert not User.objects.filter(is_superuser=True).exists()


def test_a_hanging_channel_layer_cannot_hang_health(db: None, silent_port: int) -> None:
    layers = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{silent_port}/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers, HEALTH_CHECK_TIMEOUT=0.5):
        started = time.monotonic()
        response = Client().get("/api/v1/health")
        elapsed = time.monotonic() - started
    body = _assert_failed(response, "channel_layer")
    assert body["checks"]["channel_layer"].startswith("error: TimeoutError: no round trip within")
    assert elapsed < 2.5
