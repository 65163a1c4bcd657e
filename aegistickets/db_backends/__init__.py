"""Database backends that count queries for Prometheus: django-prometheus' families (`django_db_*`), with each
labelled child bound once per cursor class instead of looked up on every query.

django-prometheus' own cursor wrapper looks up two labelled children, builds a timer and an exception counter
(copying a dict) for every statement, and its SQLite backend defines a new cursor class for every cursor. A
checkout runs 11 statements, each counted under gunicorn with a write to a shared file (docs/performance.md).
The series are the same: `django_db_execute_total`, `django_db_execute_many_total`, `django_db_errors_total`
and `django_db_query_duration_seconds` by alias and vendor, and the connection counters of django-prometheus'
own wrapper, which these backends subclass.
"""

from __future__ import annotations

import functools
from timeit import default_timer
from typing import Any

from django_prometheus.db import errors_total, execute_many_total, execute_total, query_duration_seconds


@functools.cache
def counted_cursor(cursor_class: type, alias: str, vendor: str) -> type:
    """A subclass of `cursor_class` that counts and times each execute; one per class, alias and vendor."""
    executed = execute_total.labels(alias, vendor)
    executed_many = execute_many_total.labels(alias, vendor)
    duration = query_duration_seconds.labels(alias, vendor)

    def failed(error: BaseException) -> None:
        errors_total.labels(alias, vendor, type(error).__name__).inc()

    class CountedCursor(cursor_class):  # type: ignore[valid-type,misc]
        def execute(self, *args: Any, **kwargs: Any) -> Any:
            executed.inc()
            started = default_timer()
            try:
                return super().execute(*args, **kwargs)
            except Exception as error:
                failed(error)
                raise
            finally:
                duration.observe(default_timer() - started)

        def executemany(self, query: Any, param_list: Any, *args: Any, **kwargs: Any) -> Any:
            executed.inc(len(param_list))
            executed_many.inc(len(param_list))
            started = default_timer()
            try:
                return super().executemany(query, param_list, *args, **kwargs)
            except Exception as error:
                failed(error)
                raise
            finally:
                duration.observe(default_timer() - started)

    CountedCursor.__name__ = CountedCursor.__qualname__ = f"Counted{cursor_class.__name__}"
    return CountedCursor
