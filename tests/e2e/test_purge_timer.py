"""The retention purge timer, fired through function_app.py by the local runner like the
host does, against Azurite: it walks every growing table and leaves young rows alone.
(What it deletes, and what it must keep, is tests/integration/test_retention_purge.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_purge_timer_runs_over_each_growing_table_and_keeps_young_rows(app_env):
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import PURGE_PARTITION
    from shared.bootstrap import get_app, set_app
    from shared.config import (
        TABLE_CURSORS,
        TABLE_DELIVERIES,
        TABLE_JOBS,
        TABLE_POSTURE,
        TABLE_SEEN_EVENTS,
    )

    async def scenario() -> dict[str, Any]:
        set_app(None)
        app = await get_app()
        runner = LocalRunner()
        try:
            await app.tables.upsert(
                TABLE_DELIVERIES, {"PartitionKey": "d", "RowKey": "email", "Status": "delivered"}
            )
            await app.tables.upsert(TABLE_SEEN_EVENTS, {"PartitionKey": "audit", "RowKey": "e1"})
            await runner.fire_timer("purge_timer")
            cursors = await app.tables.query(
                TABLE_CURSORS, "PartitionKey eq @p", {"p": PURGE_PARTITION}
            )
            return {
                "cursors": {r["RowKey"]: r["After"] for r in cursors},
                "deliveries": len(await app.tables.query(TABLE_DELIVERIES)),
                "seen": len(await app.tables.query(TABLE_SEEN_EVENTS)),
            }
        finally:
            await runner.close()
            await app.close()
            set_app(None)

    out = asyncio.run(scenario())
    # each table's pass completed (cursor back at the start), nothing young deleted
    assert out["cursors"] == {
        TABLE_DELIVERIES: "",
        TABLE_JOBS: "",
        TABLE_SEEN_EVENTS: "",
        TABLE_POSTURE: "",  # its rows of the former layout
    }
    assert out["deliveries"] == 1 and out["seen"] == 1
