"""Acknowledging a drift end to end (issue 18.1): through the HTTP API of function_app.py
(the local runner), the sweep and check_client on Azurite and the simulator, with the
triggers' clock injected so two hours of hourly reminders take no wall time.

A drift acknowledged for two hours sends no reminder for those two hours; a new finding
(B2B direct connect opened: the reach is the same) is told once and a worse verdict during
it still alerts (both say it is acknowledged); expiry sends one reminder.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.local_env import (
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    WEBHOOK_NAME,
    load_demo_scenario,
    seed_registry,
)
from shared.domain.principal import encode_client_principal
from sim.scenarios import b2b_everyone
from tests.e2e.injected_time import Clock, install_clock

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SOME_GROUP = "6f0c2a4e-8b1d-4c3f-9e5a-7d2b4c6e8f01"
# Only one group may reach the vendor: LIMITED, and not Contoso's registered scope.
LIMIT_OUTBOUND = {
    "b2bCollaborationOutbound": {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": SOME_GROUP, "targetType": "group"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }
}
SUPPORT = encode_client_principal(
    name="alice@osttra.com",
    object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
    roles=("Reinvite.Request",),
    tenant_id=VENDOR_TENANT_ID,
)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return install_clock(monkeypatch, datetime.now(UTC).replace(microsecond=0))


def shown_labels(posted: dict[str, Any]) -> list[str]:
    """The fact labels a Teams card shows without "Show details" (isVisible false)."""
    shown: list[str] = []

    def walk(node: Any, hidden: bool) -> None:
        if isinstance(node, dict):
            hidden = hidden or node.get("isVisible") is False
            if node.get("type") == "TextBlock" and node.get("weight") == "bolder" and not hidden:
                shown.append(str(node.get("text")))
            for value in node.values():
                walk(value, hidden)
        elif isinstance(node, list):
            for value in node:
                walk(value, hidden)

    walk(posted["attachments"][0]["content"], False)
    return shown


def _contoso(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts
        if (a.get("client") or {}).get("tenant_id") == CONTOSO and a["kind"].startswith("client_")
    ]


def test_an_acknowledged_drift_is_not_reminded_but_changes_and_expiry_still_alert(
    app_env, demo_sim, clock, monkeypatch
):
    monkeypatch.setenv("XTAP_REMINDER_HOURS", "1")
    control = demo_sim.control
    t0 = clock.now

    async def scenario() -> dict[str, Any]:
        from devtools.runner import LocalRunner
        from shared.bootstrap import get_app, set_app
        from shared.config import QUEUE_ALERTS

        set_app(None)
        app = await get_app()
        runner = LocalRunner()

        async def sweep_at(offset: timedelta) -> list[dict[str, Any]]:
            clock.now = t0 + offset
            await runner.fire_timer("sweep_timer")
            await runner.drain(["check_client"])
            out = []
            while batch := await app.queues.receive(QUEUE_ALERTS, max_messages=32):
                for message in batch:
                    out.append(json.loads(message.content))
                    await app.queues.delete(QUEUE_ALERTS, message)
            return _contoso(out)

        async def api(method: str, route: str, body: Any = None) -> tuple[int, Any]:
            headers = {
                "X-MS-CLIENT-PRINCIPAL": SUPPORT,
                "Content-Type": "application/json",
                "Accept": "application/json",
            }
            raw = json.dumps(body).encode() if body is not None else b""
            status, _, answer = await runner.handle_http(method, route, headers=headers, body=raw)
            return status, json.loads(answer)

        ack_route = f"/api/v1/clients/{CONTOSO}/acknowledgement"
        seen: dict[str, Any] = {}
        try:
            await seed_registry(app, load_demo_scenario())
            seen["baseline"] = await sweep_at(timedelta(0))
            seen["refused_while_ok"] = await api(
                "POST", ack_route, {"reason": "r", "until": (t0 + timedelta(hours=1)).isoformat()}
            )
            control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, LIMIT_OUTBOUND)
            seen["drifted"] = await sweep_at(timedelta(minutes=10))
            # the drift card's Acknowledge link, opened where the app serves it
            links = [link["url"] for a in seen["drifted"] for link in a["links"]
                     if link["title"] == "Acknowledge"]
            seen["ack_links"] = links
            if links:
                status, _, page = await runner.handle_http("GET", urlsplit(links[0]).path)
                seen["ack_page"] = (status, page.decode("utf-8", "replace"))
            until = t0 + timedelta(minutes=10, hours=2)
            clock.now = t0 + timedelta(minutes=12)
            seen["ack"] = await api(
                "POST", ack_route,
                {"reason": "ticket 4711: Contoso fixes it today", "until": until.isoformat()},
            )
            seen["posture"] = await api("GET", f"/api/v1/clients/{CONTOSO}/posture")
            seen["report"] = await api("GET", "/api/v1/report")
            _, _, page = await runner.handle_http(
                "GET", "/api/v1/report", headers={"X-MS-CLIENT-PRINCIPAL": SUPPORT,
                                                  "Accept": "text/html"})
            seen["report_html"] = page.decode()
            await runner.fire_timer("heartbeat_timer")
            seen["heartbeat"] = []
            for message in await app.queues.receive(QUEUE_ALERTS, max_messages=32):
                seen["heartbeat"].append(json.loads(message.content))
                await app.queues.delete(QUEUE_ALERTS, message)
            # 1 h after the drift alert a reminder is due: the acknowledgement holds it
            seen["at_1h10"] = await sweep_at(timedelta(hours=1, minutes=10))
            # a new finding during the acknowledgement is told, once
            control.set_partner_policy(
                CONTOSO, VENDOR_TENANT_ID, {"b2bDirectConnectOutbound": b2b_everyone("allowed")}
            )
            seen["new_finding"] = await sweep_at(timedelta(hours=1, minutes=20))
            seen["at_1h30"] = await sweep_at(timedelta(hours=1, minutes=30))
            # a worse verdict during the acknowledgement still alerts
            control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
            seen["worse"] = await sweep_at(timedelta(hours=1, minutes=40))
            seen["at_2h05"] = await sweep_at(timedelta(hours=2, minutes=5))
            seen["at_2h08"] = await sweep_at(timedelta(hours=2, minutes=8))
            # expired at 2 h 10 min, still drifted: one reminder says so
            seen["expired"] = await sweep_at(timedelta(hours=2, minutes=15))
            seen["after"] = await sweep_at(timedelta(hours=2, minutes=45))
            seen["posture_after"] = await api("GET", f"/api/v1/clients/{CONTOSO}/posture")
            # the new-finding, worse-verdict and expiry alerts as Teams and the mailbox get them
            before = len(control.webhook_messages(WEBHOOK_NAME))
            mailed = len(control.mailbox())
            from shared.domain.messages import AlertRecord

            for alert in [*seen["new_finding"], *seen["worse"], *seen["expired"]]:
                await app.queues.send(QUEUE_ALERTS, AlertRecord.model_validate(alert))
            await runner.drain(["deliver_alert"])
            seen["cards"] = [
                json.dumps(m["body"]) for m in control.webhook_messages(WEBHOOK_NAME)[before:]
            ]
            seen["mails"] = [m["message"] for m in control.mailbox()[mailed:]]
            seen["lift_none"] = await api("DELETE", ack_route)
            return seen
        finally:
            await runner.close()
            await app.close()
            set_app(None)

    seen = asyncio.run(scenario())
    assert seen["baseline"] == []
    status, body = seen["refused_while_ok"]
    assert status == 409 and body["error"]["code"] == "not_drifted"

    (drifted,) = seen["drifted"]
    assert drifted["kind"] == "client_drifted" and drifted["facts"]["Verdict"] == "LIMITED"
    (link,) = seen["ack_links"]
    # By default the app serves its own pages: the link opens one, at the instructions.
    assert link.startswith("http://127.0.0.1:7071/api/v1/runbooks"), link
    assert urlsplit(link).fragment == "acknowledge-a-drift"
    status, page = seen["ack_page"]
    assert status == 200, page[:300]
    assert 'id="acknowledge-a-drift"' in page
    assert "xtap-watch clients ack" in page and "/acknowledgement" in page

    status, body = seen["ack"]
    assert status == 200, body
    assert body["acknowledgement"]["by"].startswith("alice@osttra.com")
    status, posture = seen["posture"]
    assert status == 200 and posture["acknowledgement"]["reason"].startswith("ticket 4711")
    assert posture["acknowledgement"]["active"] is True

    status, report = seen["report"]
    assert status == 200, report
    (row,) = [r for r in report["rows"] if r["tenantId"] == CONTOSO]
    assert row["acknowledgement"]["reason"] == "ticket 4711: Contoso fixes it today"
    assert row["acknowledgement"]["by"].startswith("alice@osttra.com")
    assert row["acknowledgement"]["active"] is True
    html = seen["report_html"]
    assert "<th scope=\"col\">Acknowledged</th>" in html
    assert "ticket 4711: Contoso fixes it today" in html and "by alice@osttra.com" in html

    beats = [a for a in seen["heartbeat"] if a["kind"] == "heartbeat"]
    assert len(beats) == 1, [(a["kind"], a["dedup_key"]) for a in seen["heartbeat"]]
    heartbeat = beats[0]
    assert heartbeat["facts"]["Acknowledged"].startswith("1: Contoso Markets by alice@osttra.com")

    assert seen["at_1h10"] == []  # the reminder that was due is held
    (told,) = seen["new_finding"]
    assert told["kind"] == "client_reminder"
    assert told["title"] == (
        "New finding while acknowledged: Contoso Markets (CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN)"
    )
    assert told["facts"]["New findings"] == "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN"
    assert told["facts"]["Acknowledged"].startswith("by alice@osttra.com")
    assert told["dedup_key"].endswith(":ack_new_finding:1.1")
    assert seen["at_1h30"] == []  # told once

    (worse,) = seen["worse"]
    assert worse["kind"] == "client_drifted" and worse["facts"]["Verdict"] == "BLOCKED"
    assert worse["facts"]["Acknowledged"].startswith("by alice@osttra.com")
    assert "ticket 4711" in worse["facts"]["Acknowledged"]
    assert seen["at_2h05"] == [] and seen["at_2h08"] == []
    (expired,) = seen["expired"]
    assert expired["kind"] == "client_reminder"
    assert expired["title"] == "Acknowledgement expired: Contoso Markets is still drifted"
    assert expired["dedup_key"].endswith(":ack_expired:1")
    assert seen["after"] == []  # the next reminder waits a full interval from the expiry

    status, posture = seen["posture_after"]
    assert posture["acknowledgement"]["active"] is False
    status, body = seen["lift_none"]
    assert status == 200 and body["lifted"]["active"] is False

    cards, mails = seen["cards"], seen["mails"]
    assert len(cards) == 3 and len(mails) == 3
    for alert, fact in ((told, "Acknowledged"), (worse, "Acknowledged"),
                        (expired, "Acknowledgement")):
        title = json.dumps(alert["title"])[1:-1]  # as it sits in the posted JSON
        (card,) = [c for c in cards if title in c]
        assert "ticket 4711" in card and fact in shown_labels(json.loads(card)), card[:2000]
        (mail,) = [m for m in mails if alert["title"] in m["subject"]]
        assert "ticket 4711" in mail["body"]["content"]
