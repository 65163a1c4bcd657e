"""`{% load tickets %}`: a ticket's QR code as inline SVG."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from orders.tickets import qr_svg

register = template.Library()


@register.simple_tag
def ticket_qr(code: str, title: str = "") -> SafeString:
    return mark_safe(qr_svg(code, title=title))  # noqa: S308 - segno escapes the title; the rest is generated markup
