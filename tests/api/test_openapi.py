"""The OpenAPI document describes every error answer as it is served (problem+json) and the
input constraints the server enforces; schemathesis checks it against a live server in
test_schemathesis.py, these pin the rules without one."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from ninja import Router

from api.main import TritonAPI
from api.schemas import Input, Name
from tests.conftest import ApiClient

PROBLEM = "application/problem+json"
METHODS = ("get", "put", "post", "delete", "patch")


def _operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return Client().get("/api/v1/openapi.json").json()


def test_every_error_answer_is_documented_as_problem_details(document) -> None:
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        assert "503" in responses and "400" in responses, (method, path)
        if operation.get("security"):
            assert "401" in responses, (method, path)
        if method in ("post", "put", "patch"):
            assert {"413", "415"} <= set(responses), (method, path)
        if operation.get("requestBody") or operation.get("parameters"):
            assert "422" in responses, (method, path)
        for status, answer in responses.items():
            if int(status) >= 400:
                assert list(answer["content"]) == [PROBLEM], (method, path, status)
            if status == "429":
                assert answer["headers"]["Retry-After"]["required"] is True


class ThingIn(Input):
    name: Name


def test_operations_added_later_get_the_problem_answers_too() -> None:
    later = Router()
    later_api = TritonAPI(title="t", version="0", urls_namespace="later-test")

    @later.post("/things", auth=None)
    def thing_create(request, payload: ThingIn) -> dict[str, str]:
        return {}

    later_api.add_router("/", later)
    operation = later_api.get_openapi_schema(path_prefix="")["paths"]["/things"]["post"]
    assert {"400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "401" not in operation["responses"]  # public: no token to refuse


def test_text_fields_state_what_the_server_enforces(document) -> None:
    register = document["components"]["schemas"]["RegisterIn"]["properties"]
    assert register["name"]["pattern"] and register["name"]["maxLength"] == 150
    assert "@" in register["email"]["pattern"]
    assert register["password"]["minLength"] == 8


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\x00b", "email": "n@example.com", "password": "glacier-Otter-517"},
        {"name": " \t ", "email": "n@example.com", "password": "glacier-Otter-517"},
        {"name": "N", "email": "n@@example.com", "password": "glacier-Otter-517"},
        {"name": "N", "email": "n@example.com", "password": "123456789012"},
    ],
    ids=["nul", "blank-name", "bad-email", "digits-only"],
)
def test_input_the_schema_forbids_is_refused(anon: ApiClient, problem, body) -> None:
    problem(anon.post("/auth/register", body), 422)
