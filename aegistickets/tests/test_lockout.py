"""Login brute force (django-axes): every login form locks a client address out after repeated failures, even for the
right password, counted in the database that every worker and pod shares."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client

from events.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/?next=/admin/"
DESK_LOGIN = "/check-in/login/?next=/check-in/"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(settings):
    settings.AXES_FAILURE_LIMIT = 3
    user = UserFactory(username="organizer", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def login(client: Client, password: str, username: str = "organizer", url: str = ADMIN_LOGIN, **meta: str):
    return client.post(url, {"username": username, "password": password}, **meta)


def assert_locked_out(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 429
    assert b"Too many failed login attempts. Try again in 15 minutes." in response.content
    assert response["Retry-After"] == "900"


def test_right_password_logs_in(client, staff):
    response = login(client, PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_locked_out_after_repeated_failures_even_with_the_right_password(client, staff):
    for _ in range(2):
        response = login(client, "wrong")
        assert response.status_code == 200
        assert b"Please enter the correct username and password" in response.content
    assert_locked_out(login(client, "wrong"))
    assert_locked_out(login(client, PASSWORD))
    assert client.get("/admin/").status_code == 302  # not logged in
    # Another address is not locked out of this account.
    assert login(Client(), PASSWORD, REMOTE_ADDR="192.0.2.50").status_code == 302


@pytest.mark.parametrize(("guessed_at", "then_at"), [(ADMIN_LOGIN, DESK_LOGIN), (DESK_LOGIN, ADMIN_LOGIN)])
def test_the_check_in_desk_login_is_protected_too_and_shares_the_count(client, staff, guessed_at, then_at):
    """The desk's session also opens the admin: guessing there must cost what guessing at the admin costs."""
    for _ in range(3):
        login(client, "wrong", url=guessed_at)
    assert_locked_out(login(client, PASSWORD, url=then_at))
    assert client.get("/check-in/").status_code == 302  # not logged in


def test_success_before_the_limit_clears_the_count(client, staff):
    for _ in range(2):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    other = Client()
    for _ in range(2):
        login(other, "wrong")
    assert login(other, PASSWORD).status_code == 302


def test_one_address_guessing_many_usernames_is_locked_out(client, staff):
    for n in range(3):
        login(client, "wrong", username=f"user{n}")
    assert_locked_out(login(client, PASSWORD))


def test_the_count_lives_in_the_database_every_process_shares(client, staff):
    for _ in range(2):
        login(client, "wrong")
    assert AccessAttempt.objects.get(ip_address="127.0.0.1").failures_since_start == 2


def test_lockout_expires(client, staff, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for _ in range(3):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 429
    time.sleep(1.2)
    assert login(client, PASSWORD).status_code == 302


def test_a_spoofed_forwarded_for_does_not_reset_the_lockout(client, staff, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    alb = {"REMOTE_ADDR": "10.0.0.2"}
    for n in range(3):
        login(client, "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}, 198.51.100.7", **alb)
    assert_locked_out(login(client, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99, 198.51.100.7", **alb))
