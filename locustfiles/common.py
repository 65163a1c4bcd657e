"""What the scenarios share: request names, the checks on each response, the organizer API and the catalog.

Every response is checked inside `catch_response=True`: the first failed check marks the request failed with its
reason, so it lands in Locust's own statistics and failures report. Locust counts requests, not checks: the two
counters below are the only ones kept beside it (for the `checks passed` gate, gates.py).

Environment knobs (all optional):
    LOADTEST_MODE   "full" (default) or "smoke": in smoke mode timing and rate gates are only reported;
                    any 5xx, any failed check or request, and any oversold seat still fail the run
    AEGIS_API_TOKEN organizer API token: scenarios create their own on-sale event with it
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from collections import Counter
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

log = logging.getLogger("aegis.loadtest")

MODE = os.environ.get("LOADTEST_MODE", "full").strip().lower()
SMOKE = MODE == "smoke"
API_TOKEN = os.environ.get("AEGIS_API_TOKEN", "").strip()
RUN_ID = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + f"-{random.randrange(16**4):04x}"

# Request names: ids and secrets are folded so Locust groups one endpoint into one row.
EVENTS_LIST = "/api/events"
EVENT_DETAIL = "/api/events/[id]"
BASKET_ADD = "/api/basket"
CHECKOUT = "/api/checkout"
ORDER_PAGE = "/orders/[code]/[secret]/"
HOME_PAGE = "/"
EVENT_PAGE = "/events/[slug]/"
SOLD_OUT_CODES = frozenset({"sold_out", "insufficient_inventory"})

CHECKS: Counter[str] = Counter()  # "total" and "failed"


# --- checks ---------------------------------------------------------------------------------------


def check(response: Any, ok: bool, message: str) -> bool:
    """One check on one response; a failed check marks the request failed (with `message`)."""
    CHECKS["total"] += 1
    if not ok:
        CHECKS["failed"] += 1
        response.failure(message)
    return ok


def json_body(response: Any) -> Any:
    try:
        return response.json()
    except (ValueError, TypeError):
        return None


def status_problem(response: Any, expected: Collection[int]) -> str:
    if not response.status_code:
        error = getattr(response, "error", None)
        return f"no response ({type(error).__name__ if error else 'connection failed'})"
    return f"status {response.status_code}, expected {' or '.join(map(str, sorted(expected)))}"


def expect_json(response: Any, status: int | Collection[int], *keys: str) -> dict[str, Any] | None:
    """Checks the status and that the body is a JSON object with `keys`; returns the body or None."""
    statuses = {status} if isinstance(status, int) else set(status)
    if not check(response, response.status_code in statuses, status_problem(response, statuses)):
        return None
    body = json_body(response)
    if not check(response, isinstance(body, dict), "body is not a JSON object"):
        return None
    missing = [key for key in keys if key not in body]
    if not check(response, not missing, f"JSON lacks {', '.join(missing)}"):
        return None
    response.success()
    return body


def expect_html(response: Any, status: int, *needles: str) -> str | None:
    """Checks the status of an HTML page and that it contains every needle; returns the text or None."""
    if not check(response, response.status_code == status, status_problem(response, {status})):
        return None
    text = response.text or ""
    if not check(response, all(needle in text for needle in needles), "page lacks expected content"):
        return None
    response.success()
    return text


def expected_refusal(response: Any, codes: Collection[str] = SOLD_OUT_CODES) -> bool:
    """A 409 with one of `codes` is a correct answer (seats are gone), not a failure: mark it so."""
    body = json_body(response) if response.status_code == 409 else None
    if not isinstance(body, dict) or body.get("code") not in codes:
        return False
    CHECKS["total"] += 1
    response.success()
    return True


# --- shop requests ----------------------------------------------------------------------------------


def basket_body(ticket_type_id: int, quantity: int) -> dict[str, Any]:
    return {"ticket_type_id": ticket_type_id, "quantity": quantity}


def checkout_body(basket: str) -> dict[str, Any]:
    buyer = uuid.uuid4().hex[:12]
    return {"basket": basket, "name": f"Load {buyer}", "email": f"load-{buyer}@example.com", "payment_method": "test"}


def idempotency_headers() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def buyable_ticket_type(event: dict[str, Any], quantity: int) -> dict[str, Any] | None:
    """A ticket type of an event detail that is on sale with at least `quantity` seats shown."""
    choices = [
        t
        for t in event.get("ticket_types", [])
        if t.get("on_sale") and t.get("available", 0) >= quantity and t.get("max_per_order", 0) >= quantity
    ]
    return random.choice(choices) if choices else None


class Organizer:
    """The organizer API (Authorization: Token), outside Locust's statistics: setup and the books."""

    def __init__(self, host: str, token: str = "") -> None:
        self.host = host.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = path if path.startswith("http") else f"{self.host}{path}"
        response = self.session.request(method, url, timeout=30, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def all_pages(self, path: str, key: str) -> tuple[int, list[dict[str, Any]]]:
        """(count, every item), following the `next` links."""
        page = first = self.call("GET", path)
        items = list(first[key])
        while page.get("next"):
            page = self.call("GET", page["next"])
            items.extend(page[key])
        return first["count"], items

    def create_event(self, *, name: str, slug: str, days_from_now: int) -> dict[str, Any]:
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days_from_now)
        event = {"name": name, "slug": slug, "venue": "Load Test Hall", "city": "Loopback", "is_published": True}
        event |= {"starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=3)).isoformat()}
        return self.call("POST", "/api/events", json=event)

    def create_ticket_type(self, event_id: int, *, name: str, price: str, capacity: int, max_per_order: int) -> Any:
        body = {"name": name, "price": price, "capacity": capacity, "max_per_order": max_per_order}
        return self.call("POST", f"/api/events/{event_id}/ticket-types", json=body)


LOAD_EVENT_SLUG = "load-test-arena"
LOAD_CAPACITY = 1_000_000


class Catalog:
    """What shoppers may buy: events with a ticket type on sale (snapshot at test start)."""

    buyable_event_ids: set[int] = set()
    on_sale_slugs: list[str] = []
    load_event: dict[str, Any] | None = None  # a big on-sale event made for load tests (with a token)


CATALOG = Catalog()


def _asks_at_checkout(event: dict[str, Any]) -> bool:
    required = any(question.get("required") for question in event.get("questions", []))
    return required or event.get("attendee_data", "none") != "none" or bool(event.get("terms_version"))


def prepare_catalog(host: str) -> Catalog:
    """Finds what is on sale; with AEGIS_API_TOKEN, first makes sure a big load-test event exists."""
    client = Organizer(host, API_TOKEN)
    _, public = client.all_pages("/api/events", "events")
    load_event = next((e for e in public if e["slug"] == LOAD_EVENT_SLUG), None)
    if API_TOKEN and load_event is None:
        load_event = client.create_event(name="Load Test Arena", slug=LOAD_EVENT_SLUG, days_from_now=2)
        for name, price in (("Standing", "25.00"), ("Seated", "45.00"), ("Lounge", "95.00")):
            client.create_ticket_type(
                load_event["id"], name=name, price=price, capacity=LOAD_CAPACITY, max_per_order=10
            )
        _, public = client.all_pages("/api/events", "events")
    elif not API_TOKEN:
        log.warning("AEGIS_API_TOKEN is not set: buying from the catalog as it is (sold-out answers are expected)")
    details = [client.call("GET", f"/api/events/{event['id']}") for event in public]
    # What the scenarios' one-request checkout can buy: an event that asks for each ticket's holder, terms to accept or
    # required answers takes a checkout of its own (the browser and API tests cover those), not load.
    on_sale = [d for d in details if any(t["on_sale"] for t in d["ticket_types"]) and not _asks_at_checkout(d)]
    CATALOG.buyable_event_ids = {d["id"] for d in on_sale}
    CATALOG.on_sale_slugs = [e["slug"] for e in public if e["id"] in CATALOG.buyable_event_ids and not e["sold_out"]]
    CATALOG.load_event = next((d for d in details if d["slug"] == LOAD_EVENT_SLUG), None) if API_TOKEN else None
    log.info(
        "catalog: %d events with tickets on sale%s", len(on_sale), " (load-test event)" if CATALOG.load_event else ""
    )
    return CATALOG
