"""The retention purge's pure rules: what may go, what must stay, and in which batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.config import ConfigError, load_settings
from shared.domain.retention import (
    MAX_TRANSACTION_ENTITIES,
    holds_pending_digest,
    ledger_cutoff,
    plan_page,
    resume_filter,
    seen_events_cutoff,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=100)
CUTOFF = ledger_cutoff(NOW, 90)


def row(pk: str, rk: str, stamp: datetime = OLD, **extra: object) -> dict[str, object]:
    return {"PartitionKey": pk, "RowKey": rk, "_etag": f"W/{pk}{rk}", "_timestamp": stamp, **extra}


def test_batches_hold_one_partition_and_at_most_100_rows():
    rows = [row("a", f"{i:04d}") for i in range(250)] + [row("b", "x"), row("c", "y")]
    plan = plan_page(rows, CUTOFF)
    sizes = [(b.partition, len(b.rows)) for b in plan.batches]
    assert sizes == [("a", 100), ("a", 100), ("a", 50), ("b", 1), ("c", 1)]
    assert all(len(b.rows) <= MAX_TRANSACTION_ENTITIES for b in plan.batches)
    assert plan.last_key == ("c", "y")
    assert plan.batches[0].rows[0].etag == "W/a0000"


def test_young_rows_and_pending_digest_rows_stay():
    rows = [
        row("batch-1", "counter", Kind="counter", Count=9),
        row("batch-1", "flush", Kind="flag", Pending=True),
        row("batch-1", "flush-0", Kind="flush"),
        row("batch-1", "m1", Kind="member", Status="held", Alert="{}"),
        row("batch-1", "m2", Kind="member", Status="digested"),
        row("batch-2", "flush", Kind="flag", Pending=False),
        row("d", "teams_admins", NOW - timedelta(days=3), Status="delivered"),
    ]
    plan = plan_page(rows, CUTOFF, holds_pending_digest)
    deleted = [(r.partition, r.row) for b in plan.batches for r in b.rows]
    assert deleted == [
        ("batch-1", "counter"),
        ("batch-1", "flush-0"),
        ("batch-1", "m2"),
        ("batch-2", "flush"),
    ]
    assert plan.kept_pending == 2 and plan.kept_young == 1
    # a kept row splits nothing: the batch-1 rows around it are still one transaction
    assert [b.partition for b in plan.batches] == ["batch-1", "batch-2"]


def test_a_row_without_a_server_timestamp_is_never_deleted():
    plan = plan_page([row("a", "1", stamp=None)], CUTOFF)  # type: ignore[arg-type]
    assert plan.batches == () and plan.kept_young == 1


def test_seen_events_are_kept_back_to_the_last_scan_minus_overlap_and_margin():
    overlap, margin = timedelta(minutes=15), timedelta(minutes=60)
    last_scan = NOW - timedelta(days=3)  # the scan has been failing for three days
    cutoff = seen_events_cutoff(
        NOW, overlap=overlap, margin=margin, last_scan_end=last_scan,
        first_scan_lookback=timedelta(hours=24),
    )
    assert cutoff == last_scan - overlap - margin
    healthy = seen_events_cutoff(
        NOW, overlap=overlap, margin=margin, last_scan_end=NOW - timedelta(minutes=5),
        first_scan_lookback=timedelta(hours=24),
    )
    assert healthy == NOW - timedelta(minutes=5) - overlap - margin
    ahead = seen_events_cutoff(
        NOW, overlap=overlap, margin=margin, last_scan_end=NOW + timedelta(hours=2),
        first_scan_lookback=timedelta(hours=24),
    )
    assert ahead == NOW - overlap - margin  # a cursor from a clock ahead never widens it
    no_cursor = seen_events_cutoff(
        NOW, overlap=overlap, margin=margin, last_scan_end=None,
        first_scan_lookback=timedelta(hours=24),
    )
    assert no_cursor == NOW - timedelta(hours=24) - margin


def test_resume_filter_continues_after_a_key_in_key_order():
    assert resume_filter(None) == ("", {})
    clause, params = resume_filter(("p'1", "r"))
    assert clause.startswith("( PartitionKey gt @afterPk or")
    assert params == {"afterPk": "p'1", "afterRk": "r"}  # values are parameters, never inlined


BASE = {
    "XTAP_VENDOR_TENANT_ID": "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50",
    "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def test_retention_defaults_and_floors():
    retention = load_settings(BASE).retention
    assert (retention.job_retention_days, retention.delivery_retention_days) == (90, 90)
    assert retention.seen_events_margin_minutes == 60 and retention.purge_max_rows == 5000
    assert retention.purge_schedule == "0 17 * * * *"
    for name in ("XTAP_JOB_RETENTION_DAYS", "XTAP_DELIVERY_RETENTION_DAYS"):
        with pytest.raises(ConfigError) as err:
            load_settings({**BASE, name: "7"})
        assert err.value.setting == name and "at least 8 days" in str(err.value)
        assert getattr(load_settings({**BASE, name: "8"}).retention, name[5:].lower()) == 8
    with pytest.raises(ConfigError) as err:
        load_settings({**BASE, "XTAP_PURGE_MAX_ROWS": "0"})
    assert err.value.setting == "XTAP_PURGE_MAX_ROWS"
