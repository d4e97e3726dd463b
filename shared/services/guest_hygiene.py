"""Use cases: report guests stuck in PendingAcceptance; re-invite guests stranded by a drift.

Both read the vendor tenant's pending guests with one paged query
(``userType eq 'Guest' and externalUserState eq 'PendingAcceptance'``, default directory
query operators, no ``ConsistencyLevel`` needed) and group them by client in pure code —
one Graph query for every client instead of one per client.

``resets_after_recovery`` is called by the posture check when a client moves from DRIFTED
to RECOVERED: guests whose state changed to PendingAcceptance during the drift episode
were invited while they could not redeem; each gets a queued reset (a normal re-invite
job, ledger and alert included). A claim keyed by client and episode start makes a
repeated call return the jobs of the first one instead of queueing again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.graph import GraphClient
from shared.adapters.job_ledger import ClaimHeld, JobLedger
from shared.adapters.repositories import ClientRegistry, alert_state_store
from shared.config import QUEUE_ALERTS
from shared.domain.guests import PENDING, pending_guests_alert, stranded_guests, stuck_guests
from shared.domain.odata import quote
from shared.domain.reinvite import GUEST_SELECT
from shared.services.reinvites import ReinviteRefused, queue_reinvite_for_user

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

RECOVERY_CLAIM_LEASE_SECONDS = 600.0
RECOVERY_REQUESTER = "xtap-watch (client recovered from drift)"


@dataclass
class HygieneOutcome:
    clients_reported: list[str] = field(default_factory=list)
    stuck_guests: int = 0
    pending_guests: int = 0


@dataclass
class RecoveryResets:
    client_tenant_id: str
    job_ids: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # user IDs not queued, with reasons
    skipped: str | None = None


async def list_pending_guests(graph: GraphClient) -> list[dict[str, Any]]:
    params = {
        "$filter": f"userType eq {quote('Guest')} and externalUserState eq {quote(PENDING)}",
        "$select": ",".join(GUEST_SELECT),
        "$top": "999",
    }
    users: list[dict[str, Any]] = []
    async for page in graph.get_pages("/users", params):
        users.extend(u for u in page if isinstance(u, dict))
    return users


async def report_pending_guests(app: App, now: datetime) -> HygieneOutcome:
    """One PENDING_GUESTS alert per client with guests pending ≥ XTAP_PENDING_GUEST_DAYS."""
    days = app.settings.pending_guest_days
    clients = await ClientRegistry(app.tables).list()
    users = await list_pending_guests(app.graph.vendor())
    outcome = HygieneOutcome(pending_guests=len(users))
    for tenant_id, (client, guests) in sorted(stuck_guests(users, clients, now, days).items()):
        await app.queues.send(QUEUE_ALERTS, pending_guests_alert(client, guests, now, days))
        outcome.clients_reported.append(tenant_id)
        outcome.stuck_guests += len(guests)
    log.info(
        "hygiene: %d pending guests, %d stuck at %d clients",
        outcome.pending_guests,
        outcome.stuck_guests,
        len(outcome.clients_reported),
    )
    return outcome


async def _drift_started_at(app: App, client_tenant_id: str) -> datetime | None:
    state, _ = await alert_state_store(app.tables).get(client_tenant_id.lower())
    started = ((state or {}).get("client") or {}).get("episode_started_at")
    return datetime.fromisoformat(started) if isinstance(started, str) and started else None


async def resets_after_recovery(
    app: App,
    client_tenant_id: str,
    *,
    drift_started_at: datetime | None = None,
    recovered_at: datetime | None = None,
    now: datetime | None = None,
    send_invitation_message: bool = True,
) -> RecoveryResets:
    """Queue resets for the client's guests stranded by the drift that just ended.

    ``drift_started_at`` defaults to the client's alert state (``episode_started_at``, kept
    after recovery); ``recovered_at`` and ``now`` default to the current time. Pass the
    RECOVERED transition's ``episode_started_at`` and ``at`` when you have them.
    """
    now = now or datetime.now(UTC)
    recovered_at = recovered_at or now
    tenant = client_tenant_id.lower()
    out = RecoveryResets(tenant)
    client = await ClientRegistry(app.tables).get(tenant)
    if client is None:
        out.skipped = "not a registered client"
        return out
    started = drift_started_at or await _drift_started_at(app, tenant)
    if started is None:
        out.skipped = "no drift episode on record"
        return out

    ledger = JobLedger(app.tables)
    key = f"{tenant}:{started:%Y%m%dT%H%M%S}"
    try:
        claim = await ledger.claim("recovery", key, now, RECOVERY_CLAIM_LEASE_SECONDS)
    except ClaimHeld:
        out.skipped = "another run is queueing these resets"
        return out
    if claim is not None:
        out.job_ids = json.loads(claim.result.get("jobIds", "[]"))
        out.skipped = "already queued for this drift episode"
        return out

    try:
        users = await list_pending_guests(app.graph.vendor())
        for guest in stranded_guests(users, client, started, recovered_at):
            user = next(u for u in users if str(u.get("id", "")).lower() == guest.user_id)
            try:
                result = await queue_reinvite_for_user(
                    app,
                    user,
                    reason=(
                        f"{client.name} recovered from a cross-tenant access drift that began "
                        f"{started:%Y-%m-%d %H:%M} UTC; the guest was invited during it and "
                        "could not redeem"
                    ),
                    requested_by=RECOVERY_REQUESTER,
                    now=now,
                    send_invitation_message=send_invitation_message,
                    origin="recovery",
                    clients=[client],
                )
            except ReinviteRefused as exc:
                out.refused.append(f"{guest.user_id}: {exc.message}")
                continue
            out.job_ids.append(result.job.job_id)
    except Exception:
        await ledger.release_claim("recovery", key)
        raise
    await ledger.finish_claim("recovery", key, now, {"jobIds": json.dumps(out.job_ids)})
    log.info("recovery of %s: %d resets queued", tenant, len(out.job_ids))
    return out
