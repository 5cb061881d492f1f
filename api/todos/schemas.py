"""Request and response bodies of /tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from ninja import Schema
from pydantic import Field

from api.pagination import PageParams
from api.schemas import NOT_BLANK, Input, IsoDate, Omitted, PartialInput, Text
from backend.todos.models import DETAILS_MAX_LENGTH, TITLE_MAX_LENGTH

Title = Annotated[
    str, Text(max_length=TITLE_MAX_LENGTH, min_length=1, pattern=NOT_BLANK, trim=True)
]
Details = Annotated[str, Text(max_length=DETAILS_MAX_LENGTH)]
DueDate = IsoDate


class TaskOut(Schema):
    id: int
    user_id: int
    title: str
    details: str
    due_date: date | None
    completed_at: datetime | None = Field(description="When it was marked done; null if open.")
    created_at: datetime
    updated_at: datetime


class TaskCreateIn(Input):
    title: Title
    details: Details = ""
    due_date: DueDate | None = None


class TaskPatchIn(PartialInput):
    """Fields may be left out; only ``due_date`` may be null (clears it)."""

    nullable = frozenset({"due_date"})

    title: Title | Omitted = None
    details: Details | Omitted = None
    due_date: DueDate | None = None
    completed: bool | Omitted = Field(
        None, description="true sets completed_at (kept if already done), false clears it."
    )


class TaskListQuery(PageParams):
    completed: bool | None = Field(None, description="Only done (true) or open (false) tasks.")
    due_before: IsoDate | None = Field(None, description="Only tasks due before this day.")
