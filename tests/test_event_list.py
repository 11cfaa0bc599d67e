"""EventList: typed DataFrames, slicing and filtering that keep the type, tables truncated like pandas."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest
from tidings import Event, EventList


def event(i: int, *, subject: str = "s1", status: str | None = "sent", terminal: bool = False,
          when: datetime | None = None) -> Event:
    return Event(provider="p", id=f"e{i:04d}", subject=subject, type="msg", status=status,
                 occurred_at=when or datetime(2024, 1, 1, 0, 0, i % 60, tzinfo=timezone.utc),
                 raw={"n": i}, terminal=terminal)


def many(n: int) -> EventList:
    return EventList(event(i) for i in range(n))


def test_to_pandas_columns_are_typed_whatever_the_time_precision() -> None:
    events = EventList([
        event(0, when=datetime(2024, 1, 1, tzinfo=timezone.utc)),
        event(1, when=datetime(2024, 1, 1, 0, 0, 1, 123456, tzinfo=timezone.utc)),  # microseconds
        event(2, status=None, terminal=True),
    ])
    frame = events.to_pandas()
    assert list(frame.columns) == ["provider", "id", "subject", "type", "status", "occurred_at", "terminal", "raw"]
    assert str(frame["occurred_at"].dtype) == "datetime64[us, UTC]"
    assert frame["occurred_at"][1] == pd.Timestamp("2024-01-01T00:00:01.123456Z")
    assert frame["terminal"].dtype == bool and frame["terminal"].tolist() == [False, False, True]
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype) and pd.isna(frame["status"][2])
    assert isinstance(frame["provider"].dtype, pd.CategoricalDtype)
    assert str(frame["id"].dtype) == "string" and str(frame["subject"].dtype).startswith("str")
    assert frame["raw"].dtype == object and frame["raw"][0] == {"n": 0}
    empty = EventList().to_pandas()
    assert len(empty) == 0 and str(empty["occurred_at"].dtype) == "datetime64[us, UTC]"


def test_slices_and_filters_keep_the_type() -> None:
    events = EventList([event(0), event(1, subject="s2", status="delivered", terminal=True), event(2)])
    assert type(events[:2]) is EventList and [e.id for e in events[:2]] == ["e0000", "e0001"]
    assert isinstance(events[0], Event)
    delivered = events.where(status="delivered")
    assert type(delivered) is EventList and [e.id for e in delivered] == ["e0001"]
    assert [e.id for e in events.where(subject={"s1"}, terminal=False)] == ["e0000", "e0002"]
    groups = events.by_subject()
    assert list(groups) == ["s1", "s2"] and all(type(g) is EventList for g in groups.values())
    with pytest.raises(TypeError, match="no field colour"):
        events.where(colour="red")


def test_html_and_text_are_truncated_like_pandas() -> None:
    events = many(5000)
    html = events._repr_html_()
    assert len(html) < 10_000
    assert html.count("<td>e") == 10 and "… 4990 more" in html and "5000 events" in html
    assert "e0004" in html and "e4995" in html and "e0005" not in html
    text = str(events)
    assert "4990 more not shown" in text and len(text.splitlines()) < 20
    assert many(60)._repr_html_().count("<td>e") == 60  # up to 60 rows, all shown


def test_terminal_and_failed_events_are_marked() -> None:
    done, failed = event(1, status="delivered", terminal=True), event(2, status="failed", terminal=True)
    events = EventList([event(0), done, failed])
    html = events._repr_html_()
    assert html.count("class='tidings-terminal'") == 1 and html.count("class='tidings-failed'") == 1


def test_to_polars_without_polars_says_what_to_install() -> None:
    try:
        import polars  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install polars"):
            many(1).to_polars()
    else:
        frame = many(2).to_polars()
        assert str(frame.schema["occurred_at"]) == "Datetime(time_unit='us', time_zone='UTC')"

