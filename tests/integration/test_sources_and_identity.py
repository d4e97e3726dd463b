"""Adapters against the simulator: Log Analytics sources, managed identity, audit throttle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, seed_registry
from tests.integration.app_helpers import with_app

pytestmark = pytest.mark.integration

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
TAILSPIN = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"
MI_CLIENT_ID = "e2d7b4a9-3c16-4a8f-b5e0-7f9c2d1a6b38"
MI_HEADER = "sim-identity-header"



def test_log_analytics_signin_source_counts_500212_per_home_tenant(app_env, monkeypatch):
    monkeypatch.setenv("XTAP_SIGNIN_SOURCE", "log_analytics")

    async def use(app: Any) -> Any:
        return await app.signin_source().failure_counts(datetime.now(UTC), 24)

    counts = asyncio.run(with_app(use))
    assert counts[TAILSPIN]["500212"] >= 3


def test_graph_and_log_analytics_signin_sources_agree(app_env, monkeypatch):
    async def use(app: Any) -> Any:
        return await app.signin_source().failure_counts(datetime.now(UTC), 24)

    from_graph = asyncio.run(with_app(use))
    monkeypatch.setenv("XTAP_SIGNIN_SOURCE", "log_analytics")
    from_logs = asyncio.run(with_app(use))
    assert from_graph == from_logs


def test_log_analytics_audit_source_feeds_the_same_scanner(app_env, demo_sim, monkeypatch):
    from shared.config import QUEUE_ALERTS
    from shared.services.audit_scan import scan_audit

    monkeypatch.setenv("XTAP_AUDIT_SOURCE", "log_analytics")

    async def use(app: Any) -> Any:
        await seed_registry(app, load_demo_scenario())
        await scan_audit(app, datetime.now(UTC))
        await app.queues.clear(QUEUE_ALERTS)
        demo_sim.control.set_partner_policy(
            VENDOR_TENANT_ID,
            CONTOSO,
            {"automaticUserConsentSettings": {"inboundAllowed": False}},
            actor="admin@osttra.com",
            value_style="pascal",
        )
        outcome = await scan_audit(app, datetime.now(UTC))
        return outcome, await app.queues.peek_all(QUEUE_ALERTS)

    outcome, queued = asyncio.run(with_app(use))
    assert outcome.changes >= 1
    assert any("automaticUserConsentSettings" in m or "redeem" in m.lower() for m in queued)


def test_managed_identity_and_federated_reader_credentials_read_policies(
    app_env, demo_sim, monkeypatch
):
    """The Azure path: no secret anywhere; the MI token is the reader app's assertion."""
    from shared.adapters.policy_reader import read_policy_pair

    monkeypatch.setenv("XTAP_VENDOR_CREDENTIAL", "managed_identity")
    monkeypatch.setenv("AZURE_CLIENT_ID", MI_CLIENT_ID)
    monkeypatch.setenv("XTAP_CLIENT_READER_CREDENTIAL", "federated_managed_identity")
    monkeypatch.delenv("XTAP_VENDOR_CLIENT_SECRET")
    monkeypatch.delenv("XTAP_CLIENT_READER_SECRET")
    monkeypatch.setenv("IDENTITY_ENDPOINT", demo_sim.msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", MI_HEADER)

    async def use(app: Any) -> Any:
        vendor_default = await app.graph.vendor().get_json(
            "/policies/crossTenantAccessPolicy/default"
        )
        pair = await read_policy_pair(app.graph.client_tenant(CONTOSO), VENDOR_TENANT_ID)
        return vendor_default, pair

    vendor_default, pair = asyncio.run(with_app(use))
    assert "b2bCollaborationInbound" in vendor_default
    assert "b2bCollaborationOutbound" in pair.default
    tokens = demo_sim.control.requests(path_contains="/oauth2/v2.0/token")
    assert any(r.get("tenantId") == CONTOSO for r in tokens)


def test_audit_scan_keeps_to_the_5_per_10_seconds_throttle(app_env, demo_sim):
    from shared.adapters.audit_source import GraphAuditSource

    control = demo_sim.control
    now = datetime.now(UTC)
    control.add_audit_events(
        VENDOR_TENANT_ID,
        [
            {
                "category": "CrossTenantAccessSettings",
                "activityDisplayName": "Update a partner cross-tenant access setting",
                "activityDateTime": (now - timedelta(minutes=i + 1)).isoformat(),
            }
            for i in range(30)
        ],
    )
    control.set_throttle("/auditLogs/directoryAudits", 5, 10)
    try:

        async def use(app: Any) -> Any:
            source = GraphAuditSource(app.graph.vendor(), page_size=5)
            records = await source.fetch(now - timedelta(hours=1), now)
            return records, source.requests

        records, requests = asyncio.run(with_app(use))
    finally:
        control.clear_throttles()
    assert len(records) >= 30
    assert requests >= 6  # more pages than one throttle window allows
    log = control.requests(path_contains="/auditLogs/directoryAudits")
    assert not [r for r in log if r.get("status") == 429]
