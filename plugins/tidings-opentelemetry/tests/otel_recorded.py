"""What the OpenTelemetry tests read: the metrics and spans of their own watches, and what the core told observers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import tidings
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tidings import hookimpl


class WhileAsked(SpanProcessor):
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self.inner = SimpleSpanProcessor(exporter)
        self.on = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.inner.on_end(span)


class Recorded:
    """The metrics and spans of the watches a test runs."""

    def __init__(self, reader: InMemoryMetricReader, exporter: InMemorySpanExporter) -> None:
        self.reader = reader
        self.exporter = exporter

    @staticmethod
    def name() -> str:
        return f"otel-{uuid.uuid4().hex[:10]}"

    def metric(self, name: str) -> Any:
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for found in scope.metrics:
                    if found.name == name:
                        return found
        return None

    def points(self, name: str, watch: str, where: Mapping[str, Any] | None = None) -> list[Any]:
        found = self.metric(name)
        if found is None:
            return []
        wanted = {"tidings.watch": watch, **(where or {})}
        return [p for p in found.data.data_points if all(p.attributes.get(k) == v for k, v in wanted.items())]

    def total(self, name: str, watch: str, where: Mapping[str, Any] | None = None) -> float:
        return sum(p.value for p in self.points(name, watch, where))

    def spans(self, name: str, watch: str | None = None) -> list[ReadableSpan]:
        return [
            s for s in self.exporter.get_finished_spans()
            if s.name == name and (watch is None or (s.attributes or {}).get("tidings.watch") == watch)
        ]

    def children(self, parent: ReadableSpan, kind: SpanKind = SpanKind.CLIENT) -> list[ReadableSpan]:
        return [
            s for s in self.exporter.get_finished_spans()
            if s.parent is not None and s.parent.span_id == parent.context.span_id and s.kind == kind
        ]


class Told:
    """What the core told the observers, to compare the metrics with (registered after the plugin: called first)."""

    def __init__(self) -> None:
        self.records = 0
        self.commits: list[list[tidings.Event]] = []
        self.at_end: dict[str, Any] = {}
        self.on_end: Any = None

    @hookimpl
    def page_read(self, records: int) -> None:
        self.records += records

    @hookimpl
    def page_committed(self, events: list[tidings.Event]) -> None:
        self.commits.append(list(events))

    @hookimpl
    def stream_ended(self) -> None:
        if self.on_end is not None:
            self.on_end()
