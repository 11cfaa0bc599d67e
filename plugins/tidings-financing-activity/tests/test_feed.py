"""Paging, ties, late events, links and faults against the emulator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import tidings
from tidings_financing_activity import FinancingActivityEmulator

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # the emulator fixture's standing clock


def once(events: list[tidings.Event], expected: set[str]) -> None:
    counts = Counter(e.id for e in events)
    assert [i for i, n in counts.items() if n > 1] == [], "delivered twice"
    assert expected - set(counts) == set(), "never delivered"
    assert set(counts) - expected == set(), "not expected"


def activity_queries(emulator: FinancingActivityEmulator) -> list[httpx.QueryParams]:
    found = []
    for method, path in emulator.requests:
        assert method == "GET" and path.startswith("/v1/activity?"), path
        found.append(httpx.QueryParams(path.partition("?")[2]))
    return found


@pytest.mark.parametrize("ties", [3, 4, 5, 6, 7])
@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize("overlap", [0.0, 5.0])
async def test_ties_across_a_page_boundary_every_event_once(
    emulator: FinancingActivityEmulator,
    make_watch: Callable[..., tidings.Watch],
    read_all: Any,
    ties: int,
    inclusive: bool,
    overlap: float,
) -> None:
    emulator.inclusive_after = inclusive
    expected = set()
    for i in range(3):  # three before the tie: the tie starts in the first page (size 4) and crosses it
        expected.add(emulator.add_event(T0 - timedelta(seconds=30 - i))["event_identification"])
    tie = T0 - timedelta(seconds=20)
    for _ in range(ties):
        expected.add(emulator.add_event(tie)["event_identification"])
    for i in range(2):
        expected.add(emulator.add_event(T0 - timedelta(seconds=10 - i))["event_identification"])
    watch = make_watch(emulator, page_size=4, overlap=overlap, after=T0 - timedelta(minutes=1))
    once(await read_all(watch), expected)


async def test_after_is_the_tie_time_itself_when_the_server_is_inclusive(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    tie = T0 - timedelta(seconds=20)
    expected = {emulator.add_event(tie)["event_identification"] for _ in range(6)}
    watch = make_watch(emulator, page_size=4, overlap=0.0, after=tie)
    once(await read_all(watch), expected)
    queries = activity_queries(emulator)
    # one poll pages from a FIXED after: 0, 4, then the next poll re-reads from newest - overlap
    assert [(q["after"], q["offset"]) for q in queries[:2]] == [("2024-05-01T11:59:40.000Z", "0")] * 1 + [
        ("2024-05-01T11:59:40.000Z", "4")
    ]


async def test_more_events_at_one_time_than_limit_neither_loop_nor_skip(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    tie = T0 - timedelta(seconds=5)
    expected = {emulator.add_event(tie)["event_identification"] for _ in range(11)}
    first = make_watch(emulator, page_size=3)
    once(await read_all(first), expected)
    requests = len(emulator.requests)
    assert requests <= 5 + 5  # one poll (4 pages and the empty one), one re-read poll (all known): idle
    # a later poll of the same position re-reads the tie (it is within the overlap) and delivers nothing
    again = make_watch(emulator, page_size=3, store=first.store)
    assert await read_all(again) == []
    later = [q for q in activity_queries(emulator)[requests:]]
    assert [q["offset"] for q in later] == ["0", "3", "6", "9", "11"]


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_events_arriving_late_are_delivered_once(
    emulator: FinancingActivityEmulator,
    make_watch: Callable[..., tidings.Watch],
    read_all: Any,
    order: str,
) -> None:
    emulator.order = order  # type: ignore[assignment]
    first_ids = {emulator.add_event(T0 - timedelta(seconds=s))["event_identification"] for s in (9, 8, 6, 6, 5)}
    store = tidings.MemoryStore()
    once(await read_all(make_watch(emulator, store=store, page_size=2)), first_ids)
    # newest delivered is T0-5s; these happened before it but become visible only now
    emulator.clock.advance(30)
    now = emulator.clock.now()
    late = {
        emulator.add_event(T0 - timedelta(seconds=s), visible_from=now)["event_identification"]
        for s in (5, 6, 8, 9)  # up to 4 s before the newest delivered, one of them at its very time
    }
    fresh = {emulator.add_event(now - timedelta(seconds=1))["event_identification"]}
    too_late = emulator.add_event(T0 - timedelta(seconds=40), visible_from=now)["event_identification"]
    second = await read_all(make_watch(emulator, store=store, page_size=2))
    once(second, late | fresh)
    assert too_late not in {e.id for e in second}  # older than the overlap window: documented limit


async def test_a_wider_overlap_reaches_older_late_events(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.add_event(T0 - timedelta(seconds=1))
    store = tidings.MemoryStore()
    await read_all(make_watch(emulator, store=store))
    emulator.clock.advance(60)
    late = emulator.add_event(T0 - timedelta(seconds=40), visible_from=emulator.clock.now())
    got = await read_all(make_watch(emulator, store=store, overlap=60.0))
    assert [e.id for e in got] == [late["event_identification"]]


async def test_after_never_goes_before_the_users_start(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    before = emulator.add_event(T0 - timedelta(seconds=3))["event_identification"]
    kept = emulator.add_event(T0 - timedelta(seconds=1))["event_identification"]
    store = tidings.MemoryStore()
    got = await read_all(make_watch(emulator, store=store, after=T0 - timedelta(seconds=2)))
    got += await read_all(make_watch(emulator, store=store, after=T0 - timedelta(seconds=2)))
    assert [e.id for e in got] == [kept]
    assert before not in {e.id for e in got}
    assert {q["after"] for q in activity_queries(emulator)} == {"2024-05-01T11:59:58.000Z"}


@pytest.mark.parametrize("foreign", [True, False])
async def test_links_in_the_body_are_never_followed(
    emulator: FinancingActivityEmulator,
    make_watch: Callable[..., tidings.Watch],
    read_all: Any,
    foreign: bool,
) -> None:
    emulator.foreign_links = foreign
    expected = {emulator.add_event(T0 - timedelta(seconds=s))["event_identification"] for s in range(20, 11, -1)}
    watch = make_watch(emulator, page_size=4, overlap=0.0)
    once(await read_all(watch), expected)
    offsets = [(q["limit"], q["offset"]) for q in activity_queries(emulator)]
    assert offsets[:3] == [("4", "0"), ("4", "4"), ("4", "8")]  # computed, not the links' ``limit=20,offset=40``


async def test_retry_after_is_honoured_on_429_and_503(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.faults.retry_after = 0.2
    emulator.faults.fail_next("429")
    emulator.faults.fail_next("503")
    expected = {emulator.add_event(T0 - timedelta(seconds=s))["event_identification"] for s in (3, 2, 1)}
    watch = make_watch(emulator, retry_base_wait=0.001, retry_max_wait=0.001)
    import time

    started = time.monotonic()
    once(await read_all(watch), expected)
    assert watch.stats.retries == 2
    assert time.monotonic() - started >= 0.2  # Retry-After of the 429 was a floor


async def test_a_server_that_caps_limit_needs_page_end_empty(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.max_limit = 3  # asks for 10, silently gets 3
    tie = T0 - timedelta(seconds=1)
    expected = {emulator.add_event(tie)["event_identification"] for _ in range(8)}
    watch = make_watch(emulator, page_size=10, params={"page_end": "empty"})
    once(await read_all(watch), expected)


async def test_bad_limit_is_a_configuration_error(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    with pytest.raises(tidings.ConfigurationError, match="limit"):
        await read_all(make_watch(emulator, params={"limit": "lots"}))


async def test_default_limit_and_after_format(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.add_event(T0 - timedelta(seconds=1))
    await read_all(make_watch(emulator, after="2021-11-18T11:08:23.003456Z"))
    first = activity_queries(emulator)[0]
    assert (first["after"], first["limit"], first["offset"]) == ("2021-11-18T11:08:23.003Z", "100", "0")


async def test_terminal_statuses_are_configurable(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    for status in ("PNDG", "REGU", "FNCD", "CANC", "DFIN"):
        emulator.add_event(T0 - timedelta(seconds=1), status=status)
    got = await read_all(make_watch(emulator))
    assert {e.status for e in got if e.terminal} == {"FNCD", "CANC", "DFIN"}
    emulator.requests.clear()
    got = await read_all(make_watch(emulator, params={"terminal_status": "pndg,REGU"}))
    assert {e.status for e in got if e.terminal} == {"PNDG", "REGU"}


async def test_a_new_watch_without_after_asks_from_the_epoch(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    expected = {emulator.add_event(T0 - timedelta(days=400))["event_identification"]}
    once(await read_all(make_watch(emulator)), expected)
    assert activity_queries(emulator)[0]["after"] == "1970-01-01T00:00:00.000Z"


async def test_overlap_param_overrides_the_watchs(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any
) -> None:
    emulator.add_event(T0 - timedelta(seconds=1))
    store = tidings.MemoryStore()
    await read_all(make_watch(emulator, store=store, name="w"))
    emulator.clock.advance(60)
    late = emulator.add_event(T0 - timedelta(seconds=40), visible_from=emulator.clock.now())
    got = await read_all(make_watch(emulator, store=store, name="w", params={"overlap": "45"}))
    assert [e.id for e in got] == [late["event_identification"]]
    with pytest.raises(tidings.ConfigurationError, match="overlap"):
        await read_all(make_watch(emulator, store=store, params={"overlap": "soon"}))


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_poll_stopped_half_way_through_its_first_page_resumes_without_a_gap(
    emulator: FinancingActivityEmulator, make_watch: Callable[..., tidings.Watch], read_all: Any, order: str
) -> None:
    # descending: the first events of a poll are its newest; had they moved ``after`` at once,
    # the older rest of the poll would never be asked for again
    emulator.order = order  # type: ignore[assignment]
    expected = {emulator.add_event(T0 - timedelta(seconds=60 - 5 * i))["event_identification"] for i in range(10)}
    store = tidings.MemoryStore()
    first = await make_watch(emulator, store=store, name="w", page_size=4, overlap=0.0).collect(limit=2)
    assert len(first) == 2
    rest = await read_all(make_watch(emulator, store=store, name="w", page_size=4, params={"overlap": "0"}))
    once([*first, *rest], expected)
