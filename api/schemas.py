"""Request-body building blocks shared by every area of the API.

Each text type states in the OpenAPI document exactly what the server enforces: lengths and a
``pattern`` (no NUL characters, which neither the database nor C libraries take; not blank
where blank makes no sense; the shape of an email address). pydantic checks the same
constraints, so a request the schema calls valid is never refused for its syntax, and one it
calls invalid is always refused (422).
"""

from __future__ import annotations

import datetime
import re
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, TypeAlias, Union, get_args, get_origin

from annotated_types import GroupedMetadata
from django.conf import settings
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

# JSON Schema patterns are unanchored searches: anchor them.
NO_NUL = r"^[^\x00]*$"
# At least one character other than NUL and ASCII white space.
NOT_BLANK = r"^[^\x00]*[^\x00 \t\n\r][^\x00]*$"
_TRIMMED = " \t\n\r"

_LOCAL_PART = r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# An address Django's EmailValidator accepts (a subset of RFC 5322: dot-atom local part,
# letter-only top-level domain); surrounding spaces are allowed and removed.
EMAIL_PATTERN = rf"^ *{_LOCAL_PART}@(?:{_LABEL}\.)+[A-Za-z]{{2,63}} *$"


def _valid_unicode(value: str) -> str:
    """JSON allows lone surrogates (``"\\ud800"``); neither UTF-8 nor the database does."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("Text must be valid Unicode.") from exc
    return value


def _trim(value: str) -> str:
    return value.strip(_TRIMMED)


@dataclass(frozen=True)
class Text(GroupedMetadata):
    """Constraints of a text field, for ``Annotated[str, Text(...)]``: lengths and a pattern
    (checked on the text as sent), valid Unicode, and with ``trim`` surrounding ASCII white
    space removed afterwards. pydantic expands it into its parts."""

    max_length: int
    min_length: int = 0
    pattern: str = NO_NUL
    trim: bool = False

    def __iter__(self) -> Iterator[object]:
        # The constraints come before the validators: placed after one, pydantic skips them.
        yield StringConstraints(
            min_length=self.min_length, max_length=self.max_length, pattern=self.pattern
        )
        yield AfterValidator(_valid_unicode)
        if self.trim:
            yield AfterValidator(_trim)


def _iso_date_only(value: object) -> object:
    """pydantic would read ``0`` or ``"0"`` as a Unix time; the schema says ``YYYY-MM-DD``."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("Expected a date as YYYY-MM-DD.")
    if not isinstance(value, str | datetime.date):
        raise ValueError("Expected a date as YYYY-MM-DD.")
    return value


# A calendar day, in query strings and bodies alike; MySQL's DATE starts at year 1000, which
# the document says with a pattern (JSON Schema has no minimum for dates).
IsoDate = Annotated[
    datetime.date,
    BeforeValidator(_iso_date_only),
    Field(ge=datetime.date(1000, 1, 1)),
    WithJsonSchema(
        {"type": "string", "format": "date", "pattern": r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$"}
    ),
]


def _password_min_length() -> int:
    for validator in settings.AUTH_PASSWORD_VALIDATORS:
        if validator["NAME"].endswith(".MinimumLengthValidator"):
            return int(validator.get("OPTIONS", {}).get("min_length", 8))
    return 1


Name = Annotated[str, Text(max_length=150, min_length=1, pattern=NOT_BLANK, trim=True)]
# A new address (register, create, change); the service lower-cases it.
Email = Annotated[str, Text(max_length=254, min_length=1, pattern=EMAIL_PATTERN, trim=True)]
# An address typed to sign in or to ask for a reset: any text, the answer is the same.
EmailLookup = Annotated[str, Text(max_length=254, trim=True)]
# Long enough for any password manager, short enough that hashing it costs nothing.
Password = Annotated[str, Text(max_length=1024, min_length=1)]
# A new password: the minimum length and "not only digits" are syntax, stated here; "not a
# common password" and "not like your name or email" are checked by the service (422).
NewPassword = Annotated[
    str,
    Text(
        max_length=1024,
        min_length=_password_min_length(),
        pattern=r"^[^\x00]*[A-Za-z][^\x00]*$",
    ),
]
RoleName = Annotated[str, Text(max_length=150, min_length=1)]
DeviceName = Annotated[str, Text(max_length=255, trim=True)]
SearchTerm = Annotated[str, Text(max_length=100, trim=True)]
ResetToken = Annotated[str, Text(max_length=200, min_length=1, pattern=NOT_BLANK, trim=True)]


# The type of a PartialInput field that may be left out: ``X | Omitted = None``. None in
# Python means "left out"; on the wire null is refused, and the OpenAPI document names only X.
Omitted: TypeAlias = SkipJsonSchema[None]


# The JSON kind the OpenAPI document gives each Python type: pydantic's lax mode would also
# take ``0`` for a boolean, ``"5"`` or ``5.0`` for an integer, a number for a decimal string
# or a timestamp for a date, which the schema calls invalid.
_JSON_KINDS: dict[type, tuple[type, ...]] = {
    bool: (bool,),
    int: (int,),
    float: (int, float),
    # pydantic's schema for a Decimal is a number or a numeric string.
    Decimal: (str, int, float),
    datetime.datetime: (str,),
    datetime.date: (str,),
    uuid.UUID: (str,),
}


def _json_kinds(annotation: Any) -> tuple[type, ...] | None:
    """The JSON kinds a value of ``annotation`` may arrive as, or None when not checked here."""
    if annotation is type(None):
        return (type(None),)
    if annotation == Omitted:
        return ()  # not in the document: no kind it names
    origin = get_origin(annotation)
    if origin is Annotated:
        return _json_kinds(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds: list[type] = []
        for arm in get_args(annotation):
            arm_kinds = _json_kinds(arm)
            if arm_kinds is None:
                return None
            kinds.extend(arm_kinds)
        return tuple(kinds)
    return _JSON_KINDS.get(annotation) if isinstance(annotation, type) else None


def _is_none(annotation: Any) -> bool:
    """``None``, possibly Annotated (``Omitted`` is)."""
    if get_origin(annotation) is Annotated:
        return _is_none(get_args(annotation)[0])
    return annotation is type(None)


def _item_annotation(annotation: Any) -> Any:
    """``X`` for ``list[X]`` (possibly Annotated or optional), else None."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _item_annotation(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        arms = [arm for arm in get_args(annotation) if not _is_none(arm)]
        return _item_annotation(arms[0]) if len(arms) == 1 else None
    if origin in (list, set, tuple, frozenset):
        args = get_args(annotation)
        return args[0] if args else None
    return None


def _is_kind(value: object, kinds: tuple[type, ...]) -> bool:
    # bool is an int subclass in Python, never in JSON.
    if isinstance(value, bool):
        return bool in kinds
    return isinstance(value, kinds)


class Input(BaseModel):
    """A request body: a JSON object, nothing else. (ninja's ``Schema`` reads attributes off
    any value, so ``[]``, ``null`` or ``0`` would pass as an empty object.) Each field takes
    only the JSON kind its schema names (see ``_JSON_KINDS``)."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_kind_as_documented(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        kinds = _json_kinds(annotation)
        if kinds is not None and not _is_kind(value, kinds):
            raise ValueError(f"Expected {_describe(kinds)}.")
        item = _item_annotation(annotation)
        item_kinds = _json_kinds(item) if item is not None else None
        if (
            item_kinds is not None
            and isinstance(value, list)
            and not all(_is_kind(v, item_kinds) for v in value)
        ):
            raise ValueError(f"Expected a list of {_describe(item_kinds)} values.")
        return value


def _describe(kinds: tuple[type, ...]) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return " or ".join(names.get(kind, "null") for kind in kinds)


class PartialInput(Input):
    """Fields may be left out; ``null`` is never a value, except in the fields named in
    ``nullable`` (declared ``X | None``, where null means "clear it")."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: object, info: ValidationInfo) -> object:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("May be left out, but not null.")
        return value
