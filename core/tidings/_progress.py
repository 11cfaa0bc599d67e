"""Progress of a running watch: the CLI's status line on stderr (never on stdout, where JSON lines go)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidings._models import Event
    from tidings._watch import Watch

__all__ = ["ProgressBar", "Status"]


class Status:
    """Progress on stderr: a live line on a terminal, plain lines otherwise."""

    def __init__(self, watch: Watch, enabled: bool = True) -> None:
        self.watch = watch
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self._last = 0.0
        self.outcomes: Counter[str] = Counter()  # statuses of terminal events (SUCCESS, FAILURE, ...)
        self.subjects: set[str | None] = set()  # every subject the run's streams follow (seen while it runs)
        self.ended: set[str | None] = set()  # subjects whose terminal event came

    def count(self, event: Event) -> None:
        if event.terminal:
            self.outcomes[event.status or event.type] += 1
            self.ended.add(event.subject)

    def _subjects_line(self) -> str:
        """Done and open subjects (a stream may follow many: bank-sync's connections), else streams."""
        live = {subject for run in self.watch._runs.values() for subject in run.ctx.stream.subjects or ()}
        self.subjects |= live
        if not self.subjects:
            s = self.watch.stats
            return f"{s.streams_ended}/{s.streams} streams done, {s.streams - s.streams_ended} open"
        done = len(self.ended & self.subjects)
        return f"{done}/{len(self.subjects)} done, {len(self.subjects) - done} open"

    def line(self) -> str:
        s = self.watch.stats
        parts = [f"{self.watch.provider}: {s.delivered} events"]
        if self.watch.kind == "tracker":
            parts.append(self._subjects_line())
        if self.outcomes:
            ended = " ".join(f"{status} {n}" for status, n in self.outcomes.most_common(5))
            parts.append(f"terminal: {ended}")
        if s.dead_letters:
            parts.append(f"{s.dead_letters} dead-lettered")
        if s.retries:
            parts.append(f"{s.retries} retries")
        parts.append(f"{s.elapsed:.1f}s")
        return ", ".join(parts)

    def tick(self, force: bool = False) -> None:
        """Redraw the live line (a terminal, at most 5 times a second)."""
        now = time.monotonic()
        if not self.tty or (not force and now - self._last < 0.2):
            return
        self._last = now
        sys.stderr.write("\r\x1b[2K" + self.line())
        sys.stderr.flush()

    def log(self) -> None:
        """A plain status line (not a terminal: a log or a pipe)."""
        sys.stderr.write(self.line() + "\n")
        sys.stderr.flush()

    def done(self, outcome: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[2K")
        sys.stderr.write(f"{self.line()} ({outcome})\n")
        sys.stderr.flush()


class ProgressBar:
    """A ``tqdm.auto`` bar on stderr: a widget in Jupyter, a text bar in a terminal.

    Counts events; for a tracker, done and open subjects too, and retries once
    there are any. Without tqdm installed it draws nothing.
    """

    def __init__(self, watch: Watch) -> None:
        self.watch = watch
        self.status = Status(watch, enabled=False)  # the subject counting the CLI's line uses
        try:
            from tqdm.auto import tqdm  # the `notebook` extra
        except ImportError:
            self.bar: Any = None
            return
        self.bar = tqdm(desc=watch.provider, unit=" events", file=sys.stderr, dynamic_ncols=True)

    def update(self, event: Event) -> None:
        self.status.count(event)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self._postfix(), refresh=False)

    def _postfix(self) -> str:
        parts = [self.status._subjects_line()] if self.watch.kind == "tracker" else []
        if self.watch.stats.retries:
            parts.append(f"{self.watch.stats.retries} retries")
        return ", ".join(parts)

    def close(self, interrupted: bool = False) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix() + (", interrupted" if interrupted else ""), refresh=False)
            self.bar.close()
