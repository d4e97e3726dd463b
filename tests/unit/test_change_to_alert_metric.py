"""``xtap.change_to_alert_seconds`` is recorded as an OpenTelemetry histogram (issue 18.4)."""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.domain.messages import AlertKind, AlertRecord, Severity
from shared.services.detection import observe
from shared.telemetry import record_change_to_alert
from tests.metric_reader import change_to_alert_points, route_producers_to

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_the_histogram_records_each_latency_with_its_source_and_basis():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    record_change_to_alert(134.0, "audit", basis="audit_event", provider=provider)
    record_change_to_alert(6.0, "audit", basis="audit_event", provider=provider)
    record_change_to_alert(3600.0, "posture", basis="previous_check", provider=provider)

    by_source = {p.attributes["xtap.source"]: p for p in change_to_alert_points(reader)}
    assert set(by_source) == {"audit", "posture"}
    audit = by_source["audit"]
    assert audit.count == 2 and audit.sum == 140.0 and audit.min == 6.0 and audit.max == 134.0
    assert audit.attributes["xtap.latency_basis"] == "audit_event"
    assert by_source["posture"].attributes["xtap.latency_basis"] == "previous_check"
    # buckets fit minutes-to-hours latencies, not the SDK's millisecond defaults
    assert 60.0 in audit.explicit_bounds and 3600.0 in audit.explicit_bounds


def test_observing_alerts_records_only_those_that_carry_a_latency(monkeypatch):
    reader, _ = route_producers_to(monkeypatch)
    base = AlertRecord(
        dedup_key="k", kind=AlertKind.VENDOR_SETTING_CHANGED, severity=Severity.HIGH,
        title="t", created_at=NOW, source="audit",
    )
    dated = base.model_copy(
        update={"detection_latency_seconds": 42.0, "detection_latency_basis": "audit_event",
                "changed_at": NOW}
    )
    observe([base, dated])
    (point,) = change_to_alert_points(reader)
    assert point.count == 1 and point.sum == 42.0


def test_a_broken_meter_never_costs_the_alert():
    class Broken(MeterProvider):
        def get_meter(self, *args, **kwargs):  # type: ignore[override]
            raise RuntimeError("exporter gone")

    record_change_to_alert(1.0, "audit", provider=Broken())  # does not raise
