"""Files on the loopback S3 server: upload, redirect to a presigned link, delete."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client

from backend.content.models import File
from tests.conftest import ApiClient
from tests.factories import PDF_BYTES, UserFactory, bearer_for
from tests.s3 import S3Storage

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_download_delete_through_s3(s3_storage: S3Storage) -> None:
    owner = UserFactory(roles=["Customer"])
    token = bearer_for(owner)
    upload = io.BytesIO(PDF_BYTES)
    upload.name = "Relevé 2026.pdf"
    response = Client().post(
        "/api/v1/files", {"file": upload}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.content
    file = File.objects.get(pk=response.json()["id"])

    s3 = s3_storage.server.client()
    head = s3.head_object(Bucket=s3_storage.bucket, Key=file.storage_name)
    assert head["ContentLength"] == len(PDF_BYTES)
    assert head["ContentType"] == "application/pdf"  # the sniffed type, not the client's
    assert head["ServerSideEncryption"] == "AES256"

    download = ApiClient(token).get(f"/files/{file.pk}/download")
    assert download.status_code == 302
    assert download["Cache-Control"] == "private, no-store"
    link = download["Location"]
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["60"]
    fetched = httpx.get(link, timeout=5)
    assert fetched.status_code == 200
    assert fetched.content == PDF_BYTES
    assert fetched.headers["content-disposition"] == (
        "attachment; filename=\"Releve 2026.pdf\"; filename*=UTF-8''Relev%C3%A9%202026.pdf"
    )

    assert ApiClient(token).delete(f"/files/{file.pk}").status_code == 204
    assert s3.list_objects_v2(Bucket=s3_storage.bucket).get("KeyCount") == 0


def test_others_get_no_link(s3_storage: S3Storage) -> None:
    owner = UserFactory(roles=["Customer"])
    upload = io.BytesIO(PDF_BYTES)
    upload.name = "a.pdf"
    response = Client().post(
        "/api/v1/files", {"file": upload}, headers={"Authorization": f"Bearer {bearer_for(owner)}"}
    )
    file_id = response.json()["id"]
    other = ApiClient(bearer_for(UserFactory(roles=["Customer"])))
    refused = other.get(f"/files/{file_id}/download")
    assert refused.status_code == 404
    assert "Location" not in refused
