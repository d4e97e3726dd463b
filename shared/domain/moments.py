"""Timestamps as stored and shown: parsed leniently, always timezone-aware, UTC for people.

Pure helpers shared by the watchdog, the heartbeat, acknowledgements and detection latency.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def aware(moment: datetime) -> datetime:
    """``moment`` with a time zone: a naive time is UTC (how storage hands some back)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_time(value: Any) -> datetime | None:
    """A stored timestamp (datetime or ISO text); None for anything else."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def utc_minutes(moment: datetime) -> str:
    """``2026-11-23 09:00 UTC``."""
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def utc_seconds(moment: datetime) -> str:
    """``2026-11-23 09:00:04 UTC``."""
    return aware(moment).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
