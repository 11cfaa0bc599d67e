"""A tracker with several streams: concurrent polling, the iterator form, stopping and resuming."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest
import tidings
from tidings import hookimpl

from tiny import TinyServer, TinyTracker, make_watch

pytestmark = pytest.mark.anyio


class PerSubject(TinyTracker):
    """One stream per subject, each reading only its subject's events (``?subject=``)."""

    name = "per-subject"

    @hookimpl
    def start(self, ctx: tidings.WatchContext) -> list[tidings.Stream]:
        return [tidings.Stream(s, subjects=frozenset({s})) for s in ctx.param_list("subject")]

    @hookimpl
    async def fetch_page(self, ctx: tidings.WatchContext, cursor: Any) -> tidings.Page:
        page = await TinyTracker.fetch_page(self, ctx, cursor)
        mine = [r for r in page.records if r["subject"] == ctx.stream.key]
        return tidings.Page(records=mine, more=page.more, advance=page.advance)


def server() -> TinyServer:
    srv = TinyServer()
    for n in range(4):
        for s in ("a", "b", "c"):
            srv.add(f"{s}{n}", n, s, kind="done" if n == 3 else "note")
    return srv


async def test_every_stream_runs_to_its_end_concurrently(tidings_plugin: Any) -> None:
    tidings_plugin(PerSubject)
    watch = make_watch(server(), provider="per-subject", params={"subject": ["a", "b", "c"]})
    events = [e async for e in watch.events()]
    assert sorted(e.id for e in events) == sorted(f"{s}{n}" for s in "abc" for n in range(4))
    for s in "abc":  # each stream's events in order, its terminal event last
        assert [e.id for e in events if e.subject == s] == [f"{s}{n}" for n in range(4)]
    assert watch.stats.streams == watch.stats.streams_ended == 3


async def test_leaving_the_iterator_early_saves_every_stream(tidings_plugin: Any) -> None:
    tidings_plugin(PerSubject)
    srv = server()
    store = tidings.MemoryStore()
    params = {"subject": ["a", "b", "c"]}
    first: list[str] = []
    async with contextlib.aclosing(make_watch(srv, provider="per-subject", params=params, store=store).events()) as it:
        async for event in it:
            first.append(event.id)
            if len(first) == 5:
                break
    rest = [e.id async for e in make_watch(srv, provider="per-subject", params=params, store=store).events()]
    # the event the loop broke on counts as not delivered; nothing else comes twice, nothing is lost
    assert sorted(first[:-1] + rest) == sorted(f"{s}{n}" for s in "abc" for n in range(4))
    assert first[-1] in rest


async def test_a_failing_stream_stops_the_watch_with_every_position_saved(tidings_plugin: Any) -> None:
    tidings_plugin(PerSubject)
    srv = server()
    store = tidings.MemoryStore()
    params = {"subject": ["a", "b", "c"]}
    got: list[str] = []

    def handler(event: tidings.Event) -> None:
        if event.id == "b2":
            raise RuntimeError("boom")
        got.append(event.id)

    with pytest.raises(tidings.HandlerError, match="'b2'") as info:
        await make_watch(srv, provider="per-subject", params=params, store=store).run(handler)
    assert isinstance(info.value.__cause__, RuntimeError)  # the handler's own error, not a task group
    rest: list[str] = []
    await make_watch(srv, provider="per-subject", params=params, store=store).run(lambda e: rest.append(e.id))
    assert "b2" in rest and not set(got) & set(rest)
    assert sorted(got + rest) == sorted(f"{s}{n}" for s in "abc" for n in range(4))


async def test_requests_in_flight_are_bounded_per_host(tidings_plugin: Any) -> None:
    tidings_plugin(PerSubject)
    srv = server()
    in_flight = peak = 0
    inner = srv.transport()

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                import anyio

                await anyio.sleep(0.01)
                return await inner.handle_async_request(request)
            finally:
                in_flight -= 1

    subjects = [chr(ord("a") + i) for i in range(12)]
    for s in subjects[3:]:
        srv.add(f"{s}-done", 0, s, kind="done")
    watch = make_watch(srv, provider="per-subject", params={"subject": subjects}, transport=Counting(), max_per_host=2)
    await watch.collect()
    assert watch.stats.streams_ended == 12
    assert peak == 2
