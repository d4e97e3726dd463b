"""Issue 12.6: App Service passes an unresolved Key Vault reference as its literal text.

With ``XTAP_TEAMS_WEBHOOK_URL`` set to ``@Microsoft.KeyVault(...)`` the app imports under
the host, ``/api/v1/health`` reports the Teams channel unavailable, and alerts are still
delivered by e-mail — with one notice, by e-mail, saying the Teams channel is unavailable.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devtools.local_env import WEBHOOK_NAME

pytestmark = pytest.mark.e2e

UNRESOLVED = "@Microsoft.KeyVault(SecretUri=https://xtap-kv.vault.azure.net/secrets/teams-webhook/)"


async def _health_then_deliver(alerts: list[Any]) -> tuple[int, dict[str, Any]]:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    set_app(None)
    app = await get_app()
    runner = LocalRunner()
    try:
        status, _, body = await runner.handle_http("GET", "/api/v1/health")
        for alert in alerts:
            await app.queues.send(QUEUE_ALERTS, alert)
        await runner.drain(["deliver_alert"])
        return status, json.loads(body)
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def test_an_unresolved_teams_reference_degrades_to_email_and_says_so(
    app_env, demo_sim, monkeypatch
):
    from datetime import UTC, datetime

    from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity

    monkeypatch.setenv("XTAP_TEAMS_WEBHOOK_URL", UNRESOLVED)
    monkeypatch.setenv("WEBSITE_SITE_NAME", "xtap-prod")
    now = datetime.now(UTC)
    alerts = [
        AlertRecord(
            dedup_key=f"kv-ref:{i}",
            kind=AlertKind.CLIENT_DRIFTED,
            severity=Severity.HIGH,
            title=f"Client {i}: users can no longer reach OSTTRA",
            client=ClientRef(name=f"Client {i}", tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            created_at=now,
            source="posture",
        )
        for i in range(2)
    ]
    control = demo_sim.control
    before_teams = len(control.webhook_messages(WEBHOOK_NAME))
    before_mail = len(control.mailbox())
    status, health = asyncio.run(_health_then_deliver(alerts))

    assert status == 200
    assert health["status"] == "degraded"
    assert health["channels"]["teams:admins"].startswith(
        "unavailable: XTAP_TEAMS_WEBHOOK_URL is an unresolved Key Vault reference")
    assert control.webhook_messages(WEBHOOK_NAME)[before_teams:] == []
    subjects = sorted(m["message"]["subject"] for m in control.mailbox()[before_mail:])
    assert subjects == [
        "[xtap-watch] High · Alert delivery failing: Alert channel teams:admins is unavailable",
        "[xtap-watch] High · Client drifted: Client 0: users can no longer reach OSTTRA",
        "[xtap-watch] High · Client drifted: Client 1: users can no longer reach OSTTRA",
    ]
