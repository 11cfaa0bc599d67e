"""The OpenTelemetry SDK with in-memory reader and exporter on the global providers, for every test here.

The global providers can be set once per process, so they are set once per session; each test
follows watches under names of its own and reads only their metrics and spans. Spans are kept
only while a test that asks for them runs (the rest of the suite makes spans too).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).parent))

from otel_recorded import Recorded, Told, WhileAsked


@pytest.fixture(scope="session")
def sdk() -> tuple[InMemoryMetricReader, InMemorySpanExporter, WhileAsked]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    while_asked = WhileAsked(exporter)
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(while_asked)
    metrics.set_meter_provider(meter_provider)
    trace.set_tracer_provider(tracer_provider)
    assert metrics.get_meter_provider() is meter_provider, "another test set the global meter provider first"
    return reader, exporter, while_asked


@pytest.fixture
def otel(sdk: tuple[InMemoryMetricReader, InMemorySpanExporter, WhileAsked]) -> Iterator[Recorded]:
    reader, exporter, while_asked = sdk
    exporter.clear()
    while_asked.on = True
    try:
        yield Recorded(reader, exporter)
    finally:
        while_asked.on = False
        exporter.clear()


@pytest.fixture
def told(tidings_plugin: Any) -> Told:
    return tidings_plugin(Told())  # type: ignore[no-any-return]
