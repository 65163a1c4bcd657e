"""A TCP proxy between a served shop and PostgreSQL that can lose one commit's acknowledgement.

Transparent until armed. Armed, it lets through the COMMIT of a transaction that inserted into "orders_order", waits
for PostgreSQL's answer without relaying it, and closes both sides: the commit happened, the app only learns that its
connection broke. It fires once, then is transparent again (the app's read-back on a new connection goes through).

It reads the frontend protocol (www.postgresql.org/docs/current/protocol-message-formats.html): untyped messages
first (SSLRequest and GSSENCRequest, answered by one byte, then the StartupMessage), then typed ones (a byte, an
int32 length that counts itself, the body). SQL runs from `Q` (simple query: what psycopg 3 sends for Django's
client-side-bound statements and for its own COMMIT) or, in the extended protocol, from `E` (Execute) of a portal
that a `B` (Bind) made of a statement that a `P` (Parse) named; the server answers such a batch at `S` (Sync). The
private cluster has no TLS, so the stream stays readable. Loopback only; the threads are daemons and the listener
closes with the block.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from scripts.lib.processes import free_port

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104  # answered by one byte; the StartupMessage follows
INSERT_ORDER = re.compile(rb'\s*INSERT\s+INTO\s+"orders_order"\s', re.IGNORECASE)
COMMIT = re.compile(rb"\s*(COMMIT|END)\b", re.IGNORECASE)
ROLLBACK = re.compile(rb"\s*(ROLLBACK|ABORT)\b(?!\s+TO\b)", re.IGNORECASE)  # not ROLLBACK TO SAVEPOINT
ANSWER_TIMEOUT_S = 5


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def command_tags(answer: bytes) -> list[str]:
    """The CommandComplete tags in whole backend messages (a `C` carries the tag: COMMIT, or ROLLBACK when the
    transaction had failed), up to and including ReadyForQuery; [] until that has arrived."""
    tags, at = [], 0
    while at + 5 <= len(answer):
        kind, length = answer[at : at + 1], struct.unpack("!i", answer[at + 1 : at + 5])[0]
        if at + 1 + length > len(answer):
            return []
        if kind == b"C":
            tags.append(answer[at + 5 : at + 1 + length].rstrip(b"\0").decode())
        if kind == b"Z":
            return tags or ["(none)"]
        at += 1 + length
    return []


@dataclass
class Cut:
    """One acknowledgement withheld: the SQL let through and what PostgreSQL answered to it."""

    sql: str
    answer: list[str] = field(default_factory=list)


class _Session:
    """One client connection and its connection to PostgreSQL: the frontend stream is read message by message, the
    backend stream relayed as it comes (or withheld once a cut begins)."""

    def __init__(self, proxy: CommitAckLoss, client: socket.socket) -> None:
        self.proxy, self.client = proxy, client
        self.server = socket.create_connection(("127.0.0.1", proxy.upstream_port), timeout=10)
        self.server.settimeout(None)
        self.inserted_order = False
        self.statements: dict[bytes, bytes] = {}  # prepared statement name → SQL (Parse)
        self.portals: dict[bytes, bytes] = {}  # portal name → SQL (Bind)
        self.withheld = bytearray()
        self.withholding, self.answered = threading.Event(), threading.Event()

    def run(self) -> None:
        threading.Thread(target=self._backend, daemon=True).start()
        with contextlib.suppress(EOFError, OSError):
            self._startup()
            while True:
                kind, body = self._read_typed()
                sql = self._executes(kind, body)
                if self._cuts(sql):
                    self._cut(kind, body, sql)
                    return
                self._forward(kind, body)
        self.close()

    def _startup(self) -> None:
        """Untyped messages until the StartupMessage (or a CancelRequest) has gone through."""
        while True:
            header = _recv_exactly(self.client, 8)
            length, code = struct.unpack("!ii", header)
            self.server.sendall(header + _recv_exactly(self.client, length - 8))
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                return

    def _read_typed(self) -> tuple[bytes, bytes]:
        header = _recv_exactly(self.client, 5)
        return header[:1], _recv_exactly(self.client, struct.unpack("!i", header[1:])[0] - 4)

    def _executes(self, kind: bytes, body: bytes) -> bytes:
        """The SQL this message runs: a Query's; an Execute's, through its portal's Bind and statement's Parse."""
        if kind == b"Q":
            return body.rstrip(b"\0")
        if kind == b"P":
            name, sql, _ = body.split(b"\0", 2)
            self.statements[name] = sql
        elif kind == b"B":
            portal, statement, _ = body.split(b"\0", 2)
            self.portals[portal] = self.statements.get(statement, b"")
        elif kind == b"E":
            return self.portals.get(body.split(b"\0", 1)[0], b"")
        return b""

    def _cuts(self, sql: bytes) -> bool:
        """Whether this SQL is the COMMIT to cut; keeps track of whether the transaction wrote an order."""
        if INSERT_ORDER.match(sql):
            self.inserted_order = True
        elif ROLLBACK.match(sql):
            self.inserted_order = False
        elif COMMIT.match(sql):
            cut, self.inserted_order = self.inserted_order and self.proxy.take_arm(), False
            return cut
        return False

    def _cut(self, kind: bytes, body: bytes, sql: bytes) -> None:
        """Lets the COMMIT through (an Execute with the rest of its batch, which the server answers at Sync), waits
        for the server's answer without relaying it, then closes both sides."""
        self.withholding.set()
        self._forward(kind, body)
        while kind not in (b"Q", b"S"):
            kind, body = self._read_typed()
            self._forward(kind, body)
        self.answered.wait(ANSWER_TIMEOUT_S)
        self.proxy.cuts.append(Cut(sql=sql.decode(errors="replace"), answer=command_tags(bytes(self.withheld))))
        self.close()

    def _forward(self, kind: bytes, body: bytes) -> None:
        self.server.sendall(kind + struct.pack("!i", len(body) + 4) + body)

    def _backend(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.server.recv(65536):
                if not self.withholding.is_set():
                    self.client.sendall(data)
                    continue
                self.withheld += data
                if command_tags(bytes(self.withheld)):
                    self.answered.set()
                    return
        self.close()

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class CommitAckLoss:
    """The proxy: `url(database)` for the app, `arm()` before the checkout whose acknowledgement is to be lost,
    `cuts` afterwards."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", free_port()))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.armed = threading.Event()
        self.cuts: list[Cut] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def arm(self) -> None:
        self.armed.set()

    def take_arm(self) -> bool:
        """Fires once: the first COMMIT that qualifies disarms the proxy."""
        with self.lock:
            armed = self.armed.is_set()
            self.armed.clear()
        return armed

    def serve(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                session = _Session(self, client)
            except OSError:
                client.close()  # PostgreSQL is not there: the app sees the connection refused as closed
                continue
            threading.Thread(target=session.run, daemon=True).start()


@contextlib.contextmanager
def commit_ack_loss(upstream_port: int) -> Iterator[CommitAckLoss]:
    """The proxy in front of PostgreSQL on `upstream_port`, for the block."""
    proxy = CommitAckLoss(upstream_port)
    thread = threading.Thread(target=proxy.serve, name="pg-commit-ack-loss", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.stopping.set()
        thread.join(5)
        proxy.listener.close()
