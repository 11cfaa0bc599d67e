"""The engine's second edition: the sink seam, the page-at-a-time fast path, no idle sleep at the end."""

from __future__ import annotations

import contextlib
import inspect
import time
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import attrs
import pytest
import tidings
from tidings import DeadLetter, Event, EventSink, hookimpl
from tidings._delivery import stream_events
from tidings._page import Parsing, read_page
from tidings._recent import RecentIds

from tiny import TinyCursor, TinyFeed, TinyServer, TinyTracker, at, make_watch

pytestmark = pytest.mark.anyio


class MemorySink(tidings.MemoryStore):
    """An in-memory EventSink: the events of each commit, kept with the position in one step."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.event_commits = 0

    async def commit_events(
        self, watch: str, stream: str, state: dict[str, Any], letters: list[DeadLetter], ids: list[str],
        window: int, events: Sequence[Event],
    ) -> None:
        self.events.extend(e.id for e in events)
        self.event_commits += 1
        await self.commit(watch, stream, state, letters, ids, window)


def test_a_sink_is_a_checkpoint_store_that_keeps_events() -> None:
    assert isinstance(MemorySink(), EventSink) and isinstance(MemorySink(), tidings.CheckpointStore)
    assert not isinstance(tidings.MemoryStore(), EventSink)
    assert "EventSink" in tidings.__all__


async def test_a_sink_holds_each_page_before_its_events_are_handed_over(tiny_feed: Any, server: TinyServer) -> None:
    sink = MemorySink()
    seen: list[str] = []

    def handler(event: Event) -> None:
        assert event.id in sink.events  # committed first
        seen.append(event.id)

    await make_watch(server, store=sink).run(handler)
    assert seen == sink.events == [f"e{i:02d}" for i in range(12)]
    assert sink.event_commits == sink.commits  # every commit went through commit_events


async def test_a_consumer_stopping_mid_page_does_not_uncommit_the_sink(tiny_feed: Any, server: TinyServer) -> None:
    sink = MemorySink()
    async with contextlib.aclosing(make_watch(server, store=sink).events()) as events:
        async for event in events:
            if event.id == "e01":  # the first page holds e00-e02
                break
    assert sink.events == ["e00", "e01", "e02"]
    again = [e.id async for e in make_watch(server, store=sink).events()]
    assert again == [f"e{i:02d}" for i in range(3, 12)]  # the sink's page is not delivered twice
    assert sink.events == [f"e{i:02d}" for i in range(12)]


class CountingTerminal(TinyFeed):
    """A feed whose ``is_terminal`` is a plain function and whose checkpoint folds a whole page."""

    name = "counting-feed"

    def __init__(self) -> None:
        self.terminal_calls = 0
        self.page_folds: list[int] = []

    @hookimpl
    def is_terminal(self, event: Event) -> bool:
        self.terminal_calls += 1
        return event.type == "done"

    @hookimpl
    def checkpoint_page(self, cursor: TinyCursor, events: Sequence[Event]) -> TinyCursor:
        self.page_folds.append(len(events))
        newest = max(e.occurred_at for e in events)
        if cursor.newest is None or newest > cursor.newest:
            return attrs.evolve(cursor, newest=newest)
        return cursor


@pytest.fixture
def counting() -> Iterator[CountingTerminal]:
    plugin = tidings.register(CountingTerminal())
    yield plugin
    tidings.unregister(plugin)


async def test_is_terminal_marks_a_feed_page_without_a_coroutine_per_event(
    counting: CountingTerminal, server: TinyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add("x1", 3, kind="done")
    made: list[Any] = []
    real = tidings._page._verdict

    def spy(value: Any) -> Any:
        made.append(value)
        return real(value)

    monkeypatch.setattr(tidings._page, "_verdict", spy)
    events = await make_watch(server, provider="counting-feed", until_idle=True).collect()
    assert [e.id for e in events if e.terminal] == ["x1"] and len(events) == 13
    assert counting.terminal_calls == 13  # once per new event, re-reads of delivered ones not asked again
    assert made == []  # plain True/False verdicts: no coroutine made per event


async def test_checkpoint_page_folds_once_per_page(counting: CountingTerminal, server: TinyServer) -> None:
    store = tidings.MemoryStore()
    await make_watch(server, provider="counting-feed", store=store).collect()
    assert counting.page_folds == [3, 3, 3, 3]  # four pages of new events, one fold each (not 12)
    state = await store.load("counting-feed", "1/")
    assert state is not None and state["cursor"]["newest"] == at(2)


async def test_checkpoint_page_sees_only_the_delivered_part_of_a_page(
    counting: CountingTerminal, server: TinyServer
) -> None:
    async with contextlib.aclosing(make_watch(server, provider="counting-feed").events()) as events:
        async for event in events:
            if event.id == "e04":  # the second page: e03 delivered, e04 not
                break
    assert counting.page_folds == [3, 1]


async def test_an_async_is_terminal_still_works(tiny_tracker: TinyTracker) -> None:
    class AsyncTerminal(TinyTracker):
        name = "async-terminal"

        @hookimpl
        async def is_terminal(self, event: Event) -> bool:
            await anyio.lowlevel.checkpoint()
            return event.type == "done"

    plugin = tidings.register(AsyncTerminal())
    try:
        srv = TinyServer()
        srv.add("a1", 0, subject="a")
        srv.add("a2", 1, subject="a", kind="done")
        srv.add("a3", 2, subject="a")  # after the end: not the watch's
        events = await make_watch(srv, provider="async-terminal", params={"subject": "a"}).collect()
        assert [(e.id, e.terminal) for e in events] == [("a1", False), ("a2", True)]
    finally:
        tidings.unregister(plugin)


async def test_a_tracker_page_is_cut_after_the_closing_event_and_later_bad_records_are_not_set_aside() -> None:
    def parse(record: dict[str, Any]) -> Event:
        if "bad" in record:
            raise tidings.ParseError("bad record", provider="p")
        return Event.make("p", record["id"], record["subject"], record["kind"], None, tidings.parse_time(at(0)), record)

    records = [
        {"id": "1", "subject": "a", "kind": "note"},
        {"bad": 1},
        {"id": "2", "subject": "a", "kind": "done"},
        {"bad": 2},
        {"id": "3", "subject": "a", "kind": "note"},
    ]
    parsing = Parsing(parse=parse, terminal=lambda e: e.type == "done", plain=True)
    recent = RecentIds()
    new = await read_page(records, parsing, recent, {"a"})
    assert new.ids == ["1", "2"] and new.ends_stream and [e.terminal for e in new.events] == [False, True]
    assert [raw for _, raw in new.unparsed] == [{"bad": 1}]
    assert "3" not in recent and "2" in recent
    feed = await read_page(records, parsing, RecentIds(), None)
    assert feed.ids == ["1", "2", "3"] and len(feed.unparsed) == 2 and not feed.ends_stream


async def test_an_until_idle_run_does_not_sleep_before_its_last_poll(tiny_feed: Any, server: TinyServer) -> None:
    watch = make_watch(server, until_idle=True, interval=5.0, max_interval=5.0)
    began = time.monotonic()
    events = await watch.collect()
    assert len(events) == 12 and time.monotonic() - began < 2.0  # no 5 s sleep before the confirming poll


async def test_an_until_idle_run_ends_after_one_confirming_poll(tiny_feed: Any, server: TinyServer) -> None:
    await make_watch(server, until_idle=True, interval=0.2, max_interval=0.2).collect()
    # pages of 3 over 12 events: offsets 0, 3, 6, 9 and the empty page at 12; then one poll re-reads the
    # overlap (late events) at once, finds nothing new, and the run ends: no third poll
    offsets = [int(r.url.params.get("offset", 0)) for r in server.requests]
    assert offsets == [0, 3, 6, 9, 12] * 2


def test_the_delivery_loop_is_written_once() -> None:
    source = inspect.getsource(tidings._delivery)
    assert source.count(".athrow(") == 1 and source.count(".asend(") == 1
    assert inspect.isasyncgenfunction(stream_events)
