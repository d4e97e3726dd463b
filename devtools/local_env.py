"""App settings for running xtap-watch locally against Azurite and the Graph simulator.

The IDs and secrets below belong to the simulator's scenarios (``sim/scenarios``): they
are test-double credentials, valid nowhere but on 127.0.0.1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.scenarios import b2b_everyone

ROOT = Path(__file__).resolve().parent.parent

VENDOR_TENANT_ID = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
VENDOR_APP_IDS = ("5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14", "9c2e4b7a-1d35-4f86-b0a9-6e3c8d1f2a57")
XTAP_APP_ID = "3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74"
XTAP_APP_SECRET = "sim-vendor-secret"
READER_APP_ID = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"
READER_APP_SECRET = "sim-reader-secret"
WORKSPACE_ID = "4e1b7c9a-2d5f-4a83-b6c0-9d2e8f1a3c75"
MAIL_SENDER = "xtap-watch@osttra.com"
ADMIN_EMAILS = ("identity-admins@osttra.com",)
WEBHOOK_NAME = "admins"


@dataclass(frozen=True)
class ScenarioClient:
    tenant_id: str
    name: str
    domains: tuple[str, ...]


def scenario_clients(scenario: dict[str, Any]) -> list[ScenarioClient]:
    """Every non-vendor tenant of a scenario: what the registry is seeded with."""
    out = []
    for tenant in scenario.get("tenants", []):
        if tenant["id"] == VENDOR_TENANT_ID:
            continue
        out.append(
            ScenarioClient(
                tenant_id=tenant["id"],
                name=tenant.get("displayName", tenant["id"]),
                domains=tuple(tenant.get("domains") or [tenant.get("defaultDomainName", "")]),
            )
        )
    return out


def load_demo_scenario() -> dict[str, Any]:
    return json.loads((ROOT / "sim" / "scenarios" / "demo.json").read_text())


def settings_env(
    *,
    graph_base: str,
    ca_file: str,
    storage_connection_string: str,
    webhook_url: str | None,
    overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    """Environment (app settings) pointing the app at the simulator and Azurite."""
    env = {
        "XTAP_VENDOR_TENANT_ID": VENDOR_TENANT_ID,
        "XTAP_VENDOR_APP_IDS": ",".join(VENDOR_APP_IDS),
        "XTAP_GRAPH_BASE_URL": f"{graph_base}/v1.0",
        "XTAP_AUTHORITY_HOST": graph_base,
        "XTAP_LOG_ANALYTICS_ENDPOINT": f"{graph_base}/loganalytics",
        "XTAP_LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE_ID,
        "XTAP_TLS_CA_FILE": ca_file,
        "XTAP_VENDOR_CREDENTIAL": "client_secret",
        "XTAP_VENDOR_CLIENT_ID": XTAP_APP_ID,
        "XTAP_VENDOR_CLIENT_SECRET": XTAP_APP_SECRET,
        "XTAP_CLIENT_READER_APP_ID": READER_APP_ID,
        "XTAP_CLIENT_READER_CREDENTIAL": "client_secret",
        "XTAP_CLIENT_READER_SECRET": READER_APP_SECRET,
        "XTAP_MAIL_SENDER": MAIL_SENDER,
        "XTAP_ALERT_EMAILS": ",".join(ADMIN_EMAILS),
        "XTAP_SIGNIN_THRESHOLD": "3",
        "AzureWebJobsStorage": storage_connection_string,
    }
    if webhook_url:
        env["XTAP_TEAMS_WEBHOOK_URL"] = webhook_url
    env.update(overrides or {})
    return env


# Fabrikam deliberately limits the vendor to one group: LIMITED is its agreed posture.
DEMO_EXPECTED_GROUPS = {
    "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e": ("8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13",)
}


async def seed_registry(app: Any, scenario: dict[str, Any]) -> int:
    """Register every client tenant of the scenario (what onboarding would have done)."""
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import ClientRecord, ExpectedScope

    registry = ClientRegistry(app.tables)
    clients = scenario_clients(scenario)
    for client in clients:
        await registry.upsert(
            ClientRecord(
                tenant_id=client.tenant_id,
                name=client.name,
                domains=client.domains,
                # the client administrator the vendor's onboarding recorded
                contacts=(f"it-admin@{client.domains[0]}",) if client.domains else (),
                expected_scope=ExpectedScope(
                    user_groups=DEMO_EXPECTED_GROUPS.get(client.tenant_id, ())
                ),
            )
        )
    return len(clients)


# Partner-entry bodies the demo and the tests apply through the simulator's control API.
BLOCK_OUTBOUND = {"b2bCollaborationOutbound": b2b_everyone("blocked")}
ALLOW_OUTBOUND = {"b2bCollaborationOutbound": b2b_everyone("allowed")}
BLOCK_INBOUND = {"b2bCollaborationInbound": b2b_everyone("blocked")}
