"""X-Forwarded-Proto counts only from the proxy (TRUSTED_PROXY_NETWORKS): a client that reaches
a server process directly cannot claim HTTPS (backend/core/forwarded.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture
def behind_tls_proxy(settings) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 600
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.2/32", "10.0.0.0/8"]


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_tls_proxy")
@pytest.mark.parametrize("proxy", ["127.0.0.2", "10.1.2.3"])
def test_the_proxy_s_scheme_header_is_believed(proxy: str) -> None:
    response = Client(REMOTE_ADDR=proxy).get("/api/v1/auth/me", headers=HTTPS)
    assert response.status_code == 401  # served, as HTTPS: no redirect
    assert response["Strict-Transport-Security"] == "max-age=600"


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_tls_proxy")
@pytest.mark.parametrize("peer", ["127.0.0.1", "192.0.2.7", "::1"])
def test_a_scheme_header_from_anyone_else_is_ignored(peer: str) -> None:
    response = Client(REMOTE_ADDR=peer).get("/api/v1/auth/me", headers=HTTPS)
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/api/v1/auth/me"
    assert "Strict-Transport-Security" not in response


@pytest.mark.django_db
def test_a_malformed_network_stops_the_process(settings) -> None:
    settings.TRUSTED_PROXY_NETWORKS = ["127.0.0.1/33"]
    with pytest.raises(ImproperlyConfigured, match="TRUSTED_PROXY_NETWORKS"):
        Client().get("/api/v1/health")
