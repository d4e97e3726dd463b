"""Helpers shared by the chaos, crash and poison tests (no fixtures here)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from devtools.local_env import VENDOR_TENANT_ID

# A client's outbound B2B collaboration toward the vendor blocked for everyone and every
# app: the shape the Entra admin center writes (Graph crossTenantAccessPolicy docs).
BLOCK_OUTBOUND = {
    "b2bCollaborationOutbound": {
        "usersAndGroups": {
            "accessType": "blocked",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "blocked",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }
}


def inbound(access: str) -> dict[str, Any]:
    """The vendor's inbound B2B collaboration for one partner: allowed or blocked for all."""
    return {
        "b2bCollaborationInbound": {
            "usersAndGroups": {
                "accessType": access,
                "targets": [{"target": "AllUsers", "targetType": "user"}],
            },
            "applications": {
                "accessType": access,
                "targets": [{"target": "AllApplications", "targetType": "application"}],
            },
        }
    }


@dataclass(frozen=True)
class Client:
    index: int
    tenant_id: str
    name: str
    domain: str
    kind: str  # allowed | limited | blocked | unconsented (sim.scenarios.generated_client)


def generated_clients(count: int) -> list[Client]:
    from sim.scenarios import generated_client

    out = []
    for index in range(count):
        c = generated_client(index)
        out.append(Client(index, c.tenant_id, c.display_name, c.domain, c.kind))
    return out


@asynccontextmanager
async def app_and_runner() -> AsyncIterator[tuple[Any, Any]]:
    """A fresh process-wide App (this event loop) and a LocalRunner on function_app.py."""
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    runner = LocalRunner()
    try:
        yield app, runner
    finally:
        await runner.close()
        await app.close()
        set_app(None)


async def seed(app: Any, count: int) -> None:
    from devtools.local_env import seed_registry
    from sim.scenarios import generated_scenario

    await seed_registry(app, generated_scenario(count))


async def take_all(app: Any, queue: str) -> list[str]:
    """Receive and delete every visible message of a queue; their texts."""
    out: list[str] = []
    while batch := await app.queues.receive(queue, max_messages=32, visibility_timeout=60):
        for message in batch:
            out.append(message.content)
            await app.queues.delete(queue, message)
    return out


def by_key(alert_texts: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Outbox alerts grouped by de-duplication key (what delivery posts once)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for text in alert_texts:
        alert = json.loads(text)
        groups[alert["dedup_key"]].append(alert)
    return dict(groups)


def tenant_of(alert: dict[str, Any]) -> str | None:
    client = alert.get("client") or {}
    return client.get("tenant_id")


__all__ = [
    "BLOCK_OUTBOUND",
    "VENDOR_TENANT_ID",
    "Client",
    "app_and_runner",
    "by_key",
    "generated_clients",
    "inbound",
    "seed",
    "take_all",
    "tenant_of",
]
