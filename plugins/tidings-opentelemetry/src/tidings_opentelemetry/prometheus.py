"""A Prometheus endpoint for the metrics, through OpenTelemetry's Prometheus exporter (the ``prometheus`` extra).

:func:`serve_prometheus` is the one-line set-up for a notebook or a script; :func:`serving` is the
same as a context manager, which ``tidings follow --metrics-port`` enters for the run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import tidings

__all__ = ["serve_prometheus", "serving", "use_prometheus_reader"]

_lock = threading.Lock()


def _exporter() -> Any:
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
    except ImportError:
        raise tidings.ConfigurationError(
            "serving Prometheus metrics needs the exporter: pip install 'tidings-opentelemetry[prometheus]'"
        ) from None
    return PrometheusMetricReader


def use_prometheus_reader() -> None:
    """Make the global meter provider an SDK one that the Prometheus exporter reads, if none was set.

    An application that set its own meter provider keeps it: give it a ``PrometheusMetricReader``
    among its readers for the endpoint to show the metrics.
    """
    reader_type = _exporter()
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    with _lock:
        if isinstance(metrics.get_meter_provider(), MeterProvider):
            return
        named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: "tidings"}
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader_type()], resource=Resource.create(named)))


def _start(host: str, port: int) -> tuple[Any, threading.Thread]:
    use_prometheus_reader()
    from prometheus_client import start_http_server

    try:
        return start_http_server(port, addr=host)  # type: ignore[no-any-return]
    except OSError as exc:
        raise tidings.ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def serving(host: str = "127.0.0.1", port: int = 9464) -> Iterator[str]:
    """Serve ``/metrics`` on ``host:port`` (0 picks a free port) while the block runs; yields its URL."""
    server, thread = _start(host, port)
    try:
        yield _url(host, server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def serve_prometheus(port: int = 9464, host: str = "127.0.0.1") -> str:
    """Serve ``/metrics`` on ``host:port`` until the process ends (a notebook, a script); returns its URL.

    Sets up the OpenTelemetry SDK with a Prometheus reader on the global meter provider first,
    unless the application set a meter provider of its own. The server runs in a daemon thread.
    """
    server, _ = _start(host, port)
    return _url(host, server.server_port)


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/metrics"
