"""The health of a log source xtap-watch reads (sign-in evidence, the audit log).

A source that fails leaves the product partly blind: the posture sweep goes on without
sign-in evidence, the audit watcher sees no changes. Admins get **one** alert per
episode (not one per sweep or scan) naming the cause and the fix, a reminder while it
stays broken, and a resolved message when it works again (DESIGN §3.6).

Causes that will not go away by themselves (no licence, no permission, no table) alert at
once; causes that usually do (throttling, an unreachable or garbled answer, a partial
answer) alert only after :data:`TRANSIENT_ALERT_AFTER` consecutive failures.

Pure: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from shared.domain.messages import AlertKind, AlertRecord, Severity

TRANSIENT_ALERT_AFTER: Final = 3


class SourceKind(StrEnum):
    SIGNIN_EVIDENCE = "signin_evidence"
    AUDIT_LOG = "audit_log"


SOURCE_NAMES: Final[dict[SourceKind, str]] = {
    SourceKind.SIGNIN_EVIDENCE: "Sign-in evidence",
    SourceKind.AUDIT_LOG: "Audit log watcher",
}
# What the product cannot do while the source fails, in the admins' words.
SOURCE_IMPACT: Final[dict[SourceKind, str]] = {
    SourceKind.SIGNIN_EVIDENCE: (
        "Client checks go on, but clients without consent are judged without sign-in "
        "failures: a client that blocks {vendor} is not suspected from AADSTS500212 bursts."
    ),
    SourceKind.AUDIT_LOG: (
        "Changes to {vendor}'s own cross-tenant access settings are not seen or alerted "
        "until the audit log can be read again; nothing is lost, the next good scan reads "
        "the whole gap."
    ),
}


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """Why a source failed, in a stable code (``cause``) and in words for the admin."""

    source: SourceKind
    cause: str  # e.g. non_premium_tenant, access_denied, table_missing, throttled
    reason: str  # one line, shown on each posture record / scan outcome
    fix: str  # what the admin does about it
    detail: str = ""  # the service's own error code and message
    persistent: bool = True  # False: usually clears by itself (alert only if it persists)


@dataclass(frozen=True, slots=True)
class SourceState:
    """Stored per source between runs."""

    status: str  # "ok" | "failing"
    cause: str | None = None
    failures: int = 0  # consecutive failed runs with this cause
    since: datetime | None = None  # first failed run of this episode
    alerted_at: datetime | None = None  # None: this episode has not been alerted yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "cause": self.cause,
            "failures": self.failures,
            "since": self.since.isoformat() if self.since else None,
            "alertedAt": self.alerted_at.isoformat() if self.alerted_at else None,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> SourceState | None:
        if not isinstance(raw, dict) or raw.get("status") not in ("ok", "failing"):
            return None
        return cls(
            status=str(raw["status"]),
            cause=raw.get("cause"),
            failures=int(raw.get("failures") or 0),
            since=_time(raw.get("since")),
            alerted_at=_time(raw.get("alertedAt")),
        )


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


class SourceTransition(StrEnum):
    FAILING = "failing"
    REMINDER = "reminder"
    RECOVERED = "recovered"


OK: Final = SourceState(status="ok")


def next_source_state(
    previous: SourceState | None,
    problem: SourceProblem | None,
    now: datetime,
    reminder_every: timedelta,
) -> tuple[SourceState, SourceTransition | None]:
    """The state after one run of the source, and the alert it calls for (if any)."""
    before = previous or OK
    if problem is None:
        if before.status == "failing" and before.alerted_at is not None:
            return OK, SourceTransition.RECOVERED
        return OK, None  # a blip that never reached an alert clears silently
    if before.status != "failing" or before.cause != problem.cause:
        state = SourceState("failing", problem.cause, failures=1, since=now)
    else:
        state = replace(before, failures=before.failures + 1)
    due = problem.persistent or state.failures >= TRANSIENT_ALERT_AFTER
    if state.alerted_at is None:
        if due:
            return replace(state, alerted_at=now), SourceTransition.FAILING
        return state, None
    if now - state.alerted_at >= reminder_every:
        return replace(state, alerted_at=now), SourceTransition.REMINDER
    return state, None


def source_alert(
    transition: SourceTransition,
    state: SourceState,
    problem: SourceProblem | None,
    vendor: str,
    now: datetime,
    *,
    source: SourceKind | None = None,
    recovered_cause: str | None = None,
) -> AlertRecord:
    """The alert for one transition. One dedup key per episode (and per reminder)."""
    kind = problem.source if problem is not None else source
    if kind is None:
        raise ValueError("a recovery alert needs the source")
    name = SOURCE_NAMES[kind]
    if transition is SourceTransition.RECOVERED or problem is None:
        cause = recovered_cause or "unknown"
        return AlertRecord(
            dedup_key=f"source:{kind.value}:{cause}:recovered:{now:%Y%m%dT%H%M}",
            kind=AlertKind.SOURCE_UNAVAILABLE,
            severity=Severity.INFO,
            title=f"{name} works again",
            summary=f"{name} reads its log again; no action needed.",
            facts={"Source": name, "Previous cause": cause},
            remediation_steps=("No action needed.",),
            when=now,
            created_at=now,
            source="posture" if kind is SourceKind.SIGNIN_EVIDENCE else "audit",
        )
    since = state.since or now
    episode = f"{since:%Y%m%dT%H%M%S}"
    key = f"source:{kind.value}:{problem.cause}:{episode}"
    if transition is SourceTransition.REMINDER:
        key += f":reminder:{now:%Y%m%dT%H}"
    title = f"{name} unavailable: {problem.reason}"
    facts = {"Source": name, "Cause": problem.cause, "Failing since": since.isoformat()}
    if problem.detail:
        facts["Error"] = problem.detail[:500]
    return AlertRecord(
        dedup_key=key[:256],
        kind=AlertKind.SOURCE_UNAVAILABLE,
        severity=Severity.HIGH if kind is SourceKind.AUDIT_LOG else Severity.MEDIUM,
        title=title[:300],
        summary=(
            f"{name} is failing: {problem.reason}. "
            + SOURCE_IMPACT[kind].format(vendor=vendor)
            + (" (still failing)" if transition is SourceTransition.REMINDER else "")
        ),
        facts=facts,
        remediation_steps=(problem.fix,),
        when=now,
        created_at=now,
        source="posture" if kind is SourceKind.SIGNIN_EVIDENCE else "audit",
    )
