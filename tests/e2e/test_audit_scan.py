"""Audit watcher end to end: a policy change in the simulator → exactly one outbox alert."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import (
    BLOCK_INBOUND,
    VENDOR_TENANT_ID,
    b2b_everyone,
    load_demo_scenario,
    seed_registry,
)

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


async def _drain_outbox(app: Any) -> list[dict[str, Any]]:
    from shared.config import QUEUE_ALERTS

    out = []
    while True:
        batch = await app.queues.receive(QUEUE_ALERTS, max_messages=32)
        if not batch:
            return out
        for message in batch:
            out.append(json.loads(message.content))
            await app.queues.delete(QUEUE_ALERTS, message)


class _CrashAfterEnqueue:
    """The app's tables, except that the scan's first bookkeeping write (seen event IDs,
    then the cursor) kills the process: a crash between the alerts' enqueue and the cursor
    move, injected from the test."""

    def __init__(self, tables: Any) -> None:
        self._tables = tables

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tables, name)

    async def upsert(self, table: str, entity: Any) -> Any:
        self._crash_if_cursor(table)
        return await self._tables.upsert(table, entity)

    async def insert(self, table: str, entity: Any) -> Any:
        self._crash_if_cursor(table)
        return await self._tables.insert(table, entity)

    async def replace_if_match(self, table: str, entity: Any, etag: str) -> Any:
        self._crash_if_cursor(table)
        return await self._tables.replace_if_match(table, entity, etag)

    @staticmethod
    def _crash_if_cursor(table: str) -> None:
        from shared.config import TABLE_CURSORS, TABLE_SEEN_EVENTS

        if table in (TABLE_CURSORS, TABLE_SEEN_EVENTS):
            raise SystemExit("simulated crash between enqueue and cursor move")


async def _scan(*, crash: bool = False) -> tuple[list[dict[str, Any]], Any]:
    from shared.bootstrap import build_app
    from shared.config import load_settings
    from shared.services.audit_scan import scan_audit

    app = build_app(load_settings())
    await app.ensure_storage()
    try:
        if not await app.tables.query("xtapClients"):
            await seed_registry(app, load_demo_scenario())
        outcome = None
        real_tables = app.tables
        if crash:
            app.tables = _CrashAfterEnqueue(real_tables)
        try:
            outcome = await scan_audit(app, datetime.now(UTC))
        except SystemExit:
            pass
        finally:
            app.tables = real_tables
        return await _drain_outbox(app), outcome
    finally:
        await app.close()


def _vendor_change_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        a for a in alerts if a["kind"] == "vendor_setting_changed" and "audit:" in a["dedup_key"]
    ]


def test_change_alerts_once_and_a_second_scan_is_quiet(app_env, demo_sim):
    asyncio.run(_scan())  # first scan: baseline of pre-existing demo events
    demo_sim.control.set_partner_policy(
        VENDOR_TENANT_ID, CONTOSO, BLOCK_INBOUND, actor="admin@osttra.com"
    )
    alerts, _outcome = asyncio.run(_scan())
    changes = _vendor_change_alerts(alerts)
    assert len(changes) >= 1
    contoso = [a for a in changes if (a.get("client") or {}).get("tenant_id") == CONTOSO]
    assert contoso, changes
    assert all(a["severity"] == "high" for a in contoso)
    assert any("blocked" in json.dumps(a["changes"]) for a in contoso)
    again, _ = asyncio.run(_scan())
    assert again == []


def test_crash_between_enqueue_and_cursor_loses_nothing_and_duplicates_only_by_key(
    app_env, demo_sim
):
    asyncio.run(_scan())
    demo_sim.control.set_partner_policy(
        VENDOR_TENANT_ID, CONTOSO, BLOCK_INBOUND, actor="admin@osttra.com"
    )
    first, _ = asyncio.run(_scan(crash=True))
    second, _ = asyncio.run(_scan())
    third, _ = asyncio.run(_scan())
    keys_first = {a["dedup_key"] for a in first}
    keys_second = {a["dedup_key"] for a in second}
    assert keys_first and keys_first == keys_second  # repeated, same keys: delivery dedups
    assert third == []


def test_log_analytics_event_ingested_45_minutes_late_is_alerted_exactly_once(
    app_env, demo_sim, monkeypatch
):
    """TimeGenerated is when Log Analytics received the row: the scan follows it."""
    monkeypatch.setenv("XTAP_AUDIT_SOURCE", "log_analytics")
    demo_sim.control.set_partner_policy(  # a known state first, so the late change is one
        VENDOR_TENANT_ID,
        CONTOSO,
        {"b2bCollaborationInbound": b2b_everyone("allowed")},
        actor="admin@osttra.com",
    )
    asyncio.run(_scan())  # baseline: the cursor now stands at this moment
    late = demo_sim.control.set_partner_policy(
        VENDOR_TENANT_ID, CONTOSO, BLOCK_INBOUND, actor="admin@osttra.com", at="now-45m"
    )
    first, _ = asyncio.run(_scan())
    second, _ = asyncio.run(_scan())
    late_alerts = [a for a in first if a["dedup_key"].startswith(f"audit:{late['id']}:")]
    assert late_alerts, [a["dedup_key"] for a in first]
    assert any(a["severity"] == "high" for a in late_alerts), [a["summary"] for a in late_alerts]
    assert [a for a in second if a["dedup_key"].startswith(f"audit:{late['id']}:")] == []


def _source_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if a["dedup_key"].startswith("source:audit_log:")]


def test_audit_scan_refused_with_403_sends_one_alert_with_cause_and_fix(app_env, demo_sim):
    asyncio.run(_scan())
    demo_sim.control.add_fault(
        "/v1.0/auditLogs/directoryAudits",
        status=403,
        body={
            "error": {
                "code": "Authentication_MSGraphPermissionMissing",
                "message": "Calling principal does not have required MSGraph permissions"
                " AuditLog.Read.All",
            }
        },
    )
    try:
        scans = [asyncio.run(_scan()) for _ in range(3)]
    finally:
        demo_sim.control.clear_faults()
    alerts = _source_alerts([a for queued, _ in scans for a in queued])
    assert len(alerts) == 1, alerts  # one queued alert over three scans, not one per scan
    text = json.dumps(alerts[0])
    assert "Authentication_MSGraphPermissionMissing" in text
    assert "AuditLog.Read.All" in text
    assert all(outcome is not None and outcome.failed for _, outcome in scans)


def test_audit_scan_answered_with_garbage_alerts_once_when_it_persists(app_env, demo_sim):
    asyncio.run(_scan())
    demo_sim.control.add_fault(
        "/v1.0/auditLogs/directoryAudits",
        status=200,
        body="<html><body>Bad gateway</body></html>",
        content_type="text/html",
    )
    try:
        scans = [asyncio.run(_scan()) for _ in range(4)]
    finally:
        demo_sim.control.clear_faults()
    per_scan = [len(_source_alerts(queued)) for queued, _ in scans]
    assert sum(per_scan) == 1 and per_scan[0] == 0, per_scan  # a blip is not an alert
    again, _ = asyncio.run(_scan())  # recovered: the scan reads again and says so
    recovered = _source_alerts(again)
    assert [a["severity"] for a in recovered] == ["info"]
