"""The two plots: events over time, time to terminal per subject (matplotlib, no display needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import matplotlib
import pytest
from tidings import Event, EventList

matplotlib.use("Agg")

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ev(i: int, subject: str, seconds: float, *, terminal: bool = False, type: str = "msg") -> Event:
    return Event(provider="p", id=f"e{i}", subject=subject, type=type, status="done" if terminal else "sent",
                 occurred_at=T0 + timedelta(seconds=seconds), raw={}, terminal=terminal)


def sample() -> EventList:
    return EventList([ev(0, "a", 0), ev(1, "a", 30, terminal=True), ev(2, "b", 10), ev(3, "b", 100, terminal=True),
                      ev(4, "c", 50, type="note")])


def test_events_over_time_counts_every_event_by_type() -> None:
    ax = sample().plot_over_time(freq="10s")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["msg", "note"]
    assert sum(sum(line.get_ydata()) for line in ax.get_lines()) == 5
    assert ax.get_ylabel() == "events per 10s" and "5 events" in ax.get_title()


def test_time_to_terminal_per_subject_leaves_open_ones_out() -> None:
    ax = sample().plot_time_to_terminal()
    widths = sorted(patch.get_width() for patch in ax.patches)
    assert widths == [30.0, 90.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert "(1 still open)" in ax.get_title()


def test_nothing_to_plot_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no events"):
        EventList().plot_over_time()
    with pytest.raises(ValueError, match="terminal"):
        EventList([ev(0, "a", 0)]).plot_time_to_terminal()
