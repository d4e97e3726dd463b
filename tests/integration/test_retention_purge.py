"""The retention purge against Azurite (issue 16 item 6): old rows go, young and still-needed
rows stay, the caps hold, an interrupted purge resumes, a row touched meanwhile survives.

Age is the Table service's own ``Timestamp``, which the service sets on every write; so the
test writes the "old" rows, lets the clock pass a boundary, writes the "young" ones, and
runs the purge as if ``retention`` after the boundary. Faults are injected by subclassing
our storage adapter (``StorageTables``), never the SDK.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.storage import StorageTables
from shared.config import TABLE_DELIVERIES, TABLE_JOBS, TABLE_SEEN_EVENTS
from tests.integration.app_helpers import storage_only_settings, with_app_of

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(azurite: Any) -> Any:
    return storage_only_settings(azurite.connection_string)


async def _pass_the_boundary() -> datetime:
    """Make every row written so far older than the returned instant, every later one younger."""
    await asyncio.sleep(1.1)
    boundary = datetime.now(UTC)
    await asyncio.sleep(1.1)
    return boundary


async def _keys(tables: StorageTables, table: str) -> set[tuple[str, str]]:
    rows = await tables.query(table, select=["PartitionKey", "RowKey"])
    return {(r["PartitionKey"], r["RowKey"]) for r in rows}


async def _fill(tables: StorageTables, table: str, partition: str, count: int, tag: str) -> None:
    for i in range(count):
        await tables.upsert(table, {"PartitionKey": partition, "RowKey": f"{tag}-{i:04d}"})


# ------------------------------------------------------------------ old go, needed stay
OLD_DELIVERIES = [
    {"PartitionKey": "d1", "RowKey": "teams_admins", "Status": "delivered"},
    {"PartitionKey": "d1", "RowKey": "email", "Status": "failed"},
    {"PartitionKey": "d2", "RowKey": "email", "Status": "sending"},
    {"PartitionKey": "batch-1", "RowKey": "counter", "Kind": "counter", "Count": 7},
    {"PartitionKey": "batch-1", "RowKey": "m-immediate", "Kind": "member", "Status": "immediate"},
    {"PartitionKey": "batch-1", "RowKey": "m-digested", "Kind": "member", "Status": "digested"},
    {"PartitionKey": "batch-1", "RowKey": "flush-0", "Kind": "flush"},
    {"PartitionKey": "batch-2", "RowKey": "flush", "Kind": "flag", "Pending": False},
]
NEEDED_DELIVERIES = [  # old, but a digest still needs them
    {"PartitionKey": "batch-3", "RowKey": "m-held", "Kind": "member", "Status": "held",
     "Alert": "{}"},
    {"PartitionKey": "batch-3", "RowKey": "flush", "Kind": "flag", "Pending": True},
]
OLD_JOBS = [
    {"PartitionKey": "reinvite", "RowKey": "job-old", "State": "done", "Record": "{}"},
    {"PartitionKey": "reinvite-user", "RowKey": "user-old", "JobId": "job-old"},
    {"PartitionKey": "reinvite-claim", "RowKey": "job-old", "Status": "finished"},
    {"PartitionKey": "access-review", "RowKey": "20260801-x", "State": "failed", "Record": "{}"},
]
YOUNG_JOBS = [
    {"PartitionKey": "reinvite", "RowKey": "job-new", "State": "queued", "Record": "{}"},
    {"PartitionKey": "reinvite-user", "RowKey": "user-new", "JobId": "job-new"},
]


def test_old_rows_go_young_and_still_needed_rows_stay(settings):
    from shared.adapters.repositories import cursor_store
    from shared.services.audit_scan import CURSOR_KEY
    from shared.services.retention import purge_expired

    async def use(app: Any) -> dict[str, Any]:
        t = app.tables
        for entity in OLD_DELIVERIES + NEEDED_DELIVERIES:
            await t.upsert(TABLE_DELIVERIES, entity)
        for entity in OLD_JOBS:
            await t.upsert(TABLE_JOBS, entity)
        await _fill(t, TABLE_SEEN_EVENTS, "audit", 5, "old")
        boundary = await _pass_the_boundary()
        await t.upsert(TABLE_DELIVERIES, {"PartitionKey": "d3", "RowKey": "email",
                                          "Status": "delivered"})
        for entity in YOUNG_JOBS:
            await t.upsert(TABLE_JOBS, entity)
        await _fill(t, TABLE_SEEN_EVENTS, "audit", 3, "new")
        # The audit scan's last completed run ended overlap + margin after the boundary, so
        # seen events from before the boundary can never be read again; later ones can.
        overlap = timedelta(minutes=settings.audit_overlap_minutes)
        margin = timedelta(minutes=settings.retention.seen_events_margin_minutes)
        store = cursor_store(t)
        await store.put(CURSOR_KEY, {"scanned_to": (boundary + overlap + margin).isoformat()},
                        None)
        # 90 days later (both ledgers' default retention): the audit scan has been failing
        # since, so its cursor still stands where it was.
        now = boundary + timedelta(days=90)
        first = await purge_expired(app, now)
        second = await purge_expired(app, now)
        return {
            "first": first.by_table(),
            "second": second.by_table(),
            "deliveries": await _keys(t, TABLE_DELIVERIES),
            "jobs": await _keys(t, TABLE_JOBS),
            "seen": await _keys(t, TABLE_SEEN_EVENTS),
            "audit_cursor": (await store.get(CURSOR_KEY))[0],
        }

    out = asyncio.run(with_app_of(settings, use))
    assert out["deliveries"] == {
        ("batch-3", "m-held"),
        ("batch-3", "flush"),
        ("d3", "email"),
    }
    assert out["jobs"] == {(j["PartitionKey"], j["RowKey"]) for j in YOUNG_JOBS}
    assert out["seen"] == {("audit", f"new-{i:04d}") for i in range(3)}
    first = out["first"]
    assert first[TABLE_DELIVERIES].deleted == len(OLD_DELIVERIES)
    assert first[TABLE_DELIVERIES].kept_pending == len(NEEDED_DELIVERIES)
    assert first[TABLE_JOBS].deleted == len(OLD_JOBS)
    assert first[TABLE_SEEN_EVENTS].deleted == 5
    assert all(result.complete for result in first.values())
    assert all(result.deleted == 0 for result in out["second"].values())
    assert "scanned_to" in out["audit_cursor"]  # the purge never touches the audit cursor


# ------------------------------------------------------------------------ caps hold
class RecordingTables(StorageTables):
    """Our adapter, recording each delete transaction it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transactions: list[tuple[str, int]] = []

    async def delete_unchanged(self, table: str, partition: str, rows: Any) -> int:
        self.transactions.append((partition, len(rows)))
        return await super().delete_unchanged(table, partition, rows)


def test_the_row_cap_holds_per_run_and_later_runs_resume_where_it_stopped(settings):
    from shared.adapters.repositories import PurgeCursors
    from shared.services.retention import purge_rules, purge_table

    async def use(app: Any) -> dict[str, Any]:
        tables = RecordingTables(settings.storage, None)
        try:
            await _fill(tables, TABLE_JOBS, "reinvite", 230, "old")
            await _fill(tables, TABLE_JOBS, "reinvite-user", 120, "old")
            boundary = await _pass_the_boundary()
            await _fill(tables, TABLE_JOBS, "reinvite", 4, "young")
            now = boundary + timedelta(days=settings.retention.job_retention_days)
            rule = next(r for r in await purge_rules(app, now) if r.table == TABLE_JOBS)
            cursors = PurgeCursors(tables)
            runs = []
            while True:
                result = await purge_table(
                    tables, cursors, rule, now, max_rows=100, page_size=64
                )
                runs.append((result.deleted, result.stopped_by, result.complete))
                if result.complete or len(runs) > 10:
                    break
            return {
                "runs": runs,
                "transactions": tables.transactions,
                "left": await _keys(tables, TABLE_JOBS),
                "cursor": await cursors.get(TABLE_JOBS),
            }
        finally:
            await tables.close()

    out = asyncio.run(with_app_of(settings, use))
    deleted = [d for d, _, _ in out["runs"]]
    assert max(deleted) <= 100 and sum(deleted) == 350
    assert [d for d, _, _ in out["runs"][:3]] == [100, 100, 100]
    assert out["runs"][-1][2] is True
    assert all(0 < size <= 100 for _, size in out["transactions"])
    assert out["left"] == {("reinvite", f"young-{i:04d}") for i in range(4)}
    assert out["cursor"] is None  # a completed pass starts the next one at the beginning


def test_the_page_cap_stops_a_run_and_the_next_run_continues(settings):
    from shared.services.retention import purge_expired

    async def use(app: Any) -> list[int]:
        await _fill(app.tables, TABLE_SEEN_EVENTS, "audit", 30, "old")
        boundary = await _pass_the_boundary()
        now = boundary + timedelta(days=2)  # no audit cursor: a day's look-back is kept
        seen = []
        for _ in range(4):
            outcome = await purge_expired(app, now, page_size=10, max_pages=1)
            seen.append(outcome.by_table()[TABLE_SEEN_EVENTS].deleted)
        return seen

    assert asyncio.run(with_app_of(settings, use)) == [10, 10, 10, 0]


# ------------------------------------------------------------- interrupted, resumed
class CrashingTables(StorageTables):
    """Dies right after its Nth delete transaction committed, before anything else runs
    (the worst point: rows gone, the cursor not yet moved)."""

    def __init__(self, *args: Any, crash_after: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crash_after = crash_after
        self.committed: list[int] = []

    async def delete_unchanged(self, table: str, partition: str, rows: Any) -> int:
        deleted = await super().delete_unchanged(table, partition, rows)
        self.committed.append(deleted)
        if len(self.committed) >= self.crash_after:
            raise RuntimeError("killed mid-purge")
        return deleted


def test_a_purge_interrupted_midway_resumes_and_finishes(settings):
    from shared.adapters.repositories import PurgeCursors
    from shared.services.retention import purge_rules, purge_table

    async def use(app: Any) -> dict[str, Any]:
        for partition in ("p1", "p2", "p3"):
            await _fill(app.tables, TABLE_DELIVERIES, partition, 150, "old")
        boundary = await _pass_the_boundary()
        await _fill(app.tables, TABLE_DELIVERIES, "p2", 5, "young")
        now = boundary + timedelta(days=settings.retention.delivery_retention_days)
        rule = next(r for r in await purge_rules(app, now) if r.table == TABLE_DELIVERIES)
        crashing = CrashingTables(settings.storage, None, crash_after=3)
        try:
            with pytest.raises(RuntimeError, match="killed"):
                await purge_table(
                    crashing, PurgeCursors(crashing), rule, now, max_rows=5000, page_size=120
                )
        finally:
            await crashing.close()
        after_crash = await _keys(app.tables, TABLE_DELIVERIES)
        cursor_after_crash = await PurgeCursors(app.tables).get(TABLE_DELIVERIES)
        resumed = await purge_table(
            app.tables, PurgeCursors(app.tables), rule, now, max_rows=5000, page_size=120
        )
        return {
            "after_crash": len(after_crash),
            "committed": crashing.committed,
            "cursor_after_crash": cursor_after_crash,
            "resumed": resumed,
            "left": await _keys(app.tables, TABLE_DELIVERIES),
        }

    out = asyncio.run(with_app_of(settings, use))
    # Page 1 (120 rows of p1) went as 100 + 20 and moved the cursor; the crash came right
    # after the first transaction of page 2 committed, before the cursor moved again.
    gone_before_crash = sum(out["committed"])
    assert out["committed"][:2] == [100, 20] and len(out["committed"]) == 3
    assert out["after_crash"] == 455 - gone_before_crash
    assert out["cursor_after_crash"] == ("p1", "old-0119")
    assert out["resumed"].deleted == 450 - gone_before_crash and out["resumed"].complete
    assert out["left"] == {("p2", f"young-{i:04d}") for i in range(5)}


# ------------------------------------------------------------ changed after the read
class MeddlingTables(StorageTables):
    """After each page is read, another writer touches one of its rows and deletes
    another, as a live trigger might."""

    async def pages(self, *args: Any, **kwargs: Any) -> Any:
        async for page in super().pages(*args, **kwargs):
            if len(page) >= 2:
                touched, gone = page[0], page[1]
                await self.upsert(TABLE_JOBS, {"PartitionKey": touched["PartitionKey"],
                                               "RowKey": touched["RowKey"], "Again": True})
                await self.delete(TABLE_JOBS, gone["PartitionKey"], gone["RowKey"])
            yield page


def test_a_row_written_after_the_purge_read_it_is_kept(settings):
    from shared.adapters.repositories import PurgeCursors
    from shared.services.retention import purge_rules, purge_table

    async def use(app: Any) -> dict[str, Any]:
        await _fill(app.tables, TABLE_JOBS, "reinvite-claim", 10, "old")
        boundary = await _pass_the_boundary()
        now = boundary + timedelta(days=settings.retention.job_retention_days)
        rule = next(r for r in await purge_rules(app, now) if r.table == TABLE_JOBS)
        meddling = MeddlingTables(settings.storage, None)
        try:
            result = await purge_table(meddling, PurgeCursors(meddling), rule, now, max_rows=100)
        finally:
            await meddling.close()
        return {"result": result, "left": await _keys(app.tables, TABLE_JOBS)}

    out = asyncio.run(with_app_of(settings, use))
    assert out["left"] == {("reinvite-claim", "old-0000")}  # touched: young again, kept
    assert out["result"].deleted == 8  # the one deleted meanwhile is not counted


def test_the_purge_timer_is_wired_to_its_schedule_setting():
    code = (
        "import json, function_app\n"
        "for fn in function_app.app.get_functions():\n"
        "    if fn.get_function_name() == 'purge_timer':\n"
        "        print(json.dumps(json.loads(fn.get_function_json())['bindings'][0]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    binding = json.loads(out.stdout)
    assert binding["type"] == "timerTrigger"
    assert binding["schedule"] == "%XTAP_PURGE_SCHEDULE%"
