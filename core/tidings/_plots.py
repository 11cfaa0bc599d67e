"""Two plots of an :class:`~tidings.EventList`, through pandas and matplotlib (the ``notebook`` extra).

matplotlib is imported only when a plot is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings._models import Event

__all__ = ["plot_over_time", "plot_time_to_terminal"]


def _need_matplotlib(what: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"EventList.{what}() needs matplotlib: pip install 'tidings[notebook]'") from None


def plot_over_time(events: Sequence[Event], freq: str | None = None, ax: Any = None) -> Any:
    """Events per time bucket, one line per event type; returns the matplotlib Axes.

    :param freq: a pandas frequency ("1min", "1h", "1D"); default: about 50 buckets over the span.
    """
    from tidings._display import to_pandas

    _need_matplotlib("plot_over_time")
    frame = to_pandas(events)
    if frame.empty:
        raise ValueError("no events to plot")
    if freq is None:
        span = frame["occurred_at"].max() - frame["occurred_at"].min()
        freq = f"{max(int(span.total_seconds() / 50), 1)}s"
    counts = frame.groupby([frame["occurred_at"].dt.floor(freq), "type"], observed=True).size().unstack(fill_value=0)
    ax = counts.plot(ax=ax, drawstyle="steps-post", marker=".")
    ax.set_xlabel("occurred at (UTC)")
    ax.set_ylabel(f"events per {freq}")
    ax.set_title(f"{len(frame)} events over time")
    return ax


def plot_time_to_terminal(events: Sequence[Event], ax: Any = None) -> Any:
    """Per subject, the time from its first event to its terminal one (a horizontal bar each).

    Subjects with no terminal event yet are left out (the title says how many).
    """
    from tidings._display import to_pandas

    _need_matplotlib("plot_time_to_terminal")
    frame = to_pandas(events)
    ended = frame[frame["terminal"]].groupby("subject", observed=True)["occurred_at"].min()
    if ended.empty:
        raise ValueError("no subject reached a terminal event")
    first = frame.groupby("subject", observed=True)["occurred_at"].min()
    seconds = ((ended - first.loc[ended.index]).dt.total_seconds()).sort_values()
    open_count = frame["subject"].nunique() - len(ended)
    ax = seconds.plot.barh(ax=ax)
    ax.set_xlabel("seconds from first event to terminal")
    ax.set_ylabel("subject")
    ax.set_title(f"time to terminal: {len(ended)} subjects" + (f" ({open_count} still open)" if open_count else ""))
    return ax
