"""Database helpers for the write path's hottest statements."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model
from django.db.models.expressions import Col

_Model = TypeVar("_Model", bound=Model)


def insert_new(objs: list[_Model]) -> list[_Model]:
    """Saves fresh instances of one model in one INSERT … RETURNING and gives them their primary keys.

    What `bulk_create` does for them, minus its query compiler, which costs more CPU than the statement itself
    for the few rows a checkout writes (docs/performance.md). Each value is read and prepared as the ORM's own
    insert prepares it: `pre_save` (auto_now_add, defaults the instance took when it was built), then
    `get_db_prep_save` (Decimal, datetime). No signal is sent, as with `bulk_create`. A database that cannot
    return rows from an INSERT (SQLite before 3.35) gets one `save()` per instance.
    """
    if not connection.features.can_return_rows_from_bulk_insert:
        for obj in objs:
            obj.save(force_insert=True)
        return objs
    if not objs:
        return objs
    meta = objs[0]._meta
    fields = [field for field in meta.concrete_fields if field is not meta.auto_field]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(field.column)) for field in fields)  # a concrete field always has its column
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * len(objs))} "  # noqa: S608 - model metadata
        f"RETURNING {quote(str(meta.pk.column))}"
    )
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for obj in objs for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [key for (key,) in cursor.fetchall()]
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def columns(model: type[Model], alias: str) -> tuple[str, tuple[Field[Any, Any], ...]]:
    """A model's concrete columns as a select list under a table alias, and their fields, in model order: the
    row shape `select_converted` reads back and `from_row` builds an instance from."""
    fields = tuple(model._meta.concrete_fields)
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(str(field.column))}" for field in fields), fields


@dataclass(frozen=True)
class Joined:
    """The columns of several models read by one plain-SQL join: its select list, their fields in row order (for
    `select_converted`) and where each model's slice of a row lies (for `load`)."""

    select: str
    fields: tuple[Field[Any, Any], ...]
    slices: dict[type[Model], slice]

    def load(self, model: type[_Model], row: Sequence[Any]) -> _Model:
        """The instance of `model` in a row this join read."""
        return from_row(model, row[self.slices[model]])


def joined(*tables: tuple[type[Model], str]) -> Joined:
    """Every concrete column of each (model, table alias), in that order."""
    selects: list[str] = []
    fields: list[Field[Any, Any]] = []
    slices: dict[type[Model], slice] = {}
    for model, alias in tables:
        select, model_fields = columns(model, alias)
        selects.append(select)
        slices[model] = slice(len(fields), len(fields) + len(model_fields))
        fields.extend(model_fields)
    return Joined(", ".join(selects), tuple(fields), slices)


def select_converted(sql: str, params: Sequence[Any], fields: Sequence[Field[Any, Any]]) -> list[list[Any]]:
    """The rows of a plain SELECT whose columns are `fields`, in order, each value converted as the ORM converts
    what it reads (the backend's converters, then the field's own): a Decimal, an aware datetime, a bool on every
    database. For the write path's hottest reads, whose query building costs more CPU than the statement."""
    converters = _converters(tuple(fields))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [list(row) for row in cursor.fetchall()]
    for row in rows:
        for index, column, functions in converters:
            value = row[index]
            for convert in functions:
                value = convert(value, column, connection)
            row[index] = value
    return rows


@functools.lru_cache(maxsize=64)
def _converters(fields: tuple[Field[Any, Any], ...]) -> list[tuple[int, Col, list[Callable[..., Any]]]]:
    """Which columns of a row need converting, and how: what the ORM's compiler works out for each query. Worked
    out once per process: the functions are those of the first connection that asked, and read only settings
    (time zone, decimal places) that every connection of the process shares; PostgreSQL needs none for the
    fields read this way, SQLite needs them for decimals, datetimes and booleans."""
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(field.model._meta.db_table)
        functions = [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]
        if functions:
            converters.append((index, column, functions))
    return converters


def from_row(model: type[_Model], values: Sequence[Any]) -> _Model:
    """An instance loaded from the database out of one model's slice of a `select_converted` row."""
    return model.from_db(connection.alias, _attnames(model), values)


@functools.cache
def _attnames(model: type[Model]) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


def with_prefetched(instance: _Model, **rows: list[Any]) -> _Model:
    """Fills an instance's prefetch cache with rows already in hand, as prefetch_related() would after its own
    queries: showing a fresh order (lines, tickets, their ticket types and events) then costs no query."""
    cache = {}
    for name, values in rows.items():
        queryset = getattr(instance, name).all()
        queryset._result_cache = values
        queryset._prefetch_done = True
        cache[name] = queryset
    instance._prefetched_objects_cache = cache  # type: ignore[attr-defined]
    return instance
