"""`{% load money %}`: `{{ price|money }}`, a price as the active language writes it (aegistickets/money.py)."""

from decimal import Decimal

from django import template

from aegistickets.money import format_money

register = template.Library()


@register.filter
def money(amount: Decimal | int | float | str | None, currency: str = "") -> str:
    return format_money(amount, currency=currency)
