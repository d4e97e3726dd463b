"""Alert storms become one digest: more than N alerts from one run → one DIGEST record.

A change to the vendor's or a client's *default* policy can move every client at once;
posting a card per client would bury the channel (and hit the Workflows rate limit of
4 requests a second). ``collapse`` is pure: the producer calls it on the records of one
run, before they go to the outbox.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from shared.domain.messages import AlertKind, AlertRecord
from shared.rendering.presentation import SEVERITY_LABEL, SEVERITY_RANK, shorten

# Operational alerts about the alerting itself stay single: a digest could hide the one
# message that says alerts are not arriving. Digests are never nested.
NEVER_COLLAPSED = frozenset(
    {AlertKind.DELIVERY_FAILING, AlertKind.POISON_MESSAGE, AlertKind.DIGEST}
)


def collapse(alerts: list[AlertRecord], threshold: int, now: datetime) -> list[AlertRecord]:
    """Return ``alerts`` unchanged, or with the collapsible ones replaced by one digest.

    Records with the same ``dedup_key`` are the same alert and count once. When more than
    ``threshold`` collapsible records remain, they become one DIGEST record listing them
    (most severe first), whose severity is the highest among them and whose dedup key is
    derived from the member keys — the same set of alerts always gives the same key, so a
    repeated run is de-duplicated like any other alert. Records in ``NEVER_COLLAPSED`` are
    passed through, before the digest.
    """
    if threshold < 1:
        raise ValueError(f"digest threshold must be at least 1, got {threshold}")
    unique: dict[str, AlertRecord] = {}
    for alert in alerts:
        unique.setdefault(alert.dedup_key, alert)
    kept = [a for a in unique.values() if a.kind in NEVER_COLLAPSED]
    members = [a for a in unique.values() if a.kind not in NEVER_COLLAPSED]
    if len(members) <= threshold:
        return list(unique.values())
    return [*kept, make_digest(members, threshold, now)]


def make_digest(members: list[AlertRecord], threshold: int, now: datetime) -> AlertRecord:
    ordered = sorted(members, key=lambda a: (-SEVERITY_RANK[a.severity], a.created_at, a.dedup_key))
    severity = ordered[0].severity
    by_severity = Counter(a.severity for a in members)
    by_kind = Counter(a.kind for a in members)
    sources = Counter(a.source for a in members)
    source = sources.most_common(1)[0][0]
    clients = {a.client.tenant_id for a in members if a.client}

    kinds_text = ", ".join(
        f"{count} {kind.value.replace('_', ' ')}" for kind, count in by_kind.most_common()
    )
    facts = {
        "alerts": str(len(members)),
        **{
            SEVERITY_LABEL[s].lower(): str(by_severity[s])
            for s in sorted(by_severity, key=lambda s: -SEVERITY_RANK[s])
        },
    }
    if clients:
        facts["clients"] = str(len(clients))
    return AlertRecord(
        dedup_key=digest_key(a.dedup_key for a in members),
        kind=AlertKind.DIGEST,
        severity=severity,
        title=shorten(f"{len(members)} alerts from one {source} run: {kinds_text}", 300),
        summary=(
            f"More than {threshold} alerts came from one run, so they are listed here "
            "instead of one message each."
        ),
        facts=facts,
        items=tuple(ordered),
        created_at=now,
        source=source,
    )


def digest_key(member_keys: Iterable[str]) -> str:
    """``digest:<sha256 of the sorted member keys>`` — order-independent and stable."""
    keys = sorted(set(member_keys))
    digest = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()
    return f"digest:{digest}"
