from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from django_prometheus.db.backends.postgresql import base as prometheus

from aegistickets.db_backends import counted_cursor


class DatabaseWrapper(prometheus.DatabaseWrapper):  # type: ignore[misc]
    """django-prometheus' PostgreSQL backend (connection counters) with `counted_cursor` for its statements."""

    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = base.DatabaseWrapper.get_connection_params(self)  # not django-prometheus' cursor
        params["cursor_factory"] = counted_cursor(params["cursor_factory"], self.alias, self.vendor)
        return params
