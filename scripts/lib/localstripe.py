"""localstripe, the stateful Stripe stand-in the tests, the browser journey and the fault runs pay through.

It speaks Stripe's HTTP API (PaymentIntents with manual capture, refunds, 3-D Secure's `requires_action`), signs
webhooks it is told to send, and serves a fake stripe.js at `<base>/js.stripe.com/v3/`. What it lacks is listed in
docs/payments.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.lib.processes import free_port, running
from scripts.lib.wait import wait_for

# Keys of the stand-in's own: localstripe accepts any key shaped like Stripe's test keys.
SECRET_KEY = "sk_test_localstripe"  # noqa: S105 - the stand-in's, no account's  # pragma: allowlist secret
PUBLISHABLE_KEY = "pk_test_localstripe"  # pragma: allowlist secret


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Localstripe:
    base: str  # STRIPE_API_BASE
    pid: int

    def pause(self) -> None:
        """Stripe stops answering (connections are accepted and then hang), as in an outage that times calls out."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)


@contextlib.contextmanager
def running_localstripe(port: int | None = None) -> Iterator[Localstripe]:
    """localstripe on 127.0.0.1 for the block."""
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
            yield Localstripe(base=f"http://127.0.0.1:{port}", pid=process.pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)  # a paused process would not stop on SIGTERM
