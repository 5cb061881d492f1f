"""Errors as a client sees them: problem+json everywhere, 400/404/405/422 as the contract
says, and no input, however malformed, answered with a 500."""

from __future__ import annotations

import json

import pytest

from backend.accounts.models import User
from tests.conftest import ApiClient
from tests.factories import UserFactory, bearer_for

pytestmark = pytest.mark.django_db

STRONG = "glacier-Otter-517"

RAW_GARBAGE: list[bytes] = [
    b"{",
    b"not json",
    b"\xff\xfe\x00\x00",
    b"\x00\x01\x02",
    b'{"email": }',
    b'{"a": 1}{"b": 2}',
    b"[]",
    b"[1, 2, 3]",
    b"null",
    b"0",
    b"-1e999",
    b"NaN",
    b"true",
    b'"just a string"',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"email": "' + b"a" * 1_000_000 + b'"}',
    b'{"email": "\\ud800@example.com", "password": "x", "name": "x"}',
    b'{"email": "\\u0000", "password": "\\u0000", "name": "\\u0000"}',
    '{"email": "ü@ü.ü", "password": "ü", "name": "ü"}'.encode("latin-1"),
]

JSON_GARBAGE: list[object] = [
    {},
    {"email": None, "password": None, "name": None, "token": None},
    {"email": 123, "password": 456, "name": 789, "token": 1},
    {"email": ["a@example.com"], "password": ["x"], "name": ["x"]},
    {"email": {"$gt": ""}, "password": {"$ne": None}, "name": {}},
    {"email": True, "password": False, "name": True},
    {"email": "a@example.com", "password": STRONG, "name": "x" * 100_000},
    {"email": "x" * 100_000 + "@example.com", "password": STRONG, "name": "x"},
    {"email": "a@example.com", "password": "p" * 100_000, "name": "x"},
    {"email": "\ud800@example.com", "password": STRONG, "name": "\udfff"},
    {"email": "nul\u0000@example.com", "password": STRONG, "name": "nul\u0000"},
    {"email": "a@example.com", "password": STRONG, "name": "💥" * 151},
    {"email": "a@example.com", "password": STRONG, "name": "x", "roles": "Admin"},
    {"email": "a@example.com", "password": STRONG, "name": "x", "roles": [1, None, {}]},
    {"email": "a@example.com", "password": STRONG, "name": "x", "roles": ["R"] * 10_000},
    {"email": "a@example.com", "password": STRONG, "name": "x", "is_active": "sometimes"},
    {"email": "a@example.com", "password": STRONG, "name": "x", "is_active": 10**30},
    {"email": "a@example.com", "token": "t" * 100_000, "password": STRONG},
    {"email": "ä@exämple.com", "token": "ä-ö", "password": "ü" * 10, "name": "Ärger"},
    {"email": "a@example.com", "password": STRONG, "name": "x", "device_name": ["x"]},
]


def _endpoints(admin: ApiClient, target_id: int) -> list[tuple[ApiClient, str, str]]:
    anon = ApiClient()
    return [
        (anon, "POST", "/auth/register"),
        (anon, "POST", "/auth/login"),
        (anon, "POST", "/auth/forgot-password"),
        (anon, "POST", "/auth/reset-password"),
        (admin, "POST", "/users"),
        (admin, "PATCH", f"/users/{target_id}"),
        (admin, "PUT", f"/users/{target_id}"),
    ]


def _assert_handled(response, context: object) -> None:
    assert response.status_code < 500, (context, response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/problem+json"), context
        assert response.json()["status"] == response.status_code


@pytest.mark.parametrize("raw", RAW_GARBAGE, ids=range(len(RAW_GARBAGE)))
def test_no_raw_body_causes_a_500(as_admin: ApiClient, raw: bytes) -> None:
    target = UserFactory()
    for client, method, path in _endpoints(as_admin, target.pk):
        response = client.request(method, path, raw=raw)
        _assert_handled(response, (method, path))
        assert response.status_code in (400, 422), (method, path, response.status_code)


@pytest.mark.parametrize("body", JSON_GARBAGE, ids=range(len(JSON_GARBAGE)))
def test_no_json_body_causes_a_500(as_admin: ApiClient, body: object) -> None:
    target = UserFactory()
    for client, method, path in _endpoints(as_admin, target.pk):
        _assert_handled(client.request(method, path, body), (method, path))


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_odd_content_types_are_handled(anon: ApiClient, content_type: str) -> None:
    response = anon.post("/auth/login", raw=b"email=a&password=b", content_type=content_type)
    _assert_handled(response, content_type)
    assert response.status_code == 415  # the API reads JSON bodies only


@pytest.mark.parametrize(
    "query",
    [
        "limit=%00",
        "search=%00",
        "search=%ff%fe",
        "offset=1e9999",
        "limit=1&limit=2&limit=x",
        "search=" + "%F0%9F%92%A5" * 50,
        "limit=",
        "offset=NaN",
    ],
)
def test_no_query_string_causes_a_500(as_admin: ApiClient, query: str) -> None:
    _assert_handled(as_admin.get(f"/users?{query}"), query)


@pytest.mark.parametrize(
    "path",
    [
        "/users/0",
        "/users/-1",
        "/users/1.5",
        "/users/%00",
        "/users/99999999999999999999999999999",
        "/users/1e3",
        "/users/١٢",
    ],
)
def test_odd_user_ids_are_not_found(as_admin: ApiClient, problem, path: str) -> None:
    problem(as_admin.get(path), 404)
    problem(as_admin.delete(path), 404)
    for method in ("PATCH", "PUT"):
        response = as_admin.request(method, path, {"name": "x", "email": "x@example.com"})
        problem(response, 404)


def test_unparsable_json_is_400(anon: ApiClient, problem) -> None:
    body = problem(anon.post("/auth/login", raw=b'{"email": "a@example.com",'), 400)
    assert "parse" in body["detail"].lower() or "json" in body["detail"].lower()


def test_schema_errors_are_422_with_locations(anon: ApiClient, problem) -> None:
    body = problem(anon.post("/auth/login", {"email": 5, "password": ["x"]}), 422)
    locs = sorted(tuple(e["loc"]) for e in body["errors"])
    assert locs == [("body", "email"), ("body", "password")]
    assert all(isinstance(e["msg"], str) and e["msg"] for e in body["errors"])


def test_a_json_array_instead_of_an_object_is_422(anon: ApiClient, problem) -> None:
    body = problem(anon.post("/auth/login", [{"email": "a@example.com"}]), 422)
    assert body["errors"][0]["loc"][0] == "body"


def test_unknown_routes_are_404_problems_even_without_a_token(anon: ApiClient, problem) -> None:
    for path in ("/api/v1/nope", "/api/v1/users/1/extra", "/api/v1/auth/", "/api/v2/users"):
        body = problem(anon.get(path), 404)
        assert body["title"] == "Not found"


def test_wrong_methods_are_405_problems(as_admin: ApiClient, anon: ApiClient, problem) -> None:
    response = anon.delete("/auth/login")
    problem(response, 405)
    assert "POST" in response["Allow"]
    problem(anon.get("/auth/register"), 405)
    problem(as_admin.post("/roles", {"name": "x"}), 405)
    problem(as_admin.request("POST", "/users/1", {"name": "x"}), 405)


def test_unicode_survives_the_round_trip(anon: ApiClient) -> None:
    name = "Zoë Ærøskøbing 李小龍 🚀"
    response = anon.post(
        "/auth/register", {"name": name, "email": "zoe@example.com", "password": STRONG}
    )
    assert response.status_code == 201
    assert response["Content-Type"].startswith("application/json")
    token = response.json()["token"]
    assert ApiClient(token).get("/auth/me").json()["name"] == name
    assert User.objects.get(email="zoe@example.com").name == name


def test_lone_surrogates_are_refused_not_stored(anon: ApiClient, problem) -> None:
    raw = json.dumps({"name": "bad \ud800", "email": "s@example.com", "password": STRONG})
    body = problem(anon.post("/auth/register", raw=raw), 422)
    assert body["errors"][0]["loc"] == ["body", "name"]
    assert not User.objects.filter(email="s@example.com").exists()


def test_errors_never_echo_passwords(anon: ApiClient, customer: User) -> None:
    secret = "my-very-secret-password-123"
    for path in ("/auth/login", "/auth/register"):
        response = anon.post(path, {"email": customer.email, "password": secret, "name": ["x"]})
        assert secret not in response.content.decode()


def test_the_openapi_document_describes_the_accounts_routes(anon: ApiClient) -> None:
    document = anon.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path in ("/auth/register", "/auth/login", "/users", "/users/{user_id}", "/roles"):
        assert f"/api/v1{path}" in paths
    register = paths["/api/v1/auth/register"]["post"]
    assert {"201", "409", "422", "429"} <= set(register["responses"])
    assert "security" not in register or register["security"] in ([], [{}])
    assert paths["/api/v1/users"]["get"]["security"] == [{"TokenAuth": []}]


def test_a_deactivated_account_cannot_be_used_through_a_fresh_token(problem) -> None:
    user = UserFactory(is_active=False)
    problem(ApiClient(bearer_for(user)).get("/auth/me"), 401)


def test_an_oversized_body_is_413(anon: ApiClient, settings, problem) -> None:
    too_big = settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1
    raw = b'{"email": "' + b"a" * too_big + b'", "password": "x"}'
    problem(anon.post("/auth/login", raw=raw), 413)
    problem(anon.post("/auth/register", raw=raw), 413)


def test_a_dead_cache_is_503_not_500(anon: ApiClient, customer: User, settings, problem) -> None:
    # Throttle counters live in the cache; point it at a closed port on loopback.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    credentials = {"email": customer.email, "password": "whatever-it-is-1"}
    answer = anon.post("/auth/login", credentials)
    problem(answer, 503)
    # The client did nothing wrong: it is told when to try again.
    assert answer["Retry-After"] == "5"
    problem(anon.post("/auth/forgot-password", {"email": customer.email}), 503)
