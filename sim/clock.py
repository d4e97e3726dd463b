"""Time helpers of the Graph simulator (a TEST DOUBLE): Graph-style timestamps, relative times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sim.odata import parse_datetime

_RELATIVE_RE = re.compile(r"^now(?:\s*([+-])\s*(\d+(?:\.\d+)?)\s*([dhms]))?$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso7(moment: datetime) -> str:
    """Graph log style: 7 fractional digits and a Z (``2024-01-09T21:20:02.7215374Z``)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def iso_seconds(moment: datetime) -> str:
    """Directory style: whole seconds and a Z (``2021-06-17T16:41:33Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_time(value: Any, now: datetime) -> datetime:
    """Accept a datetime, an ISO string, or ``now``/``now-2h``/``now+1d``/``now-30m``."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    match = _RELATIVE_RE.match(value.strip())
    if match:
        if not match.group(1):
            return now
        delta = timedelta(**{_UNITS[match.group(3).lower()]: float(match.group(2))})
        return now + delta if match.group(1) == "+" else now - delta
    return parse_datetime(value)


def resolve_relative_fields(record: Any, now: datetime, style: str = "iso7") -> Any:
    """Rewrite every ``*DateTime`` string that starts with ``now`` into an absolute timestamp."""
    formatter = iso7 if style == "iso7" else iso_seconds
    if isinstance(record, dict):
        for key, value in list(record.items()):
            if (
                key.endswith("DateTime")
                and isinstance(value, str)
                and value.strip().lower().startswith("now")
            ):
                record[key] = formatter(resolve_time(value, now))
            else:
                resolve_relative_fields(value, now, style)
    elif isinstance(record, list):
        for item in record:
            resolve_relative_fields(item, now, style)
    return record
