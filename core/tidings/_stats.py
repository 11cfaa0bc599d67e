"""What a watch did, counted as it runs."""

from __future__ import annotations

import time

import attrs

__all__ = ["WatchStats"]


@attrs.define
class WatchStats:
    """What a watch did (``Watch.stats``): shown by the CLI's summary."""

    delivered: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    pages: int = 0
    retries: int = 0
    streams: int = 0
    streams_ended: int = 0
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def __repr__(self) -> str:  # the elapsed time, not the monotonic clock readings behind it
        counts = ", ".join(f"{f.name}={getattr(self, f.name)}" for f in attrs.fields(WatchStats)[:7])
        running = "" if self.finished is not None else ", running"
        return f"WatchStats({counts}, elapsed={self.elapsed:.3f}s{running})"
