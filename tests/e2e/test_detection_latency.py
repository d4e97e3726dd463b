"""Change → alert latency end to end (issue 18.4): the audit watcher and the posture sweep put
it on their alert records and record ``xtap.change_to_alert_seconds``.

Latencies are checked against the times the simulator and the injected clock gave, never
against how long the run took.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from devtools.local_env import (
    BLOCK_INBOUND,
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    load_demo_scenario,
    seed_registry,
)
from tests.e2e.injected_time import install_clock
from tests.metric_reader import change_to_alert_points, route_producers_to

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture
def metric(monkeypatch: pytest.MonkeyPatch) -> InMemoryMetricReader:
    """The producers' histogram, read from an in-memory SDK provider."""
    reader, _ = route_producers_to(monkeypatch)
    return reader


def _points(reader: InMemoryMetricReader) -> dict[str, Any]:
    return {p.attributes["xtap.source"]: p for p in change_to_alert_points(reader)}


async def _outbox(app: Any) -> list[dict[str, Any]]:
    from shared.config import QUEUE_ALERTS

    out = []
    while batch := await app.queues.receive(QUEUE_ALERTS, max_messages=32):
        for message in batch:
            out.append(json.loads(message.content))
            await app.queues.delete(QUEUE_ALERTS, message)
    return out


async def _delivered_cards(
    runner: Any, app: Any, control: Any, alerts: list[dict[str, Any]], kind: str
) -> list[str]:
    """Deliver the alerts of ``kind`` to the simulator's Teams webhook; the cards posted."""
    from devtools.local_env import WEBHOOK_NAME
    from shared.config import QUEUE_ALERTS
    from shared.domain.messages import AlertRecord

    before = len(control.webhook_messages(WEBHOOK_NAME))
    for alert in alerts:
        if alert["kind"] == kind:
            await app.queues.send(QUEUE_ALERTS, AlertRecord.model_validate(alert))
    await runner.drain(["deliver_alert"])
    posted = control.webhook_messages(WEBHOOK_NAME)[before:]
    return [json.dumps(m["body"]) for m in posted]


def _run(use: Any) -> Any:
    async def run() -> Any:
        from devtools.runner import LocalRunner
        from shared.bootstrap import get_app, set_app

        set_app(None)
        app = await get_app()
        runner = LocalRunner()
        try:
            await seed_registry(app, load_demo_scenario())
            return await use(runner, app)
        finally:
            await runner.close()
            await app.close()
            set_app(None)

    return asyncio.run(run())


def test_an_audit_alert_carries_its_exact_latency_and_records_it(app_env, demo_sim, metric):
    async def use(runner: Any, app: Any) -> list[dict[str, Any]]:
        await runner.fire_timer("audit_timer")
        await _outbox(app)
        event = demo_sim.control.set_partner_policy(VENDOR_TENANT_ID, CONTOSO, BLOCK_INBOUND)
        await runner.fire_timer("audit_timer")
        alerts = await _outbox(app)
        cards = await _delivered_cards(
            runner, app, demo_sim.control, alerts, "vendor_setting_changed"
        )
        return [event, cards, *alerts]

    event, cards, *alerts = _run(use)
    (alert,) = [a for a in alerts if a["kind"] == "vendor_setting_changed"]
    changed = datetime.fromisoformat(alert["changed_at"])
    assert changed == datetime.fromisoformat(event["activityDateTime"].replace("Z", "+00:00"))
    assert alert["detection_latency_basis"] == "audit_event"
    created = datetime.fromisoformat(alert["created_at"])
    assert alert["detection_latency_seconds"] == pytest.approx(
        (created - changed).total_seconds(), abs=0.001
    )
    point = _points(metric)["audit"]
    assert point.count == 1 and point.attributes["xtap.latency_basis"] == "audit_event"
    (card,) = cards
    assert '"Detected"' in card and " after the change" in card


def test_a_drift_alert_carries_the_bound_since_the_previous_check(
    app_env, demo_sim, metric, monkeypatch
):
    first = datetime.now(UTC).replace(microsecond=0)
    clock = install_clock(monkeypatch, first)

    async def use(runner: Any, app: Any) -> list[dict[str, Any]]:
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        await _outbox(app)
        demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
        clock.at(first + timedelta(hours=1))
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        alerts = await _outbox(app)
        drifted = [a for a in alerts if (a.get("client") or {}).get("tenant_id") == CONTOSO]
        cards = await _delivered_cards(runner, app, demo_sim.control, drifted, "client_drifted")
        return [cards, *alerts]

    cards, *alerts = _run(use)
    (drift,) = [
        a for a in alerts
        if a["kind"] == "client_drifted" and a["client"]["tenant_id"] == CONTOSO
    ]
    assert drift["detection_latency_basis"] == "previous_check"
    assert datetime.fromisoformat(drift["changed_at"]) == first
    assert drift["detection_latency_seconds"] == 3600.0
    point = _points(metric)["posture"]
    assert point.attributes["xtap.latency_basis"] == "previous_check"
    assert point.max == 3600.0
    (card,) = cards
    assert "at most 1 h after the change" in card
