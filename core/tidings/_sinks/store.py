"""TableStore: a checkpoint store that is also the sink, one transaction per page.

Each page's new events go into the event table in the same transaction as the stream's position,
its recent ids and its dead letters (:meth:`TableStore.commit_events`), so a process killed at any
instant leaves every event in the table exactly once: a page is in with its position, or neither.
The SQL is written once; a :class:`~tidings._sinks.dialect.Dialect` spells it for SQLite, DuckDB or
PostgreSQL. Every call runs the blocking driver in a worker thread (``anyio.to_thread``), one call
at a time per store, so it works the same on asyncio and trio.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import anyio.to_thread

from tidings._convert import parse_time
from tidings._errors import StoreError, safe_url
from tidings._models import DeadLetter, Event, EventList
from tidings._sinks.dialect import Dialect, utc
from tidings._sinks.schema import Column, check_name, migrate
from tidings._store import _letter_key

__all__ = ["TableStore"]

_dumps = json.JSONEncoder(separators=(",", ":"), default=str).encode


class TableStore:
    """Positions, recent ids, dead letters and the events themselves, in one database.

    Open one from a URL with :func:`tidings.open_store`. Pass it as a watch's ``store``: each page's
    events are committed into ``table`` together with the position, before the handler or the
    ``async for`` body sees them.

    :param dialect: the database's :class:`Dialect`.
    :param target: what the dialect connects to (a file path, or a server URL).
    :param table: the event table (lower-case SQL name; default ``tidings_events``).
    :param columns: typed columns to add to the table for every provider (plugins declare their own).
    :param url: the URL it was opened from, for messages (secrets removed).
    """

    def __init__(
        self,
        dialect: Dialect,
        target: str,
        *,
        table: str = "tidings_events",
        columns: Sequence[Column] = (),
        url: str | None = None,
    ) -> None:
        self.dialect = dialect
        self.table = check_name(table)
        self.url = safe_url(url) if url and "://" in url and dialect.name == "postgresql" else (url or target)
        self.columns: tuple[Column, ...] = tuple(columns)
        self._provider_columns: dict[str, tuple[Column, ...]] = {}
        self._lock = threading.Lock()
        self.commits = 0
        try:
            self._db = dialect.connect(target)
        except dialect.errors as exc:
            raise StoreError(f"cannot open the table store {self.url!r}: {exc}") from exc
        self._prepare()
        self._call(lambda: migrate(self._rows, dialect, self.table, self.columns))

    def __repr__(self) -> str:
        return f"TableStore({self.url!r}, table={self.table!r})"

    # -- plumbing -----------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Execute one statement; its rows (none for a statement that returns none)."""
        cursor = self._db.execute(sql, params)
        if getattr(cursor, "description", None) is None:
            return []
        return list(cursor.fetchall())

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        many = getattr(self._db, "executemany", None)
        if many is None:  # psycopg: on a cursor
            many = self._db.cursor().executemany
        many(sql, rows)

    def _call(self, func: Callable[[], Any]) -> Any:
        with self._lock:
            try:
                return func()
            except self.dialect.errors as exc:
                raise StoreError(f"table store {self.url!r} failed: {exc}") from exc

    async def _run(self, func: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(self._call, func)

    def _transaction(self, work: Callable[[], Any]) -> Any:
        self._rows(self.dialect.begin)
        try:
            result = work()
            self._rows("COMMIT")
        except BaseException:
            try:
                self._rows("ROLLBACK")
            except Exception:  # the connection may be gone: the first error is the one to see
                pass
            raise
        return result

    def _prepare(self) -> None:
        d, key = self.dialect, "event_table = ? AND watch = ?"
        self._sql = {
            "load_streams": d.sql(f"SELECT streams FROM tidings_watches WHERE {key}"),
            "drop_streams": d.sql(f"DELETE FROM tidings_watches WHERE {key}"),
            "save_streams": d.sql("INSERT INTO tidings_watches (event_table, watch, streams) VALUES (?, ?, ?)"),
            "load": d.sql(f"SELECT state FROM tidings_streams WHERE {key} AND stream = ?"),
            "load_ids": d.sql(f"SELECT ids FROM tidings_recent_ids WHERE {key} AND stream = ? ORDER BY seq"),
            "state": d.sql(
                "INSERT INTO tidings_streams (event_table, watch, stream, state, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (event_table, watch, stream) DO UPDATE SET state = excluded.state, "
                "updated_at = excluded.updated_at"
            ),
            "top": d.sql(f"SELECT COALESCE(MAX(seq), 0) FROM tidings_recent_ids WHERE {key} AND stream = ?"),
            "ids": d.sql(
                "INSERT INTO tidings_recent_ids (event_table, watch, stream, seq, ids) VALUES (?, ?, ?, ?, ?)"
            ),
            "trim": d.sql(f"DELETE FROM tidings_recent_ids WHERE {key} AND stream = ? AND seq <= ?"),
            "letter": d.sql(
                "INSERT INTO tidings_dead_letters (event_table, watch, stream, letter_key, reason, raw, set_aside_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_table, watch, letter_key) DO NOTHING"
            ),
            "letters": d.sql(
                f"SELECT stream, reason, raw, set_aside_at FROM tidings_dead_letters WHERE {key} ORDER BY set_aside_at"
            ),
        }
        self._inserts: dict[tuple[Column, ...], str] = {}
        self._ensured: set[tuple[Column, ...]] = {(), self.columns}  # column sets the table is known to have

    def _insert_sql(self, columns: tuple[Column, ...]) -> str:
        sql = self._inserts.get(columns)
        if sql is None:
            d = self.dialect
            names = ", ".join(['watch', 'provider', 'id', 'subject', 'type', 'status', 'occurred_at', 'terminal',
                               'raw', 'delivered_at', *(f'"{c.name}"' for c in columns)])
            types = ["text"] * 6 + ["timestamp", "boolean", "json", "timestamp"] + [c.type for c in columns]
            if d.arrays:  # one statement over a list per column; JSON goes in as text, cast row by row
                values = ", ".join(
                    f"CAST(UNNEST(CAST(? AS {d.array('text')})) AS {d.types['json']})" if t == "json"
                    else f"UNNEST(CAST(? AS {d.array(t)}))"
                    for t in types
                )
                sql = f'INSERT INTO "{self.table}" ({names}) SELECT {values}'
            else:
                sql = f'INSERT INTO "{self.table}" ({names}) VALUES ({", ".join("?" * len(types))})'
            sql = d.sql(sql + " ON CONFLICT (watch, id) DO NOTHING")
            self._inserts[columns] = sql
        return sql

    # -- the CheckpointStore protocol ----------------------------------------

    async def load_streams(self, watch: str) -> dict[str, Any] | None:
        rows = await self._run(lambda: self._rows(self._sql["load_streams"], (self.table, watch)))
        return json.loads(rows[0][0]) if rows else None

    async def save_streams(self, watch: str, streams: dict[str, Any]) -> None:
        text = json.dumps(streams)

        def write() -> None:
            self._rows(self._sql["drop_streams"], (self.table, watch))
            self._rows(self._sql["save_streams"], (self.table, watch, text))

        await self._run(lambda: self._transaction(write))

    async def load(self, watch: str, stream: str) -> dict[str, Any] | None:
        key = (self.table, watch, stream)

        def read() -> tuple[list[Any], list[Any]]:
            return self._rows(self._sql["load"], key), self._rows(self._sql["load_ids"], key)

        rows, chunks = await self._run(read)
        if not rows:
            return None
        state: dict[str, Any] = json.loads(rows[0][0])
        state["ids"] = [i for (text,) in chunks for i in json.loads(text)]
        return state

    async def commit(
        self,
        watch: str,
        stream: str,
        state: dict[str, Any],
        dead_letters: Sequence[DeadLetter] = (),
        delivered_ids: Sequence[str] = (),
        keep: int = 10_000,
    ) -> None:
        await self.commit_events(watch, stream, state, list(dead_letters), list(delivered_ids), keep, ())

    async def commit_events(
        self,
        watch: str,
        stream: str,
        state: dict[str, Any],
        letters: list[DeadLetter],
        ids: list[str],
        window: int,
        events: Sequence[Event],
    ) -> None:
        """Insert ``events`` (those already in the table are left as they are) and commit the stream's
        ``state``, its new recent ``ids`` (keeping at least ``window``) and ``letters``: one transaction."""
        columns = self._columns_for(events[0].provider) if events else ()
        if columns not in self._ensured:
            await self._run(lambda: migrate(self._rows, self.dialect, self.table, columns))
            self._ensured.add(columns)
        now = datetime.now(timezone.utc)
        stamp = self.dialect.timestamp_in(now)
        key = (self.table, watch, stream)
        state_text = json.dumps(state)

        def write() -> None:
            self._rows(self._sql["state"], (*key, state_text, stamp))
            if ids:
                ((top,),) = self._rows(self._sql["top"], key)
                last = int(top) + len(ids)
                self._rows(self._sql["ids"], (*key, last, json.dumps(ids)))
                self._rows(self._sql["trim"], (*key, last - window))
            if letters:
                self._many(self._sql["letter"], [
                    (*key[:2], d.stream, _letter_key(d), d.reason, json.dumps(d.raw, default=str),
                     self.dialect.timestamp_in(d.at))
                    for d in letters
                ])
            if events:
                self._insert(watch, events, columns, stamp)

        await self._run(lambda: self._transaction(write))
        self.commits += 1

    def _insert(self, watch: str, events: Sequence[Event], columns: tuple[Column, ...], stamp: Any) -> None:
        at = self.dialect.timestamp_in
        n = len(events)
        lists: list[list[Any]] = [
            [watch] * n,
            [e.provider for e in events],
            [e.id for e in events],
            [e.subject for e in events],
            [e.type for e in events],
            [e.status for e in events],
            [at(utc(e.occurred_at)) for e in events],
            [bool(e.terminal) for e in events],
            [_dumps(e.raw) for e in events],
            [stamp] * n,
        ]
        for column in columns:
            lists.append([self._value(column, e.raw) for e in events])
        text, js = self.dialect.clean_text, self.dialect.clean_json
        if text is not None:
            for i in (0, 2, 3, 4, 5):
                lists[i] = list(map(text, lists[i]))
        if js is not None:
            lists[8] = list(map(js, lists[8]))
        sql = self._insert_sql(columns)
        if self.dialect.arrays:
            self._db.execute(sql, lists, **self.dialect.bulk_options)
        else:
            self._many(sql, list(zip(*lists, strict=True)))

    def _value(self, column: Column, raw: Any) -> Any:
        value = raw
        for part in column.path.split("."):
            if isinstance(value, dict):
                value = value.get(part)
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return None
        if value is None:
            return None
        try:
            return _CONVERT[column.type](value, self.dialect)
        except (TypeError, ValueError, ArithmeticError):
            return None

    def _columns_for(self, provider: str) -> tuple[Column, ...]:
        found = self._provider_columns.get(provider)
        if found is None:
            from tidings._sinks.columns import provider_columns

            found = self.columns + tuple(c for c in provider_columns(provider) if c not in self.columns)
            self._provider_columns[provider] = found
        return found

    async def dead_letters(self, watch: str) -> list[DeadLetter]:
        rows = await self._run(lambda: self._rows(self._sql["letters"], (self.table, watch)))
        out = self.dialect.timestamp_out
        return [DeadLetter(watch=watch, stream=s, reason=r, raw=json.loads(raw), at=out(at)) for s, r, raw, at in rows]

    async def aclose(self) -> None:
        await self._run(self._db.close)

    def close(self) -> None:
        """:meth:`aclose` without an event loop."""
        self._call(self._db.close)

    # -- reading the table back -------------------------------------------------

    async def events(self, watch: str | None = None) -> EventList:
        """The table's events (of one watch, or all), oldest first, as an :class:`tidings.EventList`."""
        return await self._run(lambda: self._read(watch))

    def read(self, watch: str | None = None) -> EventList:
        """:meth:`events` without an event loop (blocking; for notebooks and scripts)."""
        return self._call(lambda: self._read(watch))  # type: ignore[no-any-return]

    def _read(self, watch: str | None) -> EventList:
        sql = (f'SELECT provider, id, subject, type, status, occurred_at, raw, terminal FROM "{self.table}"'
               + (" WHERE watch = ?" if watch is not None else "") + " ORDER BY occurred_at, id")
        rows = self._rows(self.dialect.sql(sql), () if watch is None else (watch,))
        out, raw_out = self.dialect.timestamp_out, self.dialect.json_out
        return EventList(
            Event(p, i, s, t, st, out(at), raw_out(raw), bool(term)) for p, i, s, t, st, at, raw, term in rows
        )


def _decimal(value: Any, dialect: Dialect) -> Any:
    number = Decimal(str(value))
    return str(number) if dialect.name == "sqlite" else number


_CONVERT: dict[str, Callable[[Any, Dialect], Any]] = {
    "text": lambda v, d: v if isinstance(v, str) else _dumps(v),
    "integer": lambda v, d: int(v),
    "double": lambda v, d: float(v),
    "decimal": _decimal,
    "boolean": lambda v, d: v if isinstance(v, bool) else None,
    "timestamp": lambda v, d: d.timestamp_in(utc(parse_time(v))),
    "json": lambda v, d: _dumps(v),
}
