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

from shared.domain.messages import QUEUE_MESSAGE_LIMIT_BYTES, AlertKind, AlertRecord
from shared.rendering.presentation import SEVERITY_LABEL, SEVERITY_RANK, shorten

# Operational alerts about the alerting itself stay single: a digest could hide the one
# message that says alerts are not arriving. Digests are never nested.
NEVER_COLLAPSED = frozenset({AlertKind.DELIVERY_FAILING, AlertKind.POISON_MESSAGE,
                             AlertKind.DIGEST})


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


def make_digest(
    members: list[AlertRecord],
    threshold: int,
    now: datetime,
    limit_bytes: int = QUEUE_MESSAGE_LIMIT_BYTES,
) -> AlertRecord:
    """One DIGEST record for ``members``, sized to fit one queue message.

    When the members do not all fit, the ones past what fits are not dropped silently:
    ``omitted`` counts them and ``omitted_refs`` keeps their audit event IDs (or alert
    keys) as far as those fit; an audit digest also carries, in ``details``, the audit-log
    query that lists every change of the window.
    """
    ordered = sorted(members, key=lambda a: (-SEVERITY_RANK[a.severity], a.created_at,
                                             a.dedup_key))
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
    details = (audit_log_query(members),) if source == "audit" else ()
    digest = AlertRecord(
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
        details=details,
        created_at=now,
        source=source,
    )
    return fit_digest(digest, limit_bytes)


def member_ref(alert: AlertRecord) -> str:
    """How an admin finds a digest member again: its audit event ID, else its key."""
    return alert.facts.get("Event ID") or alert.facts.get("event_id") or alert.dedup_key


def audit_log_query(members: Iterable[AlertRecord]) -> str:
    times = sorted(a.when or a.created_at for a in members)
    categories = sorted({a.facts.get("Category", "") for a in members} - {""}) or [
        "CrossTenantAccessSettings"
    ]
    start = times[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    end = times[-1].strftime("%Y-%m-%dT%H:%M:%SZ")
    category_filter = " or ".join(f"category eq '{c}'" for c in categories)
    return (
        f"Every change of this digest is in the audit log from {start} to {end} "
        f"(Entra admin center > Monitoring & health > Audit logs, Category "
        f"{' or '.join(categories)}). Graph: GET /auditLogs/directoryAudits?$filter="
        f"activityDateTime ge {start} and activityDateTime le {end} and ({category_filter})"
    )


def _size(record: AlertRecord) -> int:
    return len(record.model_dump_json().encode("utf-8"))


def fit_digest(digest: AlertRecord, limit_bytes: int = QUEUE_MESSAGE_LIMIT_BYTES) -> AlertRecord:
    """``digest`` with as many members listed as fit, the rest counted and referenced."""
    if _size(digest) <= limit_bytes:
        return digest
    slim = tuple(
        item.model_copy(update={"findings": (), "remediation_steps": (), "changes": (),
                                "links": (), "details": (), "summary": ""})
        for item in digest.items
    )
    already = digest.omitted

    def with_listed(count: int, refs: int | None = None) -> AlertRecord:
        rest = [member_ref(item) for item in slim[count:]]
        kept = tuple(digest.omitted_refs) + tuple(rest)
        return digest.model_copy(update={
            "items": slim[:count],
            "omitted": already + len(slim) - count,
            "omitted_refs": kept if refs is None else kept[:refs],
        })

    low, high = 0, len(slim)  # the most members listed with every reference kept
    while low < high:
        middle = (low + high + 1) // 2
        if _size(with_listed(middle)) <= limit_bytes:
            low = middle
        else:
            high = middle - 1
    record = with_listed(low)
    if _size(record) <= limit_bytes:
        return record
    total_refs = len(record.omitted_refs)
    low, high = 0, total_refs  # not even the references fit: keep what does
    while low < high:
        middle = (low + high + 1) // 2
        if _size(with_listed(0, middle)) <= limit_bytes:
            low = middle
        else:
            high = middle - 1
    return with_listed(0, low)


def digest_key(member_keys: Iterable[str]) -> str:
    """``digest:<sha256 of the sorted member keys>`` — order-independent and stable."""
    keys = sorted(set(member_keys))
    digest = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()
    return f"digest:{digest}"

