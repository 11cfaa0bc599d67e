"""Event tables: a checkpoint store that is also the sink (``--into URL``), in SQLite, DuckDB or PostgreSQL.

:func:`open_store` opens a :class:`TableStore` from a URL; :func:`table` reads a table back as an
:class:`tidings.EventList`. The database drivers are extras (``tidings[duckdb]``,
``tidings[postgres]``); SQLite needs none.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tidings._errors import ConfigurationError, safe_url
from tidings._models import EventList
from tidings._sinks.schema import Column
from tidings._sinks.store import TableStore

__all__ = ["Column", "TableStore", "open_store", "table"]

# scheme -> (dialect module, extra that brings its driver)
_SCHEMES = {
    "sqlite": ("sqlite", None),
    "duckdb": ("duckdb", "duckdb"),
    "postgresql": ("postgresql", "postgres"),
    "postgres": ("postgresql", "postgres"),
}


def _parse(url: str) -> tuple[Any, str]:
    """The dialect and connection target of ``url``."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _SCHEMES:
        raise ConfigurationError(
            f"not a database URL: {safe_url(url) if sep else url!r}; use sqlite:///path.db, "
            "duckdb:///path.duckdb or postgresql://user@host/db"
        )
    module, extra = _SCHEMES[scheme]
    try:
        dialect = importlib.import_module(f"tidings._sinks.{module}").DIALECT
    except ImportError as exc:
        raise ConfigurationError(
            f"{scheme}:// needs its driver ({exc.name}): pip install 'tidings[{extra}]'"
        ) from exc
    if module == "postgresql":
        return dialect, url
    # a file: sqlite:///relative.db, sqlite:////absolute.db (as SQLAlchemy reads them), or :memory:
    if not rest.startswith("/") or len(rest) < 2:
        raise ConfigurationError(f"{url!r}: a file URL has three slashes, e.g. {scheme}:///events.db")
    path = rest[1:].split("?", 1)[0]
    return dialect, path


def open_store(url: str, *, table: str = "tidings_events", columns: Sequence[Column] = ()) -> TableStore:
    """A :class:`TableStore` on the database at ``url`` (its schema created or migrated on first use).

    ``sqlite:///path.db`` (``sqlite:////abs/path.db`` for an absolute path), ``duckdb:///path.duckdb``,
    ``postgresql://user[:password]@host[:port]/db`` (any libpq URL).

    :param table: the event table's name.
    :param columns: typed columns to add for every provider, besides those the plugins declare.
    :raises ConfigurationError: for a URL of no known database, or a driver not installed.
    :raises StoreError: when the database cannot be opened.
    """
    dialect, target = _parse(url)
    return TableStore(dialect, target, table=table, columns=columns, url=url)


def table(url: str, *, table: str = "tidings_events", watch: str | None = None) -> EventList:
    """The events in a table (of one ``watch``, or all), oldest first: ``.to_pandas()`` gives a DataFrame.

    Blocking, with no event loop: works in a script and in a notebook alike.
    """
    dialect, target = _parse(url)
    if dialect.name != "postgresql" and target != ":memory:" and not Path(target).exists():
        raise ConfigurationError(f"no database file at {target!r}")
    store = TableStore(dialect, target, table=table, url=url)
    try:
        return store.read(watch)
    finally:
        store.close()
