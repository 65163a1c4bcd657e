"""English and German throughout: the catalog covers every string the templates and code mark for translation, the
visitor's language comes from the switcher's cookie or Accept-Language, dates and prices are written the language's
way, the problem JSON's `detail` is translated while its `code` stays, emails are written in the order's language
by the worker, the catalog cache never serves one language's page to another, and the tickets PDF prints any name."""

from __future__ import annotations

import ast
import gettext as python_gettext
import io
import re
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polib
import pytest
from django.conf import settings
from django.core.cache import caches
from django.template import engines
from django.templatetags.i18n import BlockTranslateNode, TranslateNode
from django.utils import translation
from pypdf import PdfReader

from aegistickets.catalogs import compile_catalogs
from aegistickets.money import format_money
from events.models import TicketType
from events.tests.factories import EventFactory, TicketTypeFactory
from orders import checkout, outbox, services, tickets
from orders.emails import outbound_message
from orders.models import Order, OutboundEmail
from orders.tickets import tickets_pdf

ROOT = Path(settings.BASE_DIR)
CATALOG = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
TRANSLATION_FUNCTIONS = {"gettext", "gettext_lazy", "gettext_noop", "ngettext", "ngettext_lazy", "pgettext"}
BERLIN = ZoneInfo("Europe/Berlin")


# --- the catalog covers every marked string ---------------------------------------------------------------------


def template_messages(source: str) -> set[tuple[str, str | None]]:
    """(msgid, msgid_plural) of each {% translate %} of a constant and each {% blocktranslate %} of a template, as
    Django itself computes them when it renders (and makemessages extracts them)."""
    nodelist = engines["django"].engine.from_string(source).nodelist
    found: set[tuple[str, str | None]] = set()
    for node in nodelist.get_nodes_by_type(TranslateNode):
        literal = getattr(node.filter_expression.var, "literal", None)
        if isinstance(literal, str):
            found.add((str(literal), None))
    for node in nodelist.get_nodes_by_type(BlockTranslateNode):
        singular = node.render_token_list(node.singular)[0]
        plural = node.render_token_list(node.plural)[0] if node.plural and node.countervar else None
        found.add((singular, plural))
    return found


def python_messages(source: str) -> set[tuple[str, str | None]]:
    """(msgid, msgid_plural) of each call of a django.utils.translation function (under any alias) on literals."""
    tree = ast.parse(source)
    aliases = {
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "django.utils.translation"
        for alias in node.names
        if alias.name in TRANSLATION_FUNCTIONS
    }
    found: set[tuple[str, str | None]] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in aliases):
            continue
        literals = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        if aliases[node.func.id].startswith("ngettext") and len(literals) >= 2:
            found.add((literals[0], literals[1]))
        elif literals:
            found.add((literals[0], None))
    return found


def project_messages() -> dict[tuple[str, str | None], str]:
    """Every marked string of the shop's templates and code, with a file that uses it."""
    found: dict[tuple[str, str | None], str] = {}
    for path in sorted((ROOT / "templates").rglob("*")):
        if path.suffix in {".html", ".txt"}:
            for message in template_messages(path.read_text()):
                found.setdefault(message, str(path.relative_to(ROOT)))
    for app in ("aegistickets", "events", "orders"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            for message in python_messages(path.read_text()):
                found.setdefault(message, str(path.relative_to(ROOT)))
    return found


def untranslated(messages: dict[tuple[str, str | None], str], catalog: polib.POFile) -> list[str]:
    entries = {(entry.msgid, entry.msgid_plural or None): entry for entry in catalog if not entry.obsolete}
    missing = []
    for (msgid, plural), where in sorted(messages.items()):
        entry = entries.get((msgid, plural))
        translated = entry is not None and (all(entry.msgstr_plural.values()) if plural else bool(entry.msgstr))
        if not translated or "fuzzy" in entry.flags:
            missing.append(f"{where}: {msgid!r}")
    return missing


def test_every_string_of_the_templates_and_code_has_a_german_translation():
    messages = project_messages()
    assert len(messages) > 400  # the extraction itself works (a broken one would find nothing to miss)
    missing = untranslated(messages, polib.pofile(str(CATALOG)))
    assert missing == [], "no German translation (run `make messages`, translate, `make catalogs`):\n" + "\n".join(
        missing
    )


@pytest.mark.parametrize(
    ("filename", "source"),
    [
        ("page.html", '<p>{% translate "A sentence nobody translated" %}</p>'),
        ("page.html", "<p>{% blocktranslate with n=x %}Nobody translated {{ n }}{% endblocktranslate %}</p>"),
        ("page.txt", "{% blocktranslate count n=x %}{{ n }} orphan{% plural %}{{ n }} orphans{% endblocktranslate %}"),
        ("code.py", 'from django.utils.translation import gettext as _\nMESSAGE = _("Nobody translated this")\n'),
        ("code.py", 'from django.utils.translation import ngettext\nngettext("%(n)d orphan", "%(n)d orphans", 2)\n'),
    ],
)
def test_the_untranslated_check_catches_a_new_string(filename, source):
    messages = template_messages(source) if filename.endswith((".html", ".txt")) else python_messages(source)
    assert messages
    assert untranslated(dict.fromkeys(messages, filename), polib.pofile(str(CATALOG)))


def test_the_untranslated_check_catches_a_fuzzy_or_empty_entry():
    catalog = polib.pofile(str(CATALOG))
    catalog.find("Your basket").flags.append("fuzzy")
    catalog.find("Sold out").msgstr = ""
    messages = {("Your basket", None): "base.html", ("Sold out", None): "event_detail.html"}
    assert len(untranslated(messages, catalog)) == 2


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)[sd]|\{\w+\}", text))


def test_every_translation_keeps_the_placeholders_of_its_original():
    """A translation that drops or renames a %(name)s placeholder fails at run time (KeyError) or loses data."""
    wrong = []
    for entry in polib.pofile(str(CATALOG)):
        if entry.msgid_plural:
            for form, text in entry.msgstr_plural.items():
                if placeholders(text) != placeholders(entry.msgid_plural if form else entry.msgid):
                    wrong.append(f"{entry.msgid!r} [{form}] -> {text!r}")
        elif placeholders(entry.msgstr) != placeholders(entry.msgid):
            wrong.append(f"{entry.msgid!r} -> {entry.msgstr!r}")
    assert wrong == []


def test_make_catalogs_compiles_the_po_files_that_python_reads(tmp_path):
    shutil.copytree(ROOT / "locale", tmp_path / "locale", ignore=shutil.ignore_patterns("*.mo"))
    (mo,) = compile_catalogs(tmp_path / "locale")
    assert mo == tmp_path / "locale" / "de" / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as compiled:
        german = python_gettext.GNUTranslations(compiled)
    assert german.gettext("Your basket") == "Ihr Warenkorb"
    assert (
        german.ngettext("Cancel %(count)s ticket?", "Cancel %(count)s tickets?", 2) == "%(count)s Tickets stornieren?"
    )


# --- which language a visitor gets ------------------------------------------------------------------------------


pytestmark = pytest.mark.django_db


def test_accept_language_picks_german(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9,en;q=0.5")
    body = response.content.decode()
    assert response["Content-Language"] == "de"
    assert '<html lang="de">' in body
    assert "Kommende Veranstaltungen" in body
    assert "Upcoming events" not in body


def test_without_a_preference_the_shop_speaks_english(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="fr")
    assert response["Content-Language"] == "en"
    assert "Upcoming events" in response.content.decode()


def test_the_switcher_is_on_every_page_and_sets_the_cookie_the_page_follows(client):
    event = EventFactory(name="Aurora Quartet")
    TicketTypeFactory(event=event)
    page = f"/events/{event.slug}/"
    for path in ("/", page, "/basket/", "/no-such-page/"):
        body = client.get(path).content.decode()
        assert 'action="/i18n/setlang/"' in body, path
        assert '<label class="language-switcher__label" for="language-switcher">Language</label>' in body
    assert f'name="next" value="{page}"' in client.get(page).content.decode()  # back to this very page

    response = client.post("/i18n/setlang/", {"language": "de", "next": page}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response["Location"] == page
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "de"
    # The cookie wins over the browser's Accept-Language from now on.
    body = client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "In den Warenkorb" in body
    assert '<option value="de" lang="de" selected>Deutsch</option>' in body

    client.post("/i18n/setlang/", {"language": "en", "next": page})
    assert "Add to basket" in client.get(page, HTTP_ACCEPT_LANGUAGE="de").content.decode()


def test_an_error_page_is_translated_and_its_switcher_echoes_no_path(client):
    response = client.get("/orders/AT-SECRET1/nothing-here/", HTTP_ACCEPT_LANGUAGE="de")
    body = response.content.decode()
    assert response.status_code == 404
    assert "Seite nicht gefunden" in body
    assert "AT-SECRET1" not in body


# --- dates and prices -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "language", "written"),
    [
        (Decimal("12.5"), "en", "€12.50"),
        (Decimal("12.5"), "de", "12,50\u00a0€"),
        (Decimal("1234.5"), "en", "€1,234.50"),
        (Decimal("1234.5"), "de", "1.234,50\u00a0€"),
        (Decimal("0.005"), "de", "0,01\u00a0€"),
        (Decimal("-5"), "en", "-€5.00"),
    ],
)
def test_prices_are_written_the_languages_way(amount, language, written):
    assert format_money(amount, currency="EUR", language=language) == written


def test_the_event_page_writes_dates_and_prices_per_language(client):
    starts = datetime(2027, 3, 13, 20, 0, tzinfo=BERLIN)
    event = EventFactory(name="Aurora Quartet", starts_at=starts)
    TicketTypeFactory(event=event, name="Parkett", price=Decimal("1234.50"))

    english = client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Saturday 13 March 2027, 20:00" in english
    assert "€1,234.50" in english

    german = client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Samstag, 13. März 2027, 20:00 Uhr" in german
    assert "1.234,50\u00a0€" in german
    listing = client.get("/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Sa, 13.03.2027, 20:00" in listing


# --- problem JSON -----------------------------------------------------------------------------------------------


def test_the_problem_detail_is_german_for_a_german_client_and_the_code_stays(api, ticket_type):
    TicketType.objects.filter(pk=ticket_type.pk).update(capacity=0)
    body = {"ticket_type_id": ticket_type.pk, "quantity": 1}
    english = api.post("/api/basket", body, format="json", HTTP_ACCEPT_LANGUAGE="en").json()
    german = api.post("/api/basket", body, format="json", HTTP_ACCEPT_LANGUAGE="de").json()
    assert english["code"] == german["code"] == "sold_out"
    assert english["title"] == "Sold out"
    assert german["title"] == "Ausverkauft"
    assert english["detail"] == f"{ticket_type.name} is sold out."
    assert german["detail"] == f"{ticket_type.name} ist ausverkauft."


def test_a_class_default_detail_follows_the_request_not_the_import(api):
    german = api.post("/api/basket", {"ticket_type_id": 10**9, "quantity": 1}, format="json", HTTP_ACCEPT_LANGUAGE="de")
    english = api.post("/api/basket", {"ticket_type_id": 10**9, "quantity": 1}, format="json")
    assert german.status_code == english.status_code == 404
    assert german.json()["code"] == english.json()["code"] == "not_found"
    assert (german.json()["title"], english.json()["title"]) == ("Nicht gefunden", "Not found")


# --- emails and the tickets PDF ---------------------------------------------------------------------------------


def place(now, *, name: str = "Ada Lovelace") -> Order:
    event = EventFactory(name="Aurora Quartet")
    ticket_type = TicketTypeFactory(event=event, name="Parkett", price=Decimal("12.50"))
    token = services.basket_add(token=None, ticket_type_id=ticket_type.pk, quantity=1, now=now).token
    return checkout.order_place(token=token, name=name, email="ada@example.com", payment_method="test", now=now).order


def test_the_order_records_the_buyers_language_and_the_worker_writes_its_emails_in_it(now, mailoutbox):
    with translation.override("de"):
        order = place(now)
    assert Order.objects.get(pk=order.pk).language == "de"
    queued = OutboundEmail.objects.get(order=order)
    assert queued.language == "de"

    # The worker runs with no request and the site's default language active.
    with translation.override("en"):
        assert outbox.outbox_send_due(now=now, limit=10).sent == 1
    (message,) = mailoutbox
    assert message.subject == f"Ihre Tickets für Aurora Quartet – Bestellung {order.code}"
    assert "Hallo Ada Lovelace," in message.body
    assert "Gesamt: 12,50\u00a0€" in message.body
    html = message.alternatives[0][0]
    assert '<html lang="de">' in html
    assert "Ihre Tickets sind als PDF angehängt" in html
    (pdf,) = [content for filename, content, mimetype in message.attachments if mimetype == "application/pdf"]
    assert "TICKET 1 VON 1" in pdf_text(pdf)


def test_staff_actions_email_the_buyer_in_the_buyers_language(now, mailoutbox):
    with translation.override("de"):
        order = place(now)
    with translation.override("en"):  # an English-speaking organizer cancels it
        services.order_cancel(order_id=order.pk, now=now)
    email = OutboundEmail.objects.get(order=order, kind=OutboundEmail.Kind.ORDER_CANCELLATION)
    assert email.language == "de"
    with translation.override("en"):
        message = outbound_message(email.pk)
    assert message.subject.startswith("Storniert: Aurora Quartet")


def test_an_english_order_stays_english(now, mailoutbox):
    with translation.override("en"):
        order = place(now)
    with translation.override("de"):
        message = outbound_message(OutboundEmail.objects.get(order=order).pk)
    assert message.subject == f"Your tickets for Aurora Quartet - order {order.code}"
    assert "Total: €12.50" in message.body


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.mark.parametrize(
    "name",
    ["Αλέξανδρος Παπαδόπουλος", "Дмитрий Шостакович", "山田太郎", "Zoë Ångström-Øster", "Արամ Խաչատրյան"],
)
def test_the_tickets_pdf_prints_any_name(now, name):
    """Greek and Cyrillic in DejaVu Sans cut to the common scripts, Armenian in the whole of it, CJK through the
    fallback font: the names come back out of the PDF as written, never as "?"."""
    order = place(now, name=name)
    pdf = pdf_text(tickets_pdf(order, list(order.tickets.select_related("ticket_type__event"))))
    assert name in pdf
    assert "?" not in pdf


def test_the_pdf_loads_the_whole_font_only_for_text_the_cut_lacks():
    cut, whole = tickets._font_file("", ["Zoë", "Дмитрий", "€"]), tickets._font_file("", ["Արամ"])
    assert whole == str(tickets.font_path(tickets.FONT))
    assert Path(cut).stat().st_size < Path(whole).stat().st_size / 2


def test_the_tickets_pdf_speaks_the_active_language(now):
    order = place(now)
    tickets = list(order.tickets.select_related("ticket_type__event"))
    with translation.override("de"):
        german = pdf_text(tickets_pdf(order, tickets))
    assert "Ticketart: Parkett" in german
    assert "Zeigen Sie diesen Code am Eingang" in german
    english = pdf_text(tickets_pdf(order, tickets))
    assert "Ticket type: Parkett" in english


def test_without_the_font_files_the_pdf_still_prints_latin(now, settings):
    settings.TICKET_FONTS_DIR = "/nonexistent"
    order = place(now, name="Zoë Dimitrov")
    assert "Zoë Dimitrov" in pdf_text(tickets_pdf(order, list(order.tickets.select_related("ticket_type__event"))))


# --- the catalog cache ------------------------------------------------------------------------------------------


@pytest.fixture
def catalog_cache(settings):
    settings.CATALOG_CACHE_SECONDS = 60
    caches["catalog"].clear()
    yield
    caches["catalog"].clear()


@pytest.mark.usefixtures("catalog_cache")
@pytest.mark.parametrize("first", ["en", "de"])
def test_a_cached_catalog_page_never_reaches_a_visitor_of_the_other_language(client, first):
    event = EventFactory(name="Aurora Quartet")
    TicketTypeFactory(event=event)
    second = "de" if first == "en" else "en"
    words = {"en": "Add to basket", "de": "In den Warenkorb"}
    for path, listing_words in ((f"/events/{event.slug}/", words), ("/", {"en": "Upcoming", "de": "Kommende"})):
        for language in (first, second, first, second):
            response = client.get(path, HTTP_ACCEPT_LANGUAGE=language)
            body = response.content.decode()
            assert listing_words[language] in body, (path, language)
            assert listing_words[second if language == first else first] not in body, (path, language)
            assert f'<html lang="{language}">' in body
            assert "Accept-Language" in response["Vary"]


@pytest.mark.usefixtures("catalog_cache")
def test_the_page_cache_still_serves_hits_per_language(client, django_assert_num_queries):
    event = EventFactory(name="Aurora Quartet")
    TicketTypeFactory(event=event)
    client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="de")
    client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="en")
    with django_assert_num_queries(0):
        assert "In den Warenkorb" in client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert "Add to basket" in client.get(f"/events/{event.slug}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
