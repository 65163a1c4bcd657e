"""Security headers: a strict Content-Security-Policy that every page we serve actually satisfies."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import django
import drf_spectacular
import pytest
from django.test import Client

from events.tests.factories import EventFactory, TicketTypeFactory

pytestmark = pytest.mark.django_db

EXECUTABLE_SCRIPT_TYPES = {"", "text/javascript", "module", "application/javascript"}


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def directives(header: str) -> dict[str, list[str]]:
    parts = (d.split() for d in header.split(";") if d.strip())
    return {d[0]: d[1:] for d in parts}


class InlineCode(HTMLParser):
    """Collects what a CSP without 'unsafe-inline' would block: inline scripts, <style> blocks, style/on* attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.attributes: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        self.attributes += [f"<{tag} {n}>" for n in names if n == "style" or n.startswith("on")]
        executable = (names.get("type") or "").lower() in EXECUTABLE_SCRIPT_TYPES
        if tag == "script" and "src" not in names and executable:
            self._inside = "script"
            self.scripts.append("")
        elif tag == "style":
            self._inside = "style"
            self.styles.append("")

    def handle_endtag(self, tag: str) -> None:
        self._inside = None

    def handle_data(self, data: str) -> None:
        if self._inside == "script":
            self.scripts[-1] += data
        elif self._inside == "style":
            self.styles[-1] += data


def assert_page_obeys_its_policy(response) -> None:  # type: ignore[no-untyped-def]
    header = response.headers["Content-Security-Policy"]
    policy = directives(header)
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header
    assert policy["script-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    found = InlineCode()
    found.feed(response.content.decode())
    assert found.scripts == [], "inline <script> would be blocked"
    assert found.attributes == [], "inline style/event-handler attributes would be blocked"
    for block in found.styles:
        assert sha256_source(block) in policy["style-src"], f"inline <style> not allowed by hash: {block!r}"


def policy_of(client: Client, path: str) -> str:
    return client.get(path).headers["Content-Security-Policy"]


def test_policy_has_no_unsafe_inline_anywhere(admin_client: Client):
    for path in ["/", "/api/docs/", "/admin/", "/admin/events/event/", "/api/events"]:
        assert "unsafe-inline" not in policy_of(admin_client, path)


def test_the_hashed_style_blocks_are_the_ones_the_installed_templates_ship(admin_client: Client):
    """The allowed hashes are exactly the installed templates' <style> blocks: an upgrade that changes them fails."""
    templates = {
        "/api/docs/": Path(drf_spectacular.__file__).parent / "templates/drf_spectacular/swagger_ui.html",
        "/admin/events/event/": Path(django.__file__).parent / "contrib/admin/templates/admin/change_list.html",
    }
    for path, template in templates.items():
        blocks = re.findall(r"<style>(.*?)</style>", template.read_text(), re.S)
        assert blocks
        allowed = directives(policy_of(admin_client, path))["style-src"]
        assert allowed == ["'self'", *(sha256_source(b) for b in blocks)]
    assert directives(policy_of(admin_client, "/"))["style-src"] == ["'self'"]


def test_shop_pages_obey_the_policy(client: Client):
    ticket_type = TicketTypeFactory(capacity=10)
    event = ticket_type.event
    EventFactory()
    assert_page_obeys_its_policy(client.get("/"))
    assert_page_obeys_its_policy(client.get(f"/events/{event.slug}/"))
    response = client.post(f"/events/{event.slug}/basket/", {"ticket_type": ticket_type.pk, "quantity": 2}, follow=True)
    assert response.status_code == 200
    assert_page_obeys_its_policy(response)
    assert_page_obeys_its_policy(client.get("/basket/"))
    assert_page_obeys_its_policy(client.get("/checkout/"))
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert_page_obeys_its_policy(response)


def test_admin_pages_obey_the_policy(admin_client: Client, client: Client):
    event = TicketTypeFactory().event
    assert_page_obeys_its_policy(client.get("/admin/login/"))
    for url in ["/admin/", "/admin/events/event/", f"/admin/events/event/{event.pk}/change/", "/admin/auth/user/"]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_page_obeys_its_policy(response)


def test_swagger_ui_loads_its_script_from_a_file_not_inline(client: Client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert_page_obeys_its_policy(response)
    script_url = re.search(r'<script src="([^"]*\?script[^"]*)"', response.content.decode())
    assert script_url
    script = client.get(script_url.group(1).replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_api_responses_carry_the_policy_and_the_other_security_headers(client: Client):
    response = client.get("/api/events")
    assert response.status_code == 200
    assert directives(response.headers["Content-Security-Policy"])["default-src"] == ["'self'"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_media_bucket_images_are_allowed_when_media_lives_on_s3():
    """img-src names the bucket's hosts (or the CDN domain) when MEDIA_BUCKET is set, and nothing else."""
    code = (
        "from django.conf import settings; print(' '.join(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))"
    )
    root = Path(__file__).resolve().parents[2]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIA_", "AWS_"))}
    env = {
        **base,
        "DJANGO_SETTINGS_MODULE": "aegistickets.settings.production",
        "DJANGO_SECRET_KEY": "k" * 50,
        "DJANGO_ENV_FILE": "/nonexistent",
    }
    run = [sys.executable, "manage.py", "shell", "-c", code]
    plain = subprocess.run(run, cwd=root, env=env, capture_output=True, text=True, check=True)  # noqa: S603 - our own interpreter and manage.py
    assert plain.stdout.splitlines()[-1].split() == ["'self'", "data:"]
    s3 = subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        run, cwd=root, env={**env, "MEDIA_BUCKET": "shop-media", "AWS_REGION": "eu-west-1"}, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    assert s3.stdout.splitlines()[-1].split() == [
        "'self'",
        "data:",
        "https://shop-media.s3.amazonaws.com",
        "https://shop-media.s3.eu-west-1.amazonaws.com",
    ]
