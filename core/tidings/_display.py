"""How an :class:`~tidings.EventList` looks: text, HTML (truncated like pandas) and typed DataFrames."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings._models import Event

__all__ = ["COLUMNS", "event_table", "html_table", "text_table", "to_pandas", "to_polars"]

COLUMNS = ("occurred_at", "provider", "type", "status", "subject", "id", "terminal")
MAX_ROWS = 60  # more than this shows the first and last HEAD_ROWS, as pandas does
HEAD_ROWS = 5
_FAILED = re.compile(r"fail|error|reject|declin|cancel|expire|undeliver|bounce|return", re.IGNORECASE)


def failed(event: Event) -> bool:
    """A terminal event whose status or type reads as a failure (shown in red)."""
    return event.terminal and bool(_FAILED.search(f"{event.status or ''} {event.type}"))


def _cells(event: Event) -> list[str]:
    values = event.to_json()
    return ["" if values[c] is None else str(values[c]) for c in COLUMNS]


def _shown(events: Sequence[Event]) -> tuple[list[Event], list[Event]]:
    if len(events) <= MAX_ROWS:
        return list(events), []
    return list(events[:HEAD_ROWS]), list(events[-HEAD_ROWS:])


def _footer(events: Sequence[Event], note: str) -> str:
    return f"{len(events)} events{note}"


def text_table(events: Sequence[Event], note: str = "") -> str:
    head, tail = _shown(events)
    rows = [list(COLUMNS), *(_cells(e) for e in head)]
    if tail:
        rows += [["…"] + [""] * (len(COLUMNS) - 1), *(_cells(e) for e in tail)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    more = f", {len(events) - 2 * HEAD_ROWS} more not shown" if tail else ""
    return "\n".join(lines) + f"\n({_footer(events, note)}{more})"


def _html_row(event: Event) -> str:
    mark = " class='tidings-failed'" if failed(event) else " class='tidings-terminal'" if event.terminal else ""
    cells = "".join(f"<td>{html.escape(v)}</td>" for v in _cells(event))
    return f"<tr{mark}>{cells}</tr>"


_STYLE = (
    "<style>.tidings-events tr.tidings-terminal td{font-weight:bold}"
    ".tidings-events tr.tidings-failed td{color:#b00020;font-weight:bold}</style>"
)


def html_table(events: Sequence[Event], note: str = "") -> str:
    head, tail = _shown(events)
    header = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(_html_row(e) for e in head)
    if tail:
        skipped = len(events) - 2 * HEAD_ROWS
        body += f"<tr class='tidings-more'><td colspan='{len(COLUMNS)}'>… {skipped} more</td></tr>"
        body += "".join(_html_row(e) for e in tail)
    return (
        f"<table class='tidings-events'><thead><tr>{header}</tr></thead>"
        f"<tbody>{body}</tbody></table>{_STYLE}<p>{html.escape(_footer(events, note))}</p>"
    )


def _columns(events: Sequence[Event]) -> dict[str, list[Any]]:
    return {
        "provider": [e.provider for e in events],
        "id": [e.id for e in events],
        "subject": [e.subject for e in events],
        "type": [e.type for e in events],
        "status": [e.status for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "terminal": [e.terminal for e in events],
        "raw": [e.raw for e in events],
    }


def to_pandas(events: Sequence[Event]) -> Any:
    """Typed columns: ``occurred_at`` datetime64 UTC, ``terminal`` bool, categories and strings, ``raw`` objects."""
    try:
        import pandas as pd  # the `notebook` extra
    except ImportError:
        raise ImportError("EventList.to_pandas() needs pandas: pip install 'tidings[notebook]'") from None
    cols = _columns(events)
    raw = pd.Series(cols.pop("raw"), dtype=object)
    return pd.DataFrame(
        {
            "provider": pd.Series(cols["provider"], dtype="category"),
            "id": pd.Series(cols["id"], dtype="string"),
            "subject": pd.Series(cols["subject"], dtype="string"),
            "type": pd.Series(cols["type"], dtype="category"),
            "status": pd.Series(cols["status"], dtype="category"),
            "occurred_at": pd.Series(pd.to_datetime(cols["occurred_at"], utc=True), dtype="datetime64[us, UTC]"),
            "terminal": pd.Series(cols["terminal"], dtype=bool),
            "raw": raw,
        }
    )


def to_polars(events: Sequence[Event]) -> Any:
    """The same columns as a polars DataFrame (``raw`` as Python objects)."""
    try:
        import polars as pl
    except ImportError:
        raise ImportError("EventList.to_polars() needs polars: pip install polars") from None
    cols = _columns(events)
    return pl.DataFrame(
        {
            "provider": pl.Series(cols["provider"], dtype=pl.Categorical),
            "id": pl.Series(cols["id"], dtype=pl.String),
            "subject": pl.Series(cols["subject"], dtype=pl.String),
            "type": pl.Series(cols["type"], dtype=pl.Categorical),
            "status": pl.Series(cols["status"], dtype=pl.Categorical),
            "occurred_at": pl.Series(cols["occurred_at"], dtype=pl.Datetime("us", "UTC")),
            "terminal": pl.Series(cols["terminal"], dtype=pl.Boolean),
            "raw": pl.Series(cols["raw"], dtype=pl.Object),
        }
    )


def _record_fields(record: Any) -> list[tuple[str, Any]]:
    import attrs

    if attrs.has(type(record)):
        return [(f.name, getattr(record, f.name)) for f in attrs.fields(type(record))]
    if isinstance(record, dict):
        return list(record.items())
    return [("record", record)]


def _pairs(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(repr(v))}</td></tr>"
        for k, v in pairs
    )


def event_table(event: Event) -> str:
    """One event: its envelope, then its typed record's fields (falling back to ``raw`` if it does not build)."""
    try:
        record: Any = event.record
        title = type(record).__name__
    except Exception as exc:  # a record that does not structure is shown raw, with why
        record, title = event.raw, f"raw ({type(exc).__name__}: {exc})"
    envelope = [(c, event.to_json()[c]) for c in COLUMNS]
    rows, fields = _pairs(envelope), _pairs(_record_fields(record))
    return (
        f"<table class='tidings-event'><tbody>{rows}"
        f"<tr><th colspan='2' style='text-align:left'>{html.escape(title)}</th></tr>{fields}</tbody></table>"
    )
