"""Hot-path reads without the ORM's query building.

Building and compiling a queryset cost ~20x what the database spent answering the few
primary-key lookups that every socket and request makes (token, user). Here such a query is
written once per model and process, and rows become model instances through the fields' own
database converters (``Model.from_db``), so callers get exactly what the ORM would give.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models

M = TypeVar("M", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]


def database() -> Any:
    return connections[DEFAULT_DB_ALIAS]


def table_name(model: type[models.Model]) -> str:
    """The model's table, quoted for the database (for SQL written once per process)."""
    return database().ops.quote_name(model._meta.db_table)


def column_name(model: type[models.Model], field: str) -> str:
    """The column of the model's field ``field``, quoted for the database."""
    found = model._meta.get_field(field)
    if not isinstance(found, models.Field):  # a reverse relation has no column
        raise TypeError(f"{model.__name__}.{field} is not a column")
    return database().ops.quote_name(found.column)


def select_columns(model: type[models.Model], alias: str) -> list[str]:
    """The model's concrete columns as ``alias.column``, in ``from_row``'s order."""
    quote = database().ops.quote_name
    return [f"{alias}.{quote(field.column)}" for field in model._meta.concrete_fields]


@cache
def _converters(model: type[models.Model], vendor: str) -> list[tuple[Any, list[Converter]]]:
    db = database()
    result = []
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        result.append((column, db.ops.get_db_converters(column) + column.get_db_converters(db)))
    return result


def from_row(model: type[M], values: tuple[Any, ...] | list[Any]) -> M:
    """An instance from a row of ``select_columns(model, ...)`` values, converted like the ORM
    converts them (timezone-aware datetimes, booleans, JSON, ...)."""
    db = database()
    converted = []
    for value, (column, converters) in zip(values, _converters(model, db.vendor), strict=True):
        for converter in converters:
            value = converter(value, column, db)
        converted.append(value)
    return model.from_db(db.alias, [f.attname for f in model._meta.concrete_fields], converted)


@cache
def _by_pk_sql(model: type[models.Model], vendor: str) -> str:
    columns = ", ".join(select_columns(model, "t"))
    pk = column_name(model, model._meta.pk.name)
    return f"SELECT {columns} FROM {table_name(model)} t WHERE t.{pk} = %s"  # noqa: S608


def get_by_pk(model: type[M], pk: Any) -> M | None:
    """``model.objects.filter(pk=pk).first()``, minus the query building."""
    db = database()
    with db.cursor() as cursor:
        cursor.execute(_by_pk_sql(model, db.vendor), [pk])
        row = cursor.fetchone()
    return None if row is None else from_row(model, row)
