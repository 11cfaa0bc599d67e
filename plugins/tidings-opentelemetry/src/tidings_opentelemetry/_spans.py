"""The spans: one per fetch (its HTTP requests inside it), per commit, per webhook and per start.

A fetch's span is opened by the ``fetch_page`` wrapper and stays current while the provider's
code runs, so the HTTP client spans are its children; a retried fetch goes on in the span of its
first attempt (each failure an exception event, each wait a ``retry`` event). It ends when the
fetch returned, but is closed at ``page_read``, which tells what the page held. A commit's span
runs from ``page_read`` (the events handed over) to ``page_committed`` (the position saved),
linked to its fetch's span. A webhook's span is linked from the span of the poll (or the pushed
page's commit) it caused. Spans are kept per ``(watch, stream)``: webhooks arrive on another
thread, so the state is kept under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import tidings
from opentelemetry.trace import Link, Span, SpanContext, Status, StatusCode, Tracer

from tidings_opentelemetry._metrics import watch_attributes

__all__ = ["COMMIT", "FETCH", "START", "WEBHOOK", "Spans"]

FETCH = "tidings.fetch"
COMMIT = "tidings.commit"
WEBHOOK = "tidings.webhook"
START = "tidings.start"
STREAM = "tidings.stream"
MAX_LINKS = 32  # webhook links kept for one stream's next poll
MAX_PENDING = 1024  # streams with webhook links waiting (a webhook may name a stream that never polls)


def stream_attributes(ctx: tidings.WatchContext) -> dict[str, Any]:
    return {**watch_attributes(ctx), STREAM: ctx.stream.key}


class _InProgress:
    __slots__ = ("attempts", "returned_ns", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.attempts = 0
        self.returned_ns: int | None = None


class Spans:
    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._lock = threading.Lock()
        self._open: dict[tuple[str, str, str], _InProgress] = {}  # (FETCH or START, watch, stream)
        self._read: dict[tuple[str, str], tuple[int, list[Link]]] = {}  # page_read time, the commit span's links
        self._webhooks: dict[tuple[str, str], list[SpanContext]] = {}  # webhook spans for a stream's next poll

    # -- fetches and starts (wrappers) ------------------------------------------------

    def attempt(self, what: str, ctx: tidings.WatchContext) -> Span:
        """The span of the fetch (or start) this attempt belongs to: a new one, or its first attempt's."""
        key = (what, ctx.watch, ctx.stream.key)
        with self._lock:
            current = self._open.get(key)
            pending = self._webhooks.pop((ctx.watch, ctx.stream.key), []) if current is None else []
        if current is None:
            span = self.tracer.start_span(what, attributes=stream_attributes(ctx), links=[Link(c) for c in pending])
            current = _InProgress(span)
            with self._lock:
                self._open[key] = current
        current.attempts += 1
        return current.span

    def returned(self, what: str, ctx: tidings.WatchContext) -> None:
        """The attempt succeeded: a start's span ends now, a fetch's at ``page_read``."""
        key = (what, ctx.watch, ctx.stream.key)
        with self._lock:
            current = self._open.pop(key, None) if what == START else self._open.get(key)
        if current is None:
            return
        current.span.set_attribute("tidings.attempts", current.attempts)
        if what == START:
            current.span.end()
        else:
            current.returned_ns = time.time_ns()

    def raised(self, what: str, ctx: tidings.WatchContext, error: BaseException) -> None:
        """The attempt failed: a transient fault is retried in the same span; anything else ends it."""
        key = (what, ctx.watch, ctx.stream.key)
        transient = isinstance(error, tidings.TransientError)
        with self._lock:
            current = self._open.get(key) if transient else self._open.pop(key, None)
        if current is None:
            return
        if isinstance(error, Exception):
            current.span.record_exception(error)
        if not transient:
            current.span.set_attribute("tidings.attempts", current.attempts)
            _end_failed(current.span, error)

    def retried(self, ctx: tidings.WatchContext, error: BaseException, attempt: int, wait: float) -> None:
        for what in (FETCH, START):
            with self._lock:
                current = self._open.get((what, ctx.watch, ctx.stream.key))
            if current is not None:
                current.span.add_event(
                    "retry", {"tidings.attempt": attempt, "tidings.wait": wait, "error.type": type(error).__name__}
                )
                return

    # -- pages and commits (observers) ------------------------------------------------

    def page_read(self, ctx: tidings.WatchContext, records: int, new: int, duplicates: int, dead_letters: int) -> None:
        key = (ctx.watch, ctx.stream.key)
        with self._lock:
            current = self._open.pop((FETCH, *key), None)
            pushed = self._webhooks.pop(key, []) if current is None else []  # records a webhook pushed
        links = [Link(c) for c in pushed]
        if current is not None:
            span = current.span
            span.set_attributes({
                "tidings.page.records": records,
                "tidings.page.new": new,
                "tidings.page.duplicates": duplicates,
                "tidings.page.dead_letters": dead_letters,
            })
            span.end(end_time=current.returned_ns)
            links.append(Link(span.get_span_context()))
        with self._lock:
            self._read[key] = (time.time_ns(), links)

    def committed(self, ctx: tidings.WatchContext, events: Sequence[tidings.Event]) -> None:
        with self._lock:
            start, links = self._read.pop((ctx.watch, ctx.stream.key), (None, []))
        attributes = {**stream_attributes(ctx), "tidings.commit.events": len(events)}
        self.tracer.start_span(COMMIT, attributes=attributes, links=links, start_time=start).end()

    # -- webhooks (wrapper; the receiver's thread) ---------------------------------------

    def webhook(self, ctx: tidings.WatchContext) -> Span:
        return self.tracer.start_span(WEBHOOK, attributes=watch_attributes(ctx))

    def webhook_parsed(self, ctx: tidings.WatchContext, span: Span, pushes: Sequence[tidings.Push] | None) -> None:
        streams = sorted({push.stream for push in pushes or ()})
        span.set_attributes({"tidings.webhook.pushes": len(pushes or ()), "tidings.streams": streams})
        context = span.get_span_context()
        with self._lock:
            for stream in streams:
                pending = self._webhooks.get((ctx.watch, stream))
                if pending is None and len(self._webhooks) < MAX_PENDING:
                    pending = self._webhooks[(ctx.watch, stream)] = []
                if pending is not None and len(pending) < MAX_LINKS:
                    pending.append(context)
        span.end()

    def webhook_failed(self, span: Span, error: BaseException) -> None:
        if isinstance(error, Exception):
            span.record_exception(error)
        _end_failed(span, error)

    # -- the end ----------------------------------------------------------------------

    def finished(self, ctx: tidings.WatchContext, error: BaseException | None) -> None:
        """The watch ended: close what it left open (a fetch whose retries ran out, or that was stopped)."""
        with self._lock:
            left = [self._open.pop(k) for k in [k for k in self._open if k[1] == ctx.watch]]
            for table in (self._read, self._webhooks):
                for k in [k for k in table if k[0] == ctx.watch]:
                    del table[k]
        for current in left:
            current.span.set_attribute("tidings.attempts", current.attempts)
            _end_failed(current.span, error)


def _end_failed(span: Span, error: BaseException | None) -> None:
    """End a span; an exception (not a cancellation) marks it as failed."""
    if isinstance(error, Exception):
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.end()
