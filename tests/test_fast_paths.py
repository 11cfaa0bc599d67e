"""The per-event hot path: fast Event construction, page-at-a-time parsing, the JSON decoder, id windows."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import sqlite3
import warnings
from datetime import datetime, timezone
from typing import Any

import attrs
import httpx
import pytest
import tidings
import tidings._http
from tidings import Event, hookimpl
from tidings._http import HTTP
from tidings._recent import RecentIds

from tiny import TinyFeed, TinyRecord, TinyServer, at, make_watch

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)
RAW = {"id": "e1", "time": "2024-01-01T00:00:00Z", "subject": "s1", "kind": "note"}


def an_event(**changes: Any) -> Event:
    fields: dict[str, Any] = {
        "provider": "p",
        "id": "e1",
        "subject": "s1",
        "type": "note",
        "status": None,
        "occurred_at": WHEN,
        "raw": RAW,
        "record_type": TinyRecord,
    }
    fields.update(changes)
    return Event(**fields)


def test_events_are_frozen_slotted_attrs_records() -> None:
    event = an_event()
    assert type(event) is Event and attrs.has(Event) and not hasattr(event, "__dict__")
    assert [a.name for a in attrs.fields(Event)][:6] == ["provider", "id", "subject", "type", "status", "occurred_at"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.id = "other"  # type: ignore[misc]
    made = Event.make(
        provider="p", id="e1", subject="s1", type="note", status=None, occurred_at=WHEN, raw=RAW, record_type=TinyRecord
    )
    assert type(made) is Event and made == event and repr(made) == repr(event)
    assert Event("p", "e1", "s1", "note", None, WHEN, RAW) == event  # positional, defaults filled in
    ended = attrs.evolve(event, terminal=True)
    assert type(ended) is Event and ended.terminal and not event.terminal and ended.record == event.record


def test_events_survive_copy_and_pickle_with_their_record_still_lazy() -> None:
    for twin in (copy.copy(an_event()), copy.deepcopy(an_event()), pickle.loads(pickle.dumps(an_event()))):
        assert twin == an_event() and type(twin) is Event
        assert twin.record == TinyRecord(id="e1", time=WHEN, subject="s1", kind="note")  # still built on access
    given = pickle.loads(pickle.dumps(an_event(record={"already": "typed"})))
    assert given.record == {"already": "typed"}


def test_events_refuse_missing_fields_and_subclasses() -> None:
    with pytest.raises(TypeError, match="missing"):
        Event(provider="p", id="e1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing"):
        Event.make(provider="p", id="e1")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="not meant to be subclassed"):

        class Richer(Event):
            pass


def broken(i: int) -> dict[str, Any]:
    return {"id": f"bad{i}", "time": at(1)}  # no subject, no kind


@pytest.mark.anyio
async def test_bad_records_anywhere_in_a_page_are_set_aside_and_the_rest_delivered_in_order(
    tiny_feed: Any,
) -> None:
    server = TinyServer()
    for i in range(6):
        server.add(f"e{i}", 1)
    # failures first, last, and two in a row, all in one page of 10
    rows = sorted(server.events, key=lambda e: e["id"])
    server.events = [broken(0), rows[0], rows[1], broken(1), broken(2), rows[2], rows[3], rows[4], rows[5], broken(3)]
    watch = make_watch(server, page_size=10)
    events = await watch.collect()
    assert [e.id for e in events] == ["e0", "e1", "e2", "e3", "e4", "e5"]
    letters = await watch.dead_letters()
    assert sorted(letter.raw["id"] for letter in letters) == ["bad0", "bad1", "bad2", "bad3"]
    assert all("missing required field" in letter.reason for letter in letters)
    assert watch.stats.dead_letters == 4


@pytest.mark.anyio
async def test_an_id_twice_in_one_page_is_delivered_once(tiny_feed: Any) -> None:
    server = TinyServer()
    for i in range(4):
        server.add(f"e{i}", i)
    server.events.insert(2, dict(server.events[0]))  # the provider repeats e0 inside the page
    watch = make_watch(server, page_size=10)
    assert [e.id for e in await watch.collect()] == ["e0", "e1", "e2", "e3"]
    assert watch.stats.duplicates >= 1


class AwaitableFeed(TinyFeed):
    """A plain ``parse_event`` that returns an awaitable (allowed): the page is read one record at a time."""

    name = "awaitable-feed"

    @hookimpl
    def parse_event(self, record: dict[str, Any]) -> Any:
        return self._later(record)

    async def _later(self, record: dict[str, Any]) -> Event:
        return TinyFeed.parse_event(self, record)


@pytest.mark.anyio
async def test_a_plain_parse_event_returning_awaitables_still_delivers_everything(
    server: TinyServer, tidings_plugin: Any
) -> None:
    tidings_plugin(AwaitableFeed)
    server.events.insert(5, broken(0))
    watch = make_watch(server, provider="awaitable-feed", until_idle=True, page_size=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events = await watch.collect()
        gc.collect()  # a coroutine dropped without being awaited or closed warns when collected
    assert [e.id for e in events] == [f"e{i:02d}" for i in range(12)]
    assert [letter.raw["id"] for letter in await watch.dead_letters()] == ["bad0"]
    assert not [w for w in caught if "never awaited" in str(w.message)]


class MarkingFeed(TinyFeed):
    """A feed whose ``is_terminal`` marks some events (a feed never ends, but the flag is shown)."""

    name = "marking-feed"

    @hookimpl
    def is_terminal(self, event: Event) -> bool:
        return event.id.endswith("3")


@pytest.mark.anyio
async def test_a_feed_page_goes_through_is_terminal(server: TinyServer, tidings_plugin: Any) -> None:
    tidings_plugin(MarkingFeed)
    events = await make_watch(server, provider="marking-feed", until_idle=True, page_size=10).collect()
    assert len(events) == 12
    assert [e.id for e in events if e.terminal] == ["e03"]


def test_recent_ids_stay_bounded_and_keep_the_newest() -> None:
    recent = RecentIds(capacity=100)
    for page in range(100):
        ids = [f"id{page * 10 + i}" for i in range(10)]
        if page % 2:
            assert recent.add_page(ids)
        else:
            for one in ids:
                recent.add(one)
        assert len(recent) <= 200
        assert all(f"id{i}" in recent for i in range(max(0, page * 10 - 90), page * 10 + 10))  # the newest 100
    assert "id0" not in recent
    assert not recent.add_page(["new", "id999"])  # one seen before: the page is not taken
    assert "new" not in recent
    assert not recent.add_page(["a", "a"])  # a repeat inside the page: not taken either
    loaded = RecentIds((f"x{i}" for i in range(500)), capacity=100)
    assert len(loaded) == 100 and "x499" in loaded and "x399" not in loaded


async def commit_pages_and_check_the_newest_ids_are_kept(store: tidings.CheckpointStore, *, exact: bool) -> None:
    """30 commits of 10 ids with keep=25: after each, ``load`` has the newest 25 (whole commits: at most 34)."""
    for page in range(30):
        ids = [f"p{page}-{i}" for i in range(10)]
        await store.commit("w", "s", {"cursor": {}, "open": None, "ended": False}, (), ids, keep=25)
        state = await store.load("w", "s")
        assert state is not None
        newest = [f"p{p}-{i}" for p in range(page + 1) for i in range(10)][-25:]
        held = state["ids"]
        assert held[-25:] == newest and len(held) < 25 + 10
        if exact:
            assert held == newest


@pytest.mark.anyio
async def test_the_memory_store_returns_exactly_the_newest_ids() -> None:
    store = tidings.MemoryStore()
    await commit_pages_and_check_the_newest_ids_are_kept(store, exact=True)
    assert sum(map(len, store._ids[("w", "s")])) <= 35  # at most `keep` plus one commit


BODIES = [
    b'{"events": [{"id": "a", "n": 1.5, "ok": true, "none": null}], "more": false}',
    b'{"big": 123456789012345678901234567890}',  # beyond 64 bits: still an exact int
    b'{"x": NaN, "y": [Infinity, 1e400]}',  # not JSON, but Python's json reads it: so must we, whichever decoder runs
    b'["\\ud800"]',  # a lone surrogate: msgspec refuses it, the standard library reads it
    json.dumps({"utf16": "x"}).encode("utf-16"),  # the standard library detects UTF-16; msgspec wants UTF-8
    '{"text": "caf\u00e9 \u2603"}'.encode(),
]


async def get_json(body: bytes) -> Any:
    """What ``ctx.http.get_json`` makes of a 200 answer with this body."""
    http = HTTP(
        provider="p",
        base_url="https://p.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body)),
    )
    try:
        return await http.get_json("x")
    finally:
        await http.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("fast", [True, False], ids=["msgspec", "stdlib"])
@pytest.mark.parametrize("body", BODIES)
async def test_json_bodies_decode_the_same_with_or_without_msgspec(
    fast: bool, body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(tidings._http, "_fast_loads", None)
    else:
        assert tidings._http._fast_loads is not None, "the test install has the `fast` extra"
    got = await get_json(body)
    assert json.dumps(got, sort_keys=True) == json.dumps(json.loads(body), sort_keys=True)


@pytest.mark.anyio
async def test_the_fast_decoder_is_used_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []

    def spy(content: bytes) -> Any:
        calls.append(content)
        return json.loads(content)

    monkeypatch.setattr(tidings._http, "_fast_loads", spy)
    assert await get_json(b"[1]") == [1]
    assert calls == [b"[1]"]


@pytest.mark.anyio
@pytest.mark.parametrize("fast", [True, False], ids=["msgspec", "stdlib"])
async def test_a_body_that_is_not_json_is_transient_with_either_decoder(
    fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fast:
        monkeypatch.setattr(tidings._http, "_fast_loads", None)
    with pytest.raises(tidings.TransientError, match="not JSON"):
        await get_json(b'{"events": [{"id": "a"')


@pytest.mark.anyio
async def test_the_sqlite_store_keeps_the_newest_ids_a_row_per_commit(tmp_path: Any) -> None:
    store = tidings.SQLiteStore(tmp_path / "cp.sqlite3")
    try:
        await commit_pages_and_check_the_newest_ids_are_kept(store, exact=False)
    finally:
        await store.aclose()
    rows = sqlite3.connect(tmp_path / "cp.sqlite3").execute("SELECT COUNT(*) FROM delivered_ids").fetchone()
    assert rows == (3,)


@pytest.mark.anyio
async def test_a_checkpoint_file_of_tidings_0_1_keeps_its_recent_ids(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE watches (watch TEXT PRIMARY KEY, streams TEXT NOT NULL);
        CREATE TABLE streams (watch TEXT NOT NULL, stream TEXT NOT NULL, state TEXT NOT NULL,
            updated_at TEXT NOT NULL, PRIMARY KEY (watch, stream));
        CREATE TABLE delivered (watch TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
            PRIMARY KEY (watch, stream, seq));
        INSERT INTO streams VALUES ('w', '1/', '{"cursor": 7, "open": null, "ended": false}', '2026-01-01');
        INSERT INTO delivered VALUES ('w', '1/', 2, 'b'), ('w', '1/', 1, 'a'), ('w', '1/', 3, 'c');
        """
    )
    old.commit()
    old.close()
    store = tidings.SQLiteStore(path)
    try:
        state = await store.load("w", "1/")
        assert state is not None and state["cursor"] == 7 and state["ids"] == ["a", "b", "c"]
        await store.commit("w", "1/", {"cursor": 8, "open": None, "ended": False}, (), ["d"], keep=3)
        state = await store.load("w", "1/")
        assert state is not None and state["ids"][-3:] == ["b", "c", "d"]
    finally:
        await store.aclose()
    tables = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "delivered" not in tables
