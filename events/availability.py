"""Seats held but not sold yet: the catalog counts them, the orders app owns them.

Baskets hold seats, and baskets belong to the orders app, a layer above the catalog. So the catalog does not import
them: the orders app hands its definition of "seats held at `now`" down when it starts (`register_held_seats`, from
OrdersConfig.ready), and the catalog's availability (capacity − sold − held) is computed from it in the database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

# The holds that count at `now`: a queryset with a `ticket_type` foreign key and a `quantity` per row.
HeldSeats = Callable[[datetime], QuerySet[Any]]

_held_seats: list[HeldSeats] = []


def register_held_seats(source: HeldSeats) -> None:
    """Names the rows that hold seats (the orders app's holds); until then nothing is held."""
    _held_seats[:] = [source]


def held_seats(now: datetime) -> QuerySet[Any] | None:
    return _held_seats[0](now) if _held_seats else None


def held_per(outer: str, now: datetime) -> Coalesce | Value:
    """Seats held at `now`, summed per row of the outer query: `outer` is the lookup from a held row to the outer
    row's primary key ("ticket_type" for ticket types, "ticket_type__event" for events); 0 when none."""
    rows = held_seats(now)
    if rows is None:
        return Value(0)
    total = rows.filter(**{outer: OuterRef("pk")}).order_by().values(outer).annotate(total=Sum("quantity"))
    return Coalesce(Subquery(total.values("total"), output_field=IntegerField()), 0)


def held_for(ticket_type_id: int, now: datetime) -> int:
    """Seats held at `now` of one ticket type."""
    rows = held_seats(now)
    if rows is None:
        return 0
    return int(rows.filter(ticket_type_id=ticket_type_id).aggregate(total=Coalesce(Sum("quantity"), 0))["total"])
