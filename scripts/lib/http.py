"""One small HTTP client for the scripts (stdlib only; a new TCP connection per request, like a client's retry).

Never raises for an HTTP status or a network error: the answer says what happened (status 0: no HTTP answer).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    method: str
    url: str
    status: int  # 0: no HTTP answer at all (refused, reset, timeout)
    started: float  # time.monotonic() when the request was sent
    elapsed: float
    body: Any = None  # parsed JSON, else the text
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    error: str = ""

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path

    @property
    def code(self) -> str | None:
        """The stable `code` of a problem+json answer."""
        return self.body.get("code") if isinstance(self.body, dict) else None

    def is_problem(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/problem+json") and bool(self.code)


def request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, *, timeout: float = 20
) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    outgoing = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the scripts call loopback only
    outgoing.add_header("Accept", "application/json")
    if data is not None:
        outgoing.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        outgoing.add_header(name, value)
    started = time.monotonic()
    status, raw, received, error = 0, b"", {}, ""
    try:
        with urllib.request.urlopen(outgoing, timeout=timeout) as response:  # noqa: S310 - loopback
            status, raw, received = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as http_error:
        status, raw, received = http_error.code, http_error.read(), dict(http_error.headers)
    except OSError as os_error:
        error = f"{os_error.__class__.__name__}: {os_error}"
    elapsed = time.monotonic() - started
    text = raw.decode(errors="replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = text
    lowered = {name.lower(): value for name, value in received.items()}
    return Answer(method, url, status, started, elapsed, parsed, lowered, error)


def get(url: str, **kwargs: Any) -> Answer:
    return request("GET", url, **kwargs)


def get_json(url: str) -> Any:
    """The JSON body of a GET that must answer 200."""
    answer = get(url, timeout=10)
    if answer.status != 200:
        raise RuntimeError(f"GET {url}: {answer.status or answer.error} {str(answer.body)[:200]}")
    return answer.body
