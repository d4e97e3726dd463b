"""How long after a change xtap-watch noticed it (issue 18.4): on the card and as a metric.

Two bases, because only one kind of change is dated:

* ``audit_event`` — a change to the vendor's own settings has an audit event whose
  ``activityDateTime`` is when the change was made; the latency is exact (Entra's own
  delivery delay of the event included, which is the point: it is the figure an admin
  lives with).
* ``previous_check`` — a client's policy carries no modification time (the client's audit
  log is in the client's tenant, out of reach), so the only honest statement is "changed
  after the previous check that still saw the old posture". The latency is then an upper
  bound (at most one sweep interval plus the check's own time), and says so.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.domain.moments import aware, utc_seconds

LatencyBasis = Literal["audit_event", "previous_check"]

# A previous check "saw the old posture" only if it reached a verdict; after an UNKNOWN
# (tenant unreachable, consent missing) the change may be older than that check.
CONCLUSIVE_VERDICTS = frozenset({"ALLOWED", "LIMITED", "BLOCKED"})


@dataclass(frozen=True, slots=True)
class DetectionLatency:
    seconds: float
    basis: LatencyBasis
    changed_at: datetime  # audit: when the change was made; previous check: changed after

    def alert_fields(self) -> dict[str, Any]:
        """The AlertRecord fields carrying this latency (``model_copy(update=...)``)."""
        return {
            "changed_at": self.changed_at,
            "detection_latency_seconds": self.seconds,
            "detection_latency_basis": self.basis,
        }


def _between(changed_at: datetime, created_at: datetime) -> float:
    # Clocks of Entra and of this app differ by a little: never a negative latency.
    return max(0.0, round((aware(created_at) - aware(changed_at)).total_seconds(), 3))


def from_audit_event(
    activity_time: datetime | None, created_at: datetime
) -> DetectionLatency | None:
    """Exact latency of an audit-detected change; None when the event had no time."""
    if activity_time is None:
        return None
    changed = aware(activity_time)
    return DetectionLatency(_between(changed, created_at), "audit_event", changed)


def from_previous_check(
    previous_checked_at: datetime | str | None,
    previous_verdict: str | None,
    created_at: datetime,
) -> DetectionLatency | None:
    """Upper bound for a change seen by a posture check: since the last conclusive check.

    None on a first observation, or when the previous check reached no verdict.
    """
    if previous_checked_at is None or (previous_verdict or "") not in CONCLUSIVE_VERDICTS:
        return None
    if isinstance(previous_checked_at, str):
        try:
            previous_checked_at = datetime.fromisoformat(previous_checked_at)
        except ValueError:
            return None
    previous = aware(previous_checked_at)
    if previous > aware(created_at):
        return None
    return DetectionLatency(_between(previous, created_at), "previous_check", previous)


def format_duration(seconds: float) -> str:
    """``45 s``, ``2 min 5 s``, ``1 h 3 min``, ``2 d 4 h``: two units at most."""
    total = round(max(seconds, 0.0))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def describe(seconds: float | None, basis: str | None, changed_at: datetime | None) -> str | None:
    """The card's "Detected" line; None when the alert carries no latency.

    ``2 min 14 s after the change`` (exact, from the audit event), or ``at most 1 h after
    the change (the check at … still saw the old posture)`` (a bound, from a posture check).
    """
    if seconds is None or basis is None:
        return None
    took = format_duration(seconds)
    if basis == "audit_event":
        return f"{took} after the change"
    when = (
        f" (the check at {utc_seconds(changed_at)} still saw the old posture)" if changed_at else ""
    )
    return f"at most {took} after the change{when}"
