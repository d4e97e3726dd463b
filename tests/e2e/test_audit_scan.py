"""Audit watcher end to end: a policy change in the simulator → exactly one outbox alert."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import BLOCK_INBOUND, VENDOR_TENANT_ID, load_demo_scenario, seed_registry

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
        try:
            outcome = await scan_audit(app, datetime.now(UTC), crash_before_cursor=crash)
        except SystemExit:
            pass
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
