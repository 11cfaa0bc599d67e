"""The metrics as rows, for a notebook: read from an SDK reader (``InMemoryMetricReader``) on demand."""

from __future__ import annotations

from typing import Any

__all__ = ["snapshot"]


def snapshot(reader: Any, prefix: str = "tidings.") -> list[dict[str, Any]]:
    """One row per metric series whose name starts with ``prefix``: what the reader collects now.

    A row has ``metric``, ``unit``, ``provider``, ``watch``, the other attributes, and ``value``
    (a counter's total, a gauge's last value) or ``count`` and ``sum`` (a histogram's).
    ``pandas.DataFrame(snapshot(reader))`` makes a table of it.

    :param reader: an OpenTelemetry SDK metric reader that can be collected on demand
        (``opentelemetry.sdk.metrics.export.InMemoryMetricReader``) on the global meter provider.
    """
    data = reader.get_metrics_data()
    rows: list[dict[str, Any]] = []
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if not metric.name.startswith(prefix):
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    row: dict[str, Any] = {
                        "metric": metric.name,
                        "unit": metric.unit,
                        "provider": attributes.pop("tidings.provider", None),
                        "watch": attributes.pop("tidings.watch", None),
                        **attributes,
                    }
                    if hasattr(point, "value"):
                        row["value"] = point.value
                    else:
                        row.update(count=point.count, sum=point.sum)
                    rows.append(row)
    return rows
