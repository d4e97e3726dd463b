"""A tenant's Microsoft cloud as last looked up, kept in the client's alert-state document
(and, as looked up at registration, in its registry record: ``clients.RegisteredCloud``).

A tenant's cloud (``cloud_instance_name`` of its OpenID configuration) changes only when
Microsoft migrates the tenant, yet a process that kept it only in memory looked it up
again for every client after every restart: a restarted process's sweep of 5,000 clients
waited on those lookups (one round trip each to the login host, through a small pool).
Kept beside the alert state, which every check reads anyway, it costs no extra read.

Each tenant's entry is trusted for one to two days, at a point in that window fixed by its
tenant ID: thousands of clients registered in one go are first looked up in one sweep, and
without the spread would all fall due again in one sweep a day later.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

CLOUD_KEY = "cloud"
CLOUD_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class KnownCloud:
    """``name`` (e.g. ``microsoftonline``) as the tenant's discovery document gave it at
    ``checked_at``."""

    name: str
    checked_at: datetime

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "checked_at": self.checked_at.isoformat()}

    @classmethod
    def from_document(cls, document: Mapping[str, Any] | None) -> KnownCloud | None:
        """The entry of an alert-state document; None when absent or unreadable (the
        cloud is then looked up again, which is always safe)."""
        entry = (document or {}).get(CLOUD_KEY)
        if not isinstance(entry, Mapping):
            return None
        name, checked_at = entry.get("name"), entry.get("checked_at")
        if not isinstance(name, str) or not name.strip() or not isinstance(checked_at, str):
            return None
        try:
            when = datetime.fromisoformat(checked_at)
        except ValueError:
            return None
        if when.tzinfo is None:
            return None
        return cls(name.strip().lower(), when)


def trusted_for(tenant_id: str, ttl: timedelta = CLOUD_TTL) -> timedelta:
    """How long this tenant's entry is used: ``ttl`` plus a per-tenant share of ``ttl``."""
    share = zlib.crc32(tenant_id.strip().lower().encode()) / 2**32
    return ttl * (1 + share)


def is_fresh(known: KnownCloud, tenant_id: str, now: datetime, ttl: timedelta = CLOUD_TTL) -> bool:
    """Whether ``known`` may be used at ``now``. An entry from the future (a clock that
    was wrong when it was written) is not trusted: the lookup is cheap, a wrong cloud is
    a wrong vendor-side finding."""
    age = now - known.checked_at
    return timedelta(0) <= age < trusted_for(tenant_id, ttl)


def newest(*entries: KnownCloud | None) -> KnownCloud | None:
    """The most recently checked of the entries there are (the alert state's and the
    registry record's); None when there is none."""
    present = [e for e in entries if e is not None]
    return max(present, key=lambda e: e.checked_at) if present else None
