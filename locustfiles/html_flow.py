"""The shopper's HTML purchase flow, no think time: event page → add to basket → basket → checkout form →
place order → confirmation page. Cookies (session, CSRF) are kept per user, like a browser.

The buyers shop on the load-test event (made through the organizer API when AEGIS_API_TOKEN is set; else
on whatever the catalog has on sale, where a sold-out answer is a correct page, not a failure). Reports
completed orders/s (orders whose confirmation page showed the order code, over the time between the first
and the last one). Target: ≥ 30 orders/s with 20 buyers.

Shape: USERS (20) buyers for DURATION (60 s).

    AEGIS_API_TOKEN=... locust -f locustfiles/html_flow.py --headless --host http://127.0.0.1:8000
"""

from __future__ import annotations

import html
import random
import re
import time
from typing import Any

from common import EVENT_PAGE, ORDER_PAGE, check, expect_html, prepare_catalog
from gates import Gate, checks_pct, error_pct, install_gate, integrity_gates, p95_ms
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from shapes import ConstantShape, env_int

ADD_FORM = "add-to-basket form"  # posted where the event page's form says, as a browser does
BASKET_PAGE = "/basket/"
CHECKOUT_PAGE = "/checkout/"
CHECKOUT_FORM = "/checkout/"

FORM = re.compile(r'<form\b[^>]*\baction="([^"#]*)[^"]*"[^>]*>(.*?)</form>', re.DOTALL)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TICKET_TYPE = re.compile(r'name="ticket_type" value="(\d+)"')
IDEMPOTENCY_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
ORDER_URL = re.compile(r"^(?:https?://[^/]+)?/orders/([A-Za-z0-9_-]+)/[A-Za-z0-9_-]+/$")
SOLD_OUT_MESSAGE = re.compile(r"is sold out|tickets are available", re.IGNORECASE)


class Flow:
    completed: list[float] = []
    slugs: list[str] = []


@events.test_start.add_listener
def _catalog(environment: Environment, **_kw: Any) -> None:
    Flow.completed = []
    catalog = prepare_catalog(environment.host or "")
    Flow.slugs = [catalog.load_event["slug"]] if catalog.load_event else catalog.on_sale_slugs


def field(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return html.unescape(match.group(1)) if match else None


class HtmlBuyer(FastHttpUser):
    wait_time = constant(0)

    @task
    def buy(self) -> None:
        if not Flow.slugs:
            return
        slug = random.choice(Flow.slugs)
        with self.client.get(f"/events/{slug}/", name=EVENT_PAGE, catch_response=True) as response:
            page = expect_html(response, 200, "csrfmiddlewaretoken")
            if page is None:
                return
            forms = [(html.unescape(action), body) for action, body in FORM.findall(page) if TICKET_TYPE.search(body)]
            if not check(response, bool(forms), "no ticket type on sale on the event page"):
                return
        action, body = random.choice(forms)
        form = {"csrfmiddlewaretoken": field(CSRF, body), "ticket_type": field(TICKET_TYPE, body), "quantity": "1"}
        with self.client.post(action, data=form, name=ADD_FORM, allow_redirects=False, catch_response=True) as response:
            if response.status_code == 200 and SOLD_OUT_MESSAGE.search(response.text or ""):
                response.success()  # the page says the seats are gone: a correct answer
                return
            location = response.headers.get("Location", "") if response.headers else ""
            if not check(response, response.status_code == 302 and location.endswith("/basket/"), "no redirect"):
                return
            response.success()
        with self.client.get("/basket/", name=BASKET_PAGE, catch_response=True) as response:
            if expect_html(response, 200, "Your basket", "/checkout/") is None:
                return
        with self.client.get("/checkout/", name=CHECKOUT_PAGE, catch_response=True) as response:
            page = expect_html(response, 200, "idempotency_key", "csrfmiddlewaretoken")
            if page is None:
                return
        form = {
            "csrfmiddlewaretoken": field(CSRF, page),
            "idempotency_key": field(IDEMPOTENCY_KEY, page),
            "name": "Html Buyer",
            "email": f"html-{random.randrange(10**9)}@example.com",
            "payment_method": "test",
        }
        action = next((a for a, body in FORM.findall(page) if IDEMPOTENCY_KEY.search(body)), "/checkout/")
        with self.client.post(
            html.unescape(action), data=form, name=CHECKOUT_FORM, allow_redirects=False, catch_response=True
        ) as response:
            location = response.headers.get("Location", "") if response.headers else ""
            match = ORDER_URL.match(location)
            if not check(response, response.status_code == 302 and match is not None, "no redirect to the order"):
                return
            response.success()
        code = match.group(1)
        with self.client.get(location, name=ORDER_PAGE, catch_response=True) as response:
            if expect_html(response, 200, code) is not None:
                Flow.completed.append(time.monotonic())


class HtmlFlowShape(ConstantShape):
    users = 20
    seconds = 60


def orders_per_second() -> float | None:
    times = Flow.completed
    if len(times) < 2 or times[-1] <= times[0]:
        return None
    return (len(times) - 1) / (times[-1] - times[0])


def figures(environment: Environment) -> dict[str, Any]:
    return {
        "buyers": env_int("USERS", HtmlFlowShape.users),
        "completed orders": len(Flow.completed),
        "orders/s": round(orders_per_second() or 0.0, 1),
        "event pages": ", ".join(Flow.slugs) or "none on sale",
    }


install_gate(
    "html_flow",
    lambda: [
        Gate("p95 latency", "SLO_P95_MS", "<", 800, p95_ms(), "ms", timing=True),
        Gate("error rate", "SLO_ERROR_PCT", "<", 1.0, error_pct, "%", timing=True),
        Gate("checks passed", "SLO_CHECKS_PCT", ">", 99.0, checks_pct, "%", timing=True),
        *integrity_gates(),
        Gate(
            "completed orders/s",
            "TARGET_ORDERS_PER_S",
            ">=",
            30,
            lambda _e: orders_per_second(),
            "orders/s",
            kind="target",
            timing=True,
        ),
    ],
    figures=figures,
)
