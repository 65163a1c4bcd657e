"""Admin login brute force: locked out after repeated failures, even for the right password, per client address."""

from __future__ import annotations

import time

import pytest
from django.core.cache import caches
from django.test import Client

from events.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(settings):
    settings.ADMIN_LOGIN_MAX_FAILURES = 3
    settings.ADMIN_LOGIN_MAX_FAILURES_PER_IP = 5
    caches[settings.RATE_LIMIT_CACHE].clear()
    user = UserFactory(username="organizer", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    yield user
    caches[settings.RATE_LIMIT_CACHE].clear()


def login(client: Client, password: str, username: str = "organizer", **meta: str):
    return client.post(LOGIN, {"username": username, "password": password}, **meta)


def test_right_password_logs_in(client, staff):
    response = login(client, PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_locked_out_after_repeated_failures_even_with_the_right_password(client, staff):
    for _ in range(3):
        response = login(client, "wrong")
        assert response.status_code == 200
        assert b"Please enter the correct username and password" in response.content
    response = login(client, PASSWORD)
    assert response.status_code == 200
    assert b"Too many failed login attempts. Try again in 15 minutes." in response.content
    assert client.get("/admin/").status_code == 302  # not logged in
    # Another address is not locked out of this account.
    assert login(Client(), PASSWORD, REMOTE_ADDR="192.0.2.50").status_code == 302


def test_success_before_the_limit_clears_the_count(client, staff):
    for _ in range(2):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    other = Client()
    for _ in range(2):
        login(other, "wrong")
    assert login(other, PASSWORD).status_code == 302


def test_one_address_guessing_many_usernames_is_locked_out(client, staff):
    for n in range(5):
        login(client, "wrong", username=f"user{n}")
    response = login(client, PASSWORD)
    assert b"Too many failed login attempts" in response.content


def test_lockout_expires(client, staff, settings):
    settings.ADMIN_LOGIN_LOCKOUT_SECONDS = 1
    for _ in range(3):
        login(client, "wrong")
    assert b"Too many failed" in login(client, PASSWORD).content
    time.sleep(1.2)
    assert login(client, PASSWORD).status_code == 302


def test_a_spoofed_forwarded_for_does_not_reset_the_lockout(client, staff, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    alb = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(3):
        login(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7", **alb)
    response = login(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.7", **alb)
    assert b"Too many failed login attempts" in response.content
