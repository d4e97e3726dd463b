"""Use case: deliver one outbox alert to its channels, exactly once per channel if we can.

At-least-once with an idempotency ledger: each (alert key, route) pair is claimed in a
table row before sending and marked delivered after, so a redelivered queue message (or
an alert a crashed producer enqueued twice) skips the routes already done. The only
window for a duplicate is a crash between a successful POST and the ledger write.

What "delivered" means on Teams: a Workflows webhook answers 202 before its flow runs, so
a 202 is recorded as *accepted, unconfirmed*; only a flow that answers after posting (200,
docs/teams-workflow.md) makes it *confirmed*. A HIGH alert whose Teams delivery is
unconfirmed also goes by e-mail, even where its routes would not otherwise include it.

Alerts about the alert path (a channel failing or unavailable) go only to the *other*
channel, at most one notice per channel per hour, and a failing notice never produces
another alert: no feedback loop through the route that is failing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.mail import send_mail
from shared.adapters.repositories import ClientRegistry
from shared.adapters.storage import EntityConflict
from shared.adapters.webhooks import DeliveryError, TeamsWebhookClient, WebhookReceipt
from shared.config import QUEUE_ALERTS, TABLE_DELIVERIES, Settings, is_unresolved_reference
from shared.domain.clients import ClientRecord
from shared.domain.messages import (
    AlertKind,
    AlertRecord,
    Channel,
    ClientRef,
    FlushDigest,
    Severity,
)
from shared.rendering.cards import (
    MessageTooLarge,
    encode_teams_message,
    render_teams_message,
    render_teams_message_compact,
)
from shared.rendering.digest import make_digest
from shared.rendering.email import graph_mail_payload, render_admin_email
from shared.rendering.onboarding import vendor_site
from shared.rendering.presentation import RenderSettings
from shared.services.channel_health import record_delivery

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)
ALERT_PATH_KINDS = frozenset({AlertKind.DELIVERY_FAILING, AlertKind.POISON_MESSAGE})
ADMINS_ROUTE = "teams:admins"
UNCONFIRMED_FALLBACK_ROUTE = "email:teams-unconfirmed"


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
    # Teams routes whose webhook answered 202: the flow was triggered, the post unconfirmed.
    unconfirmed: list[str] = field(default_factory=list)
    refused_recipients: list[str] = field(default_factory=list)


class TransientDeliveryFailure(Exception):
    """At least one route failed transiently: the message is retried by the host.

    ``reported``: the failing channels were already reported on the other channel (the
    host's last attempt), so no further alert is needed about this message.
    """

    def __init__(self, message: str, *, reported: bool = False) -> None:
        super().__init__(message)
        self.reported = reported


def render_settings(app: App) -> RenderSettings:
    s = app.settings
    return RenderSettings(
        vendor_name=s.vendor_name,
        entra_portal_url=s.entra_portal_url,
        docs_base_url=s.docs_base_url,
        api_base_url=s.public_api_url,
    )


# ------------------------------------------------------------------ recipients


def vendor_mail_domains(settings: Settings) -> frozenset[str]:
    """Domains whose addresses may receive alert mail: the vendor's own (its sign-in
    site's domain and the domains of the sender and admin addresses it configured)."""
    addresses = [*settings.alert_emails, settings.mail_sender or ""]
    domains = {a.rpartition("@")[2].lower() for a in addresses if "@" in a}
    domains.add(vendor_site(settings.vendor_domain))
    return frozenset(d for d in domains if d)


def allowed_recipient(address: str, vendor_domains: Iterable[str],
                      client: ClientRecord | None) -> bool:
    """The vendor's domains (and their subdomains) and the registered client's contacts."""
    domain = address.rpartition("@")[2].lower()
    if any(domain == d or domain.endswith("." + d) for d in vendor_domains):
        return True
    contacts = {c.lower() for c in client.contacts} if client else set()
    return address.lower() in contacts


# -------------------------------------------------------------------- routes


def channel_problems(settings: Settings) -> dict[str, str]:
    """Routes that cannot be used at all, with why (e.g. an unresolved Key Vault reference)."""
    return dict(settings.channel_problems)


async def _client_record(app: App, alert: AlertRecord) -> ClientRecord | None:
    if alert.client is None:
        return None
    return await ClientRegistry(app.tables).get(alert.client.tenant_id)


def resolve_routes(
    app: App, alert: AlertRecord, client: ClientRecord | None, outcome: DeliveryOutcome
) -> tuple[list[Route], dict[str, str]]:
    """The alert's routes, and those configured but unusable (route id → why)."""
    s = app.settings
    routes: list[Route] = []
    unusable = channel_problems(s)
    if s.teams_webhook_url:
        routes.append(Route(ADMINS_ROUTE, "teams", s.teams_webhook_url))
    vendor_domains = vendor_mail_domains(s)
    emails = list(s.alert_emails)
    extra: list[str] = []
    if client is not None:
        setting = client.routing.teams_webhook_setting
        url = os.environ.get(setting, "").strip() if setting else ""
        if setting and is_unresolved_reference(url):
            unusable[f"teams:{setting}"] = (
                f"{setting} is an unresolved Key Vault reference (App Service passed the "
                "reference text instead of the secret)"
            )
        elif setting and not url:
            log.warning("client %s routes to %s, which is not set", client.tenant_id, setting)
        elif url:
            routes.append(Route(f"teams:{setting}", "teams", url))
        extra += client.routing.emails
    extra += alert.notify
    for address in extra:
        if address in emails:
            continue
        if allowed_recipient(address, vendor_domains, client):
            emails.append(address)
        else:
            # Anyone who can write to the queue must not make the vendor's mailbox a relay.
            outcome.refused_recipients.append(address)
            log.warning("alert %s: recipient %s refused (not a vendor domain nor a contact "
                        "of the client)", alert.dedup_key, address)
    if s.mail_sender and emails:
        routes.append(Route("email", "email", ",".join(emails)))
    if alert.only_channels:
        routes = [r for r in routes if r.channel in alert.only_channels]
    return routes, unusable


def _admin_email_route(app: App) -> Route | None:
    s = app.settings
    if s.mail_sender and s.alert_emails:
        return Route(UNCONFIRMED_FALLBACK_ROUTE, "email", ",".join(s.alert_emails))
    return None


# --------------------------------------------------------------------- ledger


class DeliveryLedger:
    def __init__(self, app: App) -> None:
        self._tables = app.tables

    @staticmethod
    def _partition(dedup_key: str) -> str:
        return hashlib.sha256(dedup_key.encode()).hexdigest()[:40]

    async def claim(self, dedup_key: str, route: Route, now: datetime) -> bool:
        """True if this caller may send; False if the route was already delivered."""
        partition, row_key = self._partition(dedup_key), route.id.replace("/", "_")
        entity = {
            "PartitionKey": partition,
            "RowKey": row_key,
            "DedupKey": dedup_key[:250],
            "Status": "sending",
            "ClaimedAt": now,
        }
        if await self._tables.insert(TABLE_DELIVERIES, entity):
            return True
        row = await self._tables.get(TABLE_DELIVERIES, partition, row_key)
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
        self, dedup_key: str, route: Route, now: datetime, status: str, detail: str = "",
        confirmation: str = "",
    ) -> None:
        await self._tables.upsert(
            TABLE_DELIVERIES,
            {
                "PartitionKey": self._partition(dedup_key),
                "RowKey": route.id.replace("/", "_"),
                "DedupKey": dedup_key[:250],
                "Status": status,
                # Teams: "confirmed" (the flow answered after posting) or
                # "accepted-unconfirmed" (202: the flow was triggered, no more is known).
                "Confirmation": confirmation,
                "FinishedAt": now,
                "Detail": detail[:1000],
            },
        )

    async def status(self, dedup_key: str) -> dict[str, str]:
        rows = await self._tables.query(
            TABLE_DELIVERIES, "PartitionKey eq @p", {"p": self._partition(dedup_key)}
        )
        return {r["RowKey"]: r["Status"] for r in rows}

    async def receipts(self, dedup_key: str) -> dict[str, dict[str, str]]:
        """route → {status, confirmation} for one alert (what the ledger knows)."""
        rows = await self._tables.query(
            TABLE_DELIVERIES, "PartitionKey eq @p", {"p": self._partition(dedup_key)}
        )
        return {
            r["RowKey"]: {"status": r["Status"], "confirmation": r.get("Confirmation") or ""}
            for r in rows
        }


# ------------------------------------------------------------------- sending


def teams_body(alert: AlertRecord, view: RenderSettings) -> bytes:
    try:
        return encode_teams_message(render_teams_message(alert, view))
    except MessageTooLarge as exc:
        # Refused here, not inside the flow run where nobody would see it: the compact
        # card says what was left out.
        log.warning("%s; sending the compact card instead", exc)
        return encode_teams_message(render_teams_message_compact(alert, view))


def _webhooks(app: App) -> TeamsWebhookClient:
    client = app.extras.get("webhooks")
    if client is None:
        client = app.extras["webhooks"] = TeamsWebhookClient(app.settings.tls_ca_file)
    return client


async def _send(app: App, route: Route, alert: AlertRecord,
                view: RenderSettings) -> WebhookReceipt | None:
    if route.channel == "teams":
        return await _webhooks(app).post(route.target, teams_body(alert, view))
    email = render_admin_email(alert, view)
    payload = graph_mail_payload(
        email, route.target.split(","), headers={"x-xtap-dedup-key": alert.dedup_key[:200]}
    )
    await send_mail(app.graph.vendor(), app.settings.mail_sender or "", payload)
    return None


async def deliver_outbox_message(
    app: App, message: Any, now: datetime, *, final_attempt: bool = False
) -> DeliveryOutcome:
    """One message of the alerts queue: an alert (maybe held for a digest) or a flush."""
    if isinstance(message, FlushDigest):
        return await flush_digest(app, message.batch_id, message.generation, now)
    if not await admit(app, message, now):
        return DeliveryOutcome(skipped=["held for digest"])
    return await deliver_alert(app, message, now, final_attempt=final_attempt)


def _with_contacts(alert: AlertRecord, client: ClientRecord | None) -> AlertRecord:
    """The registry knows the client's contacts; the card names them."""
    if client is None or alert.client is None or alert.client.contacts or not client.contacts:
        return alert
    ref = ClientRef(name=alert.client.name, tenant_id=alert.client.tenant_id,
                    domains=alert.client.domains or client.domains, contacts=client.contacts)
    return alert.model_copy(update={"client": ref})


async def deliver_alert(
    app: App, alert: AlertRecord, now: datetime, *, final_attempt: bool = False
) -> DeliveryOutcome:
    view = render_settings(app)
    ledger = DeliveryLedger(app)
    outcome = DeliveryOutcome()
    transient: list[str] = []
    reported = False
    client = await _client_record(app, alert)
    alert = _with_contacts(alert, client)
    routes, unusable = resolve_routes(app, alert, client, outcome)
    for route_id, why in unusable.items():
        outcome.failed.append(route_id)
        if alert.kind not in ALERT_PATH_KINDS:
            await report_unavailable_channel(app, route_id, why, now)
    if alert.severity is Severity.HIGH and any(r.startswith("teams:") for r in unusable):
        routes = _ensure_email(app, routes)
    if not routes:
        log.warning("alert %s has no route configured; recorded only", alert.dedup_key)
    index = 0
    while index < len(routes):
        route = routes[index]
        index += 1
        if not await ledger.claim(alert.dedup_key, route, now):
            outcome.skipped.append(route.id)
            continue
        try:
            receipt = await _send(app, route, alert, view)
        except DeliveryError as exc:
            await record_delivery(app, route.id, route.channel, False, now, str(exc))
            if exc.transient:
                await ledger.finish(alert.dedup_key, route, now, "retrying", str(exc))
                transient.append(f"{route.id}: {exc}")
                if final_attempt and alert.kind is not AlertKind.DELIVERY_FAILING:
                    # The host gives up after this attempt: say so on the other channel.
                    await _report_failing_channel(app, route, alert, str(exc), now)
                    reported = True
                continue
            await ledger.finish(alert.dedup_key, route, now, "failed", str(exc))
            outcome.failed.append(route.id)
            log.error("alert %s permanently failed on %s: %s", alert.dedup_key, route.id, exc)
            if alert.kind is not AlertKind.DELIVERY_FAILING:
                await _report_failing_channel(app, route, alert, str(exc), now)
            continue
        confirmation = receipt.confirmation if receipt is not None else ""
        await ledger.finish(alert.dedup_key, route, now, "delivered", confirmation=confirmation)
        await record_delivery(app, route.id, route.channel, True, now)
        outcome.delivered.append(route.id)
        if receipt is not None and not receipt.confirmed:
            outcome.unconfirmed.append(route.id)
            if alert.severity is Severity.HIGH:
                # 202 says the flow was triggered, not that anyone saw the card.
                routes = _ensure_email(app, routes)
    if transient:
        raise TransientDeliveryFailure("; ".join(transient), reported=reported)
    return outcome


def _ensure_email(app: App, routes: list[Route]) -> list[Route]:
    if any(r.channel == "email" for r in routes):
        return routes
    fallback = _admin_email_route(app)
    return [*routes, fallback] if fallback else routes


# ------------------------------------------------------- alerts about the alert path


def poison_alert_needed(message: Any, exc: BaseException) -> bool:
    """After the host's last attempt on the alerts queue: is a POISON_MESSAGE alert useful?

    Not when delivery already reported the failing channels on the other one, and never
    for an alert about the alert path itself: that alert would travel the same failing
    route and, failing, produce another — the feedback loop of issue 13.2.
    """
    if getattr(exc, "reported", False):
        return False
    inner = getattr(message, "root", message)
    return not (isinstance(inner, AlertRecord) and inner.kind in ALERT_PATH_KINDS)


def delivery_failing_alert(
    failed_channel: str, detail: str, about: str, now: datetime, *, only: tuple[Channel, ...],
    key_suffix: str | None = None,
) -> AlertRecord:
    bucket = key_suffix or now.strftime("%Y%m%d%H")
    return AlertRecord(
        dedup_key=f"delivery-failing:{failed_channel}:{bucket}",
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
        only_channels=only,
    )


def _other_channel(route_id: str) -> tuple[Channel, ...]:
    return ("email",) if route_id.startswith("teams") else ("teams",)


async def _enqueue_notice_once(app: App, notice: AlertRecord, now: datetime) -> None:
    """One notice per key reaches the queue: every failing alert of the hour would
    otherwise enqueue its own copy (they were de-duplicated at delivery, but each copy is
    one more message retried against the failing route)."""
    partition = "notice-" + hashlib.sha256(notice.dedup_key.encode()).hexdigest()[:40]
    marker = {
        "PartitionKey": partition,
        "RowKey": "enqueued",
        "Kind": "notice",
        "At": now,
    }
    if await app.tables.insert(TABLE_DELIVERIES, marker):
        try:
            await app.queues.send(QUEUE_ALERTS, notice)
        except BaseException:
            # Not sent: let the next failing alert try again.
            await app.tables.delete(TABLE_DELIVERIES, partition, "enqueued")
            raise


async def _report_failing_channel(
    app: App, route: Route, alert: AlertRecord, detail: str, now: datetime
) -> None:
    notice = delivery_failing_alert(route.id, detail, f"alert {alert.dedup_key!r}", now,
                                    only=_other_channel(route.id))
    await _enqueue_notice_once(app, notice, now)


async def report_unavailable_channel(app: App, route_id: str, why: str, now: datetime) -> None:
    """A channel that cannot work at all (unresolved Key Vault reference): once a day,
    on the other channel."""
    notice = delivery_failing_alert(
        route_id, why, "alerts", now, only=_other_channel(route_id),
        key_suffix="unavailable-" + now.strftime("%Y%m%d"),
    ).model_copy(update={
        "title": f"Alert channel {route_id} is unavailable",
        "remediation_steps": (
            "In the Function App's Environment variables, open the setting named above: a "
            "red 'Key Vault Reference' status says why it did not resolve (the app's "
            "managed identity needs the Key Vault Secrets User role on the vault; the "
            "secret must exist). Fix it, then restart the app.",
        ),
    })
    await _enqueue_notice_once(app, notice, now)


# ------------------------------------------------------------------ digests of a batch
def _batch_partition(batch_id: str) -> str:
    return "batch-" + hashlib.sha256(batch_id.encode()).hexdigest()[:32]


async def admit(app: App, alert: AlertRecord, now: datetime) -> bool:
    """True: deliver this alert now. False: it is held for the batch's digest.

    The first ``XTAP_DIGEST_THRESHOLD`` alerts of a batch go out at once (the first
    drifted clients matter at 3 a.m.); the rest are held and one delayed ``FlushDigest``
    sends them as a single digest card, so a vendor-wide change is not a storm.

    Crash safety (issue 13.3): the held member row is written first, then the flush is
    *sent*, and only then is the flush recorded as sent. A crash at any point leaves a held
    row whose retry sends the flush again (a duplicate flush is harmless: it finds nothing
    left to digest); the flush itself re-checks for rows held while it ran.
    """
    if not alert.batch_id or alert.kind in (AlertKind.DELIVERY_FAILING, AlertKind.DIGEST):
        return True
    partition = _batch_partition(alert.batch_id)
    member_key = hashlib.sha256(alert.dedup_key.encode()).hexdigest()[:40]
    existing = await app.tables.get(TABLE_DELIVERIES, partition, member_key)
    if existing is not None:  # a redelivered message: keep its first decision
        if existing["Status"] == "immediate":
            return True
        if existing["Status"] == "held":
            await _ensure_flush(app, alert.batch_id, now)
        return False
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
        await _ensure_flush(app, alert.batch_id, now)
    return not held


async def _flush_flag(app: App, partition: str) -> tuple[int, bool]:
    """(current generation, whether its FlushDigest was sent)."""
    flag = await app.tables.get(TABLE_DELIVERIES, partition, "flush")
    if flag is None:
        return 0, False
    return int(flag["Generation"]), bool(flag.get("Sent", flag.get("Pending", False)))


async def _ensure_flush(app: App, batch_id: str, now: datetime) -> None:
    """Make sure a FlushDigest for the batch's current generation is on its way."""
    partition = _batch_partition(batch_id)
    generation, sent = await _flush_flag(app, partition)
    if sent:
        return
    await app.queues.send(
        QUEUE_ALERTS,
        FlushDigest(batch_id=batch_id, generation=generation, created_at=now),
        visibility_timeout=app.settings.digest_hold_seconds,
    )
    await app.tables.upsert(
        TABLE_DELIVERIES,
        {"PartitionKey": partition, "RowKey": "flush", "Kind": "flag",
         "Generation": generation, "Sent": True, "At": now},
    )


async def _count_member(app: App, partition: str) -> int:
    """Atomically count one more alert in the batch (ETag-guarded); returns its position."""
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


async def _held_rows(app: App, partition: str) -> list[dict[str, Any]]:
    return await app.tables.query(
        TABLE_DELIVERIES, "PartitionKey eq @p and Status eq 'held'", {"p": partition}
    )


async def flush_digest(app: App, batch_id: str, generation: int, now: datetime) -> DeliveryOutcome:
    """Deliver every held alert of the batch as one digest, then open the next generation.

    Idempotent: a repeated or stale flush finds no held rows (or delivers the same digest,
    which the ledger de-duplicates). Rows held while this flush ran get a flush of their own.
    """
    partition = _batch_partition(batch_id)
    current, _ = await _flush_flag(app, partition)
    rows = await _held_rows(app, partition)
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
    if generation >= current:
        await app.tables.upsert(
            TABLE_DELIVERIES,
            {"PartitionKey": partition, "RowKey": "flush", "Kind": "flag",
             "Generation": generation + 1, "Sent": False, "At": now},
        )
    if await _held_rows(app, partition):
        await _ensure_flush(app, batch_id, now)
    return outcome

