from __future__ import annotations

from typing import Any

from django_prometheus.db.backends.sqlite3 import base as prometheus

from aegistickets.db_backends import counted_cursor


class DatabaseWrapper(prometheus.DatabaseWrapper):  # type: ignore[misc]
    """django-prometheus' SQLite backend (connection counters) with `counted_cursor` for its statements."""

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=counted_cursor(self.CURSOR_CLASS, self.alias, self.vendor))
