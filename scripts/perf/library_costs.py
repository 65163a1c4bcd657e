"""What each piece of our own saves against the stock library path it replaces, measured in one process, one run.

    python -m scripts.perf.library_costs [--requests 300] [--rounds 5]

The shop's rule (docs/architecture.md): stock libraries first; a piece of our own only where a same-run benchmark
shows the library costing more than 10 % of a hot path. This measures every such piece, with production settings
on PostgreSQL and prometheus_client in multiprocess mode as under gunicorn, CPU of this process only (best of
`--rounds`; the machine's other work only ever slows a round down):

- the two middleware pieces (django-csp's and django-prometheus' after-middleware, stock against ours) as a share
  of a cached catalog read (`GET /api/events`), the request each is on for every shopper;
- DRF serializers made per request against `ReusedSerializer`, as a share of a basket add (`POST /api/basket`);
- each statement of the seat protocol's own SQL (`orders/seats.py`) against the ORM statement it stands for, and
  the statements' sum as a share of a checkout.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from scripts.perf.in_process import event_on_sale, set_up_django


def best_ms(work: Callable[[], Any], *, requests: int, rounds: int) -> float:
    """Fastest round's CPU per call, in milliseconds."""
    for _ in range(10):
        work()
    rounds_ms = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            work()
        rounds_ms.append((time.process_time() - started) / requests * 1000)
    return min(rounds_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    set_up_django("aegistickets_library_costs")
    measure = Measure(requests=args.requests, rounds=args.rounds)
    rows = [*measure.middlewares(), *measure.serializers(), *measure.statements()]
    width = max(len(name) for name, *_ in rows)
    print(f"{'piece':{width}}  {'library':>8}  {'ours':>8}  saves, as a share of the path")
    for name, library, ours, share in rows:
        print(f"{name:{width}}  {library:8.3f}  {ours:8.3f}  {share}")


class Measure:
    def __init__(self, *, requests: int, rounds: int) -> None:
        from django.test import Client

        from events.models import TicketType

        self.requests, self.rounds = requests, rounds
        self.client = Client()
        self.event = event_on_sale("Costs")
        self.ticket_type = TicketType.objects.create(event=self.event, name="Any", price="10.00", capacity=10**6)

    def ms(self, work: Callable[[], Any]) -> float:
        return best_ms(work, requests=self.requests, rounds=self.rounds)

    def path_ms(self, middleware: list[str], request: Callable[[Any], Any]) -> float:
        from django.test import Client, override_settings

        with override_settings(MIDDLEWARE=middleware):
            client = Client()  # its handler loads MIDDLEWARE as it is now
            request(client)
            return self.ms(lambda: request(client))

    def middlewares(self) -> list[tuple[str, float, float, str]]:
        from django.conf import settings

        ours = list(settings.MIDDLEWARE)
        swaps = {
            "django-csp's middleware": (
                "aegistickets.security.ContentSecurityPolicyMiddleware",
                "csp.middleware.CSPMiddleware",
            ),
            "django-prometheus' after-middleware": (
                "aegistickets.metrics.PrometheusAfterMiddleware",
                "scripts.perf.library_costs.StockPrometheusAfterMiddleware",
            ),
        }

        def read(client: Any) -> Any:
            return client.get("/api/events")

        rows = []
        for name, (mine, stock) in swaps.items():
            library = self.path_ms([stock if m == mine else m for m in ours], read)
            with_ours = self.path_ms(ours, read)
            rows.append((name, library, with_ours, f"{(library - with_ours) / library:.0%} of GET /api/events"))
        return rows

    def serializers(self) -> list[tuple[str, float, float, str]]:
        """A basket add's and a checkout's input and output serializers, made per request against reused."""
        from aegistickets.api import ReusedSerializer
        from orders.apis import BasketAddInput, BasketOutput, CheckoutInput, OrderOutput
        from orders.models import Order
        from orders.selectors import basket_summary, order_detail

        body = json.dumps({"ticket_type_id": self.ticket_type.pk, "quantity": 1})
        tokens = []

        def add() -> None:
            response = self.client.post("/api/basket", body, content_type="application/json")
            tokens.append(response.json()["token"])

        add_ms, checkout_ms = self.ms(add), self.checkout_ms()
        summary = basket_summary(token=tokens[-1], now=self.event.created_at)
        order = order_detail(
            Order.objects.prefetch_related("lines__ticket_type__event", "tickets__ticket_type__event").latest("pk")
        )
        paths = {
            "a basket add": (
                BasketAddInput,
                {"ticket_type_id": self.ticket_type.pk, "quantity": 1},
                BasketOutput,
                summary,
                add_ms,
            ),
            "a checkout": (
                CheckoutInput,
                {"basket": tokens[-1], "name": "A B", "email": "a@example.com", "payment_method": "test"},
                OrderOutput,
                order,
                checkout_ms,
            ),
        }
        rows = []
        for path, (given, data, output, shown, path_ms) in paths.items():
            if not issubclass(output, ReusedSerializer):
                raise TypeError(f"{output.__name__} is not a ReusedSerializer any more: this measures nothing")

            def fresh(given: Any = given, data: Any = data, output: Any = output, shown: Any = shown) -> None:
                serializer = given(data=data)
                serializer.is_valid(raise_exception=True)
                _ = output(shown).data

            def reused(given: Any = given, data: Any = data, output: Any = output, shown: Any = shown) -> None:
                given.validated(data)
                output.represent(shown)

            library, ours = self.ms(fresh), self.ms(reused)
            rows.append(
                (
                    f"DRF serializers made per request, {path}",
                    library,
                    ours,
                    f"{(library - ours) / path_ms:.0%} of {path}",
                )
            )
        return rows

    def statements(self) -> list[tuple[str, float, float, str]]:
        from django.db import transaction
        from django.utils import timezone

        from orders import seats
        from orders.models import Order

        now = timezone.now()
        with transaction.atomic():
            basket = seats.new_basket()
            seats.hold(basket=basket, ticket_type_id=self.ticket_type.pk, held=None, quantity=1, expires_at=now)
            order = Order.objects.create(
                name="A", email="a@example.com", total=1, currency="EUR", payment_method="test", created_at=now
            )
            pairs = seat_statements(self.ticket_type, basket=basket, order=order, now=now)
            rows = [(name, self.ms(library), self.ms(ours)) for name, (library, ours) in pairs.items()]
            transaction.set_rollback(True)
        saved = sum(library - ours for _, library, ours in rows)
        checkout = self.checkout_ms()
        total = (
            "SQL: all of the above, once each",
            sum(r[1] for r in rows),
            sum(r[2] for r in rows),
            f"{saved:.2f} ms; an API checkout takes {checkout:.2f} ms with ours",
        )
        return [*((f"SQL: {name}", library, ours, "") for name, library, ours in rows), total]

    def checkout_ms(self) -> float:
        """A checkout through the API (POST /api/checkout with an Idempotency-Key), its basket added beforehand."""
        body = json.dumps({"ticket_type_id": self.ticket_type.pk, "quantity": 1})
        tokens = [
            self.client.post("/api/basket", body, content_type="application/json").json()["token"]
            for _ in range(self.requests * self.rounds + 10)
        ]

        def checkout() -> None:
            order = {"basket": tokens.pop(), "name": "A B", "email": "a@example.com", "payment_method": "test"}
            key = secrets.token_hex(8)
            response = self.client.post(
                "/api/checkout", json.dumps(order), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key
            )
            if response.status_code != 201:
                raise RuntimeError(response.content)

        return self.ms(checkout)


def seat_statements(tt: Any, *, basket: Any, order: Any, now: Any) -> dict[str, tuple[Callable[[], Any], ...]]:
    """Each statement of orders/seats.py's own SQL beside the ORM statement it stands for: (ORM, ours)."""
    from django.db.models import F, Sum
    from django.db.models.functions import Coalesce

    from events.models import TicketType
    from orders import seats
    from orders.models import Basket, Hold, IdempotencyRecord, OrderLine, Ticket

    def orm_line_and_ticket() -> Any:
        line = OrderLine.objects.create(order=order, ticket_type=tt, quantity=1, unit_price=1)
        return Ticket.objects.bulk_create([Ticket(order=order, line=line, ticket_type=tt)])

    def our_line_and_ticket() -> Any:
        line = seats.insert([OrderLine(order=order, ticket_type=tt, quantity=1, unit_price=1)])[0]
        return seats.insert([Ticket(order=order, line=line, ticket_type=tt)])

    others = Hold.objects.filter(ticket_type_id=tt.pk, expires_at__gt=now).exclude(basket_id=0)
    return {
        "lock the basket": (
            lambda: Basket.objects.select_for_update(no_key=True).filter(token=basket.token).first(),
            lambda: seats.lock_basket(token=basket.token),
        ),
        "lock the ticket type": (
            lambda: list(TicketType.objects.select_for_update(no_key=True).filter(pk=tt.pk)),
            lambda: seats.lock_ticket_type(tt.pk),
        ),
        "count other baskets' holds": (
            lambda: others.aggregate(n=Coalesce(Sum("quantity"), 0)),
            lambda: seats.held_by_others(ticket_type_id=tt.pk, basket_id=0, now=now),
        ),
        "a basket's holds with their events": (
            lambda: list(
                Hold.objects.filter(basket__token=basket.token).select_related("basket", "ticket_type__event")
            ),
            lambda: seats.basket_holds(token=basket.token),
        ),
        "take the seats": (
            lambda: TicketType.objects.filter(pk=tt.pk, price=tt.price).update(sold=F("sold") + 0),
            lambda: seats.take([Hold(ticket_type_id=tt.pk, quantity=0)], prices={tt.pk: tt.price}),
        ),
        "write a new basket and its hold": (
            lambda: Hold.objects.create(basket=Basket.objects.create(), ticket_type=tt, quantity=1, expires_at=now),
            lambda: seats.hold(basket=seats.new_basket(), ticket_type_id=tt.pk, held=None, quantity=1, expires_at=now),
        ),
        "write an order's line and ticket": (orm_line_and_ticket, our_line_and_ticket),
        "a basket's quantities and prices": (
            lambda: list(
                Hold.objects.filter(basket_id=basket.pk).values_list("ticket_type_id", "quantity", "ticket_type__price")
            ),
            lambda: seats.basket_lines(basket.pk),
        ),
        "delete a basket's holds": (
            lambda: Hold.objects.filter(basket_id=0).delete(),
            lambda: seats.release_holds(0),
        ),
        "look up an Idempotency-Key": (
            lambda: IdempotencyRecord.objects.filter(key="none").select_related("order").first(),
            lambda: seats.placed_order(key="none", fingerprint=None),
        ),
    }


def stock_prometheus_after_middleware() -> type:
    """django-prometheus' after-middleware exactly as it ships, its families in a registry of their own (ours hold
    the same names in the default one; under multiprocess mode every update is still a write to the shared files)."""
    from django_prometheus import middleware
    from prometheus_client import CollectorRegistry

    class StockMetrics(middleware.Metrics):  # type: ignore[misc]
        def register_metric(
            self, metric_cls: type, name: str, documentation: str, labelnames: Any = (), **kw: Any
        ) -> Any:
            return metric_cls(name, documentation, labelnames=labelnames, registry=CollectorRegistry(), **kw)

    class Stock(middleware.PrometheusAfterMiddleware):  # type: ignore[misc]
        metrics_cls = StockMetrics

    return Stock


def __getattr__(name: str) -> Any:
    # The middleware path above, built only once Django is set up.
    if name == "StockPrometheusAfterMiddleware":
        return stock_prometheus_after_middleware()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
