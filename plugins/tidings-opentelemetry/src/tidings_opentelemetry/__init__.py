"""tidings-opentelemetry: OpenTelemetry metrics and traces for every tidings watch, whatever its provider.

Installed, the plugin observes every watch through the ``tidings`` entry point; the application
configures the OpenTelemetry SDK (or calls :func:`serve_prometheus`) and the metrics and spans
flow. Metric and span names are listed in ``docs/plugins/opentelemetry.md``.
"""

from tidings_opentelemetry._metrics import PROVIDER, WATCH
from tidings_opentelemetry._spans import COMMIT, FETCH, START, WEBHOOK
from tidings_opentelemetry.plugin import VERSION as __version__
from tidings_opentelemetry.plugin import Telemetry, telemetry
from tidings_opentelemetry.prometheus import serve_prometheus, serving, use_prometheus_reader
from tidings_opentelemetry.reading import snapshot

__all__ = [
    "COMMIT",
    "FETCH",
    "PROVIDER",
    "START",
    "WATCH",
    "WEBHOOK",
    "Telemetry",
    "__version__",
    "serve_prometheus",
    "serving",
    "snapshot",
    "telemetry",
    "use_prometheus_reader",
]
