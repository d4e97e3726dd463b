"""Outbox delivery end to end: Azurite outbox → the simulator's Teams Workflows webhook
and mailbox, through the local runner with the host's queue semantics.

Covers: exactly once per channel despite 429/500, a refusing webhook reported by mail,
the size budget (refused by us, not inside the flow run), confirmed (200) vs accepted-
unconfirmed (202) receipts, a HIGH alert with unconfirmed Teams still reaching e-mail,
recipients restricted to the vendor's domains and the client's contacts (13.11), and no
POISON_MESSAGE feedback loop when both channels keep failing (13.2).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import ADMIN_EMAILS, WEBHOOK_NAME

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 23, 9, 25, tzinfo=UTC)
CLIENT_TENANT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def _alerts(n: int, prefix: str, **update: Any) -> list[Any]:
    from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity

    return [
        AlertRecord(
            dedup_key=f"{prefix}:{i}",
            kind=AlertKind.CLIENT_DRIFTED,
            severity=Severity.HIGH,
            title=f"Client {i}: users can no longer reach OSTTRA",
            summary="Outbound B2B collaboration to OSTTRA is blocked.",
            client=ClientRef(name=f"Client {i}", tenant_id=CLIENT_TENANT),
            created_at=NOW,
            when=NOW,
            source="posture",
        ).model_copy(update=update)
        for i in range(n)
    ]


async def _enqueue_and_drain(
    alerts: list[Any],
    *,
    twice: bool = False,
    max_rounds: int = 10_000,
    before: Callable[[Any], Awaitable[None]] | None = None,
    after: Callable[[Any], Awaitable[Any]] | None = None,
) -> tuple[Any, Any]:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    set_app(None)
    app = await get_app()
    runner = LocalRunner()
    try:
        if before is not None:
            await before(app)
        for alert in alerts:
            await app.queues.send(QUEUE_ALERTS, alert)
            if twice:  # a producer that crashed after enqueueing re-enqueues the same alert
                await app.queues.send(QUEUE_ALERTS, alert)
        stats = await runner.drain(["deliver_alert"], max_rounds=max_rounds)
        inspected = await after(app) if after is not None else None
        return stats.get("deliver_alert"), inspected
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def _mail_since(sim: Any, before: int) -> list[dict[str, Any]]:
    return [m["message"] for m in sim.control.mailbox()[before:]]


def _recipients(message: dict[str, Any]) -> list[str]:
    return [r["emailAddress"]["address"] for r in message["toRecipients"]]


def test_each_alert_reaches_teams_and_mail_exactly_once_despite_429_and_500(app_env, demo_sim):
    control = demo_sim.control
    before_teams = len(control.webhook_messages(WEBHOOK_NAME))
    before_runs = len(control.flow_runs(WEBHOOK_NAME))
    before_mail = len(control.mailbox())
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=429, retry_after=1, count=2)
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=500, count=2)
    control.add_fault("/sendMail", status=503, retry_after=1, count=2)
    alerts = _alerts(3, "faulty")
    try:
        stats, _ = asyncio.run(_enqueue_and_drain(alerts, twice=True))
    finally:
        control.clear_faults()
    teams = control.webhook_messages(WEBHOOK_NAME)[before_teams:]
    runs = control.flow_runs(WEBHOOK_NAME)[before_runs:]
    mail = _mail_since(demo_sim, before_mail)
    assert stats.poisoned == 0
    assert len(teams) == 3, [m["body"]["attachments"][0]["content"]["body"][0] for m in teams]
    assert [r["status"] for r in runs] == ["Succeeded"] * 3  # every card rendered in the run
    titles = sorted(m["body"]["attachments"][0]["content"]["body"][0]["items"][1]["inlines"][0]
                    ["text"] for m in teams)
    assert titles == [a.title for a in alerts]
    assert sorted(m["subject"] for m in mail) == [
        f"[xtap-watch] High · Client drifted: {a.title}" for a in alerts]
    for message in teams:
        body = message["body"]
        assert body["type"] == "message"
        assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert body["attachments"][0]["content"]["version"] == "1.4"


def test_a_permanently_refusing_webhook_is_reported_by_mail_not_retried_forever(
    app_env, demo_sim
):
    control = demo_sim.control
    before_mail = len(control.mailbox())
    before_requests = len(control.requests(f"/webhooks/teams/{WEBHOOK_NAME}"))
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=404, count=10)
    try:
        stats, _ = asyncio.run(_enqueue_and_drain(_alerts(1, "gone")))
    finally:
        control.clear_faults()
    assert stats.poisoned == 0
    subjects = sorted(m["subject"] for m in _mail_since(demo_sim, before_mail))
    assert subjects == [
        "[xtap-watch] High · Alert delivery failing: Alert delivery to teams:admins is failing",
        "[xtap-watch] High · Client drifted: Client 0: users can no longer reach OSTTRA",
    ]
    # 404 is permanent: one POST, no retries
    assert len(control.requests(f"/webhooks/teams/{WEBHOOK_NAME}")) - before_requests == 1


def test_an_oversized_card_is_refused_by_us_and_sent_compact(app_env, demo_sim, caplog):
    """Against the template flow (202 first), where an oversized post would fail unseen."""
    from shared.domain.messages import AlertKind, AlertRecord, FindingRef, Severity
    from shared.rendering.cards import TEAMS_MESSAGE_BUDGET_BYTES

    control = demo_sim.control
    control.set_webhook_flow(WEBHOOK_NAME, "accepting")
    before = len(control.webhook_messages(WEBHOOK_NAME))
    before_runs = len(control.flow_runs(WEBHOOK_NAME))
    huge = AlertRecord(
        dedup_key="huge:1",
        kind=AlertKind.VENDOR_POSTURE,
        severity=Severity.MEDIUM,
        title="Many findings",
        findings=tuple(
            FindingRef(code=f"CODE_{i}", severity=Severity.MEDIUM, message="x" * 400,
                       remediation="y" * 400)
            for i in range(40)
        ),
        created_at=NOW,
        source="posture",
    )
    try:
        with caplog.at_level(logging.WARNING, logger="shared.services.delivery"):
            asyncio.run(_enqueue_and_drain([huge]))
    finally:
        control.set_webhook_flow(WEBHOOK_NAME, "confirming")
    posted = control.webhook_messages(WEBHOOK_NAME)[before:]
    assert len(posted) == 1
    refusals = [r.getMessage() for r in caplog.records if "huge:1" in r.getMessage()]
    assert len(refusals) == 1
    assert f"the budget below the Workflows limit (~28 KB) is {TEAMS_MESSAGE_BUDGET_BYTES:,} " \
        "bytes; sending the compact card instead" in refusals[0]
    assert posted[0]["size"] <= TEAMS_MESSAGE_BUDGET_BYTES
    card = json.dumps(posted[0]["body"])
    assert "are not shown here (Teams message size)" in card
    (run,) = control.flow_runs(WEBHOOK_NAME)[before_runs:]
    assert run["status"] == "Succeeded"  # never "Request Entity too large" in the run


def _receipts(keys: list[str]) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    async def read(app: Any) -> dict[str, Any]:
        from shared.services.delivery import DeliveryLedger

        ledger = DeliveryLedger(app)
        return {key: await ledger.receipts(key) for key in keys}

    return read


def test_delivery_records_confirmed_only_when_the_flow_answers_after_posting(
    app_env, demo_sim
):
    control = demo_sim.control
    control.set_webhook_flow(WEBHOOK_NAME, "accepting")
    try:
        _, accepted = asyncio.run(_enqueue_and_drain(
            _alerts(1, "receipt-202"), after=_receipts(["receipt-202:0"])))
    finally:
        control.set_webhook_flow(WEBHOOK_NAME, "confirming")
    _, confirmed = asyncio.run(_enqueue_and_drain(
        _alerts(1, "receipt-200"), after=_receipts(["receipt-200:0"])))
    assert accepted["receipt-202:0"]["teams:admins"] == {
        "status": "delivered", "confirmation": "accepted-unconfirmed"}
    assert confirmed["receipt-200:0"]["teams:admins"] == {
        "status": "delivered", "confirmation": "confirmed"}
    assert accepted["receipt-202:0"]["email"]["status"] == "delivered"


@pytest.mark.parametrize(
    ("flow", "severity", "mailed"),
    [("accepting", "high", True), ("confirming", "high", False),
     ("accepting", "medium", False)],
    ids=["high-unconfirmed", "high-confirmed", "medium-unconfirmed"],
)
def test_a_high_alert_whose_teams_post_is_unconfirmed_still_reaches_email(
    app_env, demo_sim, flow: str, severity: str, mailed: bool
):
    from shared.domain.messages import Severity

    control = demo_sim.control
    before_mail = len(control.mailbox())
    control.set_webhook_flow(WEBHOOK_NAME, flow)
    key = f"teams-only-{flow}-{severity}"
    try:
        asyncio.run(_enqueue_and_drain(_alerts(
            1, key, only_channels=("teams",), severity=Severity(severity))))
    finally:
        control.set_webhook_flow(WEBHOOK_NAME, "confirming")
    mail = _mail_since(demo_sim, before_mail)
    assert bool(mail) is mailed
    if mailed:
        (message,) = mail
        assert _recipients(message) == list(ADMIN_EMAILS)
        assert message["subject"].endswith("Client 0: users can no longer reach OSTTRA")


def test_mail_goes_only_to_vendor_domains_and_the_clients_contacts(app_env, demo_sim):
    """Issue 13.11: anyone who can write to the queue must not make the vendor's mailbox a
    relay; ``notify`` (the re-invite requester) is restricted."""
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import ClientRecord

    async def register(app: Any) -> None:
        await ClientRegistry(app.tables).upsert(ClientRecord(
            tenant_id=CLIENT_TENANT, name="Contoso Markets",
            domains=("contoso-markets.com",), contacts=("it-admin@contoso-markets.com",)))

    control = demo_sim.control
    before_mail = len(control.mailbox())
    notify = ("support.agent@osttra.com", "someone@eu.osttra.com",
              "it-admin@contoso-markets.com", "attacker@evil.example",
              "other-user@contoso-markets.com")
    asyncio.run(_enqueue_and_drain(_alerts(1, "relay", notify=notify), before=register))
    (message,) = _mail_since(demo_sim, before_mail)
    assert _recipients(message) == [*ADMIN_EMAILS, "support.agent@osttra.com",
                                    "someone@eu.osttra.com", "it-admin@contoso-markets.com"]


def test_when_both_channels_keep_failing_the_queue_drains_without_a_feedback_loop(
    app_env, demo_sim
):
    """Issue 13.2: each last attempt used to enqueue a POISON_MESSAGE alert on the same
    queue, which failed the same way, forever. Now: the alert's failing channels are each
    reported once on the other channel, those notices fail and go to poison, and nothing
    else is enqueued."""
    from shared.adapters.storage import poison_queue_name
    from shared.adapters.webhooks import TeamsWebhookClient
    from shared.config import QUEUE_ALERTS

    async def no_client_retries(app: Any) -> None:
        app.extras["webhooks"] = TeamsWebhookClient(app.settings.tls_ca_file, attempts=1)
        await app.queues.clear(poison_queue_name(QUEUE_ALERTS))

    async def leftovers(app: Any) -> dict[str, Any]:
        poisoned = [json.loads(m) for m in await app.queues.peek_all(
            poison_queue_name(QUEUE_ALERTS))]
        return {"left": await app.queues.approximate_count(QUEUE_ALERTS),
                "poisoned": poisoned}

    control = demo_sim.control
    control.add_fault(f"/webhooks/teams/{WEBHOOK_NAME}", status=500)
    control.add_fault("/sendMail", status=500)
    try:
        stats, seen = asyncio.run(_enqueue_and_drain(
            _alerts(1, "both-failing"), max_rounds=200, before=no_client_retries,
            after=leftovers))
    finally:
        control.clear_faults()
    assert seen["left"] == 0, "the alerts queue never drained"
    kinds = sorted((m["kind"], tuple(m.get("only_channels", ()))) for m in seen["poisoned"])
    assert kinds == [("client_drifted", ()), ("delivery_failing", ("email",)),
                     ("delivery_failing", ("teams",))]
    assert stats.poisoned == 3
