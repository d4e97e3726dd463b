"""Change → alert latency (issue 18.4): exact from an audit event, bounded from a check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.domain.audit import decode_audit_records
from shared.domain.audit_severity import to_alert_record
from shared.domain.detection_latency import (
    describe,
    format_duration,
    from_audit_event,
    from_previous_check,
)
from shared.domain.messages import Severity
from shared.services.detection import audit_latency

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "audit"


def test_an_audit_alert_carries_the_time_from_activity_to_alert():
    records = json.loads((FIXTURE / "directoryAudits.crossTenantAccess.json").read_text())["value"]
    change = decode_audit_records(records[:1]).items[0]
    created = datetime(2026, 11, 20, 8, 41, 12, 629900, tzinfo=UTC)  # 3.5 min after the event
    alert = audit_latency(to_alert_record(change, Severity.MEDIUM, [], None, created))
    assert alert.detection_latency_basis == "audit_event"
    assert alert.changed_at == datetime(2026, 11, 20, 8, 37, 42, 629900, tzinfo=UTC)
    assert alert.detection_latency_seconds == pytest.approx(210.0, abs=0.001)
    # it survives the queue (JSON) unchanged
    again = type(alert).model_validate_json(alert.model_dump_json())
    assert again.detection_latency_seconds == alert.detection_latency_seconds


def test_an_alert_without_latency_serialises_without_the_fields():
    records = json.loads((FIXTURE / "directoryAudits.crossTenantAccess.json").read_text())["value"]
    change = decode_audit_records(records[:1]).items[0]
    alert = to_alert_record(change, Severity.MEDIUM, [], None, datetime(2026, 11, 20, tzinfo=UTC))
    assert "detection_latency" not in alert.model_dump_json()


def test_clock_skew_never_gives_a_negative_latency():
    created = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    latency = from_audit_event(created + timedelta(seconds=2), created)
    assert latency is not None and latency.seconds == 0.0


def test_a_change_without_a_time_has_no_latency():
    assert from_audit_event(None, datetime(2026, 11, 20, tzinfo=UTC)) is None


@pytest.mark.parametrize("verdict", ["ALLOWED", "LIMITED", "BLOCKED"])
def test_a_posture_change_is_bounded_by_the_previous_conclusive_check(verdict):
    now = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    latency = from_previous_check("2026-11-23T09:00:04+00:00", verdict, now)
    assert latency is not None
    assert latency.basis == "previous_check"
    assert latency.seconds == 3601.0
    assert describe(latency.seconds, latency.basis, latency.changed_at) == (
        "at most 1 h after the change (the check at 2026-11-23 09:00:04 UTC still saw the "
        "old posture)"
    )


@pytest.mark.parametrize(
    ("checked_at", "verdict"),
    [(None, "ALLOWED"), ("2026-11-23T09:00:00+00:00", "UNKNOWN"), ("not a time", "ALLOWED"),
     ("2026-11-23T11:00:00+00:00", "ALLOWED")],
)
def test_no_bound_without_a_conclusive_earlier_check(checked_at, verdict):
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert from_previous_check(checked_at, verdict, now) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.4, "0 s"), (45, "45 s"), (125, "2 min 5 s"), (120, "2 min"), (3780, "1 h 3 min"),
     (7200, "2 h"), (90000, "1 d 1 h"), (172800, "2 d")],
)
def test_durations_read_in_two_units_at_most(seconds, text):
    assert format_duration(seconds) == text


def test_the_card_line_of_an_audit_change():
    at = datetime(2026, 11, 20, 8, 37, 42, tzinfo=UTC)  # shown on the card as "When"
    assert describe(134.2, "audit_event", at) == "2 min 14 s after the change"
    assert describe(None, None, None) is None
