"""Use cases: acknowledge a client's drift, lift it, and apply it in a client check.

The acknowledgement lives in the client's alert-state document (``xtapAlertState``,
partition ``client``, key ``acknowledgement`` beside ``client``), written with the same
ETag guard as the check that reads it: a check and an acknowledgement racing each other
never lose either (the loser re-reads and tries again; a check is retried by its queue).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.activity_log import ActivityEntry, ActivityLog
from shared.adapters.repositories import ClientRegistry, PostureStore, alert_state_store
from shared.adapters.storage import EntityConflict
from shared.domain.acknowledgement import (
    AckFold,
    Acknowledgement,
    AckRequest,
    acknowledge,
    expired_summary,
    expired_title,
    fold,
    new_finding_summary,
    new_finding_title,
)
from shared.domain.messages import AlertRecord, Link
from shared.domain.runbooks import RUNBOOK_ROUTE

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

ACK_KEY = "acknowledgement"
# The section on acknowledging, in docs/api.md and in docs/findings/README.md.
ACKNOWLEDGE_ANCHOR = "acknowledge-a-drift"
ATTEMPTS = 5


class ClientNotRegistered(LookupError):
    pass


class NoAcknowledgement(LookupError):
    pass


@dataclass(frozen=True)
class AckChange:
    tenant_id: str
    client_name: str
    acknowledgement: Acknowledgement


def _client_status(doc: dict[str, Any] | None) -> tuple[str | None, int]:
    client = (doc or {}).get("client")
    if not isinstance(client, dict):
        return None, 0
    return (str(client.get("status")) if client.get("status") else None), int(
        client.get("episode") or 0
    )


async def _registered(app: App, tenant: str) -> ClientRecord:
    client = await ClientRegistry(app.tables).get(tenant)
    if client is None:
        raise ClientNotRegistered(tenant)
    return client


async def read_acknowledgement(app: App, tenant_id: str) -> Acknowledgement | None:
    doc, _ = await alert_state_store(app.tables).get(tenant_id.lower())
    return Acknowledgement.from_dict((doc or {}).get(ACK_KEY))


def conclusive_codes(posture: dict[str, Any] | None) -> list[str] | None:
    """The finding codes of a stored posture record; None if it was inconclusive."""
    if not posture or posture.get("verdict") in (None, "UNKNOWN"):
        return None
    findings = posture.get("findings")
    if not isinstance(findings, list):
        return None
    return [str(f["code"]) for f in findings if isinstance(f, dict) and f.get("code")]


async def set_acknowledgement(
    app: App, tenant_id: str, request: AckRequest, by: str, now: datetime
) -> AckChange:
    """Acknowledge the client's open drift; raises ClientNotRegistered or NotDrifted."""
    tenant = tenant_id.lower()
    client = await _registered(app, tenant)
    store = alert_state_store(app.tables)
    # What the drift shows now: a finding beyond these, while acknowledged, is told.
    codes = conclusive_codes(await PostureStore(app.tables).get(tenant))
    for _ in range(ATTEMPTS):
        doc, etag = await store.get(tenant)
        status, episode = _client_status(doc)
        existing = Acknowledgement.from_dict((doc or {}).get(ACK_KEY))
        ack = acknowledge(status, episode, existing, request, by, now, codes)  # NotDrifted
        try:
            await store.put(tenant, {**(doc or {}), ACK_KEY: ack.to_dict()}, etag)
        except EntityConflict:
            continue  # a check wrote the state meanwhile: read it again
        await _activity(
            app,
            f"ack:{tenant}:ep{episode}:{ack.number}:set",
            "ack_set",
            client.tenant_id,
            client.name,
            now,
            ack.line(),
        )
        log.info("client %s acknowledged %s", tenant, ack.line())
        return AckChange(tenant, client.name, ack)
    raise EntityConflict(f"the alert state of {tenant} kept changing; retry")


async def lift_acknowledgement(app: App, tenant_id: str, by: str, now: datetime) -> AckChange:
    """Remove the client's acknowledgement; raises ClientNotRegistered or NoAcknowledgement."""
    tenant = tenant_id.lower()
    client = await _registered(app, tenant)
    store = alert_state_store(app.tables)
    for _ in range(ATTEMPTS):
        doc, etag = await store.get(tenant)
        ack = Acknowledgement.from_dict((doc or {}).get(ACK_KEY))
        if doc is None or ack is None:
            raise NoAcknowledgement(tenant)
        rest = {k: v for k, v in doc.items() if k != ACK_KEY}
        try:
            await store.put(tenant, rest, etag)
        except EntityConflict:
            continue
        detail = f"lifted by {' '.join(by.split())[:256]} ({ack.line()})"
        await _activity(
            app,
            f"ack:{tenant}:ep{ack.episode}:{ack.number}:lifted",
            "ack_lifted",
            client.tenant_id,
            client.name,
            now,
            detail,
        )
        log.info("client %s acknowledgement %s", tenant, detail)
        return AckChange(tenant, client.name, ack)
    raise EntityConflict(f"the alert state of {tenant} kept changing; retry")


async def _activity(
    app: App, key: str, kind: str, tenant: str, name: str, now: datetime, detail: str
) -> None:
    try:
        await ActivityLog(app.tables).record(key, ActivityEntry(kind, tenant, name, now, detail))
    except Exception:  # bookkeeping for the heartbeat; the acknowledgement itself is stored
        log.warning("activity %s not recorded", key, exc_info=True)


# ----------------------------------------------------------------- inside a client check
@dataclass
class AppliedAck:
    """An acknowledgement folded into one check (see ``posture_sweep.check_client``)."""

    fold: AckFold
    state: Any  # the client's alert state, with last_alert_at moved if the expiry reminded

    @property
    def transitions(self) -> list[Any]:
        return list(self.fold.transitions)

    def document(self) -> dict[str, Any]:
        """The ``acknowledgement`` part of the alert-state document to write back."""
        stored = self.fold.stored
        return {ACK_KEY: stored.to_dict()} if stored is not None else {}


def apply_acknowledgement(
    raw_doc: dict[str, Any] | None,
    state: Any,
    transitions: Sequence[Any],
    now: datetime,
    codes: Sequence[str] | None = None,
) -> AppliedAck:
    """``codes``: this check's finding codes (None when it was inconclusive)."""
    ack = Acknowledgement.from_dict((raw_doc or {}).get(ACK_KEY))
    folded = fold(ack, state.status.value, state.episode, transitions, now, codes)
    if folded.expired is not None:
        # The expiry reminder is this episode's latest reminder: the next one waits a
        # full reminder interval from now.
        state = replace(state, last_alert_at=now)
    if folded.suppressed:
        log.info(
            "client %s: %d reminder(s) paused by an acknowledgement",
            state.client_tenant_id,
            folded.suppressed,
        )
    return AppliedAck(folded, state)


# Alerts about an open drift: they link to how to acknowledge it.
_DRIFT_KINDS = frozenset({"client_drifted", "client_reminder", "signin_evidence"})


def acknowledge_link(docs_base_url: str) -> Link:
    """Where the API call (and the CLI command) that acknowledges a drift is documented.

    The app serves only the runbooks (``docs/findings``), so by default the link opens
    their index, whose section says how; a published copy of ``docs/`` has the API
    reference's section itself.
    """
    base = docs_base_url.rstrip("/")
    if base.endswith(RUNBOOK_ROUTE):
        return Link(title="Acknowledge", url=f"{base}#{ACKNOWLEDGE_ANCHOR}")
    return Link(title="Acknowledge", url=f"{base}/api.md#{ACKNOWLEDGE_ANCHOR}")


def annotate(
    alert: AlertRecord, applied: AppliedAck, now: datetime, docs_base_url: str
) -> AlertRecord:
    """Say on the alert whether the client's drift is acknowledged (or just stopped being),
    and on a drift card how to acknowledge it."""
    current, ended = applied.fold.current, applied.fold.ended
    facts = dict(alert.facts)
    if current is not None:
        if current.active(now):
            facts["Acknowledged"] = current.line()
        else:
            facts["Acknowledgement"] = f"expired {current.line()}"
    elif ended is not None:
        facts["Acknowledgement"] = f"ended by this change (was {ended.line()})"
    links = alert.links
    if alert.kind.value in _DRIFT_KINDS and alert.client is not None:
        links = (*links, acknowledge_link(docs_base_url))
    if facts == alert.facts and links == alert.links:
        return alert
    return alert.model_copy(update={"facts": facts, "links": links})


def expiry_alert(
    reminder: AlertRecord, applied: AppliedAck, client_name: str, now: datetime
) -> AlertRecord:
    """The one "acknowledgement expired, still drifted" reminder, built on a reminder card."""
    ack = applied.fold.expired
    if ack is None:
        raise ValueError("no expired acknowledgement")
    tenant = applied.state.client_tenant_id
    facts = {**reminder.facts, "Acknowledgement": f"expired {ack.line()}"}
    return reminder.model_copy(
        update={
            "dedup_key": f"client:{tenant}:ep{ack.episode}:ack_expired:{ack.number}",
            "title": expired_title(client_name)[:300],
            "summary": expired_summary(ack, now)
            + (" " + reminder.summary if reminder.summary else ""),
            "facts": facts,
        }
    )


def new_finding_alert(
    reminder: AlertRecord, applied: AppliedAck, client_name: str
) -> AlertRecord:
    """The one "new finding while acknowledged" alert, built on a reminder card."""
    ack, codes = applied.fold.stored, applied.fold.new_findings
    if ack is None or not codes:
        raise ValueError("no new finding")
    tenant = applied.state.client_tenant_id
    return reminder.model_copy(
        update={
            "dedup_key": (
                f"client:{tenant}:ep{ack.episode}:ack_new_finding:{ack.number}."
                f"{ack.new_finding_alerts}"
            ),
            "title": new_finding_title(client_name, codes)[:300],
            "summary": new_finding_summary(ack, codes)
            + (" " + reminder.summary if reminder.summary else ""),
            "facts": {**reminder.facts, "New findings": ", ".join(codes)},
        }
    )


async def record_ack_activity(
    app: App, tenant: str, client_name: str, applied: AppliedAck, now: datetime
) -> None:
    if applied.fold.expired is not None:
        ack = applied.fold.expired
        await _activity(
            app,
            f"ack:{tenant}:ep{ack.episode}:{ack.number}:expired",
            "ack_expired",
            tenant,
            client_name,
            now,
            ack.line(),
        )
    if applied.fold.ended is not None:
        ack = applied.fold.ended
        await _activity(
            app,
            f"ack:{tenant}:ep{ack.episode}:{ack.number}:ended",
            "ack_ended",
            tenant,
            client_name,
            now,
            ack.line(),
        )
