"""DuckDB (``duckdb:///path.duckdb``): the embedded database an analyst reaches for.

Times are ``TIMESTAMPTZ`` (the session runs in UTC), JSON is DuckDB's ``JSON`` type. A page goes in
as one ``INSERT ... SELECT UNNEST(...)`` over a list per column (``executemany`` runs a statement per
row). One process at a time may open a DuckDB file for writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from tidings._sinks.dialect import COLUMNS_SQL, Dialect, json_cleaner

__all__ = ["DIALECT"]


def connect(target: str) -> Any:
    if target != ":memory:":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    db = duckdb.connect(target)
    db.execute("SET TimeZone='UTC'")
    return db


DIALECT = Dialect(
    name="duckdb",
    connect=connect,
    errors=(duckdb.Error,),
    types={
        "text": "VARCHAR", "integer": "BIGINT", "double": "DOUBLE", "decimal": "DECIMAL(38, 9)",
        "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ", "json": "JSON",
    },
    columns_sql=COLUMNS_SQL,
    arrays=True,
    clean_json=json_cleaner(nul=False),
)
