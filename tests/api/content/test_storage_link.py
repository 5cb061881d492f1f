"""The local side of private_url: GET /api/v1/storage/{token} streams the object; tampered
tokens answer 404, expired ones 410, never a 500."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client

from backend.core.storage import private_url


@pytest.fixture
def stored_name() -> str:
    storage = storages["default"]
    name = storage.save(f"tests/{uuid.uuid4().hex}.bin", ContentFile(b"%PDF-1.4 body"))
    yield name
    storage.delete(name)


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    # The response streams from an async iterator (for daphne); the test client is sync.
    with pytest.warns(Warning, match="asynchronous iterators"):
        return b"".join(response)


def test_local_link_streams_the_file_as_an_attachment(stored_name: str) -> None:
    url = private_url(stored_name, download_name="Invoice №7.pdf")
    assert url.startswith("/api/v1/storage/")
    response = Client().get(url)
    assert response.status_code == 200
    assert _body(response) == b"%PDF-1.4 body"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Length"] == "13"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"Invoice No7.pdf\"; filename*=UTF-8''Invoice%20%E2%84%967.pdf"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_no_download_name_is_inline_bytes(stored_name: str) -> None:
    response = Client().get(private_url(stored_name))
    assert response.status_code == 200
    # The stored name says .bin: served as bytes, never as a page of this origin.
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("inline; ")


def test_html_download_name_is_not_served_as_html(stored_name: str) -> None:
    response = Client().get(private_url(stored_name, download_name="page.html"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment; ")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature
        lambda token: "x" + token,  # payload
        lambda token: token.split(":")[0],  # truncated
        lambda token: "not-a-token",
        lambda token: "%00%ff" + token,
    ],
)
def test_tampered_token_is_not_found(stored_name: str, mutate) -> None:  # type: ignore[no-untyped-def]
    token = private_url(stored_name).rsplit("/", 1)[-1]
    response = Client().get(f"/api/v1/storage/{mutate(token)}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_link_to_a_deleted_object_is_not_found(stored_name: str) -> None:
    url = private_url(stored_name)
    storages["default"].delete(stored_name)
    response = Client().get(url)
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_expired_link_is_gone(stored_name: str) -> None:
    url = private_url(stored_name, expires_in=1)
    assert Client().get(url).status_code == 200
    # Timestamps have whole-second resolution: the link dies within about two seconds.
    deadline = time.monotonic() + 5
    while (response := Client().get(url)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert response.status_code == 410
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/gone")


def test_expiry_must_be_positive(stored_name: str) -> None:
    with pytest.raises(ValueError):
        private_url(stored_name, expires_in=0)


def test_only_get_is_allowed(stored_name: str) -> None:
    url = private_url(stored_name)
    assert Client().delete(url).status_code == 405


def test_public_base_url_makes_links_absolute(stored_name: str, settings: Any) -> None:
    settings.STORAGE_PUBLIC_BASE_URL = "https://api.example.com/"
    url = private_url(stored_name)
    assert url.startswith("https://api.example.com/api/v1/storage/")
    assert Client().get(url.removeprefix("https://api.example.com")).status_code == 200
