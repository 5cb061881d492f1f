"""PartialInput: a PATCH body whose fields may be left out but are never null (unless named
nullable), and whose OpenAPI schema names only the field's own type."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.schemas import Omitted, PartialInput


class ThingPatchIn(PartialInput):
    nullable = frozenset({"due"})

    done: bool | Omitted = None
    ids: list[int] | Omitted = None
    due: int | None = None


def test_left_out_fields_are_not_set() -> None:
    assert ThingPatchIn.model_validate({"done": True}).model_dump(exclude_unset=True) == {
        "done": True
    }


@pytest.mark.parametrize("field", ["done", "ids"])
def test_null_is_refused(field: str) -> None:
    with pytest.raises(ValidationError, match="May be left out, but not null"):
        ThingPatchIn.model_validate({field: None})


def test_a_nullable_field_takes_null() -> None:
    assert ThingPatchIn.model_validate({"due": None}).model_dump(exclude_unset=True) == {
        "due": None
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [({"done": 1}, "Expected boolean."), ({"ids": [True]}, "Expected a list of integer values.")],
)
def test_the_json_kind_is_still_checked(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ThingPatchIn.model_validate(body)


def test_the_schema_names_only_the_fields_own_type() -> None:
    properties = ThingPatchIn.model_json_schema()["properties"]
    assert properties["done"]["type"] == "boolean"
    assert properties["ids"]["type"] == "array"
    assert {"type": "null"} in properties["due"]["anyOf"]
