"""PostgreSQL (``postgresql://user@host/db``): psycopg 3, its blocking connection in a worker thread.

Times are ``TIMESTAMPTZ`` (the session runs in UTC), JSON is ``JSONB`` (so keys come back sorted
and a repeated key once: the record's content, not its bytes). A page goes in as one
``INSERT ... SELECT unnest(...)`` over an array per column: one round trip per page. Several
processes may share one database; creating the schema takes an advisory lock.
"""

from __future__ import annotations

from typing import Any

import psycopg

from tidings._sinks.dialect import COLUMNS_SQL, Dialect, json_cleaner

__all__ = ["DIALECT"]


def connect(target: str) -> Any:
    db = psycopg.connect(target, autocommit=True)
    db.execute("SET TIME ZONE 'UTC'")
    return db


def _clean_text(value: Any) -> Any:
    """A text PostgreSQL can hold: a NUL character becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def _json_out(value: Any) -> Any:
    return value  # psycopg decodes JSONB itself


DIALECT = Dialect(
    name="postgresql",
    connect=connect,
    errors=(psycopg.Error,),
    types={
        "text": "TEXT", "integer": "BIGINT", "double": "DOUBLE PRECISION", "decimal": "NUMERIC",
        "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ", "json": "JSONB",
    },
    columns_sql=COLUMNS_SQL,
    placeholder="%s",
    arrays=True,
    schema_lock="SELECT pg_advisory_xact_lock(7368920417)",
    json_out=_json_out,
    bulk_options={"binary": True},  # arrays in binary: no array literal to escape and parse
    clean_text=_clean_text,
    clean_json=json_cleaner(nul=True),
)
