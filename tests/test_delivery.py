"""The delivery promise: at least once, duplicates removed, position saved only after delivery."""

from __future__ import annotations

import contextlib

import anyio
import httpx
import pytest
import tidings

from tiny import TinyServer, make_watch

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("tiny_feed")]


async def read(watch: tidings.Watch, stop_after: int | None = None) -> list[str]:
    got: list[str] = []

    def handler(event: tidings.Event) -> None:
        got.append(event.id)
        if stop_after is not None and len(got) >= stop_after:
            watch.stop()

    await watch.run(handler)
    return got


async def test_ties_across_pages_with_inclusive_after_delivered_once(server: TinyServer) -> None:
    ids = await read(make_watch(server))
    assert ids == [f"e{i:02d}" for i in range(12)]


async def test_iterator_and_handler_forms_agree(server: TinyServer) -> None:
    watch = make_watch(server)
    ids = [e.id async for e in watch.events()]
    assert ids == [f"e{i:02d}" for i in range(12)]


async def test_position_committed_once_per_page_not_per_event(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    watch = make_watch(server, store=store)
    await read(watch)
    assert watch.stats.delivered == 12
    assert store.commits <= watch.stats.pages
    assert store.commits < watch.stats.delivered


async def test_restart_from_sqlite_resumes_without_repeats(server: TinyServer, tmp_path) -> None:
    path = tmp_path / "cp.sqlite3"
    store = tidings.SQLiteStore(path)
    first = await read(make_watch(server, store=store), stop_after=5)
    await store.aclose()
    store = tidings.SQLiteStore(path)
    second = await read(make_watch(server, store=store))
    await store.aclose()
    assert first == [f"e{i:02d}" for i in range(5)]
    assert first + second == [f"e{i:02d}" for i in range(12)]


async def test_late_event_inside_overlap_is_delivered_once(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    assert len(await read(make_watch(server, store=store))) == 12
    server.add("late", 1.5)  # before the newest delivered time (2 s), inside the 5 s overlap
    server.add("new", 3)
    again = await read(make_watch(server, store=store))
    assert again == ["late", "new"]
    assert await read(make_watch(server, store=store)) == []


async def test_recent_ids_are_bounded() -> None:
    server = TinyServer()
    for i in range(12):
        server.add(f"e{i:02d}", i * 60)  # one event a minute: the overlap never re-reads more than one
    store = tidings.MemoryStore()
    assert len(await read(make_watch(server, store=store, dedup_window=5))) == 12
    state = await store.load("tiny-feed", "1/")
    assert state is not None and len(state["ids"]) == 5


async def test_unparseable_record_is_dead_lettered_and_the_feed_goes_on(server: TinyServer, tmp_path) -> None:
    server.events.insert(3, {"id": "broken", "time": tidings.format_time(tidings.parse_time("2024-01-01T00:00:00Z"))})
    store = tidings.SQLiteStore(tmp_path / "cp.sqlite3")
    watch = make_watch(server, store=store)
    ids = await read(watch)
    assert len(ids) == 12 and "broken" not in ids
    letters = await watch.dead_letters()
    assert len(letters) == 1
    assert "missing required field 'subject'" in letters[0].reason and "'broken'" in letters[0].reason
    assert letters[0].raw["id"] == "broken"
    # a re-read of the same page does not pile up copies, nor count it again
    assert watch.stats.dead_letters == 1
    await read(make_watch(server, store=store, name="tiny-feed"))
    assert len(await watch.dead_letters()) == 1
    await store.aclose()


async def test_handler_error_stops_with_position_before_the_failing_event(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    seen: list[str] = []

    def handler(event: tidings.Event) -> None:
        if event.id == "e04":
            raise ValueError("boom")
        seen.append(event.id)

    with pytest.raises(tidings.HandlerError) as info:
        await make_watch(server, store=store).run(handler)
    assert isinstance(info.value.__cause__, ValueError)
    assert "e04" in str(info.value)
    rest = await read(make_watch(server, store=store))
    assert seen == ["e00", "e01", "e02", "e03"]
    assert rest == [f"e{i:02d}" for i in range(4, 12)]


async def test_handler_error_can_dead_letter_and_continue(server: TinyServer) -> None:
    watch = make_watch(server, on_handler_error="dead-letter")

    def handler(event: tidings.Event) -> None:
        if event.id == "e04":
            raise ValueError("boom")

    stats = await watch.run(handler)
    assert stats.delivered == 12
    letters = await watch.dead_letters()
    assert [d.raw["id"] for d in letters] == ["e04"] and "ValueError: boom" in letters[0].reason


async def test_breaking_out_of_the_iterator_saves_what_came_before(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    watch = make_watch(server, store=store)
    async with contextlib.aclosing(watch.events()) as events:
        async for event in events:
            if event.id == "e05":
                break
    # e05 was handed out but the loop broke on it: it counts as not delivered
    assert await read(make_watch(server, store=store)) == [f"e{i:02d}" for i in range(5, 12)]


async def test_stop_ends_after_the_delivery_in_progress(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    watch = make_watch(server, store=store, until_idle=False)
    got = await read(watch, stop_after=7)
    assert got == [f"e{i:02d}" for i in range(7)]
    assert await read(make_watch(server, store=store)) == [f"e{i:02d}" for i in range(7, 12)]


async def test_cancellation_saves_the_position(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    watch = make_watch(server, store=store, until_idle=False, interval=10, max_interval=10)
    got: list[str] = []
    with anyio.move_on_after(0.5):
        await watch.run(lambda e: got.append(e.id))
    assert got == [f"e{i:02d}" for i in range(12)]
    assert await read(make_watch(server, store=store)) == []


async def test_cancelled_mid_page_commits_what_was_delivered(server: TinyServer) -> None:
    store = tidings.MemoryStore()
    watch = make_watch(server, store=store, until_idle=False)
    got: list[str] = []

    async def slow(event: tidings.Event) -> None:
        got.append(event.id)
        if event.id == "e04":
            await anyio.sleep(10)  # cancelled here: e04's delivery never finished

    with anyio.move_on_after(0.3):
        await watch.run(slow)
    assert got[-1] == "e04"
    assert await read(make_watch(server, store=store)) == [f"e{i:02d}" for i in range(4, 12)]


async def test_tracker_ends_when_every_subject_reached_a_terminal_event(tiny_tracker: object) -> None:
    srv = TinyServer()
    srv.add("a1", 0, "a")
    srv.add("b1", 1, "b")
    srv.add("a2", 2, "a", kind="done")
    srv.add("c1", 3, "c")
    srv.add("b2", 4, "b", kind="done")
    srv.add("after", 5, "b")
    watch = make_watch(srv, provider="tiny-tracker", params={"subject": ["a", "b"]})
    events = await watch.collect()
    assert [e.id for e in events] == ["a1", "b1", "a2", "c1", "b2"]
    assert [e.id for e in events if e.terminal] == ["a2", "b2"]
    assert watch.stats.streams_ended == watch.stats.streams == 1


async def test_a_finished_tracker_delivers_nothing_more_under_its_name(tiny_tracker: object) -> None:
    srv = TinyServer()
    srv.add("a1", 0, "a", kind="done")
    store = tidings.MemoryStore()
    first = await make_watch(srv, provider="tiny-tracker", params={"subject": "a"}, store=store).collect()
    again = await make_watch(srv, provider="tiny-tracker", params={"subject": "a"}, store=store).collect()
    other = await make_watch(srv, provider="tiny-tracker", params={"subject": "a"}, store=store, name="new").collect()
    assert [e.id for e in first] == ["a1"]
    assert again == []  # resumed: that work ended
    assert [e.id for e in other] == ["a1"]  # a new name is new work, with its own streams and positions


def test_the_default_name_tells_params_apart(tiny_tracker: object) -> None:
    a = make_watch(TinyServer(), provider="tiny-tracker", params={"subject": "a"})
    b = make_watch(TinyServer(), provider="tiny-tracker", params={"subject": "b"})
    assert a.name != b.name and a.name.startswith("tiny-tracker-")
    assert make_watch(TinyServer(), params={"overlap": "30"}).name == "tiny-feed"  # a feed's params shape the read


async def test_transient_faults_are_retried_without_loss(server: TinyServer) -> None:
    server.faults.extend(
        [
            httpx.Response(500),
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            httpx.Response(200, content=b'{"events": [{"id": "x"'),  # truncated
            httpx.Response(200, content=b"<html>oops</html>"),
        ]
    )
    watch = make_watch(server)
    assert await read(watch) == [f"e{i:02d}" for i in range(12)]
    assert watch.stats.retries == 7


async def test_retry_after_is_honoured(server: TinyServer) -> None:
    server.faults.append(httpx.Response(429, headers={"Retry-After": "0.4"}))
    started = anyio.current_time()
    await read(make_watch(server))
    assert anyio.current_time() - started >= 0.4


async def test_retries_are_bounded(server: TinyServer) -> None:
    server.faults.extend([httpx.Response(503)] * 10)
    with pytest.raises(tidings.RetriesExhausted, match="gave up after 3 attempts"):
        await read(make_watch(server, max_retries=2))


async def test_a_final_client_error_is_not_retried(server: TinyServer) -> None:
    server.faults.append(httpx.Response(404, json={"error": "no such feed"}))
    with pytest.raises(tidings.ProviderHTTPError, match="HTTP 404") as info:
        await read(make_watch(server))
    assert len(server.requests) == 1
    assert info.value.status_code == 404


async def test_idle_polls_back_off_and_full_pages_poll_at_once(server: TinyServer) -> None:
    watch = make_watch(server, until_idle=False, interval=0.02, max_interval=0.16)
    with anyio.move_on_after(1.0):
        await read(watch)
    # 12 events in pages of 3 arrive at once; then idle polls double 0.02 -> 0.16 s
    assert watch.stats.delivered == 12
    polls = [r for r in server.requests if r.url.params["offset"] == "0"]
    # without backoff, 1 s at 0.02 s would be ~50 polls; doubling to 0.16 s gives under 12
    assert len(polls) < 12
