"""The tables a table store keeps, created on first use and migrated by version.

``tidings_schema`` records one version per object: ``tidings_state`` (the positions, recent ids and
dead letters of every watch, shared by all event tables of the database) and each event table by
its name. A migration is a list of statements appended to :data:`STATE` or :data:`EVENTS`, never an
edit of an old one; a database written by a newer tidings is refused, not guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from tidings._errors import ConfigurationError, StoreError
from tidings._sinks.dialect import TYPES, Dialect

__all__ = ["BASE_COLUMNS", "EVENTS", "STATE", "Column", "check_name"]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

BASE_COLUMNS = (
    "watch", "provider", "id", "subject", "type", "status", "occurred_at", "terminal", "raw", "delivered_at",
)

# The state of every watch, keyed by the event table it writes to (the same watch name may be
# followed into two tables of one database, each from its own position).
STATE: list[list[str]] = [
    [  # version 1
        "CREATE TABLE IF NOT EXISTS tidings_watches (event_table {text} NOT NULL, watch {text} NOT NULL, "
        "streams {text} NOT NULL, PRIMARY KEY (event_table, watch))",
        "CREATE TABLE IF NOT EXISTS tidings_streams (event_table {text} NOT NULL, watch {text} NOT NULL, "
        "stream {text} NOT NULL, state {text} NOT NULL, updated_at {timestamp} NOT NULL, "
        "PRIMARY KEY (event_table, watch, stream))",
        # one row per commit, its ids as a JSON list; seq counts the ids delivered up to its last one
        "CREATE TABLE IF NOT EXISTS tidings_recent_ids (event_table {text} NOT NULL, watch {text} NOT NULL, "
        "stream {text} NOT NULL, seq {integer} NOT NULL, ids {text} NOT NULL, "
        "PRIMARY KEY (event_table, watch, stream, seq))",
        "CREATE TABLE IF NOT EXISTS tidings_dead_letters (event_table {text} NOT NULL, watch {text} NOT NULL, "
        "stream {text} NOT NULL, letter_key {text} NOT NULL, reason {text} NOT NULL, raw {text} NOT NULL, "
        "set_aside_at {timestamp} NOT NULL, PRIMARY KEY (event_table, watch, letter_key))",
    ],
]

EVENTS: list[list[str]] = [
    [  # version 1
        'CREATE TABLE IF NOT EXISTS "{table}" (watch {text} NOT NULL, provider {text} NOT NULL, id {text} NOT NULL, '
        "subject {text}, type {text} NOT NULL, status {text}, occurred_at {timestamp} NOT NULL, "
        "terminal {boolean} NOT NULL, raw {json} NOT NULL, delivered_at {timestamp} NOT NULL, "
        "PRIMARY KEY (watch, id))",
    ],
]


def check_name(name: str, what: str = "table") -> str:
    """``name`` if it is a plain lower-case SQL name, else a ConfigurationError saying what is allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigurationError(
            f"{what} name {name!r}: use lower-case letters, digits and _ (not first), at most 63 characters"
        )
    return name


@attrs.frozen
class Column:
    """A typed column a provider adds to the event table, read from each event's raw record.

    :param name: the column's name (lower case; not one of the envelope's columns).
    :param type: ``text``, ``integer``, ``double``, ``decimal``, ``boolean``, ``timestamp`` or ``json``.
    :param path: where the value is in the raw record: keys (and list indexes) joined by dots,
        e.g. ``"amount.value"`` or ``"event_details.0.status"``. A missing value, or one that does
        not convert to the type, is NULL (the raw record keeps it).
    """

    name: str = attrs.field(validator=lambda _, __, v: check_name(v, "column"))
    type: str = attrs.field()
    path: str = ""

    @type.validator
    def _known(self, _: Any, value: str) -> None:
        if value not in TYPES:
            raise ConfigurationError(f"column {self.name!r}: type {value!r} is not one of {', '.join(TYPES)}")

    def __attrs_post_init__(self) -> None:
        if self.name in BASE_COLUMNS:
            raise ConfigurationError(f"column {self.name!r} is one of the table's own columns")
        if not self.path:
            object.__setattr__(self, "path", self.name)


Run = Callable[..., list[Any]]


def _versions(run: Run) -> dict[str, int]:
    return {obj: int(version) for obj, version in run("SELECT object, version FROM tidings_schema")}


def migrate(run: Run, dialect: Dialect, table: str, columns: Sequence[Column] = ()) -> None:
    """Create or bring up to date the state tables and ``table`` (and add ``columns`` it lacks).

    ``run(sql, params=())`` executes one statement and returns its rows. Nothing is locked when
    everything is current already (the usual open).
    """
    wanted = {"tidings_state": STATE, table: EVENTS}

    def current() -> bool:
        try:
            versions = _versions(run)
        except dialect.errors:
            return False
        for obj, steps in wanted.items():
            have = versions.get(obj, 0)
            if have > len(steps):
                raise StoreError(
                    f"the database was written by a newer tidings ({obj} is at version {have}, this one knows "
                    f"{len(steps)}): upgrade tidings"
                )
        return all(versions.get(obj, 0) == len(steps) for obj, steps in wanted.items()) and not _missing(
            run, dialect, table, columns
        )

    if current():
        return
    run(dialect.begin)
    try:
        if dialect.schema_lock:
            run(dialect.schema_lock)
        run(dialect.sql(
            "CREATE TABLE IF NOT EXISTS tidings_schema (object {text} PRIMARY KEY, version {integer} NOT NULL)"
        ))
        versions = _versions(run)
        for obj, steps in wanted.items():
            have = versions.get(obj, 0)
            for step in steps[have:]:
                for statement in step:
                    run(dialect.sql(statement, table=table))
            if have < len(steps):
                run(dialect.sql("DELETE FROM tidings_schema WHERE object = ?"), (obj,))
                run(dialect.sql("INSERT INTO tidings_schema (object, version) VALUES (?, ?)"), (obj, len(steps)))
        for column in _missing(run, dialect, table, columns):
            run(dialect.sql(f'ALTER TABLE "{table}" ADD COLUMN "{column.name}" {dialect.types[column.type]}'))
        run("COMMIT")
    except BaseException:
        _rollback(run)
        raise


def _missing(run: Run, dialect: Dialect, table: str, columns: Sequence[Column]) -> list[Column]:
    if not columns:
        return []
    have = {name for (name,) in run(dialect.sql(dialect.columns_sql), (table,))}
    return [c for c in columns if c.name not in have]


def _rollback(run: Run) -> None:
    try:
        run("ROLLBACK")
    except Exception:  # the connection may be gone; the error that got us here is the one to see
        pass
