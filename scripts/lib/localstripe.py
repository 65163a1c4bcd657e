"""localstripe, the stateful Stripe stand-in the tests, the browser journey and the fault runs pay through.

It speaks Stripe's HTTP API (PaymentIntents with manual capture, refunds, 3-D Secure's `requires_action`), signs
webhooks it is told to send, and serves a fake stripe.js at `<base>/js.stripe.com/v3/`. What it lacks is listed in
docs/payments.md.

One of those gaps, Stripe's Idempotency-Key, is filled here by a small HTTP proxy in front of it, and `base` is the
proxy's address. As Stripe does (docs.stripe.com/api/idempotent_requests), a POST carrying a key that was seen
before (per secret key) is not executed again: the same method, path and parameters get the first answer again,
status and body, with `Idempotent-Replayed: true`; other parameters get `400 idempotency_error`; a request still
running under the key gets `409 idempotency_key_in_use`. Every other request passes through unchanged. Keys are
kept for the block (Stripe keeps them for 24 hours).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from scripts.lib.processes import free_port, running
from scripts.lib.wait import wait_for

# Keys of the stand-in's own: localstripe accepts any key shaped like Stripe's test keys.
SECRET_KEY = "sk_test_localstripe"  # noqa: S105 - the stand-in's, no account's  # pragma: allowlist secret
PUBLISHABLE_KEY = "pk_test_localstripe"  # pragma: allowlist secret

# Longer than any pause a fault run holds localstripe in: the proxy waits for its answer as the client's socket would.
UPSTREAM_TIMEOUT_S = 120
# Connection-level headers, which belong to each hop rather than to the request or the answer.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"})


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Localstripe:
    base: str  # STRIPE_API_BASE: the idempotency proxy
    upstream: str  # localstripe itself, without Stripe's idempotency
    pid: int  # localstripe's

    @property
    def port(self) -> int:
        """The port the shop's Stripe calls connect to (the proxy's)."""
        return int(urlsplit(self.base).port or 80)

    def pause(self) -> None:
        """Stripe stops answering (connections are accepted and then hang), as in an outage that times calls out."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _stripe_error(status: int, kind: str, code: str, message: str) -> _Reply:
    body = json.dumps({"error": {"type": kind, "code": code, "message": message}}).encode()
    return _Reply(status, [("Content-Type", "application/json")], body)


@dataclass
class _Saved:
    request: tuple[str, str, tuple[tuple[str, str], ...]]  # method, path, parameters (order does not matter)
    answer: _Reply | None = None  # None while the first request runs


class IdempotencyKeys:
    """The first answer for each key, and the request it answered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.saved: dict[tuple[str, str], _Saved] = {}

    def answer(self, scope: tuple[str, str], request: _Saved, execute: Callable[[], _Reply | None]) -> _Reply | None:
        """The saved answer for the key, or execute()'s, saved; None when localstripe gave none (nothing saved,
        as Stripe saves nothing for a request that never began executing)."""
        with self.lock:
            saved = self.saved.setdefault(scope, request)
        if saved is not request:
            return self._again(saved, request, key=scope[1])
        answer = execute()
        with self.lock:
            if answer is None:
                del self.saved[scope]
            saved.answer = answer
        return answer

    @staticmethod
    def _again(saved: _Saved, request: _Saved, *, key: str) -> _Reply:
        if saved.request != request.request:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first used with. "
                f"Try using a key other than '{key}' if you meant to execute a different request."
            )
            return _stripe_error(400, "idempotency_error", "", message)
        if saved.answer is None:
            message = f"There is currently another in-progress request using this Idempotency-Key: {key}."
            return _stripe_error(409, "invalid_request_error", "idempotency_key_in_use", message)
        return _Reply(saved.answer.status, [*saved.answer.headers, ("Idempotent-Replayed", "true")], saved.answer.body)


class _Proxy(BaseHTTPRequestHandler):
    """One request: to localstripe, through the idempotency keys when it is a POST with a key."""

    server: _ProxyServer

    def handle_one(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Idempotency-Key")
        if self.command == "POST" and key:
            parameters = tuple(sorted(parse_qsl(body.decode(errors="replace"), keep_blank_values=True)))
            request = _Saved((self.command, self.path, parameters))
            scope = (self.headers.get("Authorization", ""), key)
            answer = self.server.keys.answer(scope, request, lambda: self._forward(body))
        else:
            answer = self._forward(body)
        if answer is None:
            answer = _stripe_error(502, "api_error", "", "localstripe did not answer the proxy.")
        with contextlib.suppress(OSError):  # the client may be gone (a killed worker): its answer is still saved
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

    # The methods localstripe answers (its CORS headers name them); http.server dispatches on these names.
    do_GET = do_POST = do_DELETE = do_OPTIONS = handle_one  # noqa: N815

    def _forward(self, body: bytes) -> _Reply | None:
        headers = {name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=UPSTREAM_TIMEOUT_S)
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            answer = response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            upstream.close()
        kept = [(name, value) for name, value in response.getheaders() if name.lower() not in HOP_BY_HOP]
        return _Reply(response.status, kept, answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests and fault runs print what matters."""


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", port), _Proxy)
        self.upstream_port = upstream_port
        self.keys = IdempotencyKeys()


@contextlib.contextmanager
def idempotency_proxy(upstream_port: int) -> Iterator[str]:
    """The proxy on 127.0.0.1 for the block, in a thread of this process: its base URL."""
    server = _ProxyServer(free_port(18400, 18499), upstream_port)
    thread = threading.Thread(target=server.serve_forever, name="localstripe-idempotency", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def running_localstripe(port: int | None = None) -> Iterator[Localstripe]:
    """localstripe on 127.0.0.1 behind the idempotency proxy, for the block."""
    port = port or free_port(18400, 18499)
    # --from-scratch: localstripe keeps its state in one fixed file (/tmp/localstripe.pickle) and would load what
    # another instance (a parallel run, a previous one) left there, even half-written.
    argv = [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"]
    with (
        tempfile.TemporaryFile() as log,
        running(argv, cwd=Path(tempfile.gettempdir()), env=dict(os.environ), output=log, grace=5) as process,
    ):
        try:
            wait_for(f"localstripe on port {port}", lambda: _listening(port) or process.poll() is not None, timeout=30)
            if process.poll() is not None:
                raise RuntimeError("localstripe did not start")
        except Exception:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-3000:])
            raise
        try:
            with idempotency_proxy(port) as base:
                yield Localstripe(base=base, upstream=f"http://127.0.0.1:{port}", pid=process.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a paused process would not stop on SIGTERM
