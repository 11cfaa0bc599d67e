"""The table store on SQLite, DuckDB and PostgreSQL, called directly (both anyio backends)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import tidings
from tidings import Column, DeadLetter, Event, StoreError

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def events(n: int, start: int = 0, provider: str = "p") -> list[Event]:
    return [
        Event(provider, f"e{k:04d}", None if k % 3 == 0 else f"s{k % 2}", "note", "ok" if k % 2 else None,
              T0 + timedelta(seconds=k), {"k": k, "amount": {"value": f"{k}.25"}, "text": "é\u2028"}, k % 5 == 0)
        for k in range(start, start + n)
    ]


def state(cursor: Any) -> dict[str, Any]:
    return {"cursor": cursor, "open": None, "ended": False}


async def test_events_position_ids_and_dead_letters_round_trip(url: str, table_name: str) -> None:
    store = tidings.open_store(url, table=table_name)
    try:
        assert isinstance(store, tidings.CheckpointStore)
        assert await store.load("w", "1/") is None and await store.load_streams("w") is None
        await store.save_streams("w", {"run": 1, "streams": [{"key": "", "subjects": None, "data": {}}]})
        await store.save_streams("w", {"run": 2, "streams": []})  # replaced, not added
        page = events(7)
        letter = DeadLetter("w", "1/", "bad record", {"x": [1, None]}, T0)
        await store.commit_events("w", "1/", state(1), [letter], [e.id for e in page], 100, page)
        assert await store.load_streams("w") == {"run": 2, "streams": []}
        assert await store.load("w", "1/") == {**state(1), "ids": [e.id for e in page]}
        assert await store.dead_letters("w") == [letter]
        back = await store.events()
        assert back == page  # envelope, raw and time (in UTC) as committed
        assert all(e.occurred_at.utcoffset() == timedelta(0) for e in back)
        assert store.commits == 1
    finally:
        await store.aclose()


async def test_an_event_already_in_the_table_is_left_as_it_is(url: str, table_name: str) -> None:
    store = tidings.open_store(url, table=table_name)
    try:
        first = events(3)
        await store.commit_events("w", "", state(1), [], [e.id for e in first], 100, first)
        again = [Event("p", "e0001", "x", "changed", None, T0, {"other": True})]
        await store.commit_events("w", "", state(2), [], ["e0001"], 100, again)
        back = await store.events()
        assert [e.id for e in back] == ["e0000", "e0001", "e0002"]
        assert back[1] == first[1]
        assert (await store.load("w", ""))["cursor"] == 2
    finally:
        await store.aclose()


async def test_a_failed_commit_leaves_neither_events_nor_position(
    url: str, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tidings.open_store(url, table=table_name)
    try:
        page = events(4)
        await store.commit_events("w", "", state(1), [], [e.id for e in page[:2]], 100, page[:2])
        inserted = store._insert

        def insert_then_fail(*args: Any) -> None:
            inserted(*args)  # the rows are written inside the transaction, then the commit fails
            raise store.dialect.errors[0]("disk on fire")

        monkeypatch.setattr(store, "_insert", insert_then_fail)
        letter = DeadLetter("w", "", "bad", {"x": 1}, T0)
        with pytest.raises(StoreError, match="disk on fire"):
            await store.commit_events("w", "", state(2), [letter], [e.id for e in page[2:]], 100, page[2:])
        assert [e.id for e in await store.events()] == ["e0000", "e0001"]
        assert await store.load("w", "") == {**state(1), "ids": ["e0000", "e0001"]}
        assert await store.dead_letters("w") == []
        monkeypatch.undo()
        await store.commit_events("w", "", state(2), [letter], [e.id for e in page[2:]], 100, page[2:])  # usable
        assert len(await store.events()) == 4
    finally:
        await store.aclose()


async def test_recent_ids_keep_at_least_the_window(url: str, table_name: str) -> None:
    store = tidings.open_store(url, table=table_name)
    try:
        for k in range(10):
            await store.commit("w", "", state(k), (), [f"i{k}a", f"i{k}b"], 5)
        ids = (await store.load("w", ""))["ids"]
        assert ids[-5:] == ["i7b", "i8a", "i8b", "i9a", "i9b"] and 5 <= len(ids) <= 6
        assert ids == sorted(ids)  # oldest first
    finally:
        await store.aclose()


async def test_two_tables_in_one_database_keep_their_own_positions(url: str, table_name: str) -> None:
    a = tidings.open_store(url, table=table_name + "_a")
    await a.commit_events("w", "", state("a"), [], ["e0000"], 10, events(1))
    await a.aclose()
    b = tidings.open_store(url, table=table_name + "_b")
    try:
        assert await b.load("w", "") is None
        assert await b.events() == []
    finally:
        await b.aclose()


async def test_typed_columns_are_filled_from_the_raw_record(url: str, table_name: str) -> None:
    first = tidings.open_store(url, table=table_name)
    await first.commit_events("w", "", state(0), [], ["e0000"], 10, events(1))  # before the columns exist
    await first.aclose()
    columns = [Column("amount", "decimal", "amount.value"), Column("k", "integer"), Column("k_text", "text", "k"),
               Column("when", "timestamp", "at"), Column("flag", "boolean", "flag"),
               Column("nothing", "double", "no.x")]
    store = tidings.open_store(url, table=table_name, columns=columns)
    try:
        raw = {"amount": {"value": "12.50"}, "k": 3, "at": "2024-05-01T14:00:00+02:00", "flag": True}
        page = [Event("p", "x1", None, "t", None, T0, raw),
                Event("p", "x2", None, "t", None, T0, {"amount": {"value": "n/a"}, "k": "many", "flag": "yes"})]
        await store.commit_events("w", "", state(1), [], ["x1", "x2"], 10, page)
        rows = store._call(lambda: store._rows(
            f'SELECT id, amount, k, k_text, "when", flag, "nothing" FROM "{table_name}" ORDER BY id'))
        got = {r[0]: r[1:] for r in rows}
        assert got["e0000"] == (None, None, None, None, None, None)
        amount, k, k_text, when, flag, nothing = got["x1"]
        assert Decimal(str(amount)) == Decimal("12.50") and k == 3 and k_text == "3" and nothing is None
        assert store.dialect.timestamp_out(when) == T0 and bool(flag) is True
        assert got["x2"] == (None, None, "many", None, None, None)  # what does not convert is NULL
    finally:
        await store.aclose()


async def test_the_schema_is_versioned_and_a_newer_one_is_refused(url: str, table_name: str) -> None:
    store = tidings.open_store(url, table=table_name)
    versions = dict(store._call(lambda: store._rows("SELECT object, version FROM tidings_schema")))
    assert versions["tidings_state"] == 1 and versions[table_name] == 1
    store._call(lambda: store._rows(store.dialect.sql("UPDATE tidings_schema SET version = 99 WHERE object = ?"),
                                    (table_name,)))
    await store.aclose()
    with pytest.raises(StoreError, match="newer tidings"):
        tidings.open_store(url, table=table_name)


def test_table_reads_the_events_back_as_an_event_list(url: str, table_name: str, anyio_backend: str) -> None:
    import anyio

    async def write() -> None:
        store = tidings.open_store(url, table=table_name)
        await store.commit_events("w", "", state(1), [], [], 10, events(3))
        await store.commit_events("v", "", state(1), [], [], 10, events(2, start=10))
        await store.aclose()

    anyio.run(write, backend=anyio_backend)
    every = tidings.table(url, table=table_name)
    assert isinstance(every, tidings.EventList) and len(every) == 5
    assert [e.id for e in tidings.table(url, table=table_name, watch="v")] == ["e0010", "e0011"]
    frame = every.to_pandas()
    assert list(frame["id"]) == [e.id for e in every]


def test_bad_urls_and_names_say_what_is_wanted(tmp_path: Path) -> None:
    with pytest.raises(tidings.ConfigurationError, match="not a database URL"):
        tidings.open_store("mysql://u@h/db")
    with pytest.raises(tidings.ConfigurationError, match="three slashes"):
        tidings.open_store("sqlite://events.db")
    with pytest.raises(tidings.ConfigurationError, match="lower-case"):
        tidings.open_store(f"sqlite:///{tmp_path}/x.db", table="Robert'); DROP TABLE x;--")
    with pytest.raises(tidings.ConfigurationError, match="no database file"):
        tidings.table(f"duckdb:///{tmp_path}/missing.duckdb")
    with pytest.raises(tidings.ConfigurationError, match="one of the table's own"):
        Column("raw", "json")
    with pytest.raises(tidings.ConfigurationError, match="not one of"):
        Column("x", "money")


def test_a_missing_driver_names_its_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb raises ImportError
    monkeypatch.delitem(sys.modules, "tidings._sinks.duckdb", raising=False)
    with pytest.raises(tidings.ConfigurationError, match=r"pip install 'tidings\[duckdb\]'"):
        tidings.open_store(f"duckdb:///{tmp_path}/x.duckdb")


def test_a_password_in_the_url_is_never_shown() -> None:
    with pytest.raises(StoreError) as caught:
        tidings.open_store("postgresql://alice:s3cret-pw@127.0.0.1:1/db?connect_timeout=2")
    assert "s3cret-pw" not in str(caught.value) and "127.0.0.1" in str(caught.value)


async def test_text_a_database_refuses_does_not_stall_the_watch(url: str, kind: str, table_name: str) -> None:
    """PostgreSQL holds no NUL character, and neither JSONB nor DuckDB's JSON a lone surrogate: those
    become U+FFFD there, the rest of the record as it was (SQLite keeps everything)."""
    raw = {"nul": "x\x00y", "lone": "x\ud800y", "pair": "\U0001f600", "escaped": "\\u0000 \\ud800", "low": "\udc00"}
    store = tidings.open_store(url, table=table_name)
    try:
        page = [Event("p", "odd\x00id", "s\x00", "t", None, T0, raw)]
        await store.commit_events("w", "", state(1), [], ["odd\x00id"], 10, page)
        (back,) = await store.events()
    finally:
        await store.aclose()
    if kind == "postgresql":
        assert (back.id, back.subject) == ("odd\ufffdid", "s\ufffd")
        assert back.raw == {"nul": "x\ufffdy", "lone": "x\ufffdy", "pair": "\U0001f600", "escaped": "\\u0000 \\ud800",
                            "low": "\ufffd"}
    elif kind == "duckdb":
        assert (back.id, back.subject) == (page[0].id, page[0].subject)
        assert back.raw == {**raw, "lone": "x\ufffdy", "low": "\ufffd"}
    else:
        assert back == page[0]
