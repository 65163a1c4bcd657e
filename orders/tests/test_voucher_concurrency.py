"""Many buyers, the last redemptions of one voucher, real threads, real PostgreSQL row locks: a voucher is never
redeemed more often than its maximum, counting the redemptions live holds keep. The control case removes the
voucher's lock and shows the same checks catch the over-redemption it causes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.db.models import Sum

from aegistickets.errors import VoucherExhaustedError
from events.models import Voucher
from events.tests.factories import TicketTypeFactory, VoucherFactory
from orders import checkout, services
from orders import seats as seat_protocol
from orders.models import Hold, OrderLine
from orders.tests.test_concurrency import assert_books_balance, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUYERS = 8
REDEMPTIONS = 3


def redemptions_taken(voucher: Voucher, now) -> int:
    """Redemptions sold plus those live holds keep: what must never exceed the maximum."""
    voucher.refresh_from_db()
    held = Hold.objects.filter(voucher=voucher, expires_at__gt=now).aggregate(n=Sum("quantity"))["n"] or 0
    return voucher.redeemed + held


def test_buyers_racing_for_the_last_redemptions_get_exactly_that_many(now):
    ticket_type = TicketTypeFactory(capacity=100, max_per_order=10)
    voucher = VoucherFactory(code="RUSH", max_redemptions=REDEMPTIONS)

    def buy(i):
        try:
            basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now, voucher="rush")
        except VoucherExhaustedError as refused:
            return refused.code
        checkout.order_place(
            token=basket.token, name=f"Buyer {i}", email=f"b{i}@example.com", payment_method="test", now=now
        )
        return "bought"

    outcomes = Counter(run_at_once(BUYERS, buy))

    assert outcomes == {"bought": REDEMPTIONS, "voucher_exhausted": BUYERS - REDEMPTIONS}
    voucher.refresh_from_db()
    assert voucher.redeemed == REDEMPTIONS
    assert OrderLine.objects.filter(voucher=voucher).aggregate(n=Sum("quantity"))["n"] == REDEMPTIONS
    assert_books_balance(now)


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "control-without-lock"])
def test_control_the_voucher_lock_is_what_prevents_over_redemption(monkeypatch, now, locked):
    """Widen the window between counting free redemptions and committing the hold. With the voucher's row lock,
    baskets queue and exactly the maximum is held; without it (the control), every basket counts before any
    commits and the voucher is held more often than it may be: proof this test would catch a missing lock."""
    ticket_type = TicketTypeFactory(capacity=100, price=Decimal("20.00"))
    voucher = VoucherFactory(code="RACE", max_redemptions=REDEMPTIONS)
    real_free = seat_protocol.free_redemptions
    everyone_counted = threading.Barrier(BUYERS, timeout=20)

    def slow_count(**kwargs):
        free = real_free(**kwargs)
        if locked:
            time.sleep(0.1)  # the window, which the lock must keep closed
        else:
            everyone_counted.wait()
        return free

    monkeypatch.setattr(seat_protocol, "free_redemptions", slow_count)
    if not locked:
        # The same read as lock_vouchers, minus the lock.
        monkeypatch.setattr(seat_protocol, "lock_vouchers", lambda ids: Voucher.objects.in_bulk(list(ids)))

    def hold(i):
        try:
            services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now, voucher="RACE")
        except VoucherExhaustedError:
            return "voucher_exhausted"
        return "held"

    outcomes = Counter(run_at_once(BUYERS, hold))

    if locked:
        assert outcomes == {"held": REDEMPTIONS, "voucher_exhausted": BUYERS - REDEMPTIONS}
        assert redemptions_taken(voucher, now) == REDEMPTIONS
    else:
        assert redemptions_taken(voucher, now) > REDEMPTIONS
