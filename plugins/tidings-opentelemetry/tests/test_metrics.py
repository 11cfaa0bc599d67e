"""The metrics of a feed (financing-activity) and a tracker (bank-sync) followed on their emulators."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
import tidings
from otel_recorded import Recorded, Told

pytestmark = pytest.mark.anyio


def newest(commits: list[list[tidings.Event]]) -> float:
    return max(e.occurred_at for events in commits for e in events).timestamp()


async def test_a_feeds_metrics(otel: Recorded, told: Told, tidings_emulator: Any, tidings_watch: Any) -> None:
    emulator, scenario = tidings_emulator("financing-activity", size=12)
    emulator.faults.retry_after = 0.05
    emulator.faults.fail_next("429")  # the first fetch waits out a Retry-After, then meets a 503
    emulator.faults.fail_next("503")
    name = otel.name()
    watch = tidings_watch(emulator, scenario, name=name, on_handler_error="dead-letter")
    got: list[tidings.Event] = []
    lags: list[tuple[float, float]] = []
    units: dict[str, str] = {}

    def handler(event: tidings.Event) -> None:
        got.append(event)
        if len(got) == 3:
            raise ValueError("the handler fails on the third event")  # set aside, the feed goes on
        if told.commits and not lags:  # a page was committed: the lag is that of its newest event
            (point,) = otel.points("tidings.lag", name)
            lags.append((point.value, time.time() - newest(told.commits)))
            units.update({m: otel.metric(m).unit for m in ("tidings.lag", "tidings.events.delivered")})

    with anyio.fail_after(20):
        await watch.run(handler)

    stats = watch.stats
    assert len(got) == len(scenario.expected_ids) == 12
    assert otel.total("tidings.events.delivered", name) == 12
    assert otel.total("tidings.pages.read", name) == stats.pages >= 4
    assert otel.total("tidings.records.read", name) == told.records >= 12
    assert otel.total("tidings.events.duplicates", name) == stats.duplicates
    assert otel.total("tidings.records.dead_lettered", name) == 1
    assert otel.total("tidings.fetch.retries", name, {"error.type": "TransientError"}) == 2
    (told_wait,) = otel.points("tidings.fetch.retry.wait", name, {"tidings.retry_after": True})
    (own_wait,) = otel.points("tidings.fetch.retry.wait", name, {"tidings.retry_after": False})
    assert told_wait.count == own_wait.count == 1 and told_wait.sum >= 0.05
    (fetches,) = otel.points("tidings.fetch.duration", name)
    assert fetches.count == stats.pages and fetches.sum >= 0.05  # the first fetch's retries are in its time
    (point,) = otel.points("tidings.events.delivered", name)
    assert dict(point.attributes) == {"tidings.provider": "financing-activity", "tidings.watch": name}
    assert units == {"tidings.lag": "s", "tidings.events.delivered": "{event}"}
    assert otel.metric("tidings.fetch.duration").unit == "s"
    reported, expected = lags[0]
    assert expected - 1 < reported <= expected + 0.1
    assert otel.points("tidings.lag", name) == []  # the watch finished: no series any more
    assert otel.points("tidings.subjects.open", name) == []  # a feed has no subjects


async def test_a_trackers_open_subjects_and_lag(
    otel: Recorded, told: Told, tidings_emulator: Any, tidings_watch: Any
) -> None:
    emulator, scenario = tidings_emulator("bank-sync", size=12)
    name = otel.name()
    watch = tidings_watch(emulator, scenario, name=name)
    got: list[tidings.Event] = []
    open_at_first: list[float] = []

    def handler(event: tidings.Event) -> None:
        got.append(event)
        if len(got) == 1:
            open_at_first.extend(p.value for p in otel.points("tidings.subjects.open", name))

    told.on_end = lambda: told.at_end.update(
        open=[p.value for p in otel.points("tidings.subjects.open", name)],
        lag=[p.value for p in otel.points("tidings.lag", name)],
    )
    with anyio.fail_after(30):
        await watch.run(handler)

    connections = len(emulator.connections)
    assert open_at_first == [connections] and connections >= 2
    assert told.at_end["open"] == [0]  # every connection ended
    (lag,) = told.at_end["lag"]  # the emulator's clock runs fast: its events' times may be ahead of ours
    assert abs(lag - (time.time() - newest(told.commits))) < 1
    assert otel.total("tidings.events.delivered", name) == len(got) == len(emulator.expected_ids(scenario))
    assert otel.total("tidings.pages.read", name) == watch.stats.pages
    (point,) = otel.points("tidings.events.delivered", name)
    assert point.attributes["tidings.provider"] == "bank-sync"
    assert otel.points("tidings.subjects.open", name) == []  # finished
