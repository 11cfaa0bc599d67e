"""The plugin: observer and wrapper hooks that turn every watch's work into metrics and spans.

A cross-cutting plugin: it implements no ``provider_info``, so it serves every provider. It
wraps only hooks called once per page or less (``start``, ``fetch_page``, ``parse_webhook``),
never the per-event ones. Meter and tracer come from the global providers, which the application
configures (the OpenTelemetry SDK and its exporters); until it does, everything here is a no-op.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Generator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import tidings
from opentelemetry import metrics, trace
from tidings import hookimpl

from tidings_opentelemetry import _client
from tidings_opentelemetry._metrics import Metrics, watch_attributes
from tidings_opentelemetry._spans import FETCH, START, Spans

__all__ = ["Telemetry", "telemetry"]

SCOPE = "tidings_opentelemetry"
VERSION = "0.1.0"


class Telemetry:
    """Metrics and traces for every watch (registered through the ``tidings`` entry point)."""

    def __init__(self) -> None:
        self.metrics = Metrics(metrics.get_meter(SCOPE, VERSION))
        self.spans = Spans(trace.get_tracer(SCOPE, VERSION))

    # -- wrappers: a span around each call, current while the provider's code runs ------------

    @hookimpl(wrapper=True)
    def start(self, ctx: tidings.WatchContext) -> Generator[None, Any, Any]:
        _client.instrument(ctx)  # before start's own requests
        return (yield from self._attempt(START, ctx))

    @hookimpl(wrapper=True)
    def fetch_page(self, ctx: tidings.WatchContext) -> Generator[None, Any, Any]:
        return (yield from self._attempt(FETCH, ctx))

    def _attempt(self, what: str, ctx: tidings.WatchContext) -> Generator[None, Any, Any]:
        span = self.spans.attempt(what, ctx)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = yield  # a plain function's work happens here, with the span current
        except BaseException as exc:
            self.spans.raised(what, ctx, exc)
            raise
        if inspect.isawaitable(result):
            return self._awaited(what, ctx, span, result)
        self.spans.returned(what, ctx)
        return result

    async def _awaited(self, what: str, ctx: tidings.WatchContext, span: trace.Span, result: Awaitable[Any]) -> Any:
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                value = await result  # an async def's work happens here, with the span current
        except BaseException as exc:
            self.spans.raised(what, ctx, exc)
            raise
        self.spans.returned(what, ctx)
        return value

    @hookimpl(wrapper=True)
    def parse_webhook(self, ctx: tidings.WatchContext) -> Generator[None, Any, Any]:
        span = self.spans.webhook(ctx)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                result = yield
        except BaseException as exc:
            self.spans.webhook_failed(span, exc)
            raise
        if inspect.isawaitable(result):
            return self._webhook_awaited(ctx, span, result)
        self._webhook_parsed(ctx, span, result)
        return result

    async def _webhook_awaited(self, ctx: tidings.WatchContext, span: trace.Span, result: Awaitable[Any]) -> Any:
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                pushes = await result
        except BaseException as exc:
            self.spans.webhook_failed(span, exc)
            raise
        self._webhook_parsed(ctx, span, pushes)
        return pushes

    def _webhook_parsed(
        self, ctx: tidings.WatchContext, span: trace.Span, pushes: Sequence[tidings.Push] | None
    ) -> None:
        self.metrics.webhooks.add(1, watch_attributes(ctx))
        self.spans.webhook_parsed(ctx, span, pushes)

    # -- observers ----------------------------------------------------------------------

    @hookimpl
    def watch_started(self, ctx: tidings.WatchContext) -> None:
        _client.instrument(ctx)  # a resumed watch calls no start

    @hookimpl
    def page_read(
        self, ctx: tidings.WatchContext, records: int, new: int, duplicates: int, dead_letters: int, seconds: float
    ) -> None:
        m = self.metrics
        attributes = watch_attributes(ctx)
        m.pages.add(1, attributes)
        m.records.add(records, attributes)
        if duplicates:
            m.duplicates.add(duplicates, attributes)
        if seconds:  # 0 for records a webhook pushed: nothing was fetched
            m.fetch_duration.record(seconds, attributes)
        self.spans.page_read(ctx, records, new, duplicates, dead_letters)

    @hookimpl
    def fetch_retried(self, ctx: tidings.WatchContext, error: BaseException, attempt: int, wait: float) -> None:
        attributes = watch_attributes(ctx)
        self.metrics.retries.add(1, {**attributes, "error.type": type(error).__name__})
        told = getattr(error, "retry_after", None) is not None
        self.metrics.retry_wait.record(wait, {**attributes, "tidings.retry_after": told})
        self.spans.retried(ctx, error, attempt, wait)

    @hookimpl
    def page_committed(self, ctx: tidings.WatchContext, events: Sequence[tidings.Event]) -> None:
        self.metrics.delivered_events(ctx, events)
        self.spans.committed(ctx, events)

    @hookimpl
    def subjects_open(self, ctx: tidings.WatchContext, subjects: int) -> None:
        self.metrics.subjects_open(ctx, subjects)

    @hookimpl
    def record_dead_lettered(self, ctx: tidings.WatchContext) -> None:
        self.metrics.dead_letters.add(1, watch_attributes(ctx))

    @hookimpl
    def watch_finished(self, ctx: tidings.WatchContext, error: BaseException | None) -> None:
        self.metrics.finished(ctx)
        self.spans.finished(ctx, error)

    # -- the command ----------------------------------------------------------------------

    @hookimpl
    def serve_metrics(self, host: str, port: int) -> AbstractContextManager[str]:
        from tidings_opentelemetry.prometheus import serving

        return serving(host, port)


telemetry = Telemetry()
