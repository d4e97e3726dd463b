"""Read ``xtap.change_to_alert_seconds`` from an in-memory OpenTelemetry SDK provider."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from shared.telemetry import CHANGE_TO_ALERT_METRIC, record_change_to_alert


def route_producers_to(monkeypatch: pytest.MonkeyPatch) -> tuple[InMemoryMetricReader, Any]:
    """Make the producers (shared.services.detection) record into a fresh in-memory
    provider; returns its reader and the provider."""
    import shared.services.detection as detection

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(
        detection,
        "record_change_to_alert",
        lambda seconds, source, basis=None: record_change_to_alert(
            seconds, source, basis=basis, provider=provider
        ),
    )
    return reader, provider


def change_to_alert_points(reader: InMemoryMetricReader) -> list[HistogramDataPoint]:
    data = reader.get_metrics_data()
    points: list[HistogramDataPoint] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == CHANGE_TO_ALERT_METRIC:
                    assert metric.unit == "s"
                    points.extend(metric.data.data_points)  # type: ignore[arg-type]
    return points
