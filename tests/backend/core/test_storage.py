"""Storage configured from STORAGE_URL, exercised against a real S3 endpoint (moto's server
on loopback): store, fetch, delete, presigned links fetched over HTTP."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core.files.base import ContentFile

from backend.core.storage import (
    LOCAL_BACKEND,
    S3_BACKEND,
    StorageConfigError,
    content_disposition,
    private_url,
    safe_filename,
    storage_backend_from_url,
)
from tests.s3 import S3Storage


def test_empty_url_is_local_disk_following_media_root() -> None:
    assert storage_backend_from_url("") == {"BACKEND": LOCAL_BACKEND}
    assert storage_backend_from_url("file:///srv/media") == {
        "BACKEND": LOCAL_BACKEND,
        "OPTIONS": {"location": "/srv/media"},
    }


def test_s3_url_gives_private_encrypted_storage() -> None:
    backend = storage_backend_from_url(
        "s3://my-bucket/uploads?region=eu-west-1&endpoint_url=http://s3.local:9000"
        "&sse=aws:kms&kms_key_id=key-1&addressing_style=path",
        link_expiry=60,
    )
    assert backend["BACKEND"] == S3_BACKEND
    options = backend["OPTIONS"]
    assert options["bucket_name"] == "my-bucket"
    assert options["location"] == "uploads"
    assert options["region_name"] == "eu-west-1"
    assert options["endpoint_url"] == "http://s3.local:9000"
    assert options["default_acl"] == "private"
    assert options["querystring_auth"] is True
    assert options["querystring_expire"] == 60
    assert options["addressing_style"] == "path"
    assert options["object_parameters"] == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "key-1",
    }


@pytest.mark.parametrize(
    "url", ["ftp://host/x", "s3://", "s3://bucket?colour=blue", "bucket-without-scheme"]
)
def test_bad_storage_url_is_refused(url: str) -> None:
    with pytest.raises(StorageConfigError):
        storage_backend_from_url(url)


def test_store_fetch_delete_on_s3(s3_storage: S3Storage) -> None:
    storage = s3_storage.storage
    name = storage.save(f"tests/{uuid.uuid4().hex}.bin", ContentFile(b"\x00payload\xff"))
    assert storage.exists(name)
    assert storage.size(name) == 9
    with storage.open(name, "rb") as fh:
        assert fh.read() == b"\x00payload\xff"

    client = s3_storage.server.client()
    head = client.head_object(Bucket=s3_storage.bucket, Key=name)
    assert head["ServerSideEncryption"] == "AES256"
    grants = client.get_object_acl(Bucket=s3_storage.bucket, Key=name)["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]  # the owner only: private
    assert all(g["Grantee"].get("Type") == "CanonicalUser" for g in grants)

    storage.delete(name)
    assert not storage.exists(name)
    assert client.list_objects_v2(Bucket=s3_storage.bucket).get("KeyCount") == 0


def test_presigned_url_serves_the_object_with_the_download_name(s3_storage: S3Storage) -> None:
    storage = s3_storage.storage
    name = storage.save("tests/report.bin", ContentFile(b"%PDF-1.4 fake"))
    url = private_url(name, expires_in=120, download_name='Résumé "final".pdf')

    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert "X-Amz-Signature" in query
    assert url.startswith(s3_storage.server.endpoint_url)

    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 fake"
    assert response.headers["content-disposition"] == (
        'attachment; filename="Resume _final_.pdf"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20_final_.pdf"
    )


def test_presigned_url_defaults_to_the_configured_expiry(s3_storage: S3Storage, settings) -> None:
    name = s3_storage.storage.save("tests/a.txt", ContentFile(b"a"))
    query = parse_qs(urlsplit(private_url(name)).query)
    assert query["X-Amz-Expires"] == [str(settings.STORAGE_LINK_EXPIRY)]
    # The signature is dated now: an AWS endpoint refuses it once X-Amz-Expires has passed.
    signed_at = time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    assert abs(time.mktime(signed_at) - time.mktime(time.gmtime())) < 60


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\x\\evil.exe") == "evil.exe"
    assert safe_filename("a\r\nSet-Cookie: x.txt") == "a_Set-Cookie_ x.txt"
    assert safe_filename("...") == "download"
    assert safe_filename("") == "download"
    long = "x" * 300 + ".pdf"
    assert safe_filename(long).endswith(".pdf") and len(safe_filename(long)) == 200


def test_content_disposition_is_rfc6266_with_ascii_fallback() -> None:
    assert content_disposition("report.pdf") == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert content_disposition("отчёт.pdf", attachment=False) == (
        "inline; filename=\"_____.pdf\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf"
    )
