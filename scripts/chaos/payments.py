"""Faults at the payment provider: Stripe (localstripe) stops answering mid-checkout, and webhooks arrive twice and
before the buyer's return. The books then hold the shop's payments against what the provider says of each."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from typing import Any

import stripe

from scripts.chaos.report import Report
from scripts.chaos.shop import Checkout, Shop, sql
from scripts.lib.http import Answer
from scripts.lib.localstripe import SECRET_KEY, Localstripe

STRIPE_TIMEOUT_S = 2  # STRIPE_TIMEOUT_SECONDS of the served shop (run.py)


def stripe_client(stand_in: Localstripe) -> stripe.StripeClient:
    return stripe.StripeClient(SECRET_KEY, base_addresses={"api": stand_in.base}, max_network_retries=0)


def paying_by_card(attempt: Checkout) -> Checkout:
    attempt.body |= {"payment_method": "stripe", "payment_token": "pm_card_visa"}
    return attempt


def payment_unavailable(answer: Answer) -> bool:
    return (
        answer.status == 503
        and answer.is_problem()
        and answer.code == "payment_unavailable"
        and answer.headers.get("retry-after", "").isdigit()
    )


def provider_down(shop: Shop, stand_in: Localstripe, report: Report, ledger: list[Checkout]) -> None:
    """Stripe stops answering while buyers pay by card: each checkout answers a retryable 503 in time, with no order
    and no seat sold; once Stripe is back the retries with the same keys are paid; reconciliation settles the rest."""
    fault = "payment provider down"
    ticket_type = shop.new_ticket_type("stripe-down", capacity=20)
    attempts = [paying_by_card(shop.new_basket(ticket_type, 1)) for _ in range(2)]
    ledger.extend(attempts)
    answers: list[Answer] = []
    stand_in.pause()
    try:
        threads = [threading.Thread(target=lambda a=a: answers.append(shop.checkout(a))) for a in attempts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        sold, orders = sql(
            shop.served.database_url,
            "SELECT sold, (SELECT count(*) FROM orders_orderline WHERE ticket_type_id = %s) "
            "FROM events_tickettype WHERE id = %s",
            (ticket_type, ticket_type),
        )[0]
    finally:
        stand_in.resume()
    report.check(
        fault,
        f"{len(attempts)} card checkouts while Stripe does not answer",
        "all 503 payment_unavailable + Retry-After",
        ", ".join(sorted({f"{a.status} {a.code}" for a in answers})),
        len(answers) == len(attempts) and all(payment_unavailable(a) for a in answers),
    )
    report.check(
        fault,
        "time to answer",
        f"≤ {STRIPE_TIMEOUT_S + 2} s (STRIPE_TIMEOUT_SECONDS {STRIPE_TIMEOUT_S} s)",
        ", ".join(f"{a.elapsed:.2f} s" for a in answers),
        bool(answers) and max(a.elapsed for a in answers) <= STRIPE_TIMEOUT_S + 2,
    )
    report.check(
        fault, "orders and seats sold while Stripe was down", "0, 0", f"{orders}, {sold}", (orders, sold) == (0, 0)
    )
    retries = [shop.checkout(attempt) for attempt in attempts]
    report.check(
        fault,
        "the retries with the same keys once Stripe answers",
        "all 201 paid",
        ", ".join(f"{a.status} {a.body['order']['status'] if a.status == 201 else a.code}" for a in retries),
        all(a.status == 201 and a.body["order"]["status"] == "paid" for a in retries),
    )


def sign(body: bytes, secret: str) -> str:
    """Stripe's webhook signature: HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's secret."""
    at = int(time.time())
    return f"t={at},v1={hmac.new(secret.encode(), f'{at}.'.encode() + body, hashlib.sha256).hexdigest()}"


def webhook(shop: Shop, secret: str, kind: str, payment_id: str, event_id: str) -> Answer:
    event = {"id": event_id, "object": "event", "type": kind, "data": {"object": {"id": payment_id}}}
    # The bytes the client sends: scripts.lib.http encodes the body with json.dumps' defaults, as here.
    signature = sign(json.dumps(event).encode(), secret)
    return shop.call("POST", "/payments/stripe/webhook", event, {"Stripe-Signature": signature})


def webhooks(shop: Shop, stand_in: Localstripe, secret: str, report: Report) -> None:
    """Buyers pay pending orders; Stripe's webhook arrives twice, then a later event, and the buyer's return comes
    after it: each order is paid once, captured once."""
    fault = "webhooks duplicated, before the return"
    ticket_type = shop.new_ticket_type("stripe-webhooks", capacity=20)
    client = stripe_client(stand_in)
    answers: list[str] = []
    codes: list[str] = []
    for _ in range(3):
        attempt = shop.new_basket(ticket_type, 1)
        attempt.body["payment_method"] = "stripe"
        placed = shop.checkout(attempt)
        if placed.status != 202:
            answers.append(f"checkout {placed.status} {placed.code}")
            continue
        order, payment_id = placed.body["order"], placed.body["order"]["payment"]["id"]
        codes.append(order["code"])
        client.v1.payment_intents.update(payment_id, {"payment_method": "pm_card_visa"})  # the buyer's card
        client.v1.payment_intents.confirm(payment_id)
        event = f"evt_{uuid.uuid4().hex}"
        for kind, event_id in (
            ("payment_intent.amount_capturable_updated", event),
            ("payment_intent.amount_capturable_updated", event),  # Stripe delivers it again
            ("payment_intent.succeeded", f"evt_{uuid.uuid4().hex}"),  # after the capture
        ):
            answer = webhook(shop, secret, kind, payment_id, event_id)
            answers.append(f"{answer.status} {answer.body.get('result') if isinstance(answer.body, dict) else ''}")
    report.check(
        fault,
        "3 pending orders: each event twice, then a later one",
        "202 each; handled, duplicate, handled",
        ", ".join(sorted(set(answers))),
        len(codes) == 3 and answers == ["200 handled", "200 duplicate", "200 handled"] * 3,
    )
    shown = [shop.call("GET", f"/api/orders/{code}", headers=shop.auth).body["order"] for code in codes]
    report.check(
        fault,
        "the buyers' return: their orders",
        "paid, 1 ticket, payment captured",
        ", ".join(sorted({f"{o['status']} {len(o['tickets'])} {o['payment']['status']}" for o in shown})),
        bool(shown)
        and all((o["status"], len(o["tickets"]), o["payment"]["status"]) == ("paid", 1, "captured") for o in shown),
    )


PAYMENTS = (
    "SELECT p.provider, p.payment_id, p.status, o.status FROM orders_payment p "
    "LEFT JOIN orders_order o ON o.id = p.order_id"
)
ORDERS_NAMING = "SELECT payment_reference, status FROM orders_order WHERE payment_reference = ANY(%s)"


def reconciled(shop: Shop) -> tuple[bool, str]:
    """`manage.py reconcile_payments --older-than 0` with the app's environment: whether it exited 0, and what it
    said (the last line of its error otherwise)."""
    try:
        return True, shop.served.manage("reconcile_payments", "--older-than", "0").strip()
    except RuntimeError as failed:
        said = [line.strip() for line in str(failed).splitlines() if line.strip()]
        return False, said[-1][:240] if said else "failed"


def payment_intents(stand_in: Localstripe) -> dict[str, Any]:
    """Every PaymentIntent Stripe's stand-in holds, by id."""
    listed = stripe_client(stand_in).v1.payment_intents.list({"limit": 100})
    return {intent.id: intent for intent in listed.auto_paging_iter()}


def orders_naming(database: str, intent_ids: list[str]) -> dict[str, list[str]]:
    """The statuses of the orders whose payment_reference is each PaymentIntent."""
    named: dict[str, list[str]] = {intent_id: [] for intent_id in intent_ids}
    for reference, status in sql(database, ORDERS_NAMING, (intent_ids,)):
        named[reference].append(status)
    return named


def settled_once(status: str, orders: list[str]) -> bool:
    """A card checkout's PaymentIntent ends canceled with no order, or captured with exactly one order, paid."""
    return (status, orders) in (("canceled", []), ("succeeded", ["paid"]))


def judge_intents(shop: Shop, stand_in: Localstripe, report: Report, fault: str, before: set[str]) -> None:
    """The PaymentIntents made since `before` (this fault's checkouts): each settled once."""
    intents = {key: intent for key, intent in payment_intents(stand_in).items() if key not in before}
    orders = orders_naming(shop.served.database_url, list(intents))
    seen = Counter(f"{i.status} with {'/'.join(orders[key]) or 'no'} order" for key, i in intents.items())
    report.check(
        fault,
        f"the {len(intents)} PaymentIntents of these checkouts at Stripe",
        "each canceled with no order, or captured with exactly 1 paid order naming it; none requires_capture",
        ", ".join(f"{what} × {count}" for what, count in sorted(seen.items())) or "none",
        bool(intents) and all(settled_once(i.status, orders[key]) for key, i in intents.items()),
    )


def payment_books(shop: Shop, stand_in: Localstripe, report: Report) -> None:
    """After reconciliation: payments captured = paid orders, and for Stripe, what Stripe says of each payment the
    shop recorded agrees (captured there exactly when its order is paid)."""
    fault = "the books"
    ran, settled = reconciled(shop)
    report.check(fault, "reconcile_payments --older-than 0", "exit 0", settled, ran)
    rows: list[tuple[Any, ...]] = sql(shop.served.database_url, PAYMENTS)
    unsettled = [row for row in rows if row[2] in ("started", "authorized")]
    report.check(fault, "payments left unsettled after reconcile_payments", "0", len(unsettled), not unsettled)
    mismatched = [row for row in rows if (row[2] == "captured") != (row[3] == "paid")]
    report.check(fault, "payments captured ≠ paid orders", "0", f"{len(mismatched)} of {len(rows)}", not mismatched)
    client = stripe_client(stand_in)
    at_stripe = [(row, client.v1.payment_intents.retrieve(row[1]).status) for row in rows if row[1].startswith("pi_")]
    wrong = [row[1] for row, status in at_stripe if (status == "succeeded") != (row[3] == "paid")]
    report.check(
        fault,
        "Stripe payments captured there ≠ their order paid",
        "0",
        f"{len(wrong)} of {len(at_stripe)}",
        bool(at_stripe) and not wrong,
    )
    stripe_books(shop, stand_in, report)


def stripe_books(shop: Shop, stand_in: Localstripe, report: Report) -> None:
    """Every PaymentIntent at Stripe, whether the shop recorded it or not (an authorization whose answer was lost):
    captured exactly when one paid order names it, and none still holding the buyer's money without a paid order."""
    fault = "the books"
    intents = payment_intents(stand_in)
    orders = orders_naming(shop.served.database_url, list(intents))
    wrong = [key for key, i in intents.items() if (i.status == "succeeded") != (orders[key].count("paid") == 1)]
    report.check(
        fault,
        "PaymentIntents at Stripe captured ≠ exactly 1 paid order naming them",
        "0",
        f"{len(wrong)} of {len(intents)} {wrong[:3] if wrong else ''}".strip(),
        bool(intents) and not wrong,
    )
    held = [key for key, i in intents.items() if i.status == "requires_capture" and "paid" not in orders[key]]
    report.check(
        fault,
        "PaymentIntents at Stripe left requires_capture (money held) without a paid order",
        "0",
        f"{len(held)} of {len(intents)} {held[:3] if held else ''}".strip(),
        not held,
    )
