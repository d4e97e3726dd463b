"""The sweep's vendor side and identity end to end: sweep timer → queue → check → outbox.

* 12.2 — a broken federated credential changes no client's consent status; the vendor's
  admins get exactly one alert naming the fault.
* 13.4 — a gateway 404 on the partner read is not "no vendor entry": retried, then UNKNOWN.
* 14.3 — after the audit watcher sees the vendor change its own policy, the next check uses
  the new policy, in another process (another App) than the one that saw it.
* 14.2 — a vendor-wide setting (MFA trust on the default) is one alert naming the clients.
* 13.7 — a vendor policy that does not parse: one alert with cause and fix, not silence.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import READER_APP_ID, VENDOR_TENANT_ID, load_demo_scenario, seed_registry

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
MI_CLIENT_ID = "e2d7b4a9-3c16-4a8f-b5e0-7f9c2d1a6b38"
MI_PRINCIPAL = "a9f3c6e1-4d28-4b7a-8e53-2c1b9d7f0a64"
PARTNER_PATH = f"/policies/crossTenantAccessPolicy/partners/{VENDOR_TENANT_ID}"


async def _fresh_app() -> Any:
    """A new App: what another process (or another instance) would build."""
    from shared.bootstrap import build_app
    from shared.config import load_settings

    app = build_app(load_settings())
    await app.ensure_storage()
    return app


async def _take_alerts(app: Any) -> list[dict[str, Any]]:
    from shared.config import QUEUE_ALERTS

    alerts = []
    while batch := await app.queues.receive(QUEUE_ALERTS, max_messages=32):
        for message in batch:
            alerts.append(json.loads(message.content))
            await app.queues.delete(QUEUE_ALERTS, message)
    return alerts


async def _sweep(*, deliver: bool = False) -> dict[str, Any]:
    """One sweep through the runner in a fresh process-like App; the outbox is taken."""
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import ClientRegistry, PostureStore
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    if not await app.tables.query("xtapClients"):
        await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        await runner.fire_timer("sweep_timer")
        stats = await runner.drain(["check_client"])
        if deliver:
            await runner.drain(["deliver_alert"])
        alerts = await _take_alerts(app)
        postures = {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
        consents = {c.tenant_id: c.consent.value for c in await ClientRegistry(app.tables).list()}
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return {"alerts": alerts, "postures": postures, "consents": consents, "stats": stats}


@pytest.fixture
def restore_vendor(demo_sim: Any) -> Any:
    """Put the vendor tenant's policies back after a test changed them (module-wide sim)."""
    before = demo_sim.control.tenant(VENDOR_TENANT_ID)
    yield
    control = demo_sim.control
    control.set_default_policy(VENDOR_TENANT_ID, before["default"], replace=True)
    for partner, policy in before["partnerPolicies"].items():
        control.set_partner_policy(VENDOR_TENANT_ID, partner, policy, replace=True)


def _federated(monkeypatch: pytest.MonkeyPatch, demo_sim: Any) -> None:
    monkeypatch.setenv("XTAP_CLIENT_READER_CREDENTIAL", "federated_managed_identity")
    monkeypatch.setenv("AZURE_CLIENT_ID", MI_CLIENT_ID)
    monkeypatch.delenv("XTAP_CLIENT_READER_SECRET")
    monkeypatch.setenv("IDENTITY_ENDPOINT", demo_sim.msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "sim-identity-header")


# ----------------------------------------------------------------------------- 12.2


def test_a_broken_federated_credential_changes_no_consent_and_alerts_the_admins_once(
    app_env, demo_sim, monkeypatch
):
    _federated(monkeypatch, demo_sim)
    before = asyncio.run(_sweep())
    assert before["consents"][CONTOSO] == "granted"
    assert before["postures"][CONTOSO]["verdict"] == "ALLOWED"

    demo_sim.control.set_federated_subjects(READER_APP_ID, [])  # someone deleted the FIC
    try:
        second = asyncio.run(_sweep(deliver=True))
        third = asyncio.run(_sweep(deliver=True))
    finally:
        demo_sim.control.set_federated_subjects(READER_APP_ID, [MI_PRINCIPAL])

    # No client's consent status changed, and nobody was told to consent again.
    assert second["consents"] == before["consents"]
    assert third["consents"] == before["consents"]
    kinds = [a["kind"] for a in second["alerts"] + third["alerts"]]
    assert "client_consent_missing" not in kinds
    for tenant in (CONTOSO, FABRIKAM, NORTHWIND):
        posture = third["postures"][tenant]
        assert posture["verdict"] == "UNKNOWN"
        assert posture["reason"] == "CLIENT_TENANT_UNREACHABLE"
        assert "AADSTS700213" in posture["findings"][0]["message"]
    # The admins got exactly one card, and it names the fault.
    cards = [
        m
        for m in demo_sim.control.webhook_messages("admins")
        if "cannot sign in to client tenants" in json.dumps(m["body"])
    ]
    assert len(cards) == 1, [json.dumps(c["body"])[:200] for c in cards]
    assert "federated credential" in json.dumps(cards[0]["body"])


def test_a_deleted_client_tenant_is_its_own_finding_and_keeps_the_consent_status(
    app_env, demo_sim
):
    """12.2: AADSTS90002 (the simulator's default answer for a tenant it does not know) is
    CLIENT_TENANT_NOT_FOUND on the record, not "consent missing" nor "unreachable"."""
    from shared.adapters.repositories import ClientRegistry
    from shared.bootstrap import get_app, set_app
    from shared.domain.clients import ClientRecord, ConsentStatus

    gone = str(uuid.uuid4())  # a tenant Entra does not know (deleted, or a wrong ID)

    async def register() -> None:
        set_app(None)
        app = await get_app()
        try:
            await seed_registry(app, load_demo_scenario())
            await ClientRegistry(app.tables).upsert(ClientRecord(
                tenant_id=gone, name="Gone Ltd", domains=("gone.example",),
                consent=ConsentStatus.GRANTED))
        finally:
            await app.close()
            set_app(None)

    asyncio.run(register())
    out = asyncio.run(_sweep())
    posture = out["postures"][gone]
    assert posture["verdict"] == "UNKNOWN"
    assert posture["reason"] == "CLIENT_TENANT_NOT_FOUND", posture
    assert "AADSTS90002" in posture["findings"][0]["message"]
    assert out["consents"][gone] == "granted"  # a missing tenant is not missing consent
    kinds = [a["kind"] for a in out["alerts"] if (a.get("client") or {}).get("tenant_id") == gone]
    assert "client_consent_missing" not in kinds


# ----------------------------------------------------------------------------- 13.4


def test_a_gateway_404_on_the_partner_read_is_retried_then_unknown_never_blocked(app_env, demo_sim):
    first = asyncio.run(_sweep())
    assert first["postures"][NORTHWIND]["verdict"] == "ALLOWED"  # blocked default + exception

    demo_sim.control.add_gateway_404(PARTNER_PATH, "html", tenant_id=NORTHWIND)
    try:
        second = asyncio.run(_sweep())
    finally:
        demo_sim.control.clear_faults()
    northwind = second["postures"][NORTHWIND]
    assert northwind["verdict"] == "UNKNOWN", northwind
    assert northwind["reason"] == "CLIENT_TENANT_UNREACHABLE"
    assert "inconclusive_not_found" in northwind["findings"][0]["message"]
    # Never a drift: the only alert is the one "posture unknown" signal an OK client going
    # dark gets (issue 13.7), at review severity.
    northwind_alerts = [
        a
        for a in second["alerts"]
        if (a.get("client") or {}).get("tenant_id") == NORTHWIND and a["kind"].startswith("client_")
    ]
    assert [(a["kind"], a["severity"]) for a in northwind_alerts] == [
        ("client_posture_unknown", "review")
    ], northwind_alerts
    assert second["stats"]["check_client"].failed_attempts >= 4  # retried before concluding


@pytest.mark.parametrize("kind", ["unexpected_code", "empty"])
def test_a_passing_404_of_another_shape_is_retried_and_the_next_read_decides(
    app_env, demo_sim, kind
):
    asyncio.run(_sweep())
    demo_sim.control.add_gateway_404(PARTNER_PATH, kind, tenant_id=NORTHWIND, count=1)
    try:
        second = asyncio.run(_sweep())
    finally:
        demo_sim.control.clear_faults()
    assert second["postures"][NORTHWIND]["verdict"] == "ALLOWED"
    # Northwind's check failed inside the sweep message and was retried alone (a second
    # message), which the next read decided; the sweep message itself did not fail.
    assert second["stats"]["check_client"].processed == 2
    assert second["stats"]["check_client"].failed_attempts == 0


# ----------------------------------------------------------------------------- 14.3


def test_the_check_after_the_audit_watcher_saw_a_vendor_change_uses_the_new_policy(
    app_env, demo_sim, restore_vendor
):
    from shared.config import QUEUE_CHECK_CLIENT
    from shared.domain.messages import CheckClientBatch
    from shared.services.audit_scan import scan_audit
    from shared.services.posture_sweep import check_client, schedule_sweep

    async def scenario() -> dict[str, Any]:
        checker = await _fresh_app()  # the instance that runs checks
        watcher = await _fresh_app()  # the instance whose audit timer fires
        try:
            await seed_registry(checker, load_demo_scenario())
            await scan_audit(watcher, datetime.now(UTC))  # settle the audit cursor
            await schedule_sweep(checker, datetime.now(UTC))
            queued = await checker.queues.receive(QUEUE_CHECK_CLIENT, max_messages=32)
            batches = [CheckClientBatch.model_validate_json(q.content) for q in queued]
            messages = {m.tenant_id: m for batch in batches for m in batch.checks}
            # One check on the checker: it has now seen (and may keep) the old policy.
            await check_client(checker, messages[FABRIKAM], datetime.now(UTC))
            demo_sim.control.set_default_policy(
                VENDOR_TENANT_ID,
                {"inboundTrust": {"isMfaAccepted": True}},
                actor="admin@osttra.com",
            )
            scanned = await scan_audit(watcher, datetime.now(UTC))
            # A message of the sweep scheduled before the change, checked on the checker.
            await check_client(checker, messages[CONTOSO], datetime.now(UTC))
            from shared.adapters.repositories import PostureStore

            return {
                "changes": scanned.changes,
                "contoso": await PostureStore(checker.tables).get(CONTOSO),
            }
        finally:
            await checker.close()
            await watcher.close()

    result = asyncio.run(scenario())
    assert result["changes"] >= 1
    codes = {f["code"] for f in result["contoso"]["vendorFindings"]}
    assert "VENDOR_MFA_TRUST_ON_DEFAULT" in codes, codes


# ----------------------------------------------------------------------------- 14.2


def test_mfa_trust_on_the_vendor_default_is_one_alert_naming_the_clients(
    app_env, demo_sim, restore_vendor
):
    asyncio.run(_sweep())
    demo_sim.control.set_default_policy(
        VENDOR_TENANT_ID, {"inboundTrust": {"isMfaAccepted": True}}, actor="admin@osttra.com"
    )
    alerts = asyncio.run(_sweep())["alerts"]
    mentions = [a for a in alerts if "VENDOR_MFA_TRUST_ON_DEFAULT" in json.dumps(a)]
    assert len(mentions) == 1, [a["dedup_key"] for a in mentions]
    alert = mentions[0]
    assert alert["client"] is None
    for name in ("Contoso Markets", "Fabrikam Clearing", "Northwind Securities"):
        assert name in alert["summary"]
    # The next sweep does not repeat it.
    again = asyncio.run(_sweep())["alerts"]
    assert not [a for a in again if "VENDOR_MFA_TRUST_ON_DEFAULT" in json.dumps(a)]


# ----------------------------------------------------------------------------- 13.7


def test_a_vendor_policy_that_does_not_parse_is_one_alert_with_cause_and_fix(
    app_env, demo_sim, restore_vendor
):
    asyncio.run(_sweep())
    demo_sim.control.set_partner_policy(
        VENDOR_TENANT_ID, CONTOSO, {"inboundTrust": "trust-them"}, actor="admin@osttra.com"
    )
    second = asyncio.run(_sweep())
    third = asyncio.run(_sweep())
    unreadable = [
        a
        for a in second["alerts"] + third["alerts"]
        if any(f["code"] == "VENDOR_POLICY_UNREADABLE" for f in a.get("findings", []))
    ]
    assert len(unreadable) == 1, [a["dedup_key"] for a in unreadable]
    assert "Contoso Markets" in unreadable[0]["summary"]
    assert unreadable[0]["remediation_steps"]
    posture = third["postures"][CONTOSO]
    assert "did not parse" in posture["vendorSideSkipped"]
    assert posture["verdict"] == "ALLOWED"  # the client side still ran


# ------------------------------------------------------------------ concurrent duplicates


def test_two_checks_of_one_client_at_once_both_succeed_and_alert_once(app_env, demo_sim):
    """A repeated message beside the next sweep's: the ETag race is settled in-process,
    without failing a message attempt (which, repeated, would poison it)."""
    from shared.adapters.repositories import alert_state_store
    from shared.domain.messages import CheckClient
    from shared.services.posture_sweep import check_client

    async def scenario() -> tuple[list[Any], Any]:
        app = await _fresh_app()
        try:
            await seed_registry(app, load_demo_scenario())
            now = datetime.now(UTC)
            message = CheckClient(tenant_id=CONTOSO, sweep_id="race", requested_at=now)
            outcomes = await asyncio.gather(
                check_client(app, message, now), check_client(app, message, now)
            )
            state, _ = await alert_state_store(app.tables).get(CONTOSO)
            return list(outcomes), state
        finally:
            await app.close()

    outcomes, state = asyncio.run(scenario())
    assert [o.verdict for o in outcomes] == ["ALLOWED", "ALLOWED"]
    assert state["client"]["status"] == "ok"
