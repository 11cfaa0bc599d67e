"""The metrics: instruments on the global meter provider, and what the two gauges read.

Every measurement carries ``tidings.provider`` and ``tidings.watch``. The gauges (open subjects,
lag) are read by the SDK's reader, often in a thread of its own (a Prometheus scrape, a periodic
exporter): their state is kept under a lock, and a watch's series go away when it finishes.
"""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Iterable, Sequence

import tidings
from opentelemetry.metrics import CallbackOptions, Meter, Observation

__all__ = ["PROVIDER", "WATCH", "Metrics", "watch_attributes"]

PROVIDER = "tidings.provider"
WATCH = "tidings.watch"

# seconds, as OpenTelemetry's HTTP semantic conventions bucket request durations
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

Key = tuple[str, str]  # (provider, watch)
_occurred_at = operator.attrgetter("occurred_at")


def watch_attributes(ctx: tidings.WatchContext) -> dict[str, str]:
    return {PROVIDER: ctx.provider, WATCH: ctx.watch}


class Metrics:
    """The instruments, and the open subjects and newest event time of each running watch."""

    def __init__(self, meter: Meter) -> None:
        self.delivered = meter.create_counter(
            "tidings.events.delivered", unit="{event}",
            description="Events delivered to the handler or iterator, and committed with the position.",
        )
        self.duplicates = meter.create_counter(
            "tidings.events.duplicates", unit="{event}",
            description="Records removed as already delivered (re-reads, inclusive bounds, shifted pages).",
        )
        self.dead_letters = meter.create_counter(
            "tidings.records.dead_lettered", unit="{record}",
            description="Records set aside: they could not be parsed, or the handler failed on them.",
        )
        self.pages = meter.create_counter(
            "tidings.pages.read", unit="{page}", description="Pages read: fetched, or pushed by a webhook."
        )
        self.records = meter.create_counter(
            "tidings.records.read", unit="{record}", description="Raw records in the pages read."
        )
        self.fetch_duration = meter.create_histogram(
            "tidings.fetch.duration", unit="s",
            description="Wall time of each page fetch, its retries and their waits included.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retries = meter.create_counter(
            "tidings.fetch.retries", unit="{retry}",
            description="Fetches, starts and ctx.retry calls tried again after a transient fault.",
        )
        self.retry_wait = meter.create_histogram(
            "tidings.fetch.retry.wait", unit="s",
            description="The wait before each retry; tidings.retry_after is true when the server sent Retry-After.",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS,
        )
        self.webhooks = meter.create_counter(
            "tidings.webhooks.received", unit="{webhook}",
            description="Webhooks parsed for a running watch (verified, not replays).",
        )
        meter.create_observable_gauge(
            "tidings.subjects.open", callbacks=[self._observe_open], unit="{subject}",
            description="Subjects of a running tracker that have not ended yet (ids, sessions, queues).",
        )
        meter.create_observable_gauge(
            "tidings.lag", callbacks=[self._observe_lag], unit="s",
            description="Now minus the time of the newest event a running watch delivered.",
        )
        self._lock = threading.Lock()
        self._open: dict[Key, dict[str, int]] = {}  # per stream key
        self._newest: dict[Key, float] = {}  # epoch seconds

    def subjects_open(self, ctx: tidings.WatchContext, subjects: int) -> None:
        with self._lock:
            self._open.setdefault((ctx.provider, ctx.watch), {})[ctx.stream.key] = subjects

    def delivered_events(self, ctx: tidings.WatchContext, events: Sequence[tidings.Event]) -> None:
        if not events:
            return
        self.delivered.add(len(events), watch_attributes(ctx))
        newest = max(map(_occurred_at, events)).timestamp()  # a C-level loop: a page may hold thousands
        key = (ctx.provider, ctx.watch)
        with self._lock:
            if newest > self._newest.get(key, float("-inf")):
                self._newest[key] = newest

    def finished(self, ctx: tidings.WatchContext) -> None:
        """The watch ended: its gauges stop reporting (a finished watch has no lag, nothing open)."""
        key = (ctx.provider, ctx.watch)
        with self._lock:
            self._open.pop(key, None)
            self._newest.pop(key, None)

    def _observe_open(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            counts = [(key, sum(streams.values())) for key, streams in self._open.items()]
        return [Observation(n, {PROVIDER: provider, WATCH: watch}) for (provider, watch), n in counts]

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        now = time.time()
        with self._lock:
            newest = list(self._newest.items())
        return [Observation(now - when, {PROVIDER: provider, WATCH: watch}) for (provider, watch), when in newest]
