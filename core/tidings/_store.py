"""Checkpoint stores: where each stream's cursor, recently delivered ids and dead letters live.

A store speaks JSON-able dicts only; the engine turns cursors to and from JSON
with cattrs. Two implementations: :class:`MemoryStore` (tests, notebooks) and
:class:`SQLiteStore` (the embedded default: one file, WAL, safe for several
processes).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio.to_thread

from tidings._errors import StoreError
from tidings._models import DeadLetter, Event

__all__ = ["CheckpointStore", "EventSink", "MemoryStore", "SQLiteStore"]


@runtime_checkable
class CheckpointStore(Protocol):
    """The interface every checkpoint store keeps.

    ``state`` is a JSON-able dict ``{"cursor": ..., "open": [...] | None, "ended": bool}``;
    ``streams`` is ``{"run": n, "streams": [...]}``: the run number and the streams ``start`` returned.
    ``commit`` writes, atomically, the state, the page's dead letters and the ids delivered
    since the last commit; the store keeps (at least) the ``keep`` most recent ids of each
    stream, and ``load`` returns them (oldest first) under ``"ids"``. Only the new ids are
    written, so a commit costs what the page holds, not the size of the de-duplication window.
    """

    async def load_streams(self, watch: str) -> dict[str, Any] | None: ...

    async def save_streams(self, watch: str, streams: dict[str, Any]) -> None: ...

    async def load(self, watch: str, stream: str) -> dict[str, Any] | None: ...

    async def commit(
        self,
        watch: str,
        stream: str,
        state: dict[str, Any],
        dead_letters: Sequence[DeadLetter] = (),
        delivered_ids: Sequence[str] = (),
        keep: int = 10_000,
    ) -> None: ...

    async def dead_letters(self, watch: str) -> list[DeadLetter]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EventSink(CheckpointStore, Protocol):
    """A checkpoint store that also keeps the events: a database table a watch fills.

    When a watch's store is an ``EventSink``, the engine commits each page *before* handing its
    events to the handler or iterator: it folds the page's new events into the cursor and calls
    :meth:`commit_events` with them, which writes, in one transaction, the events, the state,
    the ids and the dead letters. A consumer that stops mid-page does not un-commit the page:
    the sink holds every event exactly once whatever the consumer does. Commits that carry no
    events (a page of duplicates, an advance past an empty page, dead letters a handler made)
    call :meth:`commit_events` with ``events`` empty.
    """

    async def commit_events(
        self,
        watch: str,
        stream: str,
        state: dict[str, Any],
        letters: list[DeadLetter],
        ids: list[str],
        window: int,
        events: Sequence[Event],
    ) -> None: ...


def _letter_key(letter: DeadLetter) -> str:
    return json.dumps([letter.stream, letter.raw], sort_keys=True, default=str)


class MemoryStore:
    """Keeps everything in this process (copies in and out, so nothing is shared by accident)."""

    def __init__(self) -> None:
        self._streams: dict[str, str] = {}
        self._states: dict[tuple[str, str], str] = {}
        self._ids: dict[tuple[str, str], deque[list[str]]] = {}  # each commit's ids, oldest commit first
        self._keep: dict[tuple[str, str], int] = {}
        self._held: dict[tuple[str, str], int] = {}  # ids in `_ids`, per stream
        self._letters: dict[str, dict[str, DeadLetter]] = {}
        self.commits = 0

    async def load_streams(self, watch: str) -> dict[str, Any] | None:
        raw = self._streams.get(watch)
        return None if raw is None else json.loads(raw)

    async def save_streams(self, watch: str, streams: dict[str, Any]) -> None:
        self._streams[watch] = json.dumps(streams)

    async def load(self, watch: str, stream: str) -> dict[str, Any] | None:
        raw = self._states.get((watch, stream))
        if raw is None:
            return None
        state: dict[str, Any] = json.loads(raw)
        ids = [i for chunk in self._ids.get((watch, stream), ()) for i in chunk]
        state["ids"] = ids[-self._keep.get((watch, stream), len(ids)) :] if ids else ids
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
        self._states[(watch, stream)] = json.dumps(state)
        key = (watch, stream)
        chunks = self._ids.setdefault(key, deque())
        held = self._held.get(key, 0)
        if delivered_ids:
            chunks.append(list(delivered_ids))
            held += len(delivered_ids)
        self._keep[key] = keep
        while chunks and held - len(chunks[0]) >= keep:  # whole commits are dropped; `load` returns `keep`
            held -= len(chunks.popleft())
        self._held[key] = held
        box = self._letters.setdefault(watch, {})
        for letter in dead_letters:
            box.setdefault(_letter_key(letter), letter)
        self.commits += 1

    async def dead_letters(self, watch: str) -> list[DeadLetter]:
        return list(self._letters.get(watch, {}).values())

    async def aclose(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS watches (watch TEXT PRIMARY KEY, streams TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    watch TEXT NOT NULL, stream TEXT NOT NULL, state TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (watch, stream));
CREATE TABLE IF NOT EXISTS delivered_ids (
    watch TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, ids TEXT NOT NULL,
    PRIMARY KEY (watch, stream, seq));
CREATE TABLE IF NOT EXISTS dead_letters (
    watch TEXT NOT NULL, stream TEXT NOT NULL, key TEXT NOT NULL, reason TEXT NOT NULL,
    raw TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (watch, key));
"""


def _use_wal(db: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch the file to WAL. Another process doing the same at that moment makes SQLite answer
    "locked" at once (the busy timeout does not cover this switch), so try again briefly."""
    for attempt in range(attempts):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _migrate_delivered(db: sqlite3.Connection) -> None:
    """Move the recent ids of a file written by tidings 0.1 (a row per id) to a row per commit."""

    def old_table() -> bool:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='delivered'").fetchone() is not None

    if not old_table():  # the usual case: no write lock taken when opening a store
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if old_table():  # another process may have migrated it meanwhile
            streams = db.execute("SELECT DISTINCT watch, stream FROM delivered").fetchall()
            for watch, stream in streams:
                rows = db.execute(
                    "SELECT seq, id FROM delivered WHERE watch=? AND stream=? ORDER BY seq", (watch, stream)
                ).fetchall()
                db.execute(
                    "INSERT INTO delivered_ids(watch, stream, seq, ids) VALUES(?, ?, ?, ?)",
                    (watch, stream, rows[-1][0], json.dumps([i for _, i in rows])),
                )
            db.execute("DROP TABLE delivered")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SQLiteStore:
    """A SQLite file in WAL mode. Several processes may open the same file.

    Writes run in a worker thread so the event loop never blocks on disk.
    ``synchronous=NORMAL`` keeps every commit through a process crash (SIGKILL);
    pass ``durable=True`` for ``FULL`` (also through power loss, slower).
    """

    def __init__(self, path: str | Path, *, durable: bool = False) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout=30000")
            _use_wal(self._db)
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(_SCHEMA)
            _migrate_delivered(self._db)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the checkpoint store {str(self.path)!r}: {exc}") from exc
        self._lock = threading.Lock()
        self.commits = 0

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def _run(self, func: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                try:
                    return func(*args)
                except sqlite3.Error as exc:
                    raise StoreError(f"checkpoint store {str(self.path)!r} failed: {exc}") from exc

        return await anyio.to_thread.run_sync(locked)

    async def load_streams(self, watch: str) -> dict[str, Any] | None:
        row = await self._run(
            lambda: self._db.execute("SELECT streams FROM watches WHERE watch=?", (watch,)).fetchone()
        )
        return None if row is None else json.loads(row[0])

    async def save_streams(self, watch: str, streams: dict[str, Any]) -> None:
        text = json.dumps(streams)
        await self._run(
            lambda: self._db.execute(
                "INSERT INTO watches(watch, streams) VALUES(?, ?) "
                "ON CONFLICT(watch) DO UPDATE SET streams=excluded.streams",
                (watch, text),
            )
        )

    async def load(self, watch: str, stream: str) -> dict[str, Any] | None:
        def read() -> tuple[Any, list[Any]]:
            row = self._db.execute("SELECT state FROM streams WHERE watch=? AND stream=?", (watch, stream)).fetchone()
            chunks = self._db.execute(
                "SELECT ids FROM delivered_ids WHERE watch=? AND stream=? ORDER BY seq", (watch, stream)
            ).fetchall()
            return row, chunks

        row, chunks = await self._run(read)
        if row is None:
            return None
        state: dict[str, Any] = json.loads(row[0])
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
        text = json.dumps(state)
        new_ids = list(delivered_ids)
        ids_text = json.dumps(new_ids)
        now = datetime.now(timezone.utc).isoformat()
        letters = [
            (watch, d.stream, _letter_key(d), d.reason, json.dumps(d.raw, default=str), d.at.isoformat())
            for d in dead_letters
        ]

        def write() -> None:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "INSERT INTO streams(watch, stream, state, updated_at) VALUES(?, ?, ?, ?) "
                    "ON CONFLICT(watch, stream) DO UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
                    (watch, stream, text, now),
                )
                if new_ids:
                    # One row per commit (its ids as JSON), not one per id: a page of 1,000 ids is one insert.
                    # A row's seq is the number of ids delivered up to its last one, so the rows wholly older
                    # than the newest `keep` ids are one key range.
                    (top,) = db.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM delivered_ids WHERE watch=? AND stream=?", (watch, stream)
                    ).fetchone()
                    last = top + len(new_ids)
                    db.execute(
                        "INSERT INTO delivered_ids(watch, stream, seq, ids) VALUES(?, ?, ?, ?)",
                        (watch, stream, last, ids_text),
                    )
                    db.execute(
                        "DELETE FROM delivered_ids WHERE watch=? AND stream=? AND seq <= ?",
                        (watch, stream, last - keep),
                    )
                if letters:
                    db.executemany(
                        "INSERT OR IGNORE INTO dead_letters(watch, stream, key, reason, raw, at) "
                        "VALUES(?, ?, ?, ?, ?, ?)",
                        letters,
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(write)
        self.commits += 1

    async def dead_letters(self, watch: str) -> list[DeadLetter]:
        rows = await self._run(
            lambda: self._db.execute(
                "SELECT stream, reason, raw, at FROM dead_letters WHERE watch=? ORDER BY at", (watch,)
            ).fetchall()
        )
        return [
            DeadLetter(watch=watch, stream=s, reason=r, raw=json.loads(raw), at=datetime.fromisoformat(at))
            for s, r, raw, at in rows
        ]

    async def aclose(self) -> None:
        with self._lock:
            self._db.close()
