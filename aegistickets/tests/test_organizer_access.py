"""Every organizer operation of the API answers 401 without a valid token and 403 to a token without the rights, 404
(or an empty list, or a refusal to create) to staff of another organizer however many rights they hold, and changes
nothing in the database in any of these cases.

The operations are found, not listed: each operation of the OpenAPI schema is resolved through the URL conf to its
view, and the permissions that view gives that method decide (anything but AllowAny = protected). A new operation
is therefore tested the day it appears; a new *public* one fails `test_every_public_operation_is_allowlisted` until
someone writes down here why anonymous callers may use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient, APIRequestFactory

from aegistickets.errors import PROBLEM_CONTENT_TYPE
from events.models import Event, TicketType
from events.tests.factories import (
    EventFactory,
    OrganizerFactory,
    TicketTypeFactory,
    UserFactory,
    main_organizer,
    organizer,
)
from orders import checkout, selectors, services
from orders.models import Basket, Hold, Order

# Operations anyone may call, and why. Keys are "METHOD /api/path" as the OpenAPI schema writes them.
PUBLIC_OPERATIONS = {
    "GET /api/events": "the public catalog: published, upcoming events only",
    "GET /api/events/{id}": "one published event and its ticket types, as its public page shows",
    "POST /api/basket": "anonymous shoppers start a basket; the answer carries its token, the basket's credential",
    "GET /api/basket/{token}": "the basket token (256 random bits) is the credential",
    "DELETE /api/basket/{token}/items/{id}": "the basket token is the credential; an item of another basket is 404",
    "POST /api/checkout": "anonymous checkout, authorised by the basket token in the body",
    "POST /api/waiting-list": "anonymous shoppers join a waiting list; the same answer whoever is in line, and the "
    "entry's token goes only to the address, by email (double opt-in)",
    "GET /api/waiting-list/{token}": "the entry token (192 random bits, emailed to its address) is the credential",
    "DELETE /api/waiting-list/{token}": "the entry token is the credential: leaving takes only that entry out of line",
    "POST /api/waiting-list/{token}/confirm": "the entry token is the credential: confirming proves the address",
    "POST /api/orders/lookup": "a shopper who lost their links asks for them; the same answer whatever the address, "
    "and the links go only to the address, by email",
}
# API routes that are not operations of the schema, and why they need no token.
NOT_IN_SCHEMA = {
    "api:schema": "the OpenAPI document: describes the API, holds no data",
    "api:docs": "Swagger UI for that document",
    "fault": "404 unless FAULT_INJECTION_ENABLED=true (make monitoring-check only; never set in production)",
}
# Protected operations that door staff (the "door staff" group, not is_staff) may use, and why.
DOOR_STAFF_OPERATIONS = {
    "POST /api/check-ins": "door staff scan tickets at the entrance; every other organizer operation refuses them",
}
# Operations that move money: staff also need the admin's "Can cancel and refund orders" permission (and, to cancel
# an event, "Can change event", as the admin's action does).
REFUND_OPERATIONS = {
    "POST /api/orders/{code}/cancel",
    "POST /api/orders/{code}/refunds",
    "POST /api/events/{event_id}/cancel",
}
# At least this many protected operations exist (11 when this was written): the enumeration must not shrink.
MIN_ORGANIZER_OPERATIONS = 11


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in the schema: /api/events/{id}
    operation_id: str
    url_name: str
    protected: bool
    security: tuple[str, ...]
    responses: frozenset[str]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _permissions(view_class: type, method: str, url: str) -> list[Any]:
    """The permission objects the view checks for this method (some views decide per method)."""
    match = resolve(url)
    view = view_class(**getattr(match.func, "initkwargs", {}))
    request = APIRequestFactory().generic(method, url)
    view.setup(request, *match.args, **match.kwargs)
    view.request = view.initialize_request(request)
    return view.get_permissions()


def _schemes(security: list[dict[str, Any]]) -> tuple[str, ...]:
    """The schema's security options as scheme names; its empty option (no auth at all) as "anonymous"."""
    return tuple(sorted({scheme for option in security for scheme in option or ["anonymous"]}))


def _enumerate() -> list[Operation]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, item in schema["paths"].items():
        url = re.sub(r"\{[^}]+\}", "1", path)  # "1" satisfies every path converter (id, token, order_code)
        match = resolve(url)
        view_class = match.func.cls  # type: ignore[attr-defined]
        for method, operation in item.items():
            permissions = _permissions(view_class, method.upper(), url)
            operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    operation_id=operation["operationId"],
                    url_name=match.view_name,
                    protected=not all(isinstance(p, AllowAny) for p in permissions),
                    security=_schemes(operation["security"]),
                    responses=frozenset(operation["responses"]),
                )
            )
    return operations


OPERATIONS = _enumerate()
ORGANIZER = [op for op in OPERATIONS if op.protected]
ORGANIZER_WRITES = [op for op in ORGANIZER if op.method != "GET"]


def _api_url_names() -> set[str]:
    """Every named route under /api/ in the URL conf."""
    names: set[str] = set()

    def walk(patterns: list[Any], prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, route, inner)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                assert pattern.name, f"unnamed API route {route!r}: name it so this test can account for it"
                names.add(namespace + pattern.name)

    walk(get_resolver().url_patterns, "", "")
    return names


# --- the enumeration itself ----------------------------------------------------------------------------


def test_the_schema_and_the_url_conf_agree_on_the_api():
    in_schema = {op.url_name for op in OPERATIONS}

    assert _api_url_names() == in_schema | set(NOT_IN_SCHEMA), "an API route is neither in the schema nor explained"
    assert not in_schema & set(NOT_IN_SCHEMA)
    assert len(ORGANIZER) >= MIN_ORGANIZER_OPERATIONS, [str(op) for op in ORGANIZER]


def test_every_public_operation_is_allowlisted_with_a_reason():
    public = {str(op) for op in OPERATIONS if not op.protected}

    assert public == set(PUBLIC_OPERATIONS), (
        "a public API operation must be listed in PUBLIC_OPERATIONS with the reason anonymous callers may use it "
        "(or protected with IsStaff); an entry for an operation that is no longer public must go"
    )
    assert all(len(reason) > 20 for reason in [*PUBLIC_OPERATIONS.values(), *NOT_IN_SCHEMA.values()])
    assert {str(op) for op in ORGANIZER} | public == {str(op) for op in OPERATIONS}


def test_the_schema_tells_clients_which_operations_need_a_token():
    for op in OPERATIONS:
        if op.protected:
            assert op.security == ("tokenAuth",), f"{op}: the schema must not offer anonymous access"
            assert {"401", "403"} <= op.responses, f"{op}: 401 and 403 must be documented"
        else:
            assert "anonymous" in op.security, f"{op}: public, so the schema should allow no auth"


def test_every_organizer_write_is_tested_with_a_request_staff_could_make():
    assert {op.operation_id for op in ORGANIZER_WRITES} == set(WRITE_BODIES), (
        "WRITE_BODIES needs a valid body for each organizer write (the 401/403 must come from the missing rights, "
        "not from bad input), and nothing for operations that are gone"
    )


# --- what the requests are made of -----------------------------------------------------------------------


@dataclass
class Shop:
    event: Event
    ticket_type: TicketType
    order: Order
    basket: Basket
    hold: Hold


@pytest.fixture
def shop(db: None) -> Shop:
    now = timezone.now()
    event = EventFactory()
    ticket_type = TicketTypeFactory(event=event, capacity=50)
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=2, now=now).token
    order = checkout.order_place(
        token=token, name="Ada Lovelace", email="ada@example.com", payment_method="test", now=now
    ).order
    basket = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now)
    return Shop(event=event, ticket_type=ticket_type, order=order, basket=basket, hold=basket.holds.get())


# `{id}` names the resource of the path segment before it.
ID_OF = {"events": "event", "ticket-types": "ticket_type", "items": "hold"}


def url_for(op: Operation, shop: Shop, *, unknown: bool = False) -> str:
    """The operation's URL for real objects of the shop (or for made-up ones)."""

    def value(name: str, collection: str) -> str:
        if name == "code":
            return "AT-XXXXXX" if unknown else shop.order.code
        if name == "token":
            return "x" * 43 if unknown else shop.basket.token
        if name == "event_id" or (name == "id" and collection in ID_OF):
            return "999999999" if unknown else str(getattr(shop, ID_OF.get(collection, "event")).pk)
        raise AssertionError(f"{op}: tell url_for which object {{{name}}} after {collection!r} names")

    parts = op.path.split("/")
    return "/".join(value(part[1:-1], parts[i - 1]) if part.startswith("{") else part for i, part in enumerate(parts))


WRITE_BODIES: dict[str, Callable[[Shop], dict[str, Any] | None]] = {
    "events_create": lambda shop: {
        "organizer_id": shop.event.organizer_id,
        "name": "Night Market",
        "venue": "Hangar 2",
        "city": "Berlin",
        "starts_at": "2031-05-01T19:00:00Z",
        "ends_at": "2031-05-01T23:00:00Z",
    },
    "events_update": lambda shop: {"name": "Renamed by someone"},
    "ticket_types_create": lambda shop: {"name": "VIP", "price": "90.00", "capacity": 5},
    "ticket_types_update": lambda shop: {"price": "1.00", "capacity": 1000},
    "orders_cancel": lambda shop: None,
    "orders_refund": lambda shop: {"amount": "1.00", "note": "goodwill"},
    "events_cancel": lambda shop: {"batch_size": 10},
    "check_ins_create": lambda shop: {"secret": shop.order.tickets.first().code, "event_id": shop.event.pk},
    "event_vouchers_create": lambda shop: {
        "count": 3,
        "discount": {"type": "percent", "value": "10"},
        "max_redemptions": 1,
    },
}


def call(client: APIClient, op: Operation, shop: Shop, *, unknown: bool = False) -> Any:
    body = WRITE_BODIES[op.operation_id](shop) if op.operation_id in WRITE_BODIES else None
    return client.generic(
        op.method,
        url_for(op, shop, unknown=unknown),
        **({"data": json.dumps(body), "content_type": "application/json"} if body is not None else {}),
    )


def database_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the project's models and Django's own apps use."""
    return {
        model._meta.label: list(model._default_manager.order_by("pk").values_list())
        for model in apps.get_models()
        if not model._meta.proxy
    }


def token_client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def door_staff() -> Any:
    user = UserFactory()
    user.save()
    user.groups.add(Group.objects.get_or_create(name=selectors.DOOR_STAFF_GROUP)[0])
    main_organizer().members.add(user)  # door staff admit the tickets of their organizers' events
    return user


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    return body


# --- 401: no valid token ---------------------------------------------------------------------------------


def _anonymous() -> APIClient:
    return APIClient()


def _unknown_token() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    return client


def _inactive_staff() -> APIClient:
    return token_client(UserFactory(is_staff=True, is_superuser=True, is_active=False))


def _staff_session_without_token() -> APIClient:
    """A signed-in admin's browser: the API authenticates tokens only (no session auth, so no CSRF surface)."""
    client = APIClient()
    admin = UserFactory(is_staff=True, is_superuser=True)
    admin.save()
    client.force_login(admin)
    return client


UNAUTHENTICATED = {
    "no token": _anonymous,
    "unknown token": _unknown_token,
    "inactive staff user's token": _inactive_staff,
    "admin session cookie, no token": _staff_session_without_token,
}


@pytest.mark.parametrize("who", UNAUTHENTICATED)
@pytest.mark.parametrize("op", ORGANIZER, ids=str)
def test_organizer_operations_answer_401_without_a_valid_token(op, who, shop):
    client = UNAUTHENTICATED[who]()
    before = database_state()

    response = call(client, op, shop)

    assert_problem(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == 'Token realm="api"'
    assert database_state() == before
    # Made-up ids and codes get the very same answer: a refusal reveals nothing about what exists.
    assert call(client, op, shop, unknown=True).content == response.content


# --- 403: a valid token without the rights ---------------------------------------------------------------

FORBIDDEN = {
    "active non-staff user": lambda: UserFactory(),
    "door staff": door_staff,
    # Staff, but given no right on the shop's models in the admin: the API grants no more than the admin would.
    "staff without the admin's rights": lambda: UserFactory(is_staff=True),
}
# Who may still use the door operations, and why.
DOOR = {"door staff": "the door staff group exists for them", "staff without the admin's rights": "staff work doors"}


@pytest.mark.parametrize(
    ("op", "who"),
    [
        pytest.param(op, who, id=f"{op}-{who}")
        for op in ORGANIZER
        for who in FORBIDDEN
        if not (who in DOOR and str(op) in DOOR_STAFF_OPERATIONS)
    ],
)
def test_organizer_operations_answer_403_to_a_token_without_the_rights(op, who, shop):
    client = token_client(FORBIDDEN[who]())
    before = database_state()

    response = call(client, op, shop)

    assert_problem(response, 403, "permission_denied")
    assert "WWW-Authenticate" not in response
    assert database_state() == before
    assert call(client, op, shop, unknown=True).content == response.content


# --- controls: the same requests with the rights go through ----------------------------------------------


@pytest.mark.parametrize("op", ORGANIZER, ids=str)
def test_the_same_request_with_a_staff_token_is_served(op, shop):
    """Shows the refusals above come from the missing rights, not from a broken URL or body, and that the
    database comparison would see a write."""
    client = token_client(organizer(refund=str(op) in REFUND_OPERATIONS))
    before = database_state()

    response = call(client, op, shop)

    assert 200 <= response.status_code < 300, (response.status_code, response.content)
    changed = database_state() != before
    assert changed == (op.method != "GET")


def viewer() -> Any:
    """Staff whose admin role may look at everything of the shop and change nothing."""
    user = UserFactory(is_staff=True)
    main_organizer().members.add(user)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label__in=["events", "orders"], codename__startswith="view_")
    )
    return user


@pytest.mark.parametrize("op", [op for op in ORGANIZER if str(op) not in DOOR_STAFF_OPERATIONS], ids=str)
def test_a_view_only_role_reads_and_every_write_is_403(op, shop):
    """As in the admin, where this role sees the lists and pages but no save button."""
    client = token_client(viewer())
    before = database_state()

    response = call(client, op, shop)

    if op.method == "GET":
        assert response.status_code == 200, response.content
    else:
        assert_problem(response, 403, "permission_denied")
    assert database_state() == before


def refunding_staff() -> Any:
    user = UserFactory(is_staff=True)
    main_organizer().members.add(user)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["refund_order", "change_event"]))
    return user


def staff_with(*codenames: str) -> Any:
    user = UserFactory(is_staff=True)
    user.save()  # the factory's password, stored: an admin session checks it
    main_organizer().members.add(user)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="orders", codename__in=codenames))
    return user


@pytest.mark.parametrize("perms", [(), ("view_order",), ("view_order", "change_order")], ids=str)
@pytest.mark.parametrize("op", [op for op in ORGANIZER if str(op) in REFUND_OPERATIONS], ids=str)
def test_moving_money_needs_the_refund_permission_not_just_staff(op, perms, shop):
    """A support role that may look at (or even change) orders in the admin may not refund them."""
    client = token_client(staff_with(*perms))
    before = database_state()

    response = call(client, op, shop)

    assert_problem(response, 403, "permission_denied")
    assert database_state() == before


@pytest.mark.parametrize("op", [op for op in ORGANIZER if str(op) in DOOR_STAFF_OPERATIONS], ids=str)
def test_door_staff_may_use_the_door_operations(op, shop):
    response = call(token_client(door_staff()), op, shop)

    assert 200 <= response.status_code < 300, (response.status_code, response.content)


def test_door_staff_operations_exist_and_are_protected():
    assert set(DOOR_STAFF_OPERATIONS) <= {str(op) for op in ORGANIZER}


# --- 404: another organizer's objects ---------------------------------------------------------------------------

# What staff of another organizer, holding every right (refunds included), get from each organizer operation on the
# shop's objects: "not_found" is 404 problem JSON, byte for byte what a made-up id or code gets; "empty" is a list
# without any of them; "refused" is the 400 for creating an event in an organizer one is not a member of.
ACROSS_ORGANIZERS = {
    "events_create": "refused",
    "events_update": "not_found",
    "ticket_types_create": "not_found",
    "ticket_types_retrieve": "not_found",
    "ticket_types_update": "not_found",
    "orders_list": "empty",
    "orders_retrieve": "not_found",
    "orders_cancel": "not_found",
    "orders_refund": "not_found",
    "events_cancel": "not_found",
    "events_orders_csv": "not_found",
    "events_attendees_csv": "not_found",
    "check_ins_create": "not_found",
    "event_vouchers_list": "not_found",
    "event_vouchers_create": "not_found",
}


def test_every_organizer_operation_says_what_another_organizers_staff_get():
    assert {op.operation_id for op in ORGANIZER} == set(ACROSS_ORGANIZERS), (
        "ACROSS_ORGANIZERS must say, for each organizer operation, what staff of another organizer get from it (and "
        "the operation must scope its objects to the user's organizers: events_of, orders_of, tickets_of, …)"
    )


def outsider() -> Any:
    """Staff of another organizer with every right of the shop's models, the refund right included."""
    return organizer(refund=True, of=OrganizerFactory())


@pytest.mark.parametrize("op", ORGANIZER, ids=str)
def test_another_organizers_staff_reach_nothing_and_change_nothing(op, shop):
    client = token_client(outsider())
    before = database_state()

    response = call(client, op, shop)

    answer = ACROSS_ORGANIZERS[op.operation_id]
    if answer == "not_found":
        assert_problem(response, 404, "not_found")
        # The same bytes as for a made-up id: nothing tells that the object exists elsewhere.
        assert call(client, op, shop, unknown=True).content == response.content
    elif answer == "empty":
        assert response.status_code == 200, response.content
        assert response.json()["count"] == 0
        assert [value for value in response.json().values() if isinstance(value, list)] == [[]]
    else:
        body = assert_problem(response, 400, "validation_error")
        assert body["errors"] == {"organizer_id": ["Not an organizer you are a member of."]}
    assert database_state() == before


@pytest.mark.parametrize("op", ORGANIZER, ids=str)
def test_a_superuser_reaches_every_organizers_objects(op, shop):
    """A member of no organizer: a superuser sees and changes everything, as in the admin."""
    client = token_client(UserFactory(is_staff=True, is_superuser=True))
    before = database_state()

    response = call(client, op, shop)

    assert 200 <= response.status_code < 300, (response.status_code, response.content)
    assert (database_state() != before) == (op.method != "GET")
    if op.operation_id == "orders_list":
        assert [order["code"] for order in response.json()["orders"]] == [shop.order.code]
