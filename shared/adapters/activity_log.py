"""What happened to clients lately (drifts opened and closed, acknowledgements), for the
daily heartbeat: ``xtapAlertState``, partition ``activity``, one row per event.

Rows are keyed by the event's de-duplication key, so a re-run of the step that produced
the event (a retried check) overwrites its row instead of counting it twice. The heartbeat
reads the last day and forgets rows older than :data:`KEEP`: the partition stays a few
days of events long.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.adapters.storage import StorageTables
from shared.config import TABLE_ALERT_STATE

ACTIVITY_PARTITION = "activity"
KEEP = timedelta(days=8)
FORGET_PER_RUN = 500


@dataclass(frozen=True)
class ActivityEntry:
    kind: str  # drift_opened | drift_closed | ack_set | ack_lifted | ack_expired
    tenant_id: str
    client_name: str
    at: datetime
    detail: str = ""


class ActivityLog:
    def __init__(self, tables: StorageTables) -> None:
        self._tables = tables

    async def record(self, key: str, entry: ActivityEntry) -> None:
        await self._tables.upsert(
            TABLE_ALERT_STATE,
            {
                "PartitionKey": ACTIVITY_PARTITION,
                "RowKey": hashlib.sha256(key.encode()).hexdigest()[:40],
                "Kind": entry.kind,
                "Tenant": entry.tenant_id,
                "ClientName": entry.client_name[:200],
                "At": entry.at,
                "Detail": entry.detail[:500],
            },
        )

    async def since(self, cutoff: datetime) -> list[ActivityEntry]:
        rows = await self._tables.query(
            TABLE_ALERT_STATE,
            "PartitionKey eq @p and At ge @c",
            {"p": ACTIVITY_PARTITION, "c": cutoff},
        )
        return sorted((_entry(r) for r in rows), key=lambda e: e.at)

    async def forget_before(self, cutoff: datetime) -> int:
        rows = await self._tables.query(
            TABLE_ALERT_STATE,
            "PartitionKey eq @p and At lt @c",
            {"p": ACTIVITY_PARTITION, "c": cutoff},
            select=["RowKey"],
        )
        for row in rows[:FORGET_PER_RUN]:
            await self._tables.delete(TABLE_ALERT_STATE, ACTIVITY_PARTITION, row["RowKey"])
        return min(len(rows), FORGET_PER_RUN)


def _entry(row: dict[str, Any]) -> ActivityEntry:
    return ActivityEntry(
        kind=str(row.get("Kind") or ""),
        tenant_id=str(row.get("Tenant") or ""),
        client_name=str(row.get("ClientName") or ""),
        at=row["At"],
        detail=str(row.get("Detail") or ""),
    )
