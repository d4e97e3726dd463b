"""Use case: the watchdog timer, and what ``/api/v1/health`` says about it.

Each run reads what the other jobs left behind (the audit cursor, the posture rows, the
channels' health), asks :mod:`shared.domain.watchdog` what is wrong, enqueues one alert per
problem that started and one note per problem that cleared, then stores the open
problems. The alerts are enqueued before the state is written: a crash repeats them under
the same keys (the outbox drops the repeat) but never loses one.

The health endpoint reads the stored state (one table read, cached a few seconds) and
answers ``degraded`` with the reasons while a problem is open, or while the watchdog itself
has not run for three of its intervals.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.repositories import PostureStore, cursor_store
from shared.adapters.storage import EntityConflict
from shared.config import QUEUE_ALERTS, TABLE_CLIENTS
from shared.domain.moments import parse_time
from shared.domain.watchdog import (
    SWEEP_GRACE_FACTOR,
    WatchdogState,
    WatchProblem,
    audit_scan_problem,
    channel_problem,
    next_watchdog_state,
    stale_watchdog,
    sweep_problem,
    watchdog_alert,
)
from shared.services.audit_scan import CURSOR_KEY as AUDIT_CURSOR_KEY
from shared.services.channel_health import read_channel_health
from shared.services.schedule_times import due_runs, interval, last_due

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

WATCHDOG_KEY = "watchdog"
HEALTH_TTL = 5.0


@dataclass
class WatchdogOutcome:
    problems: list[str] = field(default_factory=list)  # open problem keys after this run
    alerts: list[str] = field(default_factory=list)  # dedup keys enqueued


async def _audit(app: App, started: datetime, now: datetime) -> WatchProblem | None:
    state, _ = await cursor_store(app.tables).get(AUDIT_CURSOR_KEY)
    scanned_to = parse_time((state or {}).get("scanned_to"))
    schedule = app.settings.audit_schedule
    # A scan gets half an interval to finish before its run counts as missed.
    grace = interval(schedule, now) / 2
    last = scanned_to or started
    missed = due_runs(schedule, last, now - grace)
    return audit_scan_problem(last, missed, never_ran=scanned_to is None)


async def _sweep(
    app: App, previous: WatchdogState, started: datetime, now: datetime
) -> tuple[WatchProblem | None, datetime | None]:
    """The unfinished-sweep problem, and the due time of a sweep seen complete (if so)."""
    expected = timedelta(minutes=app.settings.self_watch.sweep_expected_minutes)
    due = last_due(app.settings.sweep_schedule, now - SWEEP_GRACE_FACTOR * expected)
    # Sweeps due before the watchdog first ran (a new deployment) are not judged.
    if due is None or due < started:
        return None, None
    if previous.sweep_complete_due == due and "sweep" not in previous.episodes:
        return None, None  # this sweep was already seen complete
    clients: dict[str, str] = {}
    registered: dict[str, datetime | None] = {}
    async for page in app.tables.pages(
        TABLE_CLIENTS, "PartitionKey eq @p", {"p": "client"}, select=["RowKey", "Name"]
    ):
        for row in page:
            tenant = str(row["RowKey"]).lower()
            clients[tenant] = str(row.get("Name") or tenant)
            registered[tenant] = row.get("_timestamp")
    checked: dict[str, datetime | None] = {}
    async for page in PostureStore(app.tables).rows(["CheckedAt"]):
        for row in page:
            checked[row["Tenant"]] = parse_time(row.get("CheckedAt"))
    problem = sweep_problem(due, expected, clients, registered, checked)
    return problem, (due if problem is None else None)


async def run_watchdog(app: App, now: datetime) -> WatchdogOutcome:
    store = cursor_store(app.tables)
    raw, etag = await store.get(WATCHDOG_KEY)
    previous = WatchdogState.from_dict(raw)
    started = previous.started_at or now
    problems: list[WatchProblem] = []
    audit = await _audit(app, started, now)
    if audit is not None:
        problems.append(audit)
    sweep, sweep_complete = await _sweep(app, previous, started, now)
    if sweep is not None:
        problems.append(sweep)
    for health in await read_channel_health(app):
        channel = channel_problem(health, now)
        if channel is not None:
            problems.append(channel)

    state, events = next_watchdog_state(previous, problems, now, sweep_complete_due=sweep_complete)
    failing = [p.channel for p in problems if p.channel]
    outcome = WatchdogOutcome(problems=sorted(state.episodes))
    for event in events:
        alert = watchdog_alert(event, now, failing)
        await app.queues.send(QUEUE_ALERTS, alert)
        outcome.alerts.append(alert.dedup_key)
        log.warning("watchdog %s: %s (%s)", event.transition.value, event.key, alert.title)
    try:
        await store.put(WATCHDOG_KEY, state.to_dict(), etag)
    except EntityConflict:
        # Timer runs are singletons; a manual run raced it. Its state stands; the alerts
        # are keyed by episode, so a duplicate is dropped at delivery.
        log.info("watchdog state written concurrently; keeping the other run's")
    app.extras.pop("watchdog_health", None)  # this process's health answer follows at once
    return outcome


@dataclass(frozen=True)
class WatchdogHealth:
    degraded: bool
    reasons: tuple[dict[str, str], ...] = ()

    def body(self) -> dict[str, Any]:
        if not self.degraded:
            return {"status": "ok"}
        return {"status": "degraded", "reasons": list(self.reasons)}


async def watchdog_health(app: App, now: datetime) -> WatchdogHealth:
    """What the watchdog found last, and whether it still runs (cached ``HEALTH_TTL``)."""
    cached: tuple[float, WatchdogHealth] | None = app.extras.get("watchdog_health")
    if cached is not None and time.monotonic() - cached[0] < HEALTH_TTL:
        return cached[1]
    raw, _ = await cursor_store(app.tables).get(WATCHDOG_KEY)
    state = WatchdogState.from_dict(raw)
    reasons = [
        {"check": e.check, "reason": e.reason, "since": e.since.isoformat()}
        for _, e in sorted(state.episodes.items())
    ]
    if state.checked_at is not None:
        schedule = app.settings.self_watch.watchdog_schedule
        missed = due_runs(schedule, state.checked_at, now - interval(schedule, now) / 2)
        stale = stale_watchdog(state, now, missed)
        if stale is not None:
            reasons.append(
                {
                    "check": stale.check.value,
                    "reason": stale.reason,
                    "since": stale.since.isoformat(),
                }
            )
    health = WatchdogHealth(bool(reasons), tuple(reasons))
    app.extras["watchdog_health"] = (time.monotonic(), health)
    return health
