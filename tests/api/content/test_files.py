"""/files: multipart upload with sniffing and limits, own + shared listing, download,
delete, share; the refusal matrix for every endpoint."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.test import Client

from backend.accounts.models import User
from backend.content.models import File
from realtime.models import OutboxEvent
from tests.conftest import ApiClient
from tests.factories import PDF_BYTES, UserFactory, bearer_for, make_file
from tests.permission_matrix import (
    ACTORS,
    ANONYMOUS,
    OTHER,
    OWNER,
    STAFF,
    Endpoint,
    World,
    check,
    matrix,
    staff_with,
)

pytestmark = pytest.mark.django_db

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def upload(token: str | None, content: bytes, filename: str = "x.bin", **extra: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client().post(
        "/api/v1/files",
        {"file": io.BytesIO(content) if filename is None else _named(content, filename)},
        headers=headers,
        **extra,
    )


def _named(content: bytes, filename: str) -> io.BytesIO:
    buffer = io.BytesIO(content)
    buffer.name = filename
    return buffer


def _files_state() -> tuple:
    from guardian.models import UserObjectPermission

    files = tuple(File.objects.order_by("pk").values_list("pk", "user_id", "filename"))
    rights = tuple(
        UserObjectPermission.objects.order_by("pk").values_list(
            "user_id", "object_pk", "permission__codename"
        )
    )
    return files, rights, OutboxEvent.objects.count()


@pytest.fixture
def world() -> World:
    owner = UserFactory(roles=["Customer"])
    file = make_file(owner)
    return World(
        owner=owner,
        other=UserFactory(roles=["Customer"]),
        staff=staff_with("files.manage"),
        object_id=file.pk,
        state=_files_state,
    )


FILES_ENDPOINTS = [
    Endpoint("GET", "/files", {ANONYMOUS: 401, OWNER: 200, OTHER: 200, STAFF: 200}),
    Endpoint("GET", "/files/{id}", {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200}),
    Endpoint("GET", "/files/{id}/download", {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 200}),
    Endpoint("DELETE", "/files/{id}", {ANONYMOUS: 401, OWNER: 204, OTHER: 404, STAFF: 204}),
]


@pytest.mark.parametrize(("endpoint", "actor"), matrix(FILES_ENDPOINTS))
def test_files_endpoints_refuse_whom_they_must(
    world: World, endpoint: Endpoint, actor: str
) -> None:
    check(world, endpoint, actor)


@pytest.mark.parametrize("actor", ACTORS)
def test_share_refuses_whom_it_must(world: World, actor: str) -> None:
    recipient = UserFactory(roles=["Customer"])
    # files.manage reads and deletes any file but shares none that are not its own.
    expect = {ANONYMOUS: 401, OWNER: 200, OTHER: 404, STAFF: 403}
    check(
        world, Endpoint("POST", "/files/{id}/share", expect, body={"user_id": recipient.pk}), actor
    )


@pytest.mark.parametrize("actor", ACTORS)
def test_upload_refuses_whom_it_must(world: World, actor: str) -> None:
    # staff holds files.manage only, not files.upload.
    expect = {ANONYMOUS: 401, OWNER: 201, OTHER: 201, STAFF: 403}[actor]
    user = world.user(actor)
    before = File.objects.count()
    response = upload(bearer_for(user) if user else None, PDF_BYTES, "a.pdf")
    assert response.status_code == expect, response.content
    assert File.objects.count() == before + (1 if expect == 201 else 0)


def test_upload_stores_the_bytes_and_answers_the_contract_shape(customer: User) -> None:
    response = upload(bearer_for(customer), PDF_BYTES, "../../Quarterly report.pdf")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "user_id", "filename", "size", "mime_type", "created_at"}
    assert body["user_id"] == customer.pk
    assert body["filename"] == "Quarterly report.pdf"
    assert body["size"] == len(PDF_BYTES)
    assert body["mime_type"] == "application/pdf"
    stored = File.objects.get(pk=body["id"])
    assert "Quarterly" not in stored.storage_name
    with storages["default"].open(stored.storage_name) as fh:
        assert fh.read() == PDF_BYTES
    assert ApiClient(bearer_for(customer)).get(f"/files/{body['id']}").json() == body


def test_type_comes_from_the_content_not_the_name_or_header(customer: User) -> None:
    token = bearer_for(customer)
    # A PNG called .pdf is a PNG.
    response = upload(token, PNG_BYTES, "picture.pdf")
    assert response.status_code == 201
    assert response.json()["mime_type"] == "image/png"
    # An executable called .pdf is refused.
    response = upload(token, b"MZ\x90\x00" + b"\x00" * 300, "invoice.pdf")
    assert response.status_code == 415
    assert response["Content-Type"] == "application/problem+json"
    # Plain UTF-8 text is text, whatever it claims.
    response = upload(token, "naïve <script>alert(1)</script>\n".encode(), "page.html")
    assert response.status_code == 201
    assert response.json()["mime_type"] == "text/plain"


def test_zip_based_documents_are_recognised(customer: User) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    response = upload(bearer_for(customer), buffer.getvalue(), "a.zip")
    assert response.status_code == 201
    assert response.json()["mime_type"] == "application/zip"


def test_refused_uploads_leave_nothing_stored(
    customer: User, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    response = upload(bearer_for(customer), b"\x00\x01\x02binary", "x.bin")
    assert response.status_code == 415
    assert not any(tmp_path.rglob("*"))
    assert File.objects.count() == 0


def test_oversized_upload_is_413(customer: User, settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    settings.FILE_UPLOAD_MAX_BYTES = 1000
    token = bearer_for(customer)
    response = upload(token, b"a" * 1001, "big.txt")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert not any(tmp_path.rglob("*"))
    assert upload(token, b"a" * 1000, "limit.txt").status_code == 201


def test_declared_oversize_is_refused_before_the_body_is_read(
    customer: User, settings: Any
) -> None:
    settings.FILE_UPLOAD_MAX_BYTES = 1000
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n'
        b"hi\r\n--b--\r\n"
    )
    client = Client()
    # Content-Length claims far more than the limit; the view answers without parsing.
    response = client.generic(
        "POST",
        "/api/v1/files",
        body,
        content_type="multipart/form-data; boundary=b",
        headers={"Authorization": f"Bearer {bearer_for(customer)}"},
        CONTENT_LENGTH="999999999",
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=b", b"garbage without boundaries"),
        ("multipart/form-data", b"--b\r\n"),  # no boundary parameter
        (
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--b--\r\n',
        ),
        ("application/json", b'{"file": "x"}'),
    ],
)
def test_malformed_uploads_are_client_errors(
    customer: User, content_type: str, body: bytes
) -> None:
    response = Client().generic(
        "POST",
        "/api/v1/files",
        body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {bearer_for(customer)}"},
    )
    assert response.status_code in (400, 422), response.content
    assert response["Content-Type"] == "application/problem+json"


def test_empty_file_is_422(customer: User) -> None:
    response = upload(bearer_for(customer), b"", "empty.txt")
    assert response.status_code == 422


def test_list_is_own_and_shared(customer: User) -> None:
    colleague = UserFactory(roles=["Customer"])
    stranger = UserFactory(roles=["Customer"])
    admin = UserFactory(roles=["Admin"])
    mine = make_file(customer)
    theirs = make_file(colleague)
    make_file(stranger)
    as_colleague = ApiClient(bearer_for(colleague))
    assert (
        as_colleague.post(f"/files/{theirs.pk}/share", {"user_id": customer.pk}).status_code == 200
    )

    def ids(user: User) -> set[int]:
        body = ApiClient(bearer_for(user)).get("/files").json()
        return {item["id"] for item in body["items"]}

    assert ids(customer) == {mine.pk, theirs.pk}
    assert ids(colleague) == {theirs.pk}
    # Admins may read any file by id; their list is still their own and shared ones.
    assert ids(admin) == set()
    assert ApiClient(bearer_for(admin)).get(f"/files/{mine.pk}").status_code == 200


def test_shared_user_may_read_and_download_but_not_delete_or_reshare(customer: User) -> None:
    colleague = UserFactory(roles=["Customer"])
    third = UserFactory(roles=["Customer"])
    file = make_file(customer)
    assert (
        ApiClient(bearer_for(customer))
        .post(f"/files/{file.pk}/share", {"user_id": colleague.pk})
        .status_code
        == 200
    )
    as_colleague = ApiClient(bearer_for(colleague))
    assert as_colleague.get(f"/files/{file.pk}").status_code == 200
    assert as_colleague.get(f"/files/{file.pk}/download").status_code == 200
    assert as_colleague.delete(f"/files/{file.pk}").status_code == 403
    assert as_colleague.post(f"/files/{file.pk}/share", {"user_id": third.pk}).status_code == 403
    assert ApiClient(bearer_for(third)).get(f"/files/{file.pk}").status_code == 404


def test_share_publishes_file_shared_to_the_recipient_once(customer: User) -> None:
    colleague = UserFactory(roles=["Customer"])
    file = make_file(customer)
    owner = ApiClient(bearer_for(customer))
    before = OutboxEvent.objects.count()
    response = owner.post(f"/files/{file.pk}/share", {"user_id": colleague.pk})
    assert response.status_code == 200
    events = list(OutboxEvent.objects.order_by("pk")[before:])
    assert [(e.topic, e.event) for e in events] == [(f"user.{colleague.pk}", "file.shared")]
    import json

    assert (
        json.loads(events[0].payload)
        == ApiClient(bearer_for(colleague)).get(f"/files/{file.pk}").json()
    )
    # Sharing again grants nothing new and announces nothing.
    assert owner.post(f"/files/{file.pk}/share", {"user_id": colleague.pk}).status_code == 200
    assert OutboxEvent.objects.count() == before + 1


@pytest.mark.parametrize("user_id", [0, -1, 99999999, "x", None])
def test_share_with_bad_user_is_422(customer: User, user_id: object) -> None:
    file = make_file(customer)
    response = ApiClient(bearer_for(customer)).post(f"/files/{file.pk}/share", {"user_id": user_id})
    assert response.status_code == 422


def test_share_with_inactive_user_is_422(customer: User) -> None:
    file = make_file(customer)
    inactive = UserFactory(roles=["Customer"], is_active=False)
    response = ApiClient(bearer_for(customer)).post(
        f"/files/{file.pk}/share", {"user_id": inactive.pk}
    )
    assert response.status_code == 422


def test_download_streams_the_bytes_with_a_safe_disposition(customer: User) -> None:
    file = make_file(customer, content=b"hello\n", filename='bad"name\r\n<x>.html')
    response = ApiClient(bearer_for(customer)).get(f"/files/{file.pk}/download")
    assert response.status_code == 200
    with pytest.warns(Warning, match="asynchronous iterators"):
        assert b"".join(response) == b"hello\n"
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"bad_name_x_.html\"; filename*=UTF-8''bad_name_x_.html"
    )
    assert response["X-Content-Type-Options"] == "nosniff"


def test_delete_removes_the_stored_object_only_after_commit(
    customer: User, django_capture_on_commit_callbacks: Any
) -> None:
    file = make_file(customer)
    storage = storages["default"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert ApiClient(bearer_for(customer)).delete(f"/files/{file.pk}").status_code == 204
    # Rolled back, the bytes would still be needed: they stay until the commit.
    assert storage.exists(file.storage_name)
    for callback in callbacks:
        callback()
    assert not storage.exists(file.storage_name)


@pytest.mark.django_db(transaction=True)
def test_delete_removes_the_stored_object(customer: User) -> None:
    file = make_file(customer)
    storage = storages["default"]
    assert storage.exists(file.storage_name)
    assert ApiClient(bearer_for(customer)).delete(f"/files/{file.pk}").status_code == 204
    assert not storage.exists(file.storage_name)
    assert ApiClient(bearer_for(customer)).get(f"/files/{file.pk}").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_removes_their_stored_files() -> None:
    owner = UserFactory(roles=["Customer"])
    file = make_file(owner)
    owner.delete()
    assert not storages["default"].exists(file.storage_name)


@pytest.mark.parametrize("user_id", ["5", True, 1.0])
def test_share_takes_an_integer_only(customer: User, user_id: object) -> None:
    file = make_file(customer)
    other = UserFactory(roles=["Customer"])
    response = ApiClient(bearer_for(customer)).post(
        f"/files/{file.pk}/share", {"user_id": str(other.pk) if user_id == "5" else user_id}
    )
    assert response.status_code == 422
