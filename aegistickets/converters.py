"""Path converters that refuse what no database lookup should see (huge ids, odd bytes): a plain 404."""

from django.urls import register_converter


class IdConverter:
    regex = "[0-9]{1,18}"  # fits a 64-bit primary key

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class TokenConverter:
    regex = "[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class OrderCodeConverter(TokenConverter):
    regex = "[A-Za-z0-9-]{1,12}"


# Registered on import: every urls.py that uses them imports this module first.
register_converter(IdConverter, "id")
register_converter(TokenConverter, "token")
register_converter(OrderCodeConverter, "order_code")
