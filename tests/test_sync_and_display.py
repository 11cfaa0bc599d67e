"""Synchronous twins work in a script and inside a running event loop; events render as tables."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest
import tidings

from tiny import TinyServer, make_watch

pytestmark = pytest.mark.usefixtures("tiny_feed")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_collect_from_plain_code(server: TinyServer, backend: str) -> None:
    events = tidings.collect(make_watch(server), backend=backend)  # type: ignore[arg-type]
    assert [e.id for e in events] == [f"e{i:02d}" for i in range(12)]


def test_collect_inside_a_running_asyncio_loop_like_jupyter(server: TinyServer) -> None:
    async def cell() -> list[str]:
        # a notebook cell calling the sync API while the kernel's loop is running
        return [e.id for e in tidings.collect(make_watch(server), limit=5)]

    assert asyncio.run(cell()) == [f"e{i:02d}" for i in range(5)]


def test_run_sync_with_a_handler_inside_a_running_loop(server: TinyServer) -> None:
    got: list[str] = []

    async def cell() -> tidings.WatchStats:
        return tidings.run_sync(make_watch(server), lambda e: got.append(e.id))

    stats = anyio.run(cell)
    assert stats.delivered == 12 and len(got) == 12


def test_event_lists_render_as_html_and_text(server: TinyServer) -> None:
    server.add("<script>", 9, subject="a&b")
    events = tidings.collect(make_watch(server))
    html = events._repr_html_()
    assert html.count("<tr>") == 14  # header + 13 events
    assert "&lt;script&gt;" in html and "<script>" not in html and "a&amp;b" in html
    text = str(events)
    assert text.splitlines()[0].split() == ["occurred_at", "provider", "type", "status", "subject", "id", "terminal"]
    assert "(13 events)" in text


def test_typed_records_are_built_on_first_access(server: TinyServer) -> None:
    events = tidings.collect(make_watch(server), limit=1)
    event: Any = events[0]
    assert event._record is not None
    record = event.record
    assert record.id == "e00" and record.time.tzinfo is not None
    assert event.record is record  # cached


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_watch_stats_repr_shows_the_elapsed_time(server: TinyServer, backend: str) -> None:
    stats = tidings.run_sync(make_watch(server), lambda e: None, backend=backend)  # type: ignore[arg-type]
    text = repr(stats)
    assert text.startswith("WatchStats(delivered=12, duplicates=")
    assert f"elapsed={stats.elapsed:.3f}s)" in text
    assert "started" not in text and "finished" not in text and "running" not in text
    assert "running" in repr(tidings.WatchStats())


def test_one_event_shows_its_typed_record_as_a_small_table(server: TinyServer) -> None:
    server.add("<x>", 9, subject="a&b")
    event = tidings.collect(make_watch(server))[-1]
    html = event._repr_html_()  # type: ignore[attr-defined]
    assert html.startswith("<table class='tidings-event'>") and ">TinyRecord<" in html
    assert "&#x27;a&amp;b&#x27;" in html and "<x>" not in html and "&lt;x&gt;" in html
    assert html.count("<tr>") == 7 + 1 + 4  # envelope, the record's title, its four fields
