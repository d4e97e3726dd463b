"""Client posture end to end: drift → exactly one DRIFTED alert; recovery → one RECOVERED."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devtools.local_env import (
    ALLOW_OUTBOUND,
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    load_demo_scenario,
    seed_registry,
)

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
TAILSPIN = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"


async def _sweep() -> list[dict[str, Any]]:
    """One sweep through the runner; returns (and removes) what landed in the outbox."""
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    set_app(None)
    app = await get_app()
    if not await app.tables.query("xtapClients"):
        await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        alerts = []
        while batch := await app.queues.receive(QUEUE_ALERTS, max_messages=32):
            for message in batch:
                alerts.append(json.loads(message.content))
                await app.queues.delete(QUEUE_ALERTS, message)
        return alerts
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def _for(alerts: list[dict[str, Any]], tenant: str) -> list[dict[str, Any]]:
    return [a for a in alerts if (a.get("client") or {}).get("tenant_id") == tenant]


def test_drift_and_recovery_each_alert_exactly_once(app_env, demo_sim):
    first = asyncio.run(_sweep())
    # Healthy or deliberately limited clients do not page anyone on the first look.
    assert not [a for a in _for(first, CONTOSO) if a["kind"].startswith("client_")]
    assert not [a for a in _for(first, FABRIKAM) if a["kind"].startswith("client_")]
    assert not [a for a in _for(first, NORTHWIND) if a["kind"].startswith("client_")]

    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
    drifted = _for(asyncio.run(_sweep()), CONTOSO)
    assert [a["kind"] for a in drifted] == ["client_drifted"]
    alert = drifted[0]
    assert alert["severity"] == "high"
    assert alert["facts"]["Verdict"] == "BLOCKED"
    assert alert["remediation_steps"], "an alert must say what to do"
    assert alert["dedup_key"].startswith(f"client:{CONTOSO}:")

    still = _for(asyncio.run(_sweep()), CONTOSO)
    assert still == []  # no reminder before XTAP_REMINDER_HOURS

    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, ALLOW_OUTBOUND)
    recovered = _for(asyncio.run(_sweep()), CONTOSO)
    assert [a["kind"] for a in recovered] == ["client_recovered"]
    assert _for(asyncio.run(_sweep()), CONTOSO) == []


def test_signin_failures_of_an_unconsented_client_become_evidence_and_an_alert(app_env, demo_sim):
    alerts = _for(asyncio.run(_sweep()), TAILSPIN)
    kinds = {a["kind"] for a in alerts}
    assert "signin_evidence" in kinds, alerts
    evidence = next(a for a in alerts if a["kind"] == "signin_evidence")
    assert evidence["evidence"].get("AADSTS500212", 0) >= 3
    codes = {f["code"] for f in evidence["findings"]}
    assert "CLIENT_SUSPECTED_DRIFT" in codes


def test_a_policy_shape_we_do_not_understand_is_reported_raw_not_crashed_on(app_env, demo_sim):
    from shared.adapters.repositories import PostureStore
    from shared.bootstrap import build_app
    from shared.config import load_settings

    demo_sim.control.set_partner_policy(
        CONTOSO, VENDOR_TENANT_ID, {"b2bCollaborationOutbound": "blocked-for-everyone"}
    )
    asyncio.run(_sweep())

    async def read() -> dict[str, Any] | None:
        app = build_app(load_settings())
        try:
            return await PostureStore(app.tables).get(CONTOSO)
        finally:
            await app.close()

    posture = asyncio.run(read())
    assert posture is not None
    assert posture["verdict"] == "UNKNOWN"
    assert posture["findings"][0]["code"] == "POLICY_INCOMPLETE"
    assert posture["rawPolicy"]["partner"]["b2bCollaborationOutbound"] == "blocked-for-everyone"


FUTURE_KEYWORD_OUTBOUND = {
    "b2bCollaborationOutbound": {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        # A keyword this version does not know, in the decisive list: it may block the
        # vendor's app or not, so the verdict is UNKNOWN (issue 13, items 5 and 7).
        "applications": {
            "accessType": "blocked",
            "targets": [{"target": "AllThirdPartyApplications", "targetType": "application"}],
        },
    }
}


def test_a_client_that_becomes_unknown_is_signalled_and_closed(app_env, demo_sim):
    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, ALLOW_OUTBOUND)
    asyncio.run(_sweep())  # first look: Contoso is ALLOWED
    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, FUTURE_KEYWORD_OUTBOUND)
    dark = _for(asyncio.run(_sweep()), CONTOSO)
    assert [a["kind"] for a in dark] == ["client_posture_unknown"]
    alert = dark[0]
    assert alert["severity"] == "review"
    assert alert["facts"]["Reason code"] == "POLICY_UNKNOWN_VALUE"
    assert "AllThirdPartyApplications" in " ".join(f["message"] for f in alert["findings"])
    assert alert["remediation_steps"]
    assert _for(asyncio.run(_sweep()), CONTOSO) == []  # once, not every sweep

    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, ALLOW_OUTBOUND)
    back = _for(asyncio.run(_sweep()), CONTOSO)
    assert [a["kind"] for a in back] == ["client_posture_known"]
