"""Browser-facing hardening: security headers and a strict Content-Security-Policy on pages,
admin cookies that scripts cannot read and that ride only same-site, CSRF on the admin site,
and an API that ignores cookies entirely (an admin session is never a way into it)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from backend.accounts.models import User

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
ADMIN_PASSWORD = "x-root-pass-1"


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(email="root@example.com", password=ADMIN_PASSWORD)


def admin_login(client: Client) -> None:
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/",
        {
            "username": "root@example.com",
            "password": ADMIN_PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]


def directives(header: str) -> dict[str, str]:
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in header.split(";")
        if part.strip()
    }


@pytest.mark.django_db
def test_admin_pages_have_a_strict_policy_and_the_security_headers() -> None:
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert policy["connect-src"] == "'self' ws://testserver"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_admin_pages_have_no_inline_code_the_policy_would_block(superuser: User) -> None:
    client = Client()
    admin_login(client)
    change_page = f"/admin/accounts/user/{superuser.pk}/change/"
    for path in ("/admin/", "/admin/accounts/user/", change_page):
        html = client.get(path).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), path
        assert not re.search(r"\son[a-z]+=\"", html), path  # inline event handlers
        assert "javascript:" not in html, path


@pytest.mark.django_db
def test_over_https_the_websocket_origin_is_wss(settings) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get(
        "/admin/login/", headers={"X-Forwarded-Proto": "https", "Host": "testserver"}
    )
    assert directives(response["Content-Security-Policy"])["connect-src"] == (
        "'self' wss://testserver"
    )


@pytest.mark.django_db
def test_a_cdn_static_origin_is_allowed_for_static_resources_only(settings) -> None:
    settings.STATIC_URL = "https://cdn.example.test/static/"
    policy = directives(Client().get("/admin/login/")["Content-Security-Policy"])
    for name in ("script-src", "style-src", "font-src"):
        assert policy[name] == "'self' https://cdn.example.test"
    assert "cdn.example.test" not in policy["connect-src"]
    assert "cdn.example.test" not in policy["default-src"]


@pytest.mark.django_db
def test_api_answers_allow_nothing_to_run_and_the_docs_page_is_a_strict_page(settings) -> None:
    response = Client().get("/api/v1/health")
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert response["X-Content-Type-Options"] == "nosniff"
    docs = Client().get("/api/v1/docs")
    assert docs.status_code == 200
    assert directives(docs["Content-Security-Policy"])["script-src"] == "'self'"
    html = docs.content.decode()
    assert "cdn.jsdelivr.net" not in html  # Swagger UI comes from our own /static/
    assert not re.search(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>\s*\S", html)
    settings.CSP_EXEMPT_PATHS = ["/api/v1/docs"]
    assert "Content-Security-Policy" not in Client().get("/api/v1/docs")


@pytest.mark.django_db
def test_admin_cookies_are_httponly_and_same_site(superuser: User) -> None:
    client = Client()
    admin_login(client)
    session = client.cookies["sessionid"]
    assert session["httponly"] is True
    assert session["samesite"] == "Lax"
    assert client.cookies["csrftoken"]["httponly"] is True


@pytest.mark.django_db
def test_admin_login_without_a_csrf_token_is_refused(superuser: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/admin/login/")
    response = client.post(
        "/admin/login/", {"username": "root@example.com", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 403
    assert "sessionid" not in client.cookies


@pytest.mark.django_db
def test_admin_post_from_an_untrusted_origin_is_refused_over_https(
    superuser: User, settings
) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = ["https://admin.example.test"]
    settings.ALLOWED_HOSTS = ["admin.example.test"]
    https = {"X-Forwarded-Proto": "https"}
    for origin, status in (("https://evil.example.test", 403), ("https://admin.example.test", 302)):
        client = Client(enforce_csrf_checks=True, HTTP_HOST="admin.example.test")
        client.get("/admin/login/", headers=https)
        response = client.post(
            "/admin/login/",
            {
                "username": "root@example.com",
                "password": ADMIN_PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
            },
            headers={**https, "Origin": origin, "Referer": f"{origin}/admin/login/"},
        )
        assert response.status_code == status, origin


@pytest.mark.django_db
def test_an_admin_session_cookie_is_not_a_way_into_the_api(superuser: User) -> None:
    client = Client()
    admin_login(client)
    assert client.get("/admin/").status_code == 200  # the session is good for the admin site
    response = client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    # And the API never hands out a cookie of its own, even on a successful login.
    login = Client().post(
        "/api/v1/auth/login",
        {"email": "root@example.com", "password": ADMIN_PASSWORD},
        content_type="application/json",
    )
    assert login.status_code == 200, login.content
    assert not login.cookies


def test_production_cookies_are_secure_with_host_prefixed_names() -> None:
    program = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SESSION_COOKIE_NAME, s.CSRF_COOKIE_NAME)"
    )
    text = (ROOT / "compose" / "env.example").read_text()
    env = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))
    env.update(
        PATH=os.environ.get("PATH", "/usr/bin:/bin"),
        DJANGO_SETTINGS_MODULE="backend.settings",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        TRITON_VAR_DIR="/tmp/triton-tests/security",
    )
    result = subprocess.run(
        [str(PYTHON), "-c", program],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True",
        "True",
        "True",
        "__Host-sessionid",
        "__Host-csrftoken",
    ]
