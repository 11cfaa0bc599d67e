"""The per-event hooks on the engine's fast path: a page folds into one cursor, terminal statuses parsed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import tidings
from tidings_financing_activity import plugin
from tidings_financing_activity.models import FINANCING_CHECK, ActivityCursor

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def record(i: int, seconds: float, status: str = "REGU") -> dict[str, Any]:
    return {
        "event_identification": f"e{i}",
        "event_date_time": tidings.format_time(T0 + timedelta(seconds=seconds)),
        "data_set_identification": f"d{i}",
        "event_details": [{"service_name": "other", "status": "X"},
                          {"service_name": FINANCING_CHECK, "status": status}],
    }


@pytest.mark.parametrize("order", ["ascending", "descending", "mixed"])
def test_checkpoint_page_is_checkpoint_folded_over_the_page(order: str) -> None:
    times = {"ascending": [1, 2, 3], "descending": [3, 2, 1], "mixed": [2, 3, 1]}[order]
    events = [plugin.parse_event(record(i, t)) for i, t in enumerate(times)]
    for start in (ActivityCursor(), ActivityCursor(poll_newest=T0 + timedelta(seconds=2)),
                  ActivityCursor(poll_newest=T0 + timedelta(seconds=9))):
        folded = start
        for event in events:
            folded = plugin.checkpoint(folded, event)
        assert plugin.checkpoint_page(start, events) == folded
    unchanged = ActivityCursor(poll_newest=T0 + timedelta(seconds=9))
    assert plugin.checkpoint_page(unchanged, events) is unchanged


def test_parse_event_reads_the_financing_check_detail_and_refuses_bad_records() -> None:
    event = plugin.parse_event(record(1, 0, status="FNCD"))
    assert (event.id, event.subject, event.type, event.status) == ("e1", "d1", FINANCING_CHECK, "FNCD")
    assert event.occurred_at == T0
    for bad, reason in (
        ({"event_date_time": "2024-05-01T12:00:00Z"}, "event_identification"),
        ({"event_identification": "x"}, "event_date_time"),
        ({"event_identification": "x", "event_date_time": "soon"}, "event_date_time"),
        ({**record(1, 0), "event_details": {"service_name": "x"}}, "event_details"),
        ({**record(1, 0), "event_details": ["text"]}, "event_details"),
        (["not", "an", "object"], "JSON object"),
    ):
        with pytest.raises(tidings.ParseError, match=reason):
            plugin.parse_event(bad)


def test_terminal_statuses_are_parsed_once_per_value() -> None:
    class Ctx:  # the typed options a watch structures once (repeatable, comma-separated values split)
        def __init__(self, *statuses: str) -> None:
            self.options = SimpleNamespace(terminal_status=statuses)

    plugin._terminal_statuses.cache_clear()
    event = plugin.parse_event(record(1, 0, status="canc"))
    done = plugin.parse_event(record(2, 0, status="FNCD"))
    assert plugin.is_terminal(Ctx(), done) and not plugin.is_terminal(Ctx(), event)
    custom = Ctx("regu", "CANC", "none")
    assert not plugin.is_terminal(custom, done)
    for _ in range(100):
        plugin.is_terminal(custom, plugin.parse_event(record(3, 0, status="CANC")))
    assert plugin._terminal_statuses.cache_info().misses == 2
    assert plugin.is_terminal(Ctx("none"), done) is False
