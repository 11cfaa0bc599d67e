"""The feed, whatever the order of the list: every activity once, and the right saved position."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import tidings
from tidings_opentransact.emulator import OpenTransactEmulator

pytestmark = pytest.mark.anyio


def times(emulator: OpenTransactEmulator) -> dict[str, Any]:
    return {a["id"]: tidings.parse_time(a["attributes"]["created-at"]) for a in emulator.activities}


def assert_once(ids: list[str], expected: set[str]) -> None:
    twice = [i for i, n in Counter(ids).items() if n > 1]
    assert not twice, f"delivered twice: {twice}"
    assert set(ids) == expected, f"missing {expected - set(ids)}, extra {set(ids) - expected}"


def page_numbers(emulator: OpenTransactEmulator) -> list[str]:
    return [p.split("page%5Bnumber%5D=")[1].split("&")[0] for _, p in emulator.requests if "activities" in p]


async def test_every_activity_once_and_the_position_is_the_newest_delivered(
    newest_first: bool, make_watch: Any, saved_cursor: Any
) -> None:
    emulator = OpenTransactEmulator(newest_first=newest_first, arrivals_while_paging=0)
    emulator.scenario(20)
    watch = make_watch(emulator)
    events = await watch.collect()
    assert_once([e.id for e in events], {a["id"] for a in emulator.activities})
    cursor = await saved_cursor(watch.store)
    assert cursor.newest == max(times(emulator).values())
    assert cursor.page == 1  # the poll finished: the next one starts at page 1...
    assert cursor.start == cursor.newest - timedelta(seconds=watch.overlap)  # ...from the newest minus the overlap
    assert len(set(page_numbers(emulator))) >= 7  # 20 activities in pages of 3: every page was read


async def test_activities_created_while_paging_are_neither_lost_nor_repeated(
    newest_first: bool, make_watch: Any
) -> None:
    emulator = OpenTransactEmulator(newest_first=newest_first, arrivals_while_paging=6)
    emulator.scenario(20)
    watch = make_watch(emulator)
    events = await watch.collect()
    assert emulator.arrivals_left == 0
    assert len(emulator.activities) == 26
    assert_once([e.id for e in events], {a["id"] for a in emulator.activities})
    if newest_first:  # each arrival pushed the rest down a row: the shifted rows came back, and were dropped
        assert watch.stats.duplicates >= 6


async def test_late_activities_landing_among_those_listed_are_neither_lost_nor_repeated(
    newest_first: bool, make_watch: Any
) -> None:
    emulator = OpenTransactEmulator(newest_first=newest_first, arrivals_while_paging=4, late_by=2)
    now = emulator.now()
    for i in range(15):  # all within the last four seconds: late arrivals sort among them
        emulator.add(created_at=now - timedelta(seconds=4 - i // 4))
    watch = make_watch(emulator)
    events = await watch.collect()
    assert emulator.arrivals_left == 0
    assert_once([e.id for e in events], {a["id"] for a in emulator.activities})
    assert watch.stats.duplicates > 0  # the pages shifted under the client, whatever the order


async def test_activities_later_than_the_overlap_need_a_longer_overlap(make_watch: Any) -> None:
    """A late activity (created-at 8 s in the past when it appears, after the first poll's
    newest) is missed by a 5 s overlap and caught by --param overlap=10."""
    found = {}
    for overlap in ("5", "10"):
        emulator = OpenTransactEmulator(newest_first=False, arrivals_while_paging=0)
        now = emulator.now()
        for i in range(6):
            emulator.add(created_at=now - timedelta(seconds=5 - i))
        store = tidings.MemoryStore()
        await make_watch(emulator, store=store, params={"overlap": overlap}).collect()
        late = emulator.add(created_at=now - timedelta(seconds=8))
        again = await make_watch(emulator, store=store, params={"overlap": overlap}).collect()
        found[overlap] = late["id"] in {e.id for e in again}
    assert found == {"5": False, "10": True}


async def test_inclusive_bound_serves_the_boundary_activity_again_and_it_is_not_delivered(
    newest_first: bool, make_watch: Any, saved_cursor: Any
) -> None:
    emulator = OpenTransactEmulator(newest_first=newest_first, inclusive_bounds=True, arrivals_while_paging=0)
    emulator.scenario(10)
    store = tidings.MemoryStore()
    first = await make_watch(emulator, store=store, overlap=0).collect()
    cursor = await saved_cursor(store)
    newest = cursor.newest
    emulator.requests.clear()
    second = make_watch(emulator, store=store, overlap=0)
    again = await second.collect()
    assert again == []
    assert second.stats.duplicates >= 1  # the boundary activity was served again and dropped by id
    starts = {p for _, p in emulator.requests if "created-between" in p}
    assert starts and all(tidings.format_time(newest - timedelta(seconds=1)).replace(":", "%3A") in p for p in starts)
    assert len({e.id for e in first}) == 10


async def test_exclusive_bound_with_no_overlap_loses_no_tie_at_the_newest_second(
    newest_first: bool, make_watch: Any, saved_cursor: Any
) -> None:
    emulator = OpenTransactEmulator(newest_first=newest_first, inclusive_bounds=False, arrivals_while_paging=0)
    emulator.scenario(9)
    store = tidings.MemoryStore()
    await make_watch(emulator, store=store, overlap=0).collect()
    newest = (await saved_cursor(store)).newest
    tie = emulator.add(created_at=newest)  # same second as the saved position, listed later
    again = await make_watch(emulator, store=store, overlap=0).collect()
    assert [e.id for e in again] == [tie["id"]]


async def test_a_stop_in_the_middle_of_a_poll_resumes_that_poll(
    newest_first: bool, make_watch: Any, saved_cursor: Any
) -> None:
    """Newest first, the first rows carry the newest time: resuming must not start the
    next poll from it, or every older row of the unfinished poll would be lost."""
    emulator = OpenTransactEmulator(newest_first=newest_first, arrivals_while_paging=0)
    emulator.scenario(20)
    store = tidings.MemoryStore()
    first: list[tidings.Event] = []

    def failing(event: tidings.Event) -> None:
        if len(first) == 4:  # the second row of the second page
            raise RuntimeError("handler failed")
        first.append(event)

    with pytest.raises(tidings.HandlerError):
        await make_watch(emulator, store=store).run(failing)
    cursor = await saved_cursor(store)
    assert cursor.page == 2 and cursor.start is None  # still inside the first poll
    rest = await make_watch(emulator, store=store).collect()
    assert_once([e.id for e in first + rest], {a["id"] for a in emulator.activities})


async def test_after_is_the_first_start_and_is_never_reached_back_before(make_watch: Any) -> None:
    emulator = OpenTransactEmulator(arrivals_while_paging=0)
    emulator.scenario(12)
    ordered = sorted(times(emulator).items(), key=lambda kv: kv[1])
    after = ordered[6][1]
    events = await make_watch(emulator, after=after, overlap=30).collect()
    assert {e.id for e in events} == {i for i, t in ordered if t >= after}
    starts = [p for _, p in emulator.requests if "created-between" in p]
    assert starts and all(tidings.format_time(after).replace(":", "%3A") in p for p in starts)


async def test_links_off_the_configured_host_are_never_followed(make_watch: Any) -> None:
    emulator = OpenTransactEmulator(links_base="https://api.opentransact.com/v1", arrivals_while_paging=0)
    emulator.scenario(10)
    events = await make_watch(emulator).collect()
    assert len({e.id for e in events}) == 10


async def test_a_stopped_watch_resumes_with_arrivals_in_between(newest_first: bool, make_watch: Any) -> None:
    emulator = OpenTransactEmulator(newest_first=newest_first, arrivals_while_paging=3)
    emulator.scenario(15)
    store = tidings.MemoryStore()
    got: list[tidings.Event] = []
    watch = make_watch(emulator, store=store)

    def stop_at_seven(event: tidings.Event) -> None:
        got.append(event)
        if len(got) == 7:
            watch.stop()

    await watch.run(stop_at_seven)
    emulator.add()  # one more while the watch is down
    got += await make_watch(emulator, store=store).collect()
    assert_once([e.id for e in got], {a["id"] for a in emulator.activities})
