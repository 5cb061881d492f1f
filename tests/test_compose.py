"""compose/: the files parse, hang together, and document every setting.

No Docker engine here: the compose file is parsed as YAML (PyYAML in this interpreter, else a
system python3 that has it) and validated by `docker compose config` when the client has the
compose plugin. Every environment variable backend/settings.py reads must appear in
compose/env.example and in docs/configuration.md's table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"
ENV_CALL = re.compile(
    r"\benv(?:\.(?:str|int|bool|list|float|db_url|email_url|url|json|dict|path|bytes))?"
    r"\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']"
)
SERVICES = {"db", "redis", "migrate", "web", "worker", "beat", "nginx"}


def settings_variables() -> list[str]:
    text = (ROOT / "backend" / "settings.py").read_text()
    names = sorted(set(ENV_CALL.findall(text)))
    assert len(names) > 30, names  # the pattern still matches how settings.py reads them
    return names


@cache
def compose_document() -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        return yaml.safe_load(COMPOSE_FILE.read_text())
    program = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)"
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if not python or not os.path.exists(python):
            continue
        result = subprocess.run(
            [python, "-c", program, str(COMPOSE_FILE)],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
        )
        if result.returncode == 0:
            return json.loads(result.stdout)
    pytest.skip("no YAML parser: neither PyYAML here nor a python3 with it")


def docker_compose_available() -> bool:
    if not shutil.which("docker"):
        return False
    result = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return result.returncode == 0


def test_docker_compose_config_validates() -> None:
    if not docker_compose_available():
        pytest.skip("docker compose plugin not installed")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_services_and_wiring() -> None:
    document = compose_document()
    services = document["services"]
    assert set(services) == SERVICES
    for name in ("migrate", "web", "worker", "beat"):
        service = services[name]
        assert service["build"]["dockerfile"] == "compose/Dockerfile"
        assert service["env_file"] == ["${TRITON_ENV_FILE:-env.example}"]
        script = service["command"][0]
        assert script.startswith("/app/compose/") and script.endswith("/start")
        local = COMPOSE / script.removeprefix("/app/compose/")
        assert local.is_file() and os.access(local, os.X_OK), local
    assert str(services["web"]["deploy"]["replicas"]).startswith("${WEB_REPLICAS")
    assert "ports" not in services["web"], "web is reached through nginx only"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["nginx"]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("db", "redis", "web", "worker", "beat", "nginx"):
        assert services[name]["healthcheck"]["test"], name
    assert "./nginx/nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    assert services["db"]["image"].startswith(("mariadb:", "mysql:"))
    assert services["redis"]["image"].startswith(("redis:", "valkey/"))
    assert set(document["volumes"]) >= {"mariadb-data", "redis-data", "media", "static"}


def test_start_scripts_are_valid_bash() -> None:
    scripts = sorted(COMPOSE.glob("*/start"))
    assert {p.parent.name for p in scripts} >= {"web", "worker", "beat", "migrate"}
    for script in [*scripts, ROOT / "scripts" / "run.sh"]:
        text = script.read_text()
        assert text.startswith("#!/bin/bash") or text.startswith("#!/usr/bin/env bash"), script
        assert "errexit" in text or "set -euo pipefail" in text, script
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, (script, result.stderr)


def test_dockerfile() -> None:
    text = (COMPOSE / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    assert "uv sync --frozen" in text
    assert "wkhtmltopdf" in text
    user = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")


def test_nginx_upgrades_websockets_and_restricts_metrics() -> None:
    text = (COMPOSE / "nginx" / "nginx.conf").read_text()
    ws = text[text.index("location /ws/") :]
    ws = ws[: ws.index("}")]
    assert "proxy_set_header Upgrade $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_set_header Host $host;" in ws
    assert "server web:8000" in text
    metrics = text[text.index("metrics$") :]
    assert "deny all;" in metrics[: metrics.index("}")]


def test_nginx_serves_https_with_the_mounted_certificate_and_redirects_http() -> None:
    nginx = compose_document()["services"]["nginx"]
    assert "${HTTPS_PORT:-443}:443" in nginx["ports"]
    assert "${HTTP_PORT:-80}:80" in nginx["ports"]
    assert "${TLS_CERT_DIR:-./tls}:/etc/nginx/tls:ro" in nginx["volumes"]
    text = (COMPOSE / "nginx" / "nginx.conf").read_text()
    plain = text[text.index("listen 80 default_server;") : text.index("listen 443")]
    assert "return 301 https://$host$request_uri;" in plain
    assert "proxy_pass" not in plain, "plain HTTP is redirected, never proxied"
    tls = text[text.index("listen 443 ssl default_server;") :]
    assert "ssl_certificate /etc/nginx/tls/fullchain.pem;" in tls
    assert "ssl_certificate_key /etc/nginx/tls/privkey.pem;" in tls
    # Every proxied location sets the scheme itself (a client's value never passes).
    assert tls.count("proxy_set_header X-Forwarded-Proto $scheme;") == 2


def _documented_in_env_example() -> set[str]:
    text = (COMPOSE / "env.example").read_text()
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def test_env_example_lists_every_setting() -> None:
    documented = _documented_in_env_example()
    missing = [name for name in settings_variables() if name not in documented]
    assert not missing, f"add to compose/env.example: {missing}"
    for extra in ("DJANGO_SUPERUSER_EMAIL", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_NAME"):
        assert extra in documented


def test_env_example_values_are_consistent() -> None:
    values = dict(
        re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (COMPOSE / "env.example").read_text(), re.M)
    )
    assert values["DATABASE_URL"].startswith("mysql://") and "@db:" in values["DATABASE_URL"]
    assert values["REDIS_URL"].startswith("redis://redis:")
    assert values["CELERY_BROKER_URL"].startswith("redis://redis:")
    assert values["SERVE_STATIC"] == "false"
    assert values["NUM_PROXIES"] == "1"
    assert "CELERY_TASK_ALWAYS_EAGER" not in values  # computed from the broker


def test_docs_document_every_setting() -> None:
    table = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in settings_variables() if f"| `{name}` |" not in table]
    assert not missing, f"add to docs/configuration.md's table: {missing}"


# --- the Compose specification, the database account, make cluster's nginx ---------------------


def _compose_spec_schema() -> dict[str, Any]:
    # The official schema as vendored by check-jsonschema (a dev dependency): no download.
    from importlib.resources import files

    vendor = files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    import jsonschema

    schema = _compose_spec_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose_document())
    ]
    assert errors == []
    # The schema does catch mistakes (a misspelt key in a service).
    broken = json.loads(json.dumps(compose_document()))
    broken["services"]["web"]["comand"] = ["x"]
    assert list(validator.iter_errors(broken))


def test_database_account_reaches_the_database_container() -> None:
    services = compose_document()["services"]
    db = services["db"]
    assert db["env_file"] == ["${TRITON_ENV_FILE:-env.example}"]
    assert "environment" not in db, "env_file is the one source of the MARIADB_* values"
    values = dict(
        re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (COMPOSE / "env.example").read_text(), re.M)
    )
    url = re.fullmatch(r"mysql://([^:]+):([^@]+)@db:3306/(\w+)", values["DATABASE_URL"])
    assert url, values["DATABASE_URL"]
    assert url.groups() == (
        values["MARIADB_USER"],
        values["MARIADB_PASSWORD"],
        values["MARIADB_DATABASE"],
    )
    assert values.get("MARIADB_RANDOM_ROOT_PASSWORD") == "1"
    assert "MARIADB_ROOT_PASSWORD" not in values  # no root password in every container
    # Binary logs: replicas can follow this primary.
    assert any(arg.startswith("--log-bin") for arg in db["command"])
    assert "--server-id=1" in db["command"]


def _cluster_script() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("cluster_script", ROOT / "scripts" / "cluster.py")
    assert spec and spec.loader
    cluster = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = cluster  # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(cluster)
    finally:
        del sys.modules[spec.name]
    return cluster


def test_make_cluster_nginx_config_renders_and_passes_nginx_t(tmp_path: Path) -> None:
    cluster = _cluster_script()
    (tmp_path / "log").mkdir()
    tls = cluster.TlsFiles(tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem", True)
    cluster.generate_certificate(tls.cert, tls.key)
    assert cluster.certificate_fits(tls.cert, tls.key)
    assert tls.key.stat().st_mode & 0o077 == 0, "the key is readable by its owner only"
    conf = cluster.render_nginx_conf(
        18000,
        [18001, 18002],
        tmp_path,
        {"STATIC_ROOT": str(tmp_path / "static")},
        http_port=18003,
        tls=tls,
    )
    text = conf.read_text()
    assert "server 127.0.0.1:18001" in text and "server 127.0.0.1:18002" in text
    assert "listen 127.0.0.1:18000 ssl default_server;" in text
    assert f"ssl_certificate {tls.cert};" in text and f"ssl_certificate_key {tls.key};" in text
    assert "listen 127.0.0.1:18003 default_server;" in text
    assert "return 301 https://$host:18000$request_uri;" in text
    assert f"proxy_bind {cluster.PROXY_ADDRESS};" in text
    # The websocket and proxy rules of compose's nginx.conf, word for word.
    compose_conf = (COMPOSE / "nginx" / "nginx.conf").read_text()
    for line in (
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_read_timeout 1h;",
        "least_conn;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "ssl_session_tickets off;",
    ):
        assert line in text and line in compose_conf, line
    assert "${" not in text
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.skip("nginx not installed (make cluster installs it)")
    result = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_nginx_config_passes_nginx_t_with_a_certificate(tmp_path: Path) -> None:
    """The compose nginx.conf, TLS included, checked by this machine's nginx. Two lines are
    adapted: `resolve` on an upstream server needs nginx >= 1.27.3 (the image's), and the
    certificate and pid paths point into a temporary directory."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx):
        pytest.skip("nginx not installed (make cluster installs it)")
    cluster = _cluster_script()
    cluster.generate_certificate(tmp_path / "fullchain.pem", tmp_path / "privkey.pem")
    text = (COMPOSE / "nginx" / "nginx.conf").read_text()
    for old, new in (
        ("server web:8000 resolve", "server 127.0.0.1:8000"),
        ("/etc/nginx/tls/", f"{tmp_path}/"),
        ("pid /tmp/nginx.pid", f"pid {tmp_path}/nginx.pid"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
