"""SQLite (``sqlite:///path.db``): the standard library's driver, one file in WAL mode.

Times are ISO-8601 text in UTC (SQLite has no timestamp type; its date functions read this form),
JSON is text, booleans are 0 and 1.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from tidings._sinks.dialect import Dialect, utc
from tidings._store import _use_wal

__all__ = ["DIALECT"]


def connect(target: str) -> sqlite3.Connection:
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(target, timeout=30.0, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout=30000")
    if target != ":memory:":
        _use_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")  # every commit survives a killed process (not power loss)
    return db


def _timestamp_in(value: datetime) -> str:
    return utc(value).isoformat()


def _timestamp_out(value: Any) -> datetime:
    return utc(datetime.fromisoformat(value))


DIALECT = Dialect(
    name="sqlite",
    connect=connect,
    errors=(sqlite3.Error,),
    types={
        "text": "TEXT", "integer": "INTEGER", "double": "REAL", "decimal": "NUMERIC", "boolean": "BOOLEAN",
        "timestamp": "TEXT", "json": "TEXT",
    },
    columns_sql="SELECT name FROM pragma_table_info(?)",
    begin="BEGIN IMMEDIATE",  # take the write lock at once: no deadlock between two writers upgrading
    timestamp_in=_timestamp_in,
    timestamp_out=_timestamp_out,
)
