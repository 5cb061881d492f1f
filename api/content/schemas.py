"""Request and response bodies of /posts and /files."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from ninja import Schema
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from api.pagination import PageParams


def _encodable(value: str) -> str:
    """JSON allows lone surrogates and NULs; neither UTF-8 storage nor MariaDB takes them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("Text must be valid Unicode.") from exc
    if "\x00" in value:
        raise ValueError("Text must not contain NUL characters.")
    return value


_utf8 = AfterValidator(_encodable)
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _utf8
]
BodyHtml = Annotated[str, StringConstraints(max_length=100_000), _utf8]


class _Input(BaseModel):
    """A request body: a JSON object, nothing else."""


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
    user_id: int = Field(ge=1, le=2**63 - 1, description="The user who may read the file.")


class FileListQuery(PageParams):
    pass
