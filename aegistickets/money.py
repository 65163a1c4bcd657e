"""Prices written for the reader's language: "€1,234.50" in English, "1.234,50 €" in German.

One function for every place a price is shown (pages, emails, the tickets PDF), so they all agree. The amount is
never rounded differently per language: two decimals, half up, as the order stores it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.utils import translation

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF"}
# Languages that put the symbol after the amount, with a non-breaking space, and write a decimal comma.
SYMBOL_AFTER = {"de"}
SEPARATORS = {"de": (",", ".")}
DEFAULT_SEPARATORS = (".", ",")


def format_money(amount: Decimal | int | float | str | None, *, currency: str = "", language: str = "") -> str:
    """`amount` in `currency` (settings.CURRENCY) as `language` (the active one) writes it; "" for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        return str(amount)
    language = (language or translation.get_language() or settings.LANGUAGE_CODE).split("-")[0]
    code = currency or settings.CURRENCY
    symbol = CURRENCY_SYMBOLS.get(code, code)
    decimal_mark, group_mark = SEPARATORS.get(language, DEFAULT_SEPARATORS)
    whole, cents = f"{abs(value):,.2f}".split(".")
    number = whole.replace(",", group_mark) + decimal_mark + cents
    sign = "-" if value < 0 else ""
    if language in SYMBOL_AFTER:
        return f"{sign}{number}\u00a0{symbol}"
    if len(symbol) > 1:
        return f"{sign}{symbol}\u00a0{number}"
    return f"{sign}{symbol}{number}"
