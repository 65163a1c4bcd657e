"""The shop as `make chaos` drives it: the API calls of shoppers and organizers, what each shopper was told (kept
for the retries and the books), and the rules every answer under a fault must follow."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from scripts.lib.http import Answer, request
from scripts.lib.serve import Served

# How the shop is served for the faults (run.py): few workers, so a held lock or a killed worker shows.
WORKERS = 3
CONNECT_TIMEOUT = 3  # DATABASE_CONNECT_TIMEOUT: an outage must be answered within this (+ margin)
LOCK_TIMEOUT_S = 3  # the shop's default DATABASE_LOCK_TIMEOUT_MS


@dataclass
class Checkout:
    """One shopper's purchase attempt and every answer they got."""

    key: str
    body: dict[str, Any]
    quantity: int
    answers: list[Answer] = field(default_factory=list)

    @property
    def order_code(self) -> str | None:
        for answer in self.answers:
            if answer.status == 201 and isinstance(answer.body, dict):
                return str(answer.body["order"]["code"])
        return None


def new_checkout(token: str, quantity: int) -> Checkout:
    buyer = uuid.uuid4().hex[:12]
    body = {"basket": token, "name": f"Chaos {buyer}", "email": f"chaos-{buyer}@example.com", "payment_method": "test"}
    return Checkout(key=str(uuid.uuid4()), body=body, quantity=quantity)


class Shop:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.base = served.url
        self.auth = {"Authorization": f"Token {served.token}"}

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        return request(method, f"{self.base}{path}", body, headers)

    def organizer(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.call(method, path, body, self.auth)
        if answer.status >= 400 or answer.status == 0:
            raise RuntimeError(f"{method} {path}: {answer.status} {answer.body or answer.error}")
        return answer.body

    def new_ticket_type(self, name: str, capacity: int) -> int:
        """A new published event with one ticket type of `capacity` seats; its id."""
        starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        event = {"name": f"Chaos {name}", "slug": f"chaos-{name}-{uuid.uuid4().hex[:8]}", "is_published": True}
        event |= {"venue": "Fault Hall", "city": "Loopback", "starts_at": starts.isoformat()}
        event["ends_at"] = (starts + timedelta(hours=3)).isoformat()
        made = self.organizer("POST", "/api/events", event)
        body = {"name": "Seat", "price": "25.00", "capacity": capacity, "max_per_order": 4}
        return int(self.organizer("POST", f"/api/events/{made['id']}/ticket-types", body)["id"])

    def basket(self, ticket_type_id: int, quantity: int) -> tuple[Answer, str | None]:
        answer = self.call("POST", "/api/basket", {"ticket_type_id": ticket_type_id, "quantity": quantity})
        token = answer.body.get("token") if answer.status == 201 and isinstance(answer.body, dict) else None
        return answer, token

    def new_basket(self, ticket_type_id: int, quantity: int) -> Checkout:
        """A basket that must be made before the fault; its checkout attempt."""
        answer, token = self.basket(ticket_type_id, quantity)
        if token is None:
            raise RuntimeError(f"setup: basket add answered {answer.status} {answer.code}")
        return new_checkout(token, quantity)

    def checkout(self, attempt: Checkout) -> Answer:
        answer = self.call("POST", "/api/checkout", attempt.body, {"Idempotency-Key": attempt.key})
        attempt.answers.append(answer)
        return answer


def unexpected(answers: list[Answer], allowed: Callable[[Answer], bool]) -> list[str]:
    """The answers that break the rule, as `METHOD /path → status code`."""
    return [f"{a.method} {a.path} → {a.status or a.error} {a.code or ''}".strip() for a in answers if not allowed(a)]


def retryable_503(answer: Answer) -> bool:
    return (
        answer.status == 503
        and answer.is_problem()
        and answer.code in {"service_unavailable", "database_busy"}
        and answer.headers.get("retry-after", "").isdigit()
    )


# --- the database and the workers, seen from outside the app --------------------------------------------------


def sql(database_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as connection:
        return connection.execute(query, params).fetchall()  # type: ignore[arg-type]


class RowLock:
    """Another session (an organizer's long transaction, say) holds a ticket type's row lock until released."""

    def __init__(self, database_url: str, ticket_type_id: int) -> None:
        self.connection = psycopg.connect(database_url, connect_timeout=5)
        self.connection.execute("SELECT id FROM events_tickettype WHERE id = %s FOR UPDATE", (ticket_type_id,))

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


def worker_serving_backend(served: Served, client_port: int) -> int | None:
    """The gunicorn worker whose PostgreSQL socket has this local port (from pg_stat_activity.client_port)."""
    return next(iter(_workers_owning(served, _sockets(lambda local, remote, state: local == client_port))), None)


def workers_connected_to(served: Served, port: int) -> list[int]:
    """The gunicorn workers with a connection open to this loopback port (a request in flight to Stripe's stand-in,
    which closes every connection once it has answered)."""
    return _workers_owning(served, _sockets(lambda local, remote, state: remote == port and state == ESTABLISHED))


ESTABLISHED = "01"  # the state column of /proc/net/tcp


def _sockets(wanted: Callable[[int, int, str], bool]) -> set[str]:
    """The inodes of the TCP sockets whose (local port, remote port, state) are wanted."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            if wanted(local, remote, fields[3]):
                inodes.add(fields[9])
    return inodes


def _workers_owning(served: Served, inodes: set[str]) -> list[int]:
    owners = []
    for pid in served.worker_pids():
        try:
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            owners.append(pid)
    return owners
