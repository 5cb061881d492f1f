"""Request and response bodies of /posts and /files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ninja import Schema
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)

from api.pagination import PageParams

# JSON Schema patterns are unanchored searches: anchor them. The schema states exactly what
# is enforced, so a request it calls valid is never refused for its syntax.
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\x00 \t\n\r][^\x00]*$"
_TRIMMED = " \t\n\r"


def _valid_unicode(value: str) -> str:
    """JSON allows lone surrogates; neither UTF-8 storage nor MariaDB takes them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("Text must be valid Unicode.") from exc
    return value


def _trim(value: str) -> str:
    return value.strip(_TRIMMED)


# The constraints come before the validators: placed after one, pydantic skips them.
Title = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK),
    AfterValidator(_valid_unicode),
    AfterValidator(_trim),
]
BodyHtml = Annotated[
    str, StringConstraints(max_length=100_000, pattern=NO_NUL), AfterValidator(_valid_unicode)
]
Id = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]


class _Input(BaseModel):
    """A request body: a JSON object, nothing else; each field takes only its own JSON kind
    (no 0 for false, no "5" for 5)."""

    model_config = ConfigDict(strict=True)


# --- posts ----------------------------------------------------------------------------------
class PostOut(Schema):
    id: int
    user_id: int
    title: str
    body_html: str = Field(description="Sanitized HTML (allow-list of ordinary formatting).")
    published_at: datetime | None = Field(description="Null while the post is a draft.")
    created_at: datetime
    updated_at: datetime


class PostCreateIn(_Input):
    title: Title
    body_html: BodyHtml = Field("", description="HTML; sanitized on the way in.")
    published: bool = Field(False, description="True publishes at once; else a draft.")


class PostPatchIn(_Input):
    """Fields may be left out; ``null`` is never a value."""

    title: Title = None  # type: ignore[assignment]
    body_html: BodyHtml = None  # type: ignore[assignment]
    published: bool = Field(  # type: ignore[assignment]
        None, description="True publishes a draft; false takes a published post back to draft."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("May be left out, but not null.")
        return value


class PostPutIn(PostPatchIn):
    """The full editable representation: title and body_html are required."""

    title: Title
    body_html: BodyHtml


class PostListQuery(PageParams):
    published: bool | None = Field(
        None,
        description="true: published posts only; false: drafts (own, or all with posts.manage).",
    )
    user_id: int | None = Field(None, ge=1, le=2**63 - 1, description="Posts by this author.")


# --- files ----------------------------------------------------------------------------------
class FileOut(Schema):
    id: int
    user_id: int
    filename: str = Field(
        description="The uploaded name, made safe (no directories or control characters)."
    )
    size: int = Field(description="Bytes.")
    mime_type: str = Field(description="Sniffed from the content, not taken from the client.")
    created_at: datetime


class FileShareIn(_Input):
    user_id: Id = Field(description="The user who may read the file.")


class FileListQuery(PageParams):
    pass
