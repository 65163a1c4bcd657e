"""Abuse limits: 429 problem JSON (or page) with Retry-After, per IP and per basket, unspoofable, shared by every
process (through Redis, or the database by default)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import time_machine
from django.core.cache import caches
from django.test import RequestFactory
from django.utils import timezone

from aegistickets.http import client_ip
from events.tests.factories import TicketTypeFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def limits(settings):
    """Rate limits on, with small numbers, fresh counters and a stopped clock: a window that ends mid-test (they
    end at a different second for each key) would reset a count and let a request through that the test expects
    refused."""
    settings.RATE_LIMITS_ENABLED = True
    settings.RATE_LIMITS = {
        "basket_add_ip": "3/m",
        "basket_add_basket": "100/m",
        "checkout_ip": "100/m",
        "checkout_basket": "2/m",
        "organizer": "2/m",
        "voucher_ip": "3/m",
    }
    caches[settings.RATELIMIT_USE_CACHE].clear()
    with time_machine.travel(timezone.now(), tick=False):
        yield settings.RATE_LIMITS
    caches[settings.RATELIMIT_USE_CACHE].clear()


def add(api, ticket_type, basket=None, **meta):
    body = {"ticket_type_id": ticket_type.pk, "quantity": 1, "basket": basket}
    return api.post("/api/basket", body, format="json", **meta)


def assert_rate_limited(response, window=60):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= window


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "1.2.3.4", "10.0.0.5"),  # no proxy trusted: the header is the client's own say
        (1, "", "10.0.0.5"),
        (1, "198.51.100.7", "198.51.100.7"),  # the ALB saw 198.51.100.7
        (1, "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # the client's spoofed entry is left of the ALB's
        (2, "1.2.3.4, 198.51.100.7, 10.0.1.1", "198.51.100.7"),
        (1, "not-an-ip", "10.0.0.5"),
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip_trusts_only_the_configured_proxy_hops(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_HOPS = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


@pytest.mark.django_db
def test_basket_add_is_limited_per_client_ip(api, limits):
    ticket_type = TicketTypeFactory(capacity=50)
    for _ in range(3):
        assert add(api, ticket_type).status_code == 201
    assert_rate_limited(add(api, ticket_type))
    assert add(api, ticket_type, REMOTE_ADDR="192.0.2.9").status_code == 201  # another client is unaffected
    assert ticket_type.holds.count() == 4  # the refused request reserved nothing


@pytest.mark.django_db
def test_a_spoofed_forwarded_for_does_not_escape_the_limit(api, limits, settings):
    settings.TRUSTED_PROXY_HOPS = 1  # behind the ALB: REMOTE_ADDR is the ALB, which appends the real client
    ticket_type = TicketTypeFactory(capacity=50)
    alb = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(3):
        assert add(api, ticket_type, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7", **alb).status_code == 201
    spoofed = add(api, ticket_type, HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.7", **alb)
    assert_rate_limited(spoofed)
    # A different real client behind the same ALB has its own budget.
    assert add(api, ticket_type, HTTP_X_FORWARDED_FOR="198.51.100.8", **alb).status_code == 201


@pytest.mark.django_db
def test_without_trusted_hops_forwarded_for_is_ignored(api, limits):
    ticket_type = TicketTypeFactory(capacity=50)
    for n in range(3):
        assert add(api, ticket_type, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code == 201
    assert_rate_limited(add(api, ticket_type, HTTP_X_FORWARDED_FOR="203.0.113.200"))


@pytest.mark.django_db
def test_checkout_is_limited_per_basket_across_addresses(api, limits):
    ticket_type = TicketTypeFactory(capacity=50)
    token = add(api, ticket_type).json()["token"]
    body = {"basket": token, "name": "Grace Hopper", "email": "grace@example.com", "payment_method": "nope"}
    for n in range(2):
        response = api.post("/api/checkout", body, format="json", REMOTE_ADDR=f"192.0.2.{n}")
        assert response.status_code == 400  # reached the view (unknown payment method)
    assert_rate_limited(api.post("/api/checkout", body, format="json", REMOTE_ADDR="192.0.2.77"))


@pytest.mark.django_db
def test_the_pages_are_limited_too_with_a_429_page(client, limits):
    ticket_type = TicketTypeFactory(capacity=50)
    url = f"/events/{ticket_type.event.slug}/basket/"
    for _ in range(3):
        assert client.post(url, {"ticket_type": ticket_type.pk, "quantity": 1}).status_code == 302
    response = client.post(url, {"ticket_type": ticket_type.pk, "quantity": 1})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert b"Too many requests" in response.content
    assert client.get(f"/events/{ticket_type.event.slug}/").status_code == 200  # reading is never limited
    assert ticket_type.holds.get().quantity == 3


@pytest.mark.django_db
def test_organizer_api_is_limited_per_staff_user(staff_api, api, limits):
    for _ in range(2):
        assert staff_api.get("/api/orders").status_code == 200
    assert_rate_limited(staff_api.get("/api/orders"))
    for _ in range(5):  # the public catalog is not an organizer endpoint
        assert api.get("/api/events").status_code == 200


@pytest.mark.django_db
def test_rate_limits_enabled_false_turns_them_off(api, limits, settings):
    settings.RATE_LIMITS_ENABLED = False
    ticket_type = TicketTypeFactory(capacity=50)
    for _ in range(6):
        assert add(api, ticket_type).status_code == 201


def test_load_test_tooling_turns_the_limits_off_by_this_setting_name():
    tooling = [ROOT / "Makefile", *sorted((ROOT / "scripts").rglob("*.py"))]
    assert any("RATE_LIMITS_ENABLED" in path.read_text() for path in tooling[1:])
    assert "RATE_LIMITS_ENABLED=false" in tooling[0].read_text()


# Seven checkouts of one basket in each of two processes against a limit of 10 an hour: refused ones are counted.
HIT_SCRIPT = """
import django, sys
django.setup()
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone
from aegistickets.throttling import rate_limited
view = rate_limited("checkout", basket=lambda request: sys.argv[1])(lambda request: HttpResponse())
print(sum(view(RequestFactory().post("/api/checkout")).status_code == 429 for _ in range(7)))
"""


def _hit_in_two_processes(identity: str, *, together: bool = True, **env: str) -> list[int]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "RATE_LIMIT"))}
    full_env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
        "DJANGO_SECRET_KEY": "k" * 50,
        "DJANGO_ENV_FILE": "/nonexistent",
        "RATE_LIMIT_CHECKOUT_BASKET": "10/d",  # a day-long window: two processes finish well inside one
        **env,
    }

    def start(process_env: dict[str, str]) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", HIT_SCRIPT, identity]
        return subprocess.Popen(argv, cwd=ROOT, env=process_env, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own interpreter and script

    def refused(process: subprocess.Popen[str]) -> int:
        return int(process.communicate(timeout=60)[0].strip().splitlines()[-1])

    if together:
        return [refused(p) for p in [start(full_env), start(full_env)]]
    return [refused(start(full_env)) for _ in range(2)]


def _database_with_cache_table(path: Path) -> str:
    url = f"sqlite:///{path}"
    env = {**os.environ, "DJANGO_SECRET_KEY": "k" * 50, "DJANGO_ENV_FILE": "/nonexistent", "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "platform", "-v", "0"], cwd=ROOT, env=env, check=True)  # noqa: S603 - our own manage.py
    return url


def test_two_processes_share_the_count_through_redis():
    """10/d, 7 requests in each of two processes at the same time: with Redis exactly 4 are refused in total."""
    refused = _hit_in_two_processes(f"basket-{uuid.uuid4()}", REDIS_URL="redis://127.0.0.1:6379/15")
    assert sum(refused) == 4


def test_without_redis_two_processes_share_the_count_through_the_database(tmp_path):
    """The default install (no REDIS_URL) counts in its own database: the second process finds the first's count."""
    database = _database_with_cache_table(tmp_path / "shop.sqlite3")
    refused = _hit_in_two_processes(f"basket-{uuid.uuid4()}", together=False, DATABASE_URL=database)
    assert refused == [0, 4]


def test_control_processes_that_share_nothing_each_count_alone(tmp_path):
    """The check above would catch per-process counting: two databases, two counts, nothing refused."""
    first, second = (_database_with_cache_table(tmp_path / f"shop{n}.sqlite3") for n in (1, 2))
    identity = f"basket-{uuid.uuid4()}"
    assert _hit_in_two_processes(identity, together=False, DATABASE_URL=first)[:1] == [0]
    assert _hit_in_two_processes(identity, together=False, DATABASE_URL=second)[:1] == [0]


@pytest.mark.django_db
def test_trying_voucher_codes_is_limited_per_client_on_every_path(api, client, limits):
    """Codes can't be guessed by trying many: the event page's ?voucher=, basket add and checkout count together;
    a page view without a code and another client are not affected."""
    ticket_type = TicketTypeFactory(capacity=50)
    page = f"/events/{ticket_type.event.slug}/"
    tries = [
        client.get(page, {"voucher": "GUESS1"}),
        client.get(page, {"voucher": "GUESS2"}),
        api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1, "voucher": "GUESS3"}, format="json"),
    ]
    refused = api.post("/api/basket", {"ticket_type_id": ticket_type.pk, "quantity": 1, "voucher": "G4"}, format="json")

    assert [r.status_code for r in tries] == [200, 200, 400]
    assert_rate_limited(refused)
    assert client.get(page, {"voucher": "GUESS5"}).status_code == 429
    assert client.get(page).status_code == 200
    assert add(api, ticket_type).status_code == 201  # no code: not a try
    assert client.get(page, {"voucher": "GUESS6"}, REMOTE_ADDR="192.0.2.9").status_code == 200
    assert ticket_type.holds.count() == 1


@pytest.mark.django_db
def test_a_voucher_key_written_with_escapes_is_counted_too(api, limits):
    limits["basket_add_ip"] = "100/m"  # only the voucher limit may refuse here
    ticket_type = TicketTypeFactory(capacity=50)
    body = f'{{"ticket_type_id": {ticket_type.pk}, "quantity": 1, "\\u0076oucher": "GUESS"}}'
    client = api

    answers = [client.post("/api/basket", body, content_type="application/json").status_code for _ in range(4)]

    assert answers == [400, 400, 400, 429]
