"""What differs between the databases a table store writes to, described once per database.

The store (:mod:`tidings._sinks.store`) and the schema (:mod:`tidings._sinks.schema`) write their
SQL once, with ``?`` placeholders and ``{type}`` names; a :class:`Dialect` says how one database
spells those, how it is connected to, and how a page of events goes in (``executemany`` over rows,
or one ``INSERT ... SELECT UNNEST(...)`` over a list per column).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

__all__ = ["COLUMNS_SQL", "Dialect", "json_cleaner", "utc"]

COLUMNS_SQL = (  # the standard's catalogue (DuckDB and PostgreSQL have it; SQLite does not)
    "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema()"
)

# the logical types a column may have (the envelope's and a plugin's typed columns)
TYPES = ("text", "integer", "double", "decimal", "boolean", "timestamp", "json")


def utc(value: datetime) -> datetime:
    """``value`` in UTC (a naive time is taken as UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


_LONE = r"d[89ab][0-9a-f]{2}(?!\\ud[c-f])|(?<!\\ud[89ab][0-9a-f]{2}\\u)d[c-f][0-9a-f]{2}"


def json_cleaner(*, nul: bool) -> Callable[[str], str]:
    """A function making ``json.dumps`` text fit a JSON type that refuses a lone surrogate escape (and,
    with ``nul``, ``\\u0000``): each becomes ``\\ufffd``, the rest of the text is kept (an escaped
    backslash before them, ``\\\\u0000``, is plain text and left alone)."""
    unfit = re.compile(r"(?<!\\)((?:\\\\)*)\\u(?:" + ("0000|" if nul else "") + _LONE + ")")

    def clean(text: str) -> str:
        if "\\ud" not in text and not (nul and "\\u0000" in text):
            return text
        return unfit.sub(lambda m: m.group(1) + "\\ufffd", text)

    return clean


def _same(value: Any) -> Any:
    return value


@attrs.frozen
class Dialect:
    """One database's spelling of the store's SQL.

    :param name: the URL scheme (``sqlite``, ``duckdb``, ``postgresql``).
    :param connect: opens a connection in autocommit mode, its session in UTC, from the URL's target
        (a path, or the whole URL for a server).
    :param errors: the driver's base error classes (turned into :class:`tidings.StoreError`).
    :param types: the SQL type of each logical type in ``TYPES``.
    :param placeholder: how the driver spells a parameter (the SQL is written with ``?``).
    :param arrays: insert a page as one statement over one list per column (``UNNEST``); otherwise
        ``executemany`` over rows.
    :param begin: the statement that opens a write transaction.
    :param schema_lock: a statement run first in the migrating transaction, so two processes opening
        the same database at once do not both create the tables.
    :param columns_sql: lists a table's column names; its one parameter is the table name.
    :param timestamp_in: a UTC datetime as the driver takes it.
    :param timestamp_out: what the driver returns for a timestamp, as an aware datetime.
    :param json_out: what the driver returns for a JSON column, as Python data.
    :param bulk_options: keyword arguments of the driver's ``execute`` for a page's insert.
    :param clean_text: a text value as the database can hold it (PostgreSQL: no NUL character).
    :param clean_json: a JSON text as the JSON type takes it (``JSONB``: no ``\\u0000``, no lone surrogate).
    """

    name: str
    connect: Callable[[str], Any]
    errors: tuple[type[BaseException], ...]
    types: Mapping[str, str]
    columns_sql: str
    placeholder: str = "?"
    arrays: bool = False
    begin: str = "BEGIN"
    schema_lock: str | None = None
    timestamp_in: Callable[[datetime], Any] = _same
    timestamp_out: Callable[[Any], datetime] = utc
    json_out: Callable[[Any], Any] = json.loads
    bulk_options: Mapping[str, Any] = attrs.field(factory=dict)
    clean_text: Callable[[Any], Any] | None = None
    clean_json: Callable[[str], str] | None = None

    def sql(self, text: str, **names: str) -> str:
        """``text`` with ``{type}`` names (and the given ``names``) filled in and placeholders converted."""
        filled = text.format(**self.types, **names)
        return filled if self.placeholder == "?" else filled.replace("?", self.placeholder)

    def array(self, logical: str) -> str:
        """The SQL type of a list of ``logical`` values."""
        return f"{self.types[logical]}[]"
