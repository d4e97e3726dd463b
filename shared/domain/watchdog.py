"""xtap-watch watching itself (issue 18.3): is it still seeing, sweeping and telling?

An unattended watcher that has gone blind looks exactly like a quiet day. Three checks,
each a pure function of what storage says and the schedules:

* **audit scan stalled** — the audit cursor has not advanced for :data:`AUDIT_MISSED_RUNS`
  scheduled runs (the scan cannot read its source, or its timer does not fire);
* **sweep unfinished** — the last sweep due at least twice its expected duration ago has
  left clients unchecked (a check poisoned, the queue consumer stuck, the timer dead);
* **channel failing** — a delivery route has failed, without a success since, for
  :data:`CHANNEL_FAILING_FOR` (a deleted Teams flow, a mailbox that lost Mail.Send).

Each problem is one *episode*: one ``degraded`` alert when it starts (on the channels that
still work), nothing while it lasts, one ``recovered`` note when it clears. Keys are built
from the data that dated the problem (the cursor's value, the sweep's due time, the
channel's first failure), so a watchdog run repeated after a crash yields the same keys
and the outbox drops the repeat.

Pure: no I/O, no clock (``now`` is passed in); schedules arrive as lists of run times.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from shared.domain.messages import AlertKind, AlertRecord, Channel, Severity
from shared.domain.moments import aware, parse_time, utc_seconds

AUDIT_MISSED_RUNS: Final = 3
SWEEP_GRACE_FACTOR: Final = 2
CHANNEL_FAILING_FOR: Final = timedelta(hours=1)
CHANNELS: Final[tuple[Channel, ...]] = ("teams", "email")
# The admins' own routes (shared.services.delivery): only their failure takes a channel away
# from alerts about xtap-watch itself; a client's own Teams webhook failing does not.
ADMIN_ROUTES: Final = frozenset({"teams:admins", "email"})


class WatchCheck(StrEnum):
    AUDIT_SCAN = "audit_scan"
    SWEEP = "sweep"
    CHANNEL = "channel"
    WATCHDOG = "watchdog"  # the watchdog timer itself (seen by the health endpoint)


@dataclass(frozen=True, slots=True)
class WatchProblem:
    """One thing wrong with xtap-watch itself, in words for the admin and for /health."""

    key: str  # "audit_scan", "sweep", "channel:teams:admins"
    check: WatchCheck
    reason: str  # one line: shown on /api/v1/health and as the card's title
    since: datetime  # when the problem started, from the data (stable across re-runs)
    fix: str
    facts: Mapping[str, str] = field(default_factory=dict)
    channel: str | None = None  # for CHANNEL: "teams" | "email"


# ----------------------------------------------------------------------- the checks
def audit_scan_problem(
    last_advanced: datetime | None, missed_runs: Sequence[datetime], *, never_ran: bool = False
) -> WatchProblem | None:
    """The audit cursor has not moved for :data:`AUDIT_MISSED_RUNS` scheduled runs.

    ``last_advanced``: the cursor's value (the end of the last complete scan) or, before any
    scan completed, when the watchdog first looked. ``missed_runs``: the scan's scheduled
    run times after ``last_advanced`` that have had time to finish.
    """
    if last_advanced is None or len(missed_runs) < AUDIT_MISSED_RUNS:
        return None
    since = aware(last_advanced)
    reason = (
        f"the audit scan has not completed since {utc_seconds(since)}"
        if not never_ran
        else f"no audit scan has completed since the watchdog started ({utc_seconds(since)})"
    )
    return WatchProblem(
        key=WatchCheck.AUDIT_SCAN.value,
        check=WatchCheck.AUDIT_SCAN,
        reason=f"{reason}: {len(missed_runs)} scheduled scans did not advance the cursor",
        since=since,
        fix=(
            "Changes to the vendor's cross-tenant access settings are not being watched. "
            "Look for a 'Log source failing' alert (the audit log refused or failed) and for "
            "errors of audit_timer in Application Insights; check that the Function App is "
            "running and XTAP_AUDIT_SCHEDULE is valid. Nothing is lost: the next scan that "
            "completes reads the whole gap."
        ),
        facts={
            "Audit cursor": utc_seconds(since),
            "Missed scans": str(len(missed_runs)),
            "Last scheduled scan": utc_seconds(aware(missed_runs[-1])),
        },
    )


def sweep_problem(
    due_at: datetime | None,
    expected: timedelta,
    clients: Mapping[str, str],
    registered_at: Mapping[str, datetime | None],
    checked_at: Mapping[str, datetime | None],
    *,
    listed: int = 5,
) -> WatchProblem | None:
    """The sweep due at ``due_at`` (at least twice ``expected`` ago) left clients unchecked.

    ``clients`` maps tenant ID to name; a client registered after ``due_at`` was not part of
    that sweep and is not counted. A client counts as checked when its latest posture row
    is at least as new as ``due_at``.
    """
    if due_at is None:
        return None
    due = aware(due_at)

    def before_due(moment: datetime | None) -> bool:
        return moment is not None and aware(moment) < due

    eligible = [t for t in clients if not _after(registered_at.get(t), due)]
    unchecked = sorted(
        (t for t in eligible if checked_at.get(t) is None or before_due(checked_at.get(t))),
        key=lambda t: clients[t].lower(),
    )
    if not unchecked:
        return None
    names = ", ".join(clients[t] for t in unchecked[:listed])
    more = f" and {len(unchecked) - listed} more" if len(unchecked) > listed else ""
    return WatchProblem(
        key=WatchCheck.SWEEP.value,
        check=WatchCheck.SWEEP,
        reason=(
            f"the sweep due at {utc_seconds(due)} did not finish: {len(unchecked)} of "
            f"{len(eligible)} clients not checked after {SWEEP_GRACE_FACTOR}x its expected "
            f"{_minutes(expected)}"
        ),
        since=due,
        fix=(
            "Client drift is not being seen for the clients named here. Look at "
            "xtap-check-client-poison (a check that failed every attempt), at errors of "
            "check_client and sweep_timer in Application Insights, and check that the "
            "Function App is running; `xtap-watch check <tenant>` re-checks one client."
        ),
        facts={
            "Sweep due": utc_seconds(due),
            "Unchecked clients": f"{len(unchecked)} of {len(eligible)}",
            "Not checked": names + more,
        },
    )


def _after(moment: datetime | None, limit: datetime) -> bool:
    return moment is not None and aware(moment) > limit


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """How one delivery route did lately (written by delivery, read by the watchdog)."""

    route_id: str  # "teams:admins", "email", ...
    channel: str  # "teams" | "email"
    status: str  # "ok" | "failing"
    failing_since: datetime | None = None  # first failure after the last success
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "route": self.route_id,
            "channel": self.channel,
            "status": self.status,
            "failingSince": ts(self.failing_since),
            "lastFailureAt": ts(self.last_failure_at),
            "lastSuccessAt": ts(self.last_success_at),
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> ChannelHealth | None:
        if not isinstance(raw, Mapping) or raw.get("status") not in ("ok", "failing"):
            return None
        return cls(
            route_id=str(raw.get("route") or ""),
            channel=str(raw.get("channel") or ""),
            status=str(raw["status"]),
            failing_since=parse_time(raw.get("failingSince")),
            last_failure_at=parse_time(raw.get("lastFailureAt")),
            last_success_at=parse_time(raw.get("lastSuccessAt")),
            detail=str(raw.get("detail") or ""),
        )

    def after(self, ok: bool, now: datetime, detail: str = "") -> ChannelHealth:
        """This route's health after one delivery attempt."""
        if ok:
            return replace(self, status="ok", failing_since=None, last_success_at=now)
        return replace(
            self,
            status="failing",
            failing_since=self.failing_since if self.status == "failing" else now,
            last_failure_at=now,
            detail=detail[:300],
        )


def channel_problem(health: ChannelHealth, now: datetime) -> WatchProblem | None:
    if health.status != "failing" or health.failing_since is None:
        return None
    since = aware(health.failing_since)
    if aware(now) - since < CHANNEL_FAILING_FOR:
        return None
    return WatchProblem(
        key=f"channel:{health.route_id}",
        check=WatchCheck.CHANNEL,
        reason=(
            f"alert delivery to {health.route_id} has failed since {utc_seconds(since)} "
            "without one success"
        ),
        since=since,
        fix=(
            "Alerts are not reaching this channel. Teams: the Workflows flow behind the "
            "webhook runs as its owner — check the flow still exists and is on, and that its "
            "owner's account is enabled and licensed; then the URL in Key Vault. E-mail: "
            "the sender mailbox and its Mail.Send scope (Exchange RBAC for Applications). "
            "Undelivered alerts are in xtap-alerts-poison (docs/operations.md)."
        ),
        facts={
            "Channel": health.route_id,
            "Failing since": utc_seconds(since),
            "Last error": health.detail or "(not recorded)",
        },
        channel=health.channel if health.route_id in ADMIN_ROUTES else None,
    )


# ------------------------------------------------------------------ the state machine
@dataclass(frozen=True, slots=True)
class Episode:
    """One open problem, as stored between watchdog runs."""

    check: str
    reason: str
    since: datetime
    alerted_at: datetime
    channel: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "reason": self.reason,
            "since": self.since.isoformat(),
            "alertedAt": self.alerted_at.isoformat(),
            "channel": self.channel,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Episode | None:
        if not isinstance(raw, Mapping):
            return None
        since, alerted = parse_time(raw.get("since")), parse_time(raw.get("alertedAt"))
        if since is None or alerted is None:
            return None
        return cls(
            check=str(raw.get("check") or ""),
            reason=str(raw.get("reason") or ""),
            since=since,
            alerted_at=alerted,
            channel=raw.get("channel") or None,
        )


@dataclass(frozen=True, slots=True)
class WatchdogState:
    """Stored once (the cursors table): the open episodes and when the watchdog last ran."""

    checked_at: datetime | None = None
    started_at: datetime | None = None  # first run: "never scanned" is measured from here
    episodes: Mapping[str, Episode] = field(default_factory=dict)
    # The due time of the last sweep seen complete: not read again until the next one.
    sweep_complete_due: datetime | None = None

    @property
    def degraded(self) -> bool:
        return bool(self.episodes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkedAt": self.checked_at.isoformat() if self.checked_at else None,
            "startedAt": self.started_at.isoformat() if self.started_at else None,
            "episodes": {key: e.to_dict() for key, e in sorted(self.episodes.items())},
            "sweepCompleteDue": (
                self.sweep_complete_due.isoformat() if self.sweep_complete_due else None
            ),
        }

    @classmethod
    def from_dict(cls, raw: Any) -> WatchdogState:
        if not isinstance(raw, Mapping):
            return cls()
        episodes: dict[str, Episode] = {}
        for key, value in (raw.get("episodes") or {}).items():
            episode = Episode.from_dict(value)
            if episode is not None:
                episodes[str(key)] = episode
        return cls(
            parse_time(raw.get("checkedAt")),
            parse_time(raw.get("startedAt")),
            episodes,
            parse_time(raw.get("sweepCompleteDue")),
        )


class WatchTransition(StrEnum):
    DEGRADED = "degraded"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    transition: WatchTransition
    key: str
    problem: WatchProblem | None  # the problem (DEGRADED)
    episode: Episode | None  # the closed episode (RECOVERED)


def next_watchdog_state(
    previous: WatchdogState,
    problems: Iterable[WatchProblem],
    now: datetime,
    *,
    sweep_complete_due: datetime | None = None,
) -> tuple[WatchdogState, list[WatchEvent]]:
    """Fold this run's problems into the state; return the alerts to send (once each)."""
    current = {p.key: p for p in problems}
    episodes: dict[str, Episode] = {}
    events: list[WatchEvent] = []
    for key, problem in sorted(current.items()):
        open_episode = previous.episodes.get(key)
        if open_episode is None:
            episodes[key] = Episode(
                problem.check.value, problem.reason, problem.since, now, problem.channel
            )
            events.append(WatchEvent(WatchTransition.DEGRADED, key, problem, None))
        else:  # still open: keep the episode (and its key), refresh the words
            episodes[key] = replace(open_episode, reason=problem.reason)
    for key, episode in sorted(previous.episodes.items()):
        if key not in current:
            events.append(WatchEvent(WatchTransition.RECOVERED, key, None, episode))
    state = WatchdogState(
        checked_at=now,
        started_at=previous.started_at or now,
        episodes=episodes,
        sweep_complete_due=sweep_complete_due or previous.sweep_complete_due,
    )
    return state, events


def working_channels(failing: Iterable[str | None]) -> tuple[Channel, ...]:
    """The channels an alert about xtap-watch itself should use: those not failing. Empty
    (every channel) when all of them fail — the deliveries will record why."""
    down = {c for c in failing if c}
    up = tuple(c for c in CHANNELS if c not in down)
    return up if up and len(up) < len(CHANNELS) else ()


def watchdog_alert(
    event: WatchEvent, now: datetime, failing_channels: Iterable[str | None] = ()
) -> AlertRecord:
    """The card for one event: degraded (HIGH) or recovered (INFO), on the working channels.

    A channel's own problem never goes to that channel; the recovery note of a channel goes
    everywhere (it works again).
    """
    failing = set(failing_channels)
    if event.transition is WatchTransition.DEGRADED:
        problem = event.problem
        if problem is None:
            raise ValueError("a degraded event needs its problem")
        failing.add(problem.channel)
        return AlertRecord(
            dedup_key=f"watchdog:{event.key}:{problem.since:%Y%m%dT%H%M%S}:degraded"[:256],
            kind=AlertKind.WATCHDOG,
            severity=Severity.HIGH,
            title=f"xtap-watch is degraded: {problem.reason}"[:300],
            summary=(
                f"xtap-watch's watchdog found that {problem.reason}. /api/v1/health answers "
                "'degraded' with this reason until it clears; one note follows when it does."
            ),
            remediation_steps=(problem.fix,),
            facts={"Check": problem.check.value, **problem.facts},
            when=problem.since,
            created_at=now,
            source="watchdog",
            only_channels=working_channels(failing),
        )
    episode = event.episode
    if episode is None:
        raise ValueError("a recovered event needs its episode")
    lasted = aware(now) - aware(episode.since)
    return AlertRecord(
        dedup_key=f"watchdog:{event.key}:{episode.since:%Y%m%dT%H%M%S}:recovered"[:256],
        kind=AlertKind.WATCHDOG,
        severity=Severity.INFO,
        title=f"xtap-watch is back to normal: {_check_words(episode.check)}"[:300],
        summary=(
            f"Resolved: {episode.reason}. Back to normal after {_minutes(lasted)}; no action "
            "needed."
        ),
        remediation_steps=("No action needed.",),
        facts={
            "Check": episode.check,
            "Problem since": utc_seconds(aware(episode.since)),
            "Resolved at": utc_seconds(aware(now)),
        },
        when=now,
        created_at=now,
        source="watchdog",
        only_channels=working_channels(failing - {episode.channel}),
    )


def _check_words(check: str) -> str:
    return {
        WatchCheck.AUDIT_SCAN.value: "the audit scan completes again",
        WatchCheck.SWEEP.value: "every client was checked again",
        WatchCheck.CHANNEL.value: "alert delivery works again",
    }.get(check, check)


def stale_watchdog(
    state: WatchdogState, now: datetime, missed_runs: Sequence[datetime]
) -> WatchProblem | None:
    """The watchdog itself has not run for :data:`AUDIT_MISSED_RUNS` of its runs (seen by
    the health endpoint, which is the only thing left to say so)."""
    if state.checked_at is None or len(missed_runs) < AUDIT_MISSED_RUNS:
        return None
    since = aware(state.checked_at)
    return WatchProblem(
        key=WatchCheck.WATCHDOG.value,
        check=WatchCheck.WATCHDOG,
        reason=f"the watchdog has not run since {utc_seconds(since)}",
        since=since,
        fix="Check that the Function App runs its timers (watchdog_timer, XTAP_WATCHDOG_SCHEDULE).",
    )
