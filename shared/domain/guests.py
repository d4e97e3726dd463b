"""Guest hygiene: guests stuck in ``PendingAcceptance``, and guests stranded by a drift.

Graph facts (DESIGN §3.5): a B2B guest has ``externalUserState`` ``PendingAcceptance``
until it redeems its invitation, then ``Accepted``; ``externalUserStateChangeDateTime``
says when that state last changed. A guest invited (or re-invited) while its client's
outbound policy blocked the vendor could not redeem: it sits in ``PendingAcceptance``
with a change time inside the drift episode. Once the client recovers, resetting its
redemption gives it a fresh, working invitation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.clients import ClientRecord
from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity
from shared.domain.reinvite import check_eligibility

PENDING = "PendingAcceptance"
MAX_LISTED = 25  # guests named in one alert; the rest are counted


@dataclass(frozen=True)
class PendingGuest:
    user_id: str
    display_name: str
    address: str
    pending_since: datetime | None


def parse_graph_datetime(value: Any) -> datetime | None:
    """Graph DateTimeOffset (``2026-01-02T03:04:05Z``, optional fraction) → aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        # Graph may send 7 fractional digits; fromisoformat takes at most 6.
        head, _, tail = text.partition(".")
        digits = tail[: len(tail) - len(tail.lstrip("0123456789"))]
        zone = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def pending_guests_by_client(
    users: Iterable[Mapping[str, Any]], clients: Iterable[ClientRecord]
) -> dict[str, tuple[ClientRecord, list[PendingGuest]]]:
    """Registered clients' guests still in PendingAcceptance, keyed by client tenant ID."""
    client_list = list(clients)
    out: dict[str, tuple[ClientRecord, list[PendingGuest]]] = {}
    for user in users:
        if user.get("externalUserState") != PENDING:
            continue
        verdict = check_eligibility(user, client_list)
        if not verdict.eligible or verdict.client is None or verdict.address is None:
            continue
        guest = PendingGuest(
            user_id=str(user.get("id") or "").lower(),
            display_name=str(user.get("displayName") or verdict.address.address),
            address=verdict.address.address,
            pending_since=parse_graph_datetime(user.get("externalUserStateChangeDateTime")),
        )
        entry = out.setdefault(verdict.client.tenant_id, (verdict.client, []))
        entry[1].append(guest)
    return out


def stuck_guests(
    users: Iterable[Mapping[str, Any]],
    clients: Iterable[ClientRecord],
    now: datetime,
    days: int,
) -> dict[str, tuple[ClientRecord, list[PendingGuest]]]:
    """Guests pending for ``days`` or more (unknown change time counts as stuck), oldest first."""
    cutoff = now - timedelta(days=days)
    out: dict[str, tuple[ClientRecord, list[PendingGuest]]] = {}
    for tenant_id, (client, guests) in pending_guests_by_client(users, clients).items():
        stuck = [g for g in guests if g.pending_since is None or g.pending_since <= cutoff]
        if stuck:
            stuck.sort(key=lambda g: (g.pending_since or cutoff, g.display_name.lower()))
            out[tenant_id] = (client, stuck)
    return out


def stranded_guests(
    users: Iterable[Mapping[str, Any]],
    client: ClientRecord,
    drift_started_at: datetime,
    recovered_at: datetime,
) -> list[PendingGuest]:
    """The client's pending guests whose state changed during the drift episode."""
    entry = pending_guests_by_client(users, [client]).get(client.tenant_id)
    if entry is None:
        return []
    return [
        g
        for g in entry[1]
        if g.pending_since is not None and drift_started_at <= g.pending_since <= recovered_at
    ]


def pending_guests_alert(
    client: ClientRecord, guests: list[PendingGuest], now: datetime, days: int
) -> AlertRecord:
    """One alert per client per day (the key carries the date; the outbox de-duplicates)."""
    listed = guests[:MAX_LISTED]
    lines = [
        f"{g.display_name} <{g.address}> — pending since {g.pending_since:%Y-%m-%d}"
        if g.pending_since
        else f"{g.display_name} <{g.address}>"
        for g in listed
    ]
    more = len(guests) - len(listed)
    if more > 0:
        lines.append(f"… and {more} more")
    oldest = min((g.pending_since for g in guests if g.pending_since), default=None)
    facts = {"Client": client.name, "Guests stuck": str(len(guests)), "Threshold": f"{days} days"}
    if oldest is not None:
        facts["Oldest pending since"] = f"{oldest:%Y-%m-%d}"
    return AlertRecord(
        dedup_key=f"pending-guests:{client.tenant_id}:{now:%Y%m%d}",
        kind=AlertKind.PENDING_GUESTS,
        severity=Severity.LOW,
        title=f"{len(guests)} {client.name} guest(s) never redeemed their invitation",
        summary=(
            f"These guests have been in PendingAcceptance for {days} days or more:\n"
            + "\n".join(lines)
        ),
        client=ClientRef(name=client.name, tenant_id=client.tenant_id, domains=client.domains),
        remediation_steps=(
            "Ask the client's contact whether these people still need access.",
            'Re-invite those who do: POST /api/v1/reinvites {"userId": ..., "reason": ...} '
            "or `xtap-watch reinvite request --user-id ID --reason TEXT`.",
            "Remove the guests nobody needs (Entra admin center → Users → filter Guest).",
        ),
        facts=facts,
        when=now,
        created_at=now,
        source="hygiene",
    )
