"""Sweep cadence (issue 16.5): every 15 minutes by default; reminders keep their own cadence.

A drift is seen at the next sweep (at most 15 minutes later, 7.5 on average); reminders of
an open drift stay ``XTAP_REMINDER_HOURS`` apart whatever the sweep cadence.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from croniter import croniter

from shared.config import load_settings
from shared.domain.client_state import TransitionKind, next_state, observe
from shared.domain.finding_catalog import FindingCode
from shared.domain.posture import PostureResult, Verdict, unknown_posture

CLIENT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
ENV = {
    "XTAP_VENDOR_TENANT_ID": "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50",
    "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def _sweep_times(schedule: str, start: datetime, hours: int) -> list[datetime]:
    # NCRONTAB with seconds first, as the Functions host reads it.
    fields = schedule.split()
    cron = croniter(" ".join(fields[1:]), start - timedelta(seconds=1))
    times = []
    while (t := cron.get_next(datetime)) < start + timedelta(hours=hours):
        times.append(t)
    return times


def _blocked() -> PostureResult:
    """A posture that stays BLOCKED (the drift never clears during the test)."""
    return replace(
        unknown_posture(FindingCode.CLIENT_TENANT_UNREACHABLE, "placeholder"),
        verdict=Verdict.BLOCKED,
    )


def _reminders(schedule: str, reminder_hours: int, hours: int) -> list[datetime]:
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    state = None
    reminders = []
    observation = observe(_blocked(), CLIENT)
    for at in _sweep_times(schedule, start, hours):
        state, transitions = next_state(state, observation, at, timedelta(hours=reminder_hours))
        reminders += [t.at for t in transitions if t.kind is TransitionKind.REMINDER]
    return reminders


def test_the_default_sweep_runs_every_15_minutes():
    schedule = load_settings(ENV).sweep_schedule
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    times = _sweep_times(schedule, start, 2)
    assert len(times) == 8
    assert {b - a for a, b in itertools.pairwise(times)} == {timedelta(minutes=15)}


def test_reminders_keep_their_cadence_whatever_the_sweep_cadence():
    every_15 = _reminders("0 */15 * * * *", 24, 72)
    hourly = _reminders("0 0 * * * *", 24, 72)
    # Two reminders in three days of drift, 24 hours apart, with either cadence.
    assert len(every_15) == len(hourly) == 2
    assert every_15[1] - every_15[0] == timedelta(hours=24)
    assert every_15 == hourly  # 24 h is a whole number of either cadence
    six_hourly = _reminders("0 */15 * * * *", 6, 24)
    assert len(six_hourly) == 3  # at 6 h, 12 h and 18 h: set by XTAP_REMINDER_HOURS only


def _fire_seconds(schedule: str, start: datetime, hours: int) -> set[datetime]:
    """Every firing of a six-field NCRONTAB (seconds first) in ``hours``."""
    from shared.config import normalise_ncrontab

    cron = croniter(normalise_ncrontab(schedule), start - timedelta(seconds=1),
                    second_at_beginning=True)
    times = set()
    while (t := cron.get_next(datetime)) < start + timedelta(hours=hours):
        times.add(t)
    return times


def test_the_default_audit_and_sweep_schedules_never_fire_in_the_same_second():
    """Issue 12.8: the audit scan and the sweep's sign-in query share Graph's reports limit
    (5 requests per 10 s per app and tenant). One limiter serves them inside a process;
    the default schedules keep them apart across instances too (the sweep at second 0,
    the audit scan at second 30)."""
    settings = load_settings(ENV)
    start = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    audit = _fire_seconds(settings.audit_schedule, start, 2)
    sweep = _fire_seconds(settings.sweep_schedule, start, 2)
    assert len(audit) == 120 and len(sweep) == 8
    assert min(abs((a - s).total_seconds()) for a in audit for s in sweep) >= 10
