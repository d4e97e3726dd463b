"""Sign-in evidence is a signal: when its source fails, the sweep still checks every client.

Issue 12 item 1. The simulator answers as Entra does: a vendor tenant without Entra ID
P1/P2 gets 403 ``Authentication_RequestFromNonPremiumTenantOrB2CTenant`` on
``/auditLogs/signIns``; a Log Analytics workspace whose diagnostic setting has not created
``SigninLogs`` yet answers 400 SEM0100 ("Failed to resolve table or column expression").
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, scenario_clients, seed_registry

pytestmark = pytest.mark.e2e

SOURCE_ALERT_PREFIX = "source:signin_evidence:"


async def _drain(app: Any, queue: str) -> list[dict[str, Any]]:
    out = []
    while batch := await app.queues.receive(queue, max_messages=32):
        for message in batch:
            out.append(json.loads(message.content))
            await app.queues.delete(queue, message)
    return out


async def _sweeps(times: int) -> dict[str, Any]:
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import PostureStore
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    processed: list[int] = []
    postures: list[dict[str, Any]] = []
    try:
        for _ in range(times):
            await runner.fire_timer("sweep_timer")
            stats = await runner.drain(["check_client"])
            processed.append(stats["check_client"].processed - sum(processed))  # cumulative
            postures.append({p["tenantId"]: p for p in await PostureStore(app.tables).list()})
        queued = await _drain(app, QUEUE_ALERTS)
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return {"processed": processed, "postures": postures, "alerts": queued}


def _source_alerts(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in alerts if str(a.get("dedup_key", "")).startswith(SOURCE_ALERT_PREFIX)]


def test_non_premium_vendor_tenant_checks_every_client_and_alerts_once_over_three_sweeps(
    app_env, demo_sim
):
    clients = {c.tenant_id for c in scenario_clients(load_demo_scenario())}
    demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, premiumLicensed=False)
    try:
        result = asyncio.run(_sweeps(3))
    finally:
        demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, premiumLicensed=True)
    # Every sweep checked every client: one message carries the five demo clients, and
    # each sweep's posture rows are all from that sweep.
    assert result["processed"] == [1] * 3
    sweeps = [{p["sweepId"] for p in rows.values()} for rows in result["postures"]]
    assert all(len(ids) == 1 for ids in sweeps) and len(set().union(*sweeps)) == 3, sweeps
    last = result["postures"][-1]
    assert set(last) == clients
    for tenant in clients:
        record = last[tenant]
        assert record["evidence"]["unavailable"].startswith("Entra ID P1/P2"), record["evidence"]
        assert any(
            line.startswith("Sign-in evidence unavailable: ") for line in record["explanation"]
        )
    alerts = _source_alerts(result["alerts"])
    assert len(alerts) == 1, alerts  # one message queued, not one per sweep
    alert = alerts[0]
    assert alert["kind"] == "source_unavailable"
    assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in json.dumps(alert)
    assert any("XTAP_SIGNIN_SOURCE" in step for step in alert["remediation_steps"])


def test_workspace_without_signinlogs_table_keeps_the_sweep_going(app_env, demo_sim, monkeypatch):
    monkeypatch.setenv("XTAP_SIGNIN_SOURCE", "log_analytics")
    clients = {c.tenant_id for c in scenario_clients(load_demo_scenario())}
    demo_sim.control.set_tenant_flags(VENDOR_TENANT_ID, logAnalyticsTables=["AuditLogs"])
    try:
        result = asyncio.run(_sweeps(2))
    finally:
        demo_sim.control.set_tenant_flags(
            VENDOR_TENANT_ID, logAnalyticsTables=["SigninLogs", "AuditLogs"]
        )
    assert result["processed"] == [1] * 2  # one message for the five demo clients
    sweeps = [{p["sweepId"] for p in rows.values()} for rows in result["postures"]]
    assert all(len(ids) == 1 for ids in sweeps) and len(set().union(*sweeps)) == 2, sweeps
    record = result["postures"][-1][next(iter(clients))]
    assert "SigninLogs" in record["evidence"]["unavailable"]
    alerts = _source_alerts(result["alerts"])
    assert len(alerts) == 1, alerts  # one message queued, not one per sweep
    assert "SEM0100" in json.dumps(alerts[0])
