"""The daily heartbeat (issue 18.2): one summary on every channel, and a dead man's switch.

Admins learn to expect it at the configured hour. Its content is the state of the watch
(clients by verdict, drifts opened and closed in the last day, acknowledged drifts, the
last complete audit scan and sweep, deliveries that failed); its *absence* is the alarm:
the Teams Workflows flow (which runs as its owner's account) or the app itself is broken,
and nothing else can say so.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.domain.messages import AlertKind, AlertRecord, Link, Severity
from shared.domain.moments import aware

WINDOW: Final = timedelta(hours=24)
VERDICT_ORDER: Final = ("BLOCKED", "LIMITED", "UNKNOWN", "ALLOWED", "NOT CHECKED")
LISTED: Final = 5  # names listed per line; the rest are counted


@dataclass(frozen=True, slots=True)
class AckLine:
    name: str
    by: str
    reason: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class HeartbeatFacts:
    clients: int
    verdicts: Mapping[str, int]  # verdict -> clients ("NOT CHECKED": no posture yet)
    drifted_now: Sequence[str] = ()  # client names whose alert state is drifted
    opened: Sequence[str] = ()  # client names whose drift opened in the window
    closed: Sequence[str] = ()  # client names whose drift closed in the window
    acknowledged: Sequence[AckLine] = ()
    last_audit_scan: datetime | None = None
    last_complete_sweep: datetime | None = None
    deliveries_failed: int = 0
    degraded: Sequence[str] = field(default_factory=tuple)  # the watchdog's open reasons


def count_verdicts(tenants: Iterable[str], verdict_of: Mapping[str, str]) -> dict[str, int]:
    """Clients by verdict, worst first, every registered client counted once."""
    counts = Counter(verdict_of.get(t) or "NOT CHECKED" for t in tenants)
    ordered = {v: counts[v] for v in VERDICT_ORDER if counts.get(v)}
    ordered.update({v: n for v, n in sorted(counts.items()) if v not in ordered})
    return ordered


def sweep_covering(checked_at: Mapping[str, datetime | None]) -> datetime | None:
    """The moment by which every client had been checked: the oldest of their latest
    checks (the last sweep due at or before it is the last complete one). None while a
    client has never been checked, or there are no clients."""
    if not checked_at or any(v is None for v in checked_at.values()):
        return None
    return min(aware(v) for v in checked_at.values() if v is not None)


def _utc(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _names(names: Sequence[str]) -> str:
    unique = list(dict.fromkeys(names))
    if not unique:
        return "none"
    shown = ", ".join(unique[:LISTED])
    more = f" and {len(unique) - LISTED} more" if len(unique) > LISTED else ""
    return f"{len(unique)}: {shown}{more}"


def _acks(acks: Sequence[AckLine]) -> str:
    if not acks:
        return "none"
    lines = [f"{a.name} by {a.by} until {_utc(a.until)} ({a.reason})" for a in acks[:LISTED]]
    more = f"; and {len(acks) - LISTED} more" if len(acks) > LISTED else ""
    return f"{len(acks)}: " + "; ".join(lines) + more


def heartbeat_alert(
    facts: HeartbeatFacts,
    now: datetime,
    due_at: datetime,
    vendor: str,
    *,
    operations_url: str | None = None,
) -> AlertRecord:
    """The heartbeat card/e-mail, keyed by its scheduled time (a repeated run is dropped)."""
    verdicts = ", ".join(f"{n} {v}" for v, n in facts.verdicts.items()) or "none registered"
    drifted = len(dict.fromkeys(facts.drifted_now))
    health = "all checks ok" if not facts.degraded else f"{len(facts.degraded)} problem(s)"
    title = f"xtap-watch heartbeat: {facts.clients} clients, {drifted} drifted, {health}"
    record_facts = {
        "Clients": f"{facts.clients} ({verdicts})",
        "Drifted now": _names(facts.drifted_now),
        "Drifts opened (24 h)": _names(facts.opened),
        "Drifts closed (24 h)": _names(facts.closed),
        "Acknowledged": _acks(facts.acknowledged),
        "Last audit scan": _utc(facts.last_audit_scan),
        "Last complete sweep": _utc(facts.last_complete_sweep),
        "Deliveries failed (24 h)": str(facts.deliveries_failed),
        "Watchdog": "ok" if not facts.degraded else "degraded: " + "; ".join(facts.degraded),
    }
    steps = [
        "Nothing to do if the figures look right. This summary arrives every day at the same "
        "hour on every channel: the day it does not, the alert path itself is broken.",
        "No heartbeat in Teams: the Workflows flow behind the webhook runs as its owner's "
        "account — check the flow still exists and is on, and the owner's account is enabled "
        "and licensed. No heartbeat anywhere: the Function App is not running its timers "
        "(docs/operations.md, 'The heartbeat').",
    ]
    if facts.degraded:
        steps.insert(0, "xtap-watch is degraded: see the watchdog's alert for what to do.")
    links = (Link(title="Operations guide", url=operations_url),) if operations_url else ()
    return AlertRecord(
        dedup_key=f"heartbeat:{aware(due_at):%Y%m%dT%H%M%S}",
        kind=AlertKind.HEARTBEAT,
        severity=Severity.MEDIUM if facts.degraded else Severity.INFO,
        title=title[:300],
        summary=(
            f"Daily summary of xtap-watch's watch over {vendor}'s clients, for the "
            f"{int(WINDOW.total_seconds() // 3600)} hours up to {_utc(now)}."
        ),
        facts=record_facts,
        remediation_steps=tuple(steps),
        links=links,
        when=now,
        created_at=now,
        source="heartbeat",
    )
