"""HTTP client spans and metrics for a watch's requests, from ``opentelemetry-instrumentation-httpx``.

The watch's own ``httpx.AsyncClient`` (``ctx.http.client``) is instrumented once, when the plugin
first sees it: before ``start`` sends anything, or when a resumed watch starts. A client the
application passed (``Watch(client=...)``) is instrumented too, and stays so. Nothing happens
without the ``httpx`` extra, or when the application instruments every client itself
(``HTTPXClientInstrumentor().instrument()``), or while no tracer or meter provider is set
globally (the instrumented client would cost a few per cent of a fast feed's throughput for
nothing): configure the SDK before the watch starts.
"""

from __future__ import annotations

from typing import Any

import httpx
import tidings
from opentelemetry import metrics, trace

try:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
except ImportError:  # the httpx extra is not installed
    HTTPXClientInstrumentor = None  # type: ignore[misc,assignment]
try:
    from opentelemetry.metrics._internal import _ProxyMeterProvider
except ImportError:  # another API version: take any meter provider as set
    _ProxyMeterProvider = ()  # type: ignore[assignment,misc]

__all__ = ["available", "instrument"]

_FLAG = "_is_instrumented_by_opentelemetry"  # what the instrumentation sets on a client it wrapped


def available() -> bool:
    return HTTPXClientInstrumentor is not None


def configured() -> bool:
    """Has the application set a tracer or a meter provider globally (an SDK)?"""
    unset_traces = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    return not unset_traces or not isinstance(metrics.get_meter_provider(), _ProxyMeterProvider)


def instrument(ctx: tidings.WatchContext) -> None:
    """Instrument the watch's HTTP client, unless it already is (or cannot be)."""
    if HTTPXClientInstrumentor is None or not configured():
        return
    client: Any = getattr(ctx.http, "client", None)
    if not isinstance(client, httpx.AsyncClient) or getattr(client, _FLAG, False):
        return
    if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:  # the application instruments every client
        return
    HTTPXClientInstrumentor.instrument_client(client)
