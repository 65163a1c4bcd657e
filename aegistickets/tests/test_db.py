"""aegistickets.db: insert_new writes the rows the ORM's own insert writes, in one statement; select_converted and
from_row read back the instances the ORM would build."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from aegistickets.db import columns, from_row, insert_new, select_converted
from events.models import Event, TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders.models import Basket, IdempotencyRecord, Order, OrderLine, Ticket

pytestmark = pytest.mark.django_db


def _order(now, **fields) -> Order:  # type: ignore[no-untyped-def]
    values = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "total": Decimal("59.80"),
        "currency": "EUR",
        "payment_method": "test",
        "payment_reference": "ref-1",
        "created_at": now,
    } | fields
    return Order(**values)


def _stored(obj):  # type: ignore[no-untyped-def]
    """Every column of the row as the ORM reads it back."""
    return model_to_dict(type(obj).objects.get(pk=obj.pk))


def test_an_inserted_order_reads_back_like_one_the_orm_saved(now) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = _order(now, code="AT-OURS01"), _order(now, code="AT-ORM001")
    theirs.secret = "s" * 32
    ours.secret = "s" * 32
    theirs.save()

    with CaptureQueriesContext(connection) as queries:
        (inserted,) = insert_new([ours])

    assert inserted is ours
    assert len(queries) == 1
    assert ours.pk is not None
    assert ours.pk != theirs.pk
    assert ours._state.adding is False
    assert ours._state.db == "default"
    row, twin = _stored(ours), _stored(theirs)
    assert {k: v for k, v in row.items() if k not in ("id", "code")} == {
        k: v for k, v in twin.items() if k not in ("id", "code")
    }
    assert row["total"] == Decimal("59.80")
    assert row["created_at"] == now


def test_defaults_taken_when_the_instance_was_built_are_the_ones_stored(now) -> None:  # type: ignore[no-untyped-def]
    order = _order(now)
    code, secret = order.code, order.secret
    insert_new([order])
    stored = Order.objects.get(pk=order.pk)
    assert (stored.code, stored.secret, stored.status) == (code, secret, Order.Status.PAID)


def test_auto_now_add_is_set_as_the_orm_sets_it(now) -> None:  # type: ignore[no-untyped-def]
    (order,) = insert_new([_order(now)])
    (record,) = insert_new([IdempotencyRecord(key="k-1", fingerprint="f" * 64, order=order)])
    assert record.created_at is not None
    assert abs(IdempotencyRecord.objects.get(pk=record.pk).created_at - record.created_at) < timedelta(seconds=1)


def test_many_rows_get_their_own_keys_in_order(now, ticket_type) -> None:  # type: ignore[no-untyped-def]
    (order,) = insert_new([_order(now)])
    lines = insert_new(
        [OrderLine(order=order, ticket_type=ticket_type, quantity=q, unit_price=Decimal("10.00")) for q in (1, 2, 3)]
    )
    tickets = insert_new([Ticket(order=order, line=line, ticket_type=ticket_type) for line in lines for _ in range(2)])

    assert [line.pk for line in lines] == sorted(line.pk for line in lines)
    assert {line.pk: line.quantity for line in lines} == dict(OrderLine.objects.values_list("pk", "quantity"))
    assert {t.pk: (t.code, t.line_id) for t in tickets} == {
        pk: (code, line_id) for pk, code, line_id in Ticket.objects.values_list("pk", "code", "line_id")
    }


def test_a_constraint_violation_raises_and_stores_nothing(now) -> None:  # type: ignore[no-untyped-def]
    insert_new([_order(now, code="AT-SAME01")])
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_new([_order(now, code="AT-SAME01")])
    assert Order.objects.filter(code="AT-SAME01").count() == 1


def test_without_insert_returning_each_instance_is_saved(monkeypatch, now) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    baskets = insert_new([Basket(), Basket()])
    assert all(b.pk is not None for b in baskets)
    assert set(Basket.objects.values_list("pk", flat=True)) == {b.pk for b in baskets}


def test_nothing_to_insert_runs_no_query() -> None:
    with CaptureQueriesContext(connection) as queries:
        assert insert_new([]) == []
    assert len(queries) == 0


# select_converted / from_row: plain-SQL reads that hand back what the ORM would.


def _as_read(instance):  # type: ignore[no-untyped-def]
    """Every concrete field's value as an instance holds it."""
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_a_joined_row_builds_the_instances_the_orm_would_read(now) -> None:  # type: ignore[no-untyped-def]
    event = EventFactory(max_tickets_per_buyer=4, is_published=True)
    # A price with cents, a nullable date set and one left empty, a bool: the values SQLite hands back as text,
    # floats and ints until converted.
    ticket_type = TicketTypeFactory(event=event, price=Decimal("19.90"), sale_starts_at=now, sale_ends_at=None)
    type_columns, type_fields = columns(TicketType, "t")
    event_columns, event_fields = columns(Event, "e")
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {type_columns}, {event_columns} FROM {quote(TicketType._meta.db_table)} t "  # noqa: S608 - model metadata
        f"JOIN {quote(Event._meta.db_table)} e ON e.id = t.event_id WHERE t.id = %s"
    )

    with CaptureQueriesContext(connection) as queries:
        (row,) = select_converted(sql, [ticket_type.pk], [*type_fields, *event_fields])
    read_type = from_row(TicketType, row[: len(type_fields)])
    read_event = from_row(Event, row[len(type_fields) :])

    assert len(queries) == 1
    assert _as_read(read_type) == _as_read(TicketType.objects.get(pk=ticket_type.pk))
    assert _as_read(read_event) == _as_read(Event.objects.get(pk=event.pk))
    assert read_type.price == Decimal("19.90")
    assert isinstance(read_type.price, Decimal)
    assert read_type.sale_starts_at == now
    assert read_type.sale_starts_at.tzinfo is not None
    assert read_type.sale_ends_at is None
    assert read_event.is_published is True
    assert read_type._state.adding is False
    assert read_type._state.db == "default"


def test_a_read_of_nothing_is_an_empty_list() -> None:
    select, fields = columns(Event, "e")
    table = connection.ops.quote_name(Event._meta.db_table)
    sql = f"SELECT {select} FROM {table} e WHERE e.id = %s"  # noqa: S608 - model metadata
    assert select_converted(sql, [-1], fields) == []
