"""Use case: scan the vendor's audit log for cross-tenant access changes and alert.

Crash safety: alerts are enqueued *before* the cursor moves. A scan killed in between is
repeated in full by the next run; its alerts carry the same de-duplication keys
(``audit:{event id}:{index}``), so delivery posts each change once.

Late events: each scan reads from the previous scan's end minus an overlap window and
skips event IDs it already alerted (kept in the seen-events table for twice the overlap).
The Log Analytics source bounds the window by *ingestion* time, so a row that reached the
workspace late is read by the first scan after it arrived (see ``audit_source``).

A scan that cannot read its source (403, garbage, no table) does not move the cursor and
tells the admins once per episode (``source_health``); the first good scan reads the gap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.audit_source import (
    AuditSource,
    GraphAuditSource,
    LogAnalyticsAuditSource,
)
from shared.adapters.graph import GraphError
from shared.adapters.policy_reader import DEFAULT_PATH
from shared.adapters.repositories import ClientRegistry, cursor_store
from shared.config import QUEUE_ALERTS, TABLE_SEEN_EVENTS
from shared.domain.audit import UnknownAuditShape, decode_audit_records
from shared.domain.audit_severity import (
    classify,
    default_inbound_admits_clients,
    to_alert_record,
)
from shared.domain.source_health import SourceKind
from shared.rendering.digest import collapse
from shared.services.detection import audit_latency
from shared.services.detection import observe as observe_latency
from shared.services.source_health import report_source
from shared.services.vendor_policy import note_vendor_policy_change

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

CURSOR_KEY = "audit-vendor"
FIRST_SCAN_LOOKBACK = timedelta(hours=24)


@dataclass
class ScanOutcome:
    since: datetime
    until: datetime
    events: int = 0
    new_events: int = 0
    changes: int = 0
    unknown: int = 0
    alerts: list[str] = field(default_factory=list)
    failed: str | None = None  # the source could not be read: why (the cursor stayed)
    partial: str | None = None  # the source answered in part: the cursor moved that far


def _event_id(record: dict[str, Any]) -> str | None:
    value = record.get("id") or record.get("Id")
    return str(value) if value else None


def _row_key(event_id: str) -> str:
    # Table keys may not contain / \\ # ? or control characters.
    return "".join("_" if ch in "/\\#?" or ord(ch) < 32 else ch for ch in event_id)[:512]


async def _seen_ids(app: App) -> set[str]:
    rows = await app.tables.query(
        TABLE_SEEN_EVENTS, "PartitionKey eq @p", {"p": "audit"}, select=["RowKey"]
    )
    return {r["RowKey"] for r in rows}


async def _remember(
    app: App, records: list[dict[str, Any]], now: datetime, horizon: datetime
) -> None:
    """Record alerted event IDs; forget those older than the overlap can re-read."""
    for record in records:
        event_id = _event_id(record)
        if event_id:
            await app.tables.upsert(
                TABLE_SEEN_EVENTS,
                {"PartitionKey": "audit", "RowKey": _row_key(event_id), "SeenAt": now},
            )
    stale = await app.tables.query(
        TABLE_SEEN_EVENTS,
        "PartitionKey eq @p and SeenAt lt @h",
        {"p": "audit", "h": horizon},
        select=["PartitionKey", "RowKey"],
    )
    for row in stale:
        await app.tables.delete(TABLE_SEEN_EVENTS, "audit", row["RowKey"])


def audit_source(app: App) -> AuditSource:
    if app.settings.audit_source == "log_analytics":
        return LogAnalyticsAuditSource(
            app.logs_client(), app.settings.log_analytics_workspace_id or ""
        )
    source: AuditSource | None = app.extras.get("graph_audit_source")
    if source is None:  # the reports budget is per app per tenant (shared with sign-ins)
        source = app.extras["graph_audit_source"] = GraphAuditSource(app.graph.vendor())
    return source


async def _vendor_default_admits(app: App) -> bool | None:
    """Whether clients reach the vendor's apps through its default inbound (None: unsure)."""
    try:
        default = await app.graph.vendor().get_json(DEFAULT_PATH)
    except GraphError as exc:  # the alert matters more than this refinement
        log.warning("vendor default policy not read for classification: %s", exc)
        return None
    return default_inbound_admits_clients(default, app.settings.vendor_app_ids)


async def scan_audit(app: App, now: datetime) -> ScanOutcome:
    settings = app.settings
    overlap = timedelta(minutes=settings.audit_overlap_minutes)
    store = cursor_store(app.tables)
    state, etag = await store.get(CURSOR_KEY)
    state = state or {}
    scanned_to = datetime.fromisoformat(state["scanned_to"]) if "scanned_to" in state else None
    since = (scanned_to - overlap) if scanned_to else (now - FIRST_SCAN_LOOKBACK)
    seen = await _seen_ids(app)

    read = await audit_source(app).read(since, now)
    if read.failed or read.complete_until is None:
        reason = read.problem.reason if read.problem else "the audit source failed"
        await report_source(app, SourceKind.AUDIT_LOG, read.problem, now)
        log.error("audit scan %s..%s failed: %s", since.isoformat(), now.isoformat(), reason)
        return ScanOutcome(since=since, until=now, failed=reason)
    records = read.records
    fresh = [r for r in records if _row_key(_event_id(r) or "") not in seen or not _event_id(r)]
    outcome = ScanOutcome(
        since=since,
        until=read.complete_until,
        events=len(records),
        new_events=len(fresh),
        partial=read.problem.reason if read.problem else None,
    )

    clients = {c.tenant_id: c for c in await ClientRegistry(app.tables).list()}
    admits = await _vendor_default_admits(app) if fresh else None

    batch = decode_audit_records(fresh)
    alerts = []
    for item in batch.items:
        severity, reasons = classify(item, clients, admits)
        partner = (
            item.partner_tenant_id
            if isinstance(item, UnknownAuditShape)
            else (item.event.partner_tenant_id)
        )
        client = clients.get((partner or "").lower())
        alerts.append(audit_latency(to_alert_record(item, severity, reasons, client, now)))
        if isinstance(item, UnknownAuditShape):
            outcome.unknown += 1
        else:
            outcome.changes += 1

    # Many changes from one scan (a default policy rewrite, a bulk import) become one digest.
    for alert in collapse(alerts, settings.digest_threshold, now):
        await app.queues.send(QUEUE_ALERTS, alert.fitted())
        outcome.alerts.append(alert.dedup_key)
    observe_latency(alerts)

    # The vendor changed its own policy: checks of older snapshots re-read it (issue 14.3).
    await note_vendor_policy_change(app, fresh, now)

    await _remember(app, fresh, now, horizon=now - 2 * overlap)
    await store.put(CURSOR_KEY, {"scanned_to": read.complete_until.isoformat()}, etag)
    await report_source(app, SourceKind.AUDIT_LOG, read.problem, now)
    log.info(
        "audit scan %s..%s: %d events, %d new, %d changes, %d unknown, %d alerts",
        since.isoformat(),
        read.complete_until.isoformat(),
        outcome.events,
        outcome.new_events,
        outcome.changes,
        outcome.unknown,
        len(outcome.alerts),
    )
    return outcome
