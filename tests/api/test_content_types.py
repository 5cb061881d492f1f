"""JSON bodies of any JSON media type, and requests without a body, pass the 415 check
(non-JSON bodies: tests/api/test_errors.py)."""

import pytest

from tests.conftest import ApiClient


@pytest.mark.django_db
def test_json_with_charset_and_problem_json_types_are_read(anon: ApiClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = anon.post(
            "/auth/login",
            raw='{"email": "nobody@example.com", "password": "wrong-password"}',
            content_type=content_type,
        )
        assert response.status_code == 401, content_type


@pytest.mark.django_db
def test_request_without_body_needs_no_content_type(as_customer: ApiClient) -> None:
    response = as_customer.client.post(
        "/api/v1/auth/logout", headers={"Authorization": f"Bearer {as_customer.token}"}
    )
    assert response.status_code == 204
