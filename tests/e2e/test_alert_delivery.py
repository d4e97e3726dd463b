"""Outbox delivery end to end: Azurite outbox → Teams webhook receiver and mailbox, once."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import WEBHOOK_NAME

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 23, 9, 25, tzinfo=UTC)


def _alerts(n: int, prefix: str) -> list[Any]:
    from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity

    return [
        AlertRecord(
            dedup_key=f"{prefix}:{i}",
            kind=AlertKind.CLIENT_DRIFTED,
            severity=Severity.HIGH,
            title=f"Client {i}: users can no longer reach OSTTRA",
            summary="Outbound B2B collaboration to OSTTRA is blocked.",
            client=ClientRef(name=f"Client {i}", tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            created_at=NOW,
            when=NOW,
            source="posture",
        )
        for i in range(n)
    ]


async def _enqueue_and_drain(alerts: list[Any], *, twice: bool = False) -> Any:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    set_app(None)
    app = await get_app()
    runner = LocalRunner()
    try:
        for alert in alerts:
            await app.queues.send(QUEUE_ALERTS, alert)
            if twice:  # a producer that crashed after enqueueing re-enqueues the same alert
                await app.queues.send(QUEUE_ALERTS, alert)
        stats = await runner.drain(["deliver_alert"])
        return stats.get("deliver_alert")
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def _posted_titles(sim: Any, prefix: str) -> list[str]:
    out = []
    for message in sim.control.webhook_messages(WEBHOOK_NAME):
        body = message["body"]
        text = str(body)
        if f"{prefix}" in text or "Client " in text:
            out.append(text)
    return out


def _mail_subjects(sim: Any) -> list[str]:
    return [m["message"]["subject"] for m in sim.control.mailbox()]


def test_each_alert_reaches_teams_and_mail_exactly_once_despite_429_and_500(app_env, demo_sim):
    control = demo_sim.control
    before_teams = len(control.webhook_messages(WEBHOOK_NAME))
    before_mail = len(control.mailbox())
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=429, retry_after=1, count=2)
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=500, count=2)
    control.add_fault("/sendMail", status=503, retry_after=1, count=2)
    alerts = _alerts(3, "faulty")
    stats = asyncio.run(_enqueue_and_drain(alerts, twice=True))
    teams = control.webhook_messages(WEBHOOK_NAME)[before_teams:]
    mail = control.mailbox()[before_mail:]
    control.clear_faults()
    assert stats.poisoned == 0
    assert len(teams) == 3, [m["body"]["attachments"][0]["content"]["body"][0] for m in teams]
    assert len(mail) == 3
    subjects = sorted(m["message"]["subject"] for m in mail)
    assert all("users can no longer reach OSTTRA" in s for s in subjects)
    for message in teams:
        body = message["body"]
        assert body["type"] == "message"
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"


def test_a_permanently_refusing_webhook_is_reported_by_mail_not_retried_forever(
    app_env, demo_sim, monkeypatch
):
    control = demo_sim.control
    before_mail = len(control.mailbox())
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=404, count=10)
    stats = asyncio.run(_enqueue_and_drain(_alerts(1, "gone")))
    control.clear_faults()
    assert stats.poisoned == 0
    subjects = [m["message"]["subject"] for m in control.mailbox()[before_mail:]]
    assert any("Alert delivery to teams:admins is failing" in s for s in subjects), subjects
    assert any("users can no longer reach OSTTRA" in s for s in subjects)


def test_an_oversized_card_is_refused_by_us_and_sent_compact(app_env, demo_sim, caplog):
    from shared.domain.messages import AlertKind, AlertRecord, FindingRef, Severity

    control = demo_sim.control
    before = len(control.webhook_messages(WEBHOOK_NAME))
    huge = AlertRecord(
        dedup_key="huge:1",
        kind=AlertKind.VENDOR_POSTURE,
        severity=Severity.MEDIUM,
        title="Many findings",
        findings=tuple(
            FindingRef(
                code=f"CODE_{i}",
                severity=Severity.MEDIUM,
                message="x" * 400,
                remediation="y" * 400,
            )
            for i in range(40)
        ),
        created_at=NOW,
        source="posture",
    )
    with caplog.at_level(logging.WARNING, logger="shared.services.delivery"):
        asyncio.run(_enqueue_and_drain([huge]))
    posted = control.webhook_messages(WEBHOOK_NAME)[before:]
    assert len(posted) == 1
    assert any(
        "28,672 bytes" in r.getMessage() or "limit" in r.getMessage() for r in caplog.records
    )
    assert not control.webhook_rejections(WEBHOOK_NAME) or all(
        r.get("status") != 413 for r in control.webhook_rejections(WEBHOOK_NAME)
    )
