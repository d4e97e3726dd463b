"""Change → alert latency on the alert record and in the metric (issue 18.4).

Producers call :func:`audit_latency` / :func:`posture_latency` when they build an alert
and :func:`observe` after they enqueued it; the figure lands on the card and in
``xtap.change_to_alert_seconds`` (Application Insights ``customMetrics``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.domain.detection_latency import from_audit_event, from_previous_check
from shared.telemetry import record_change_to_alert

if TYPE_CHECKING:
    from shared.domain.client_state import Transition
    from shared.domain.messages import AlertRecord

# Transitions that are a change of the client's posture (a reminder is not a change).
CHANGE_TRANSITIONS = frozenset({"drifted", "drift_changed", "recovered"})


def audit_latency(alert: AlertRecord) -> AlertRecord:
    """The audit alert with its exact latency (event time → alert created)."""
    latency = from_audit_event(alert.when, alert.created_at)
    return alert if latency is None else alert.model_copy(update=latency.alert_fields())


def posture_latency(
    transition: Transition, previous_posture: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """AlertRecord fields bounding how long after the change a posture check saw it."""
    if transition.kind.value not in CHANGE_TRANSITIONS or not previous_posture:
        return {}
    latency = from_previous_check(
        previous_posture.get("checkedAt"), previous_posture.get("verdict"), now
    )
    return {} if latency is None else latency.alert_fields()


def observe(alerts: Iterable[AlertRecord]) -> None:
    """Record the latency of every alert that carries one (never raises)."""
    for alert in alerts:
        for item in (alert, *alert.items):
            if item.detection_latency_seconds is not None:
                record_change_to_alert(
                    item.detection_latency_seconds,
                    item.source,
                    basis=item.detection_latency_basis,
                )
