"""Use case: deliver one outbox alert to its channels, exactly once per channel if we can.

At-least-once with an idempotency ledger: each (alert key, route) pair is claimed in a
table row before sending and marked delivered after, so a redelivered queue message (or
an alert a crashed producer enqueued twice) skips the routes already done. The only
window for a duplicate is a crash between a successful POST and the ledger write.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.config import QUEUE_ALERTS, TABLE_DELIVERIES
from shared.services.channel_health import record_delivery

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.messages import AlertRecord
    from shared.rendering.presentation import RenderSettings

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Route:
    id: str  # stable: "teams:admins", "teams:XTAP_TEAMS_WEBHOOK_CONTOSO", "email"
    channel: str  # teams | email
    target: str = field(repr=False)  # webhook URL (secret) or comma-joined addresses


@dataclass
class DeliveryOutcome:
    delivered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class TransientDeliveryFailure(Exception):
    """At least one route failed transiently: the message is retried by the host."""


def render_settings(app: App) -> RenderSettings:
    from shared.rendering.presentation import RenderSettings

    s = app.settings
    return RenderSettings(
        vendor_name=s.vendor_name,
        entra_portal_url=s.entra_portal_url,
        docs_base_url=s.docs_base_url,
        api_base_url=s.public_api_url,
    )


async def resolve_routes(app: App, alert: AlertRecord) -> list[Route]:
    from shared.adapters.repositories import ClientRegistry

    s = app.settings
    routes: list[Route] = []
    emails = list(s.alert_emails)
    if s.teams_webhook_url:
        routes.append(Route("teams:admins", "teams", s.teams_webhook_url))
    if alert.client is not None:
        client = await ClientRegistry(app.tables).get(alert.client.tenant_id)
        if client is not None:
            setting = client.routing.teams_webhook_setting
            url = os.environ.get(setting, "") if setting else ""
            if setting and not url:
                log.warning("client %s routes to %s, which is not set", client.tenant_id, setting)
            if url:
                routes.append(Route(f"teams:{setting}", "teams", url))
            emails += [e for e in client.routing.emails if e not in emails]
    emails += [e for e in alert.notify if e not in emails]
    if s.mail_sender and emails:
        routes.append(Route("email", "email", ",".join(emails)))
    if alert.only_channels:
        routes = [r for r in routes if r.channel in alert.only_channels]
    return routes


class DeliveryLedger:
    def __init__(self, app: App) -> None:
        self._tables = app.tables

    @staticmethod
    def _partition(dedup_key: str) -> str:
        return hashlib.sha256(dedup_key.encode()).hexdigest()[:40]

    async def claim(self, dedup_key: str, route: Route, now: datetime) -> bool:
        """True if this caller may send; False if the route was already delivered."""
        from shared.adapters.storage import EntityConflict

        entity = {
            "PartitionKey": self._partition(dedup_key),
            "RowKey": route.id.replace("/", "_"),
            "DedupKey": dedup_key[:250],
            "Status": "sending",
            "ClaimedAt": now,
        }
        if await self._tables.insert(TABLE_DELIVERIES, entity):
            return True
        row = await self._tables.get(TABLE_DELIVERIES, entity["PartitionKey"], entity["RowKey"])
        if row is None:
            return await self.claim(dedup_key, route, now)
        if row["Status"] == "delivered":
            return False
        if row["Status"] == "sending" and now - row["ClaimedAt"] < CLAIM_LEASE:
            # Someone else is sending it right now: come back later rather than double-post.
            raise TransientDeliveryFailure(f"{route.id} is being delivered by another worker")
        try:
            await self._tables.replace_if_match(TABLE_DELIVERIES, entity, row["_etag"])
        except EntityConflict:
            raise TransientDeliveryFailure(f"{route.id}: lost a claim race") from None
        return True

    async def finish(
        self, dedup_key: str, route: Route, now: datetime, status: str, detail: str = ""
    ) -> None:
        await self._tables.upsert(
            TABLE_DELIVERIES,
            {
                "PartitionKey": self._partition(dedup_key),
                "RowKey": route.id.replace("/", "_"),
                "DedupKey": dedup_key[:250],
                "Status": status,
                "FinishedAt": now,
                "Detail": detail[:1000],
            },
        )

    async def status(self, dedup_key: str) -> dict[str, str]:
        rows = await self._tables.query(
            TABLE_DELIVERIES, "PartitionKey eq @p", {"p": self._partition(dedup_key)}
        )
        return {r["RowKey"]: r["Status"] for r in rows}


def teams_body(alert: AlertRecord, view: RenderSettings) -> bytes:
    from shared.rendering.cards import (
        MessageTooLarge,
        encode_teams_message,
        render_teams_message,
        render_teams_message_compact,
    )

    try:
        return encode_teams_message(render_teams_message(alert, view))
    except MessageTooLarge as exc:
        # Refused here, not by Teams: the compact card says what was left out.
        log.warning("%s; sending the compact card instead", exc)
        return encode_teams_message(render_teams_message_compact(alert, view))


def _webhooks(app: App) -> Any:
    client = app.extras.get("webhooks")
    if client is None:
        from shared.adapters.webhooks import TeamsWebhookClient

        client = app.extras["webhooks"] = TeamsWebhookClient(app.settings.tls_ca_file)
    return client


async def _send(app: App, route: Route, alert: AlertRecord, view: RenderSettings) -> None:
    if route.channel == "teams":
        await _webhooks(app).post(route.target, teams_body(alert, view))
        return
    from shared.adapters.mail import send_mail
    from shared.rendering.email import graph_mail_payload, render_admin_email

    email = render_admin_email(alert, view)
    payload = graph_mail_payload(
        email, route.target.split(","), headers={"x-xtap-dedup-key": alert.dedup_key[:200]}
    )
    await send_mail(app.graph.vendor(), app.settings.mail_sender or "", payload)


async def deliver_outbox_message(
    app: App, message: Any, now: datetime, *, final_attempt: bool = False
) -> DeliveryOutcome:
    """One message of the alerts queue: an alert (maybe held for a digest) or a flush."""
    from shared.domain.messages import FlushDigest

    if isinstance(message, FlushDigest):
        return await flush_digest(app, message.batch_id, message.generation, now)
    if not await admit(app, message, now):
        return DeliveryOutcome(skipped=["held for digest"])
    return await deliver_alert(app, message, now, final_attempt=final_attempt)


async def deliver_alert(
    app: App, alert: AlertRecord, now: datetime, *, final_attempt: bool = False
) -> DeliveryOutcome:
    from shared.adapters.webhooks import DeliveryError
    from shared.domain.messages import AlertKind

    view = render_settings(app)
    ledger = DeliveryLedger(app)
    outcome = DeliveryOutcome()
    transient: list[str] = []
    routes = await resolve_routes(app, alert)
    if not routes:
        log.warning("alert %s has no route configured; recorded only", alert.dedup_key)
    for route in routes:
        if not await ledger.claim(alert.dedup_key, route, now):
            outcome.skipped.append(route.id)
            continue
        try:
            await _send(app, route, alert, view)
        except DeliveryError as exc:
            await record_delivery(app, route.id, route.channel, False, now, str(exc))
            if exc.transient:
                await ledger.finish(alert.dedup_key, route, now, "retrying", str(exc))
                transient.append(f"{route.id}: {exc}")
                if final_attempt and alert.kind is not AlertKind.DELIVERY_FAILING:
                    # The host gives up after this attempt: say so on the other channel.
                    await _report_failing_channel(app, route, alert, str(exc), now)
                continue
            await ledger.finish(alert.dedup_key, route, now, "failed", str(exc))
            outcome.failed.append(route.id)
            log.error("alert %s permanently failed on %s: %s", alert.dedup_key, route.id, exc)
            if alert.kind is not AlertKind.DELIVERY_FAILING:
                await _report_failing_channel(app, route, alert, str(exc), now)
            continue
        await ledger.finish(alert.dedup_key, route, now, "delivered")
        await record_delivery(app, route.id, route.channel, True, now)
        outcome.delivered.append(route.id)
    if transient:
        raise TransientDeliveryFailure("; ".join(transient))
    return outcome


def delivery_failing_alert(
    failed_channel: str, detail: str, about: str, now: datetime, *, only: tuple[str, ...]
) -> AlertRecord:
    from shared.domain.messages import AlertKind, AlertRecord, Severity

    hour = now.strftime("%Y%m%d%H")
    return AlertRecord(
        dedup_key=f"delivery-failing:{failed_channel}:{hour}",
        kind=AlertKind.DELIVERY_FAILING,
        severity=Severity.HIGH,
        title=f"Alert delivery to {failed_channel} is failing",
        summary=(
            f"xtap-watch could not deliver {about} to {failed_channel}: {detail}. Alerts for "
            "that channel are recorded in the deliveries table and the poison queue until it "
            "is fixed."
        ),
        remediation_steps=(
            "Check the Teams Workflows flow (it may have been turned off or deleted) or the "
            "sender mailbox's Mail.Send scoping, then re-run the poison queue messages "
            "(docs/operations.md).",
        ),
        facts={"Channel": failed_channel, "Detail": detail[:300]},
        when=now,
        created_at=now,
        source="delivery",
        only_channels=only,  # type: ignore[arg-type]
    )


async def _report_failing_channel(
    app: App, route: Route, alert: AlertRecord, detail: str, now: datetime
) -> None:
    other = ("email",) if route.channel == "teams" else ("teams",)
    notice = delivery_failing_alert(route.id, detail, f"alert {alert.dedup_key!r}", now, only=other)
    await app.queues.send(QUEUE_ALERTS, notice)


# ------------------------------------------------------------------ digests of a batch
def _batch_partition(batch_id: str) -> str:
    return "batch-" + hashlib.sha256(batch_id.encode()).hexdigest()[:32]


async def admit(app: App, alert: AlertRecord, now: datetime) -> bool:
    """True: deliver this alert now. False: it is held for the batch's digest.

    The first ``XTAP_DIGEST_THRESHOLD`` alerts of a batch go out at once (the first
    drifted clients matter at 3 a.m.); the rest are held and one delayed ``FlushDigest``
    sends them as a single digest card, so a vendor-wide change is not a storm.
    """
    from shared.domain.messages import AlertKind, FlushDigest

    if not alert.batch_id or alert.kind in (AlertKind.DELIVERY_FAILING, AlertKind.DIGEST):
        return True
    partition = _batch_partition(alert.batch_id)
    member_key = hashlib.sha256(alert.dedup_key.encode()).hexdigest()[:40]
    existing = await app.tables.get(TABLE_DELIVERIES, partition, member_key)
    if existing is not None:  # a redelivered message: keep its first decision
        return bool(existing["Status"] == "immediate")
    position = await _count_member(app, partition)
    held = position > app.settings.digest_threshold
    await app.tables.upsert(
        TABLE_DELIVERIES,
        {
            "PartitionKey": partition,
            "RowKey": member_key,
            "Kind": "member",
            "Status": "held" if held else "immediate",
            "Alert": alert.model_dump_json() if held else "",
            "At": now,
        },
    )
    if held:
        # One pending flush per generation: the row insert is the lock.
        flag = await app.tables.get(TABLE_DELIVERIES, partition, "flush")
        generation = int(flag["Generation"]) if flag else 0
        if flag is None or flag.get("Pending") is False:
            claimed = await app.tables.insert(
                TABLE_DELIVERIES,
                {
                    "PartitionKey": partition,
                    "RowKey": f"flush-{generation}",
                    "Kind": "flush",
                    "At": now,
                },
            )
            if claimed:
                await app.tables.upsert(
                    TABLE_DELIVERIES,
                    {
                        "PartitionKey": partition,
                        "RowKey": "flush",
                        "Kind": "flag",
                        "Generation": generation,
                        "Pending": True,
                    },
                )
                await app.queues.send(
                    QUEUE_ALERTS,
                    FlushDigest(batch_id=alert.batch_id, generation=generation, created_at=now),
                    visibility_timeout=app.settings.digest_hold_seconds,
                )
    return not held


async def _count_member(app: App, partition: str) -> int:
    """Atomically count one more alert in the batch (ETag-guarded); returns its position."""
    from shared.adapters.storage import EntityConflict

    for _ in range(50):
        row = await app.tables.get(TABLE_DELIVERIES, partition, "counter")
        if row is None:
            entity = {"PartitionKey": partition, "RowKey": "counter", "Kind": "counter", "Count": 1}
            if await app.tables.insert(TABLE_DELIVERIES, entity):
                return 1
            continue
        count = int(row["Count"]) + 1
        entity = {"PartitionKey": partition, "RowKey": "counter", "Kind": "counter", "Count": count}
        try:
            await app.tables.replace_if_match(TABLE_DELIVERIES, entity, row["_etag"])
        except EntityConflict:
            continue
        return count
    raise TransientDeliveryFailure("could not count the batch's alerts (contention)")


async def flush_digest(app: App, batch_id: str, generation: int, now: datetime) -> DeliveryOutcome:
    """Deliver every held alert of the batch as one digest, then release the flag."""
    from shared.domain.messages import AlertRecord
    from shared.rendering.digest import make_digest

    partition = _batch_partition(batch_id)
    rows = await app.tables.query(
        TABLE_DELIVERIES, "PartitionKey eq @p and Status eq 'held'", {"p": partition}
    )
    members = [AlertRecord.model_validate_json(r["Alert"]) for r in rows if r.get("Alert")]
    outcome = DeliveryOutcome()
    if members:
        digest = make_digest(members, app.settings.digest_threshold, now).fitted()
        outcome = await deliver_alert(app, digest, now)
        for row in rows:
            await app.tables.upsert(
                TABLE_DELIVERIES,
                {**{k: v for k, v in row.items() if not k.startswith("_")}, "Status": "digested"},
            )
    await app.tables.upsert(
        TABLE_DELIVERIES,
        {
            "PartitionKey": partition,
            "RowKey": "flush",
            "Kind": "flag",
            "Generation": generation + 1,
            "Pending": False,
        },
    )
    return outcome
