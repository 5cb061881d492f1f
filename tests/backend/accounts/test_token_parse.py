"""One token parser for the REST bearer and the socket's auth frame."""

from __future__ import annotations

import pytest

from backend.accounts.tokens import ParsedToken, token_parse
from tests.conftest import ApiClient
from tests.factories import UserFactory, bearer_for

NOT_TOKENS = [
    "²|x",
    "1²|x",
    "\u0663|x",
    "1|",
    "|x",
    "",
    "nobar",
    "9" * 19 + "|x",
    "1|" + "x" * 129,
    None,
    7,
    ["1|x"],
]


@pytest.mark.parametrize("text", NOT_TOKENS)
def test_anything_that_cannot_be_a_token_parses_to_none(text: object) -> None:
    assert token_parse(text) is None


def test_a_token_parses_to_its_id_and_secret() -> None:
    assert token_parse("42|s3cr3t|with-bar") == ParsedToken(token_id=42, secret="s3cr3t|with-bar")


@pytest.mark.django_db
@pytest.mark.parametrize("text", [t for t in NOT_TOKENS if isinstance(t, str) and t])
def test_rest_answers_401_for_them(text: str) -> None:
    answer = ApiClient(text).get("/auth/me")
    assert answer.status_code == 401, answer.content
    assert answer["Content-Type"].startswith("application/problem+json")


@pytest.mark.django_db
def test_rest_accepts_a_live_token() -> None:
    user = UserFactory()
    assert ApiClient(bearer_for(user)).get("/auth/me").status_code == 200
