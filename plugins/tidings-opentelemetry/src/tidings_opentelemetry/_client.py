"""HTTP client spans and metrics for a watch's requests, from ``opentelemetry-instrumentation-httpx``.

The watch's own ``httpx.AsyncClient`` (``ctx.http.client``) is instrumented once, when the plugin
first sees it: before ``start`` sends anything, or when a resumed watch starts. A client the
application passed (``Watch(client=...)``) is instrumented too, and stays so. Nothing happens
without the ``httpx`` extra, or when the application instruments every client itself
(``HTTPXClientInstrumentor().instrument()``).
"""

from __future__ import annotations

from typing import Any

import httpx
import tidings

try:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
except ImportError:  # the httpx extra is not installed
    HTTPXClientInstrumentor = None  # type: ignore[misc,assignment]

__all__ = ["available", "instrument"]

_FLAG = "_is_instrumented_by_opentelemetry"  # what the instrumentation sets on a client it wrapped


def available() -> bool:
    return HTTPXClientInstrumentor is not None


def instrument(ctx: tidings.WatchContext) -> None:
    """Instrument the watch's HTTP client, unless it already is (or cannot be)."""
    if HTTPXClientInstrumentor is None:
        return
    client: Any = getattr(ctx.http, "client", None)
    if not isinstance(client, httpx.AsyncClient) or getattr(client, _FLAG, False):
        return
    if HTTPXClientInstrumentor().is_instrumented_by_opentelemetry:  # the application instruments every client
        return
    HTTPXClientInstrumentor.instrument_client(client)
