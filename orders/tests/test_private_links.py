"""Private order links and ticket codes: unguessable, checked in constant time, and an order code alone reveals nothing.

The timing of a comparison cannot be measured reliably in a test; what can be: a wrong secret is answered exactly
like an unknown order code (status, body and the database work done), the comparison goes through
`hmac.compare_digest`, and every secret is drawn from `secrets` with at least 128 bits.
"""

from __future__ import annotations

import ast
import hmac
import inspect
import math
import re
import string
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from events.tests.factories import UserFactory
from orders import checkout, models, selectors, services
from orders.models import Basket, IdempotencyRecord, Order, Ticket

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
UNKNOWN_CODE = "AT-XXXXXX"


def paid_order(ticket_type, *, idempotency_key: str | None = None) -> Order:
    now = timezone.now()
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now).token
    return checkout.order_place(
        token=token,
        name="Ada Lovelace",
        email="ada@example.com",
        payment_method="test",
        now=now,
        idempotency_key=idempotency_key,
        fingerprint=checkout.checkout_fingerprint(
            basket=token, name="Ada Lovelace", email="ada@example.com", payment_method="test"
        ),
    ).order


def answer(client: Client, url: str) -> tuple[int, bytes, int]:
    """Status, body and the number of database queries of one GET; the language switcher's CSRF token, masked afresh
    for every response whatever was asked, is left out."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b'name="csrfmiddlewaretoken"', response.content)
    return response.status_code, body, len(queries)


def wrong_secrets(secret: str) -> dict[str, str]:
    return {
        "all wrong": "x" * len(secret),
        "all but the last character": secret[:-1] + ("A" if secret[-1] != "A" else "B"),
        "a prefix": secret[: len(secret) // 2],
        "one character more": secret + "A",
        "other case": secret.swapcase(),
    }


class TestOrderPage:
    @pytest.mark.parametrize("suffix", ["", "tickets.pdf"], ids=["page", "pdf"])
    def test_a_wrong_secret_is_answered_exactly_like_an_unknown_order_code(self, client, ticket_type, suffix):
        order = paid_order(ticket_type)
        assert client.get(f"/orders/{order.code}/{order.secret}/{suffix}").status_code == 200

        unknown = answer(client, f"/orders/{UNKNOWN_CODE}/{order.secret}/{suffix}")
        for name, secret in wrong_secrets(order.secret).items():
            # Same status, same bytes, and the same database work: nothing tells "this order exists" apart.
            assert answer(client, f"/orders/{order.code}/{secret}/{suffix}") == unknown, name
        assert unknown[0] == 404
        assert order.code.encode() not in unknown[1]

    @pytest.mark.parametrize("url", ["/orders/{code}/", "/orders/{code}/tickets.pdf", "/orders/{code}//"])
    def test_the_order_code_alone_opens_nothing(self, client, ticket_type, url):
        order = paid_order(ticket_type)

        response = client.get(url.format(code=order.code))

        assert response.status_code == 404
        assert order.name.encode() not in response.content
        assert not response.content.startswith(b"%PDF")

    def test_the_secret_is_compared_with_hmac_compare_digest(self, ticket_type, monkeypatch):
        order = paid_order(ticket_type)
        calls = []
        real = hmac.compare_digest

        def recording(a, b):  # type: ignore[no-untyped-def]
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", recording)

        assert selectors.order_for_shopper(code=order.code, secret=order.secret).order == order
        with pytest.raises(selectors.NotFoundError):
            selectors.order_for_shopper(code=order.code, secret="y" * len(order.secret))

        assert calls == [
            (order.secret.encode(), order.secret.encode()),
            (order.secret.encode(), b"y" * len(order.secret)),
        ]

    def test_the_secret_is_not_part_of_the_sql_lookup(self, ticket_type):
        """Found by the public code, then compared in Python: the database's string comparison (which stops at the
        first differing byte) never sees the secret."""
        order = paid_order(ticket_type)

        with CaptureQueriesContext(connection) as queries:
            selectors.order_for_shopper(code=order.code, secret=order.secret)

        assert queries.captured_queries
        assert not [q["sql"] for q in queries.captured_queries if order.secret in q["sql"]]


class TestOrderCodeOnTheApi:
    """The organizer API is the only one that takes an order code alone; without staff rights a real code and a
    made-up one get the same answer."""

    @pytest.mark.parametrize("path", ["/api/orders/{code}", "/api/orders/{code}/cancel"])
    def test_a_real_code_is_refused_exactly_like_an_unknown_one(self, ticket_type, path):
        order = paid_order(ticket_type)
        method = "post" if path.endswith("cancel") else "get"
        non_staff = APIClient()
        non_staff.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory()).key}")

        for client, status in ((APIClient(), 401), (non_staff, 403)):
            real = getattr(client, method)(path.format(code=order.code))
            unknown = getattr(client, method)(path.format(code=UNKNOWN_CODE))
            assert (real.status_code, real.content) == (unknown.status_code, unknown.content) == (status, real.content)
            assert order.name not in real.content.decode()
        order.refresh_from_db()
        assert order.status == Order.Status.PAID


class TestRepeatedCheckoutSubmit:
    """A checkout form submitted again after its basket is gone shows the order the first submit placed: only
    to whoever holds that form's one-time key, never for a key some API client chose."""

    def test_an_api_idempotency_key_does_not_open_its_order_through_the_checkout_form(self, ticket_type):
        order = paid_order(ticket_type, idempotency_key="form-42")  # an API client's own, guessable key

        response = Client().post(
            "/checkout/",
            {"name": "Mallory", "email": "m@example.com", "payment_method": "test", "idempotency_key": "42"},
        )

        assert response.status_code == 302
        assert order.secret not in response["Location"]
        assert response["Location"] == "/basket/"

    def test_the_form_keys_cannot_be_produced_through_the_api(self, api, ticket_type):
        """Form keys live in a namespace the API's Idempotency-Key syntax cannot reach (it allows no spaces)."""
        basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=timezone.now())
        body = {"basket": basket.token, "name": "Ada", "email": "ada@example.com", "payment_method": "test"}

        response = api.post("/api/checkout", body, format="json", HTTP_IDEMPOTENCY_KEY="form 42")

        assert response.status_code == 400
        assert not IdempotencyRecord.objects.exists()


# --- how the secrets are made ----------------------------------------------------------------------------

URLSAFE = string.ascii_letters + string.digits + "-_"  # secrets.token_urlsafe
SECRETS = {
    # generator, the model field it is the default of, its alphabet
    "order secret (private order link)": (models.new_order_secret, Order._meta.get_field("secret"), URLSAFE),
    "ticket code (QR code, check-in)": (models.new_ticket_code, Ticket._meta.get_field("code"), models.SECRET_ALPHABET),
    "basket token (anonymous basket)": (models.new_basket_token, Basket._meta.get_field("token"), URLSAFE),
}
SAMPLES = 3000


@pytest.mark.parametrize("name", SECRETS)
def test_each_secret_is_a_random_value_of_at_least_128_bits(name):
    generate, field, alphabet = SECRETS[name]
    values = [generate() for _ in range(SAMPLES)]

    lengths = {len(value) for value in values}
    used = set("".join(values))
    assert len(lengths) == 1, "fixed length, so the bits below hold for every value"
    assert used == set(alphabet), "every symbol of the alphabet in use, and no other"
    bits = lengths.pop() * math.log2(len(alphabet))
    assert bits >= 128, f"{name}: {bits:.0f} bits"
    assert len(set(values)) == SAMPLES
    assert field.default is generate
    assert not field.editable


@pytest.mark.parametrize("name", SECRETS)
def test_each_secret_comes_from_the_secrets_module(name):
    """Not `random` (predictable from its outputs), not uuid1 (time and MAC address): the CSPRNG only."""
    generate = SECRETS[name][0]
    tree = ast.parse(inspect.getsource(generate))
    modules = {
        node.func.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
    }
    assert modules == {"secrets"}, f"{name} calls {sorted(modules)}"
    assert models.secrets.__name__ == "secrets"


def test_drf_tokens_are_random_160_bit_values():
    user = UserFactory()
    key = Token.objects.create(user=user).key

    assert re.fullmatch(r"[0-9a-f]{40}", key)  # os.urandom(20), hex: 160 bits


# --- no secret compared with == in the application code --------------------------------------------------

SECRET_NAME = re.compile(r"secret|token|password|passwd|api_key|signature", re.IGNORECASE)
APP_DIRS = ("aegistickets", "events", "orders")


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return ""


def secret_equality_comparisons(source: str) -> list[str]:
    """`a == b` / `a != b` where an operand is named like a secret (None checks aside), as "line: code"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Constant) and o.value is None for o in operands):
            continue
        if any(SECRET_NAME.search(_name(o)) for o in operands):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_secret_is_compared_with_equality_operators():
    """`==` on strings stops at the first differing character; secrets go through hmac.compare_digest or, as the
    whole value of a unique key, through one index lookup (docs/security.md)."""
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for directory in APP_DIRS
        for path in sorted((ROOT / directory).rglob("*.py"))
        if "tests" not in path.parts and "migrations" not in path.parts
        for line in secret_equality_comparisons(path.read_text())
    ]
    assert not found, "compare secrets with hmac.compare_digest:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("ok = order.secret == given", ["1: order.secret == given"]),
        ("if token != request.GET['token']:\n    pass", ["1: token != request.GET['token']"]),
        ("ok = hmac.compare_digest(order.secret.encode(), given.encode())", []),
        ("missing = secret_arn == None or basket_token is None", []),
    ],
)
def test_the_equality_scan_sees_a_comparison_of_a_secret(source, found):
    assert secret_equality_comparisons(source) == found
