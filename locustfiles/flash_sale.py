"""Flash sale: one hot ticket type with FLASH_SEATS seats, FLASH_BUYERS buyers released at the same moment.

At test start the organizer API (AEGIS_API_TOKEN) creates a new event with ONE ticket type of FLASH_SEATS
seats. Buyers are spawned and held at the door until all are in; then each one adds 1 ticket to a new
basket and checks out, once, and leaves. A 409 `sold_out` / `insufficient_inventory` on the add is a
correct answer, not a failure. At the end the truth is read back from the organizer API (the ticket type's
sold/held counters and every order of the event) and printed: seats, orders, tickets sold, oversold (must be
0), orders/s (completed orders / time between the first and the last successful checkout), p95 per step.
Any 5xx, oversold seat or disagreement between the books fails the run (exit code 1).

    FLASH_SEATS (1000)   seats on sale
    FLASH_BUYERS (3 × seats, or USERS)   buyers
    FLASH_SPAWN_RATE (= buyers)   buyers let in per second before the doors open
    FLASH_MAX_SECONDS (300)   stop even if buyers are still waiting

    AEGIS_API_TOKEN=... locust -f locustfiles/flash_sale.py --headless --host http://127.0.0.1:8000
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
from common import (
    API_TOKEN,
    BASKET_ADD,
    CHECKOUT,
    RUN_ID,
    Organizer,
    basket_body,
    check,
    checkout_body,
    expect_json,
    expected_refusal,
    idempotency_headers,
)
from gates import Gate, error_pct, install_gate, integrity_gates, p95_ms
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from shapes import env_int

log = logging.getLogger("aegis.loadtest.flash")

SEATS = env_int("FLASH_SEATS", 1000)
BUYERS = env_int("FLASH_BUYERS", 0) or env_int("USERS", 0) or 3 * SEATS
SPAWN_RATE = env_int("FLASH_SPAWN_RATE", 0) or BUYERS
MAX_SECONDS = env_int("FLASH_MAX_SECONDS", 300)
DOOR_TIMEOUT = 120


@dataclass
class Sale:
    setup_error: str | None = None
    event_id: int | None = None
    ticket_type_id: int | None = None
    finished: int = 0
    sold_out_answers: int = 0
    confirmed_orders: int = 0
    confirmed_tickets: int = 0
    checkout_times: list[float] = field(default_factory=list)
    books: dict[str, Any] = field(default_factory=dict)


SALE = Sale()
DOORS = gevent.event.Event()  # buyers wait here until every one of them is spawned


@events.test_start.add_listener
def _open_sale(environment: Environment, **_kw: Any) -> None:
    SALE.__dict__.update(Sale().__dict__)  # one sale per test run
    DOORS.clear()
    if not API_TOKEN:
        SALE.setup_error = "AEGIS_API_TOKEN is not set: the flash sale needs the organizer API"
        log.error(SALE.setup_error)
        return
    try:
        organizer = Organizer(environment.host or "", API_TOKEN)
        event = organizer.create_event(name=f"Flash Sale {RUN_ID}", slug=f"flash-sale-{RUN_ID}", days_from_now=60)
        ticket_type = organizer.create_ticket_type(
            event["id"], name="Hot seat", price="59.00", capacity=SEATS, max_per_order=4
        )
    except Exception as error:  # any setup failure ends the run, with its reason
        SALE.setup_error = f"could not create the sale: {error}"
        log.error(SALE.setup_error)
        return
    SALE.event_id, SALE.ticket_type_id = event["id"], ticket_type["id"]
    log.info("flash sale: event %s, ticket type %s, %d seats, %d buyers", event["id"], ticket_type["id"], SEATS, BUYERS)


@events.spawning_complete.add_listener
def _doors_open(user_count: int, **_kw: Any) -> None:
    log.info("doors open: %d buyers rush in", user_count)
    DOORS.set()


@events.test_stop.add_listener
def _read_the_books(environment: Environment, **_kw: Any) -> None:
    """The truth from the organizer API: the ticket type's counters and every order of the event."""
    if SALE.ticket_type_id is None or SALE.event_id is None:
        return
    organizer = Organizer(environment.host or "", API_TOKEN)
    try:
        ticket_type = organizer.call("GET", f"/api/ticket-types/{SALE.ticket_type_id}")
        count, orders = organizer.all_pages(f"/api/orders?event={SALE.event_id}", "orders")
    except Exception as error:  # reported as a failed gate
        SALE.setup_error = f"could not read the books: {error}"
        log.error(SALE.setup_error)
        return
    paid = [o for o in orders if o["status"] == "paid"]
    SALE.books = {
        "capacity": ticket_type["capacity"],
        "sold": ticket_type["sold"],
        "held": ticket_type["held"],
        "available": ticket_type["available"],
        "orders": count,
        "paid_orders": len(paid),
        "tickets_in_orders": sum(len(o["tickets"]) for o in paid),
    }


class Buyer(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        DOORS.wait(timeout=DOOR_TIMEOUT)

    @task
    def buy_once(self) -> None:
        try:
            if SALE.ticket_type_id is not None:
                self.buy(SALE.ticket_type_id)
        finally:
            SALE.finished += 1
        raise StopUser

    def buy(self, ticket_type_id: int) -> None:
        with self.client.post(
            "/api/basket", json=basket_body(ticket_type_id, 1), name=BASKET_ADD, catch_response=True
        ) as response:
            if expected_refusal(response):
                SALE.sold_out_answers += 1
                return
            basket = expect_json(response, 201, "token", "items")
            if basket is None:
                return
        with self.client.post(
            "/api/checkout",
            json=checkout_body(basket["token"]),
            headers=idempotency_headers(),
            name=CHECKOUT,
            catch_response=True,
        ) as response:
            body = expect_json(response, 201, "order")
            if body is None:
                return
            tickets = len(body["order"].get("tickets", []))
            if not check(response, body["order"].get("status") == "paid" and tickets == 1, "not a paid 1-ticket order"):
                return
        SALE.confirmed_orders += 1
        SALE.confirmed_tickets += tickets
        SALE.checkout_times.append(time.monotonic())


class FlashSaleShape(LoadTestShape):
    """All buyers at once; the test ends when every buyer has had its answer (or after FLASH_MAX_SECONDS)."""

    def tick(self) -> tuple[int, float] | None:
        if SALE.setup_error or SALE.finished >= BUYERS or self.get_run_time() > MAX_SECONDS:
            return None
        return BUYERS, SPAWN_RATE


# --- figures and gates ------------------------------------------------------------------------------


def orders_per_second() -> float | None:
    times = SALE.checkout_times
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def oversold() -> float | None:
    books = SALE.books
    if not books:
        return None
    capacity = books["capacity"]
    return float(
        max(0, books["sold"] - capacity, books["tickets_in_orders"] - capacity, SALE.confirmed_tickets - SEATS)
    )


def books_disagree() -> float | None:
    """Seats whose story differs: sold counter vs tickets in paid orders vs tickets confirmed to buyers."""
    books = SALE.books
    if not books:
        return None
    # A buyer may time out after the server committed, so the server may know more orders than buyers saw,
    # never fewer.
    return float(abs(books["sold"] - books["tickets_in_orders"]) + max(0, SALE.confirmed_tickets - books["sold"]))


def figures(environment: Environment) -> dict[str, Any]:
    books = SALE.books
    values: dict[str, Any] = {
        "setup error": SALE.setup_error or "none",
        "seats": books.get("capacity", SEATS),
        "buyers": BUYERS,
        "buyers finished": SALE.finished,
        "sold-out answers": SALE.sold_out_answers,
        "orders (server)": books.get("orders"),
        "orders confirmed to buyers": SALE.confirmed_orders,
        "tickets sold (server counter)": books.get("sold"),
        "tickets in paid orders (server)": books.get("tickets_in_orders"),
        "seats still held": books.get("held"),
        "seats unsold": books.get("available"),
        "oversold": None if oversold() is None else int(oversold() or 0),
        "orders/s": round(orders_per_second() or 0.0, 1),
    }
    for name in (BASKET_ADD, CHECKOUT):
        p95 = p95_ms(name, "POST")(environment)
        values[f"p95 {name}"] = f"{p95:.0f} ms" if p95 is not None else "n/a"
    return values


install_gate(
    "flash_sale",
    lambda: [
        Gate(
            "setup (event, ticket type, books read)",
            "FLASH_GATE_SETUP",
            "=",
            0,
            lambda _e: float(bool(SALE.setup_error)),
            kind="integrity",
        ),
        Gate("oversold seats", "MAX_OVERSOLD", "<=", 0, lambda _e: oversold(), kind="integrity"),
        Gate("books disagree (seats)", "MAX_BOOKS_DISAGREE", "<=", 0, lambda _e: books_disagree(), kind="integrity"),
        *integrity_gates(),
        Gate("error rate", "SLO_ERROR_PCT", "<", 1.0, error_pct, "%", timing=True),
        Gate(
            "completed orders/s",
            "TARGET_ORDERS_PER_S",
            ">=",
            100,
            lambda _e: orders_per_second(),
            "orders/s",
            kind="target",
            timing=True,
        ),
        Gate(
            "p95 checkout",
            "TARGET_CHECKOUT_P95_MS",
            "<",
            500,
            p95_ms(CHECKOUT, "POST"),
            "ms",
            kind="target",
            timing=True,
        ),
    ],
    figures=figures,
)
