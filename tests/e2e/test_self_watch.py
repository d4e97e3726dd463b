"""xtap-watch watching itself, end to end through function_app.py, the local runner, Azurite
and the simulator (issue 18.2, 18.3): the watchdog's alerts and /api/v1/health, the daily
heartbeat on both channels.

Time is injected: the runner fires each timer when the test says the schedule came up, with
the triggers' clock set to that moment, so "three audit intervals" take no wall time.
Nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import (
    ADMIN_EMAILS,
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    WEBHOOK_NAME,
    load_demo_scenario,
    seed_registry,
)
from tests.e2e.injected_time import Clock, install_clock

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
AUDIT_PATH = "/auditLogs/directoryAudits"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    # Next hour after the real one: rows written now (the registry) precede every fake time.
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    return install_clock(monkeypatch, start)


class Stack:
    """The runner and the app for one scenario (one event loop)."""

    def __init__(self, runner: Any, app: Any) -> None:
        self.runner = runner
        self.app = app

    async def fire(self, timer: str) -> None:
        await self.runner.fire_timer(timer)

    async def outbox(self) -> list[dict[str, Any]]:
        """What the producers enqueued so far (removed from the queue)."""
        from shared.config import QUEUE_ALERTS

        out = []
        while batch := await self.app.queues.receive(QUEUE_ALERTS, max_messages=32):
            for message in batch:
                out.append(json.loads(message.content))
                await self.app.queues.delete(QUEUE_ALERTS, message)
        return out

    async def deliver(self) -> None:
        await self.runner.drain(["deliver_alert"])

    async def health(self) -> tuple[int, dict[str, Any]]:
        status, _, body = await self.runner.handle_http("GET", "/api/v1/health")
        return status, json.loads(body)


def scenario(use: Callable[[Stack], Any]) -> Any:
    async def run() -> Any:
        from devtools.runner import LocalRunner
        from shared.bootstrap import get_app, set_app

        set_app(None)
        app = await get_app()
        runner = LocalRunner()
        try:
            return await use(Stack(runner, app))
        finally:
            await runner.close()
            await app.close()
            set_app(None)

    return asyncio.run(run())


def _watchdog(alerts: list[dict[str, Any]], check: str | None = None) -> list[dict[str, Any]]:
    return [
        a
        for a in alerts
        if a.get("kind") == "watchdog" and check in (None, a.get("facts", {}).get("Check"))
    ]


def _cards(sim: Any, since: int) -> list[str]:
    return [json.dumps(m["body"]) for m in sim.control.webhook_messages(WEBHOOK_NAME)[since:]]


def _mails(sim: Any, since: int) -> list[dict[str, Any]]:
    return sim.control.mailbox()[since:]


def test_a_stopped_audit_source_gives_one_watchdog_alert_degraded_health_and_one_recovery(
    app_env, demo_sim, clock
):
    control = demo_sim.control
    t0 = clock.now + timedelta(seconds=31)  # just after the audit scan's second 30

    async def use(stack: Stack) -> dict[str, Any]:
        seen: dict[str, Any] = {"watchdog_runs": []}
        clock.at(t0)
        await stack.fire("audit_timer")  # a good scan: the cursor is at t0
        clock.at(t0 + timedelta(seconds=14))
        await stack.fire("watchdog_timer")
        seen["health_before"] = await stack.health()
        await stack.outbox()

        control.add_fault(AUDIT_PATH, status=403)  # the audit source stops answering
        for minute in (1, 2, 3):
            clock.at(t0 + timedelta(minutes=minute))
            await stack.fire("audit_timer")
            clock.at(t0 + timedelta(minutes=minute, seconds=45))
            await stack.fire("watchdog_timer")
            seen["watchdog_runs"].append(_watchdog(await stack.outbox()))
        seen["health_degraded"] = await stack.health()
        # still stopped five minutes later: the episode is not alerted again
        clock.at(t0 + timedelta(minutes=8))
        await stack.fire("audit_timer")
        clock.at(t0 + timedelta(minutes=8, seconds=45))
        await stack.fire("watchdog_timer")
        seen["still"] = _watchdog(await stack.outbox())

        control.clear_faults()
        clock.at(t0 + timedelta(minutes=9))
        await stack.fire("audit_timer")
        clock.at(t0 + timedelta(minutes=9, seconds=45))
        await stack.fire("watchdog_timer")
        recovered = await stack.outbox()
        seen["recovered"] = _watchdog(recovered)
        seen["health_after"] = await stack.health()
        # deliver the degraded alert and the note, to see them arrive
        from shared.config import QUEUE_ALERTS
        from shared.domain.messages import AlertRecord

        for alert in [*seen["watchdog_runs"][2], *seen["recovered"]]:
            await stack.app.queues.send(QUEUE_ALERTS, AlertRecord.model_validate(alert))
        teams_before = len(control.webhook_messages(WEBHOOK_NAME))
        mail_before = len(control.mailbox())
        await stack.deliver()
        seen["teams"] = _cards(demo_sim, teams_before)
        seen["mail"] = [m["message"]["subject"] for m in _mails(demo_sim, mail_before)]
        return seen

    seen = scenario(use)
    assert seen["health_before"] == (200, {"status": "ok"})
    first, second, third = seen["watchdog_runs"]
    assert first == [] and second == []  # one or two missed scans are not yet a problem
    (alert,) = third
    assert alert["severity"] == "high"
    assert "audit scan has not completed" in alert["title"]
    assert alert["facts"]["Missed scans"] == "3"
    status, body = seen["health_degraded"]
    assert status == 200 and body["status"] == "degraded"
    (reason,) = body["reasons"]
    assert reason["check"] == "audit_scan" and "audit scan has not completed" in reason["reason"]
    assert seen["still"] == []
    (note,) = seen["recovered"]
    assert note["severity"] == "info" and "back to normal" in note["title"]
    assert seen["health_after"] == (200, {"status": "ok"})
    assert sum("xtap-watch is degraded:" in card for card in seen["teams"]) == 1
    assert sum("xtap-watch is back to normal:" in card for card in seen["teams"]) == 1
    assert sum("xtap-watch is degraded:" in s for s in seen["mail"]) == 1
    assert sum("xtap-watch is back to normal:" in s for s in seen["mail"]) == 1


def test_an_unfinished_sweep_is_seen_and_clears_when_the_checks_ran(
    app_env, demo_sim, clock, monkeypatch
):
    monkeypatch.setenv("XTAP_SWEEP_SCHEDULE", "0 0 * * * *")  # hourly, at the clock's hour
    monkeypatch.setenv("XTAP_SWEEP_EXPECTED_MINUTES", "10")
    due = clock.now

    async def use(stack: Stack) -> dict[str, Any]:
        await seed_registry(stack.app, load_demo_scenario())
        clock.at(due - timedelta(minutes=1))
        await stack.fire("watchdog_timer")  # the watchdog was running before the sweep
        clock.at(due)
        await stack.fire("sweep_timer")  # ... but nothing consumes xtap-check-client
        clock.at(due + timedelta(minutes=15))
        await stack.fire("watchdog_timer")  # within 2x the expected 10 minutes: patience
        early = _watchdog(await stack.outbox(), "sweep")
        clock.at(due + timedelta(minutes=21))
        await stack.fire("watchdog_timer")
        unfinished = _watchdog(await stack.outbox(), "sweep")
        health = await stack.health()
        clock.at(due + timedelta(minutes=22))
        await stack.runner.drain(["check_client"])  # the consumer is back
        await stack.outbox()
        clock.at(due + timedelta(minutes=25))
        await stack.fire("watchdog_timer")
        return {"early": early, "unfinished": unfinished, "health": health,
                "after": _watchdog(await stack.outbox(), "sweep"),
                "health_after": await stack.health()}

    seen = scenario(use)
    assert seen["early"] == []
    (alert,) = seen["unfinished"]
    assert "did not finish: 5 of 5 clients not checked" in alert["title"]
    assert "Contoso Markets" in alert["facts"]["Not checked"]
    status, body = seen["health"]
    # (the audit scan, never fired in this test, is rightly reported as well)
    assert status == 200 and "sweep" in [r["check"] for r in body["reasons"]]
    (note,) = seen["after"]
    assert "every client was checked again" in note["title"]
    assert "sweep" not in [r["check"] for r in seen["health_after"][1].get("reasons", [])]


def test_a_channel_failing_for_an_hour_is_told_on_the_other_channel_once(
    app_env, demo_sim, clock
):
    from shared.domain.messages import AlertKind, AlertRecord, Severity

    control = demo_sim.control
    start = clock.now

    def probe(key: str) -> AlertRecord:
        return AlertRecord(
            dedup_key=key, kind=AlertKind.VENDOR_POSTURE, severity=Severity.MEDIUM,
            title=f"probe {key}", created_at=start, source="posture",
        )

    async def use(stack: Stack) -> dict[str, Any]:
        from shared.config import QUEUE_ALERTS

        control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=404)  # the flow is gone
        await stack.app.queues.send(QUEUE_ALERTS, probe("probe-1"))
        await stack.deliver()
        clock.at(start + timedelta(minutes=30))
        await stack.fire("watchdog_timer")
        early = _watchdog(await stack.outbox(), "channel")
        clock.at(start + timedelta(minutes=61))
        await stack.fire("watchdog_timer")
        failing = _watchdog(await stack.outbox(), "channel")
        health = await stack.health()
        for alert in failing:
            await stack.app.queues.send(QUEUE_ALERTS, AlertRecord.model_validate(alert))
        mail_before = len(control.mailbox())
        await stack.deliver()
        mails = [m["message"]["subject"] for m in _mails(demo_sim, mail_before)]

        control.clear_faults()  # the flow is rebuilt; the next alert gets through
        clock.at(start + timedelta(minutes=70))
        await stack.app.queues.send(QUEUE_ALERTS, probe("probe-2"))
        await stack.deliver()
        clock.at(start + timedelta(minutes=75))
        await stack.fire("watchdog_timer")
        return {"early": early, "failing": failing, "health": health, "mails": mails,
                "recovered": _watchdog(await stack.outbox(), "channel")}

    seen = scenario(use)
    assert seen["early"] == []
    (alert,) = seen["failing"]
    assert alert["only_channels"] == ["email"]
    assert "teams:admins has failed" in alert["title"]
    assert sum("teams:admins has failed" in s for s in seen["mails"]) == 1
    status, body = seen["health"]
    assert status == 200 and "channel" in [r["check"] for r in body["reasons"]]
    (note,) = seen["recovered"]
    assert note["only_channels"] == [] and "alert delivery works again" in note["title"]


def test_the_heartbeat_arrives_on_both_channels_with_the_days_figures(app_env, demo_sim, clock):
    control = demo_sim.control

    async def use(stack: Stack) -> dict[str, Any]:
        await seed_registry(stack.app, load_demo_scenario())
        await stack.fire("audit_timer")
        await stack.fire("sweep_timer")
        await stack.runner.drain(["check_client"])
        control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
        clock.at(clock.now + timedelta(hours=1))
        await stack.fire("sweep_timer")
        await stack.runner.drain(["check_client"])
        await stack.outbox()  # the drift alerts themselves are another test's business
        clock.at(clock.now + timedelta(minutes=5))
        await stack.fire("heartbeat_timer")
        enqueued = [a for a in await stack.outbox() if a["kind"] == "heartbeat"]
        from shared.config import QUEUE_ALERTS
        from shared.domain.messages import AlertRecord

        for alert in enqueued:
            await stack.app.queues.send(QUEUE_ALERTS, AlertRecord.model_validate(alert))
        teams_before = len(control.webhook_messages(WEBHOOK_NAME))
        mail_before = len(control.mailbox())
        await stack.deliver()
        return {
            "enqueued": enqueued,
            "teams": _cards(demo_sim, teams_before),
            "mail": _mails(demo_sim, mail_before),
        }

    seen = scenario(use)
    (heartbeat,) = seen["enqueued"]
    facts = heartbeat["facts"]
    assert facts["Clients"].startswith("5 (1 BLOCKED")
    # Tailspin (no consent, a burst of AADSTS500212) drifted on the first sweep
    assert facts["Drifts opened (24 h)"] == "2: Tailspin Capital, Contoso Markets"
    assert facts["Drifted now"] == "2: Contoso Markets, Tailspin Capital"
    assert facts["Last audit scan"] != "never"
    assert facts["Last complete sweep"] != "never"
    assert facts["Deliveries failed (24 h)"] == "0"
    assert heartbeat["only_channels"] == []
    (card,) = [c for c in seen["teams"] if "xtap-watch heartbeat" in c]
    assert "Contoso Markets" in card
    (mail,) = [m for m in seen["mail"] if "xtap-watch heartbeat" in m["message"]["subject"]]
    recipients = [r["emailAddress"]["address"] for r in mail["message"]["toRecipients"]]
    assert recipients == list(ADMIN_EMAILS)
