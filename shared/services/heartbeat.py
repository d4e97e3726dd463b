"""Use case: the daily heartbeat to every channel (issue 18.2).

Gathers the state of the watch from storage (registry, latest postures, alert states, the
activity of the last day, the audit cursor, failed deliveries, the watchdog's open
problems), builds one summary with :mod:`shared.domain.heartbeat` and enqueues it on the
outbox like any alert, keyed by its scheduled time so a repeated run sends it once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.activity_log import KEEP, ActivityLog
from shared.adapters.repositories import PostureStore, cursor_store
from shared.config import (
    QUEUE_ALERTS,
    TABLE_ALERT_STATE,
    TABLE_CLIENTS,
    TABLE_DELIVERIES,
)
from shared.domain.heartbeat import (
    WINDOW,
    AckLine,
    HeartbeatFacts,
    count_verdicts,
    heartbeat_alert,
    sweep_covering,
)
from shared.domain.moments import parse_time
from shared.domain.runbooks import docs_page_url
from shared.domain.watchdog import WatchdogState
from shared.services.audit_scan import CURSOR_KEY as AUDIT_CURSOR_KEY
from shared.services.schedule_times import last_due
from shared.services.watchdog import WATCHDOG_KEY

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.messages import AlertRecord

log = logging.getLogger(__name__)

MAX_PAGES = 20  # failed deliveries are counted over at most this many pages (20,000 rows)


@dataclass(frozen=True)
class HeartbeatOutcome:
    alert: AlertRecord
    forgotten: int


async def _clients(app: App) -> dict[str, str]:
    out: dict[str, str] = {}
    async for page in app.tables.pages(
        TABLE_CLIENTS, "PartitionKey eq @p", {"p": "client"}, select=["RowKey", "Name"]
    ):
        for row in page:
            out[str(row["RowKey"]).lower()] = str(row.get("Name") or row["RowKey"])
    return out


async def _postures(app: App) -> tuple[dict[str, str], dict[str, datetime | None]]:
    verdicts: dict[str, str] = {}
    checked: dict[str, datetime | None] = {}
    async for page in PostureStore(app.tables).rows(["Verdict", "CheckedAt"]):
        for row in page:
            tenant = row["Tenant"]
            verdicts[tenant] = str(row.get("Verdict") or "UNKNOWN")
            checked[tenant] = parse_time(row.get("CheckedAt"))
    return verdicts, checked


async def _alert_states(app: App) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    async for page in app.tables.pages(
        TABLE_ALERT_STATE, "PartitionKey eq @p", {"p": "client"}, select=["RowKey", "State"]
    ):
        for row in page:
            try:
                state = json.loads(row.get("State") or "null")
            except ValueError:
                continue
            if isinstance(state, dict):
                out[str(row["RowKey"]).lower()] = state
    return out


def _acknowledgements(
    states: dict[str, dict[str, Any]], clients: dict[str, str], now: datetime
) -> list[AckLine]:
    lines = []
    for tenant, state in states.items():
        ack = state.get("acknowledgement")
        if not isinstance(ack, dict) or tenant not in clients:
            continue
        until = parse_time(ack.get("until"))
        if until is not None and until <= now:
            continue
        lines.append(
            AckLine(clients[tenant], str(ack.get("by") or "?"), str(ack.get("reason") or ""), until)
        )
    return sorted(lines, key=lambda a: a.name.lower())


async def _failed_deliveries(app: App, since: datetime) -> int:
    failed = 0
    pages = 0
    async for page in app.tables.pages(
        TABLE_DELIVERIES,
        "FinishedAt ge @s and Status eq 'failed'",
        {"s": since},
        select=["PartitionKey"],
    ):
        failed += len(page)
        pages += 1
        if pages >= MAX_PAGES:
            break
    return failed


async def send_heartbeat(app: App, now: datetime) -> HeartbeatOutcome:
    settings = app.settings
    since = now - WINDOW
    clients = await _clients(app)
    verdicts, checked = await _postures(app)
    states = await _alert_states(app)
    activity = ActivityLog(app.tables)
    events = await activity.since(since)
    audit_cursor, _ = await cursor_store(app.tables).get(AUDIT_CURSOR_KEY)
    watchdog_raw, _ = await cursor_store(app.tables).get(WATCHDOG_KEY)
    watchdog = WatchdogState.from_dict(watchdog_raw)

    covered = sweep_covering({t: checked.get(t) for t in clients})
    facts = HeartbeatFacts(
        clients=len(clients),
        verdicts=count_verdicts(clients, verdicts),
        drifted_now=sorted(
            (clients[t] for t, s in states.items() if t in clients and _status(s) == "drifted"),
            key=str.lower,
        ),
        opened=[e.client_name for e in events if e.kind == "drift_opened"],
        closed=[e.client_name for e in events if e.kind == "drift_closed"],
        acknowledged=_acknowledgements(states, clients, now),
        last_audit_scan=parse_time((audit_cursor or {}).get("scanned_to")),
        last_complete_sweep=last_due(settings.sweep_schedule, covered) if covered else None,
        deliveries_failed=await _failed_deliveries(app, since),
        degraded=[e.reason for _, e in sorted(watchdog.episodes.items())],
    )
    due = last_due(settings.self_watch.heartbeat_schedule, now + timedelta(seconds=1)) or now
    operations = operations_guide_url(settings.docs_base_url)
    alert = heartbeat_alert(facts, now, due, settings.vendor_name, operations_url=operations)
    await app.queues.send(QUEUE_ALERTS, alert.fitted())
    forgotten = await activity.forget_before(now - KEEP)
    log.info("heartbeat %s: %s", alert.dedup_key, alert.title)
    return HeartbeatOutcome(alert, forgotten)


def operations_guide_url(docs_base_url: str) -> str | None:
    """The heartbeat's section of the operations guide, where a published docs/ has it."""
    return docs_page_url(docs_base_url, "operations.md", "the-heartbeat")


def _status(state: dict[str, Any]) -> str | None:
    client = state.get("client")
    return str(client.get("status")) if isinstance(client, dict) else None
