"""When a timer was due: the NCRONTAB schedules of ``function_app.py`` read like the host.

The watchdog asks "which audit scans should have run since the cursor last moved" and
"when was the last sweep due"; the heartbeat keys itself by its own due time. Six-field
NCRONTAB (seconds first), read by the pinned croniter with ``second_at_beginning``, in UTC
(the Functions host's default time zone).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter

# A schedule that fires every second could ask for thousands of times; nobody needs more.
MAX_RUNS = 100


def _schedule(ncrontab: str, start: datetime) -> croniter:
    return croniter(ncrontab, start.astimezone(UTC), second_at_beginning=True)


def due_runs(
    ncrontab: str, after: datetime, until: datetime, limit: int = MAX_RUNS
) -> list[datetime]:
    """Scheduled times in ``(after, until]``, oldest first, at most ``limit``."""
    if until <= after:
        return []
    schedule = _schedule(ncrontab, after)
    out: list[datetime] = []
    while len(out) < limit:
        moment: datetime = schedule.get_next(datetime)
        if moment > until:
            break
        out.append(moment)
    return out


def last_due(ncrontab: str, moment: datetime) -> datetime | None:
    """The latest scheduled time at or before ``moment``."""
    schedule = _schedule(ncrontab, moment + timedelta(seconds=1))
    for _ in range(3):  # croniter steps by whole seconds: skip a time after ``moment``
        previous: datetime = schedule.get_prev(datetime)
        if previous <= moment:
            return previous
    return None


def interval(ncrontab: str, around: datetime) -> timedelta:
    """The gap between the two scheduled times before ``around`` (one run's share of time)."""
    schedule = _schedule(ncrontab, around)
    latest: datetime = schedule.get_prev(datetime)
    before: datetime = schedule.get_prev(datetime)
    return latest - before
