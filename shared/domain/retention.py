"""What the retention purge may delete, and in which batches: pure rules, no I/O.

Age is the row's ``Timestamp``: the Table service sets it on every write ("the time an
entity was last modified"), so a row anything still touches is young, whatever columns
its writer chose. Beyond age, a row is kept while de-duplication or delivery still needs it:

* **delivery ledger** (``xtapDeliveries``): a (alert, route) row de-duplicates redelivered
  outbox messages. A queue message lives at most 7 days, and the retention may not be
  shorter than that plus a day (``shared/config.py``), so an expired row can no longer meet
  a copy of its alert. Rows of a pending digest are kept whatever their age: a ``held``
  member carries the only copy of its alert, and a ``flag`` row with ``Pending`` true says a
  flush is still due (purging either would lose alerts silently).
* **job ledger** (``xtapJobs``): job rows, the per-user index (the 15-minute duplicate
  window) and side-effect claims (they record Graph's answer for a redelivered job message);
  all are needed for minutes to days, far inside the same 8-day floor.
* **seen audit events** (``xtapSeenEvents``): an event ID is needed while a scan can read the
  event again, i.e. back to the last completed scan's end minus the overlap (or the first-scan
  look-back when there is no cursor); the margin covers clock skew between Entra and us.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# Entity group transactions: at most 100 entities, all in one partition (Table service
# "Performing entity group transactions").
MAX_TRANSACTION_ENTITIES = 100

RowFilter = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class RowRef:
    partition: str
    row: str
    etag: str


@dataclass(frozen=True)
class DeleteBatch:
    partition: str
    rows: tuple[RowRef, ...]


@dataclass(frozen=True)
class PagePlan:
    batches: tuple[DeleteBatch, ...]
    kept_pending: int  # old rows kept because something still needs them
    kept_young: int  # rows the server returned that are not old enough (clock edge)
    last_key: tuple[str, str] | None  # the last row of the page, where a later run resumes


def ledger_cutoff(now: datetime, retention_days: int) -> datetime:
    return now - timedelta(days=retention_days)


def seen_events_cutoff(
    now: datetime,
    *,
    overlap: timedelta,
    margin: timedelta,
    last_scan_end: datetime | None,
    first_scan_lookback: timedelta,
) -> datetime:
    """Seen-event rows last written before this are never read again by a scan."""
    if last_scan_end is None:
        reread_from = now - first_scan_lookback
    else:
        # min(): a cursor from a clock ahead of ours must not widen what we delete.
        reread_from = min(last_scan_end, now) - overlap
    return min(reread_from, now - overlap) - margin


def holds_pending_digest(row: Mapping[str, Any]) -> bool:
    """A delivery-ledger row a digest still needs: a held alert, or a flush still due."""
    if row.get("Status") == "held":
        return True
    return row.get("Kind") == "flag" and row.get("Pending") is True


def plan_page(
    rows: Iterable[Mapping[str, Any]],
    cutoff: datetime,
    keep: RowFilter | None = None,
    limit: int = MAX_TRANSACTION_ENTITIES,
) -> PagePlan:
    """Split one page of candidate rows (in key order) into delete batches.

    Each row needs ``PartitionKey``, ``RowKey``, ``_etag`` and ``_timestamp``. A batch holds
    consecutive rows of one partition, at most ``limit`` of them.
    """
    if not 1 <= limit <= MAX_TRANSACTION_ENTITIES:
        raise ValueError(f"a transaction holds 1..{MAX_TRANSACTION_ENTITIES} entities")
    batches: list[DeleteBatch] = []
    current: list[RowRef] = []
    kept_pending = kept_young = 0
    last_key: tuple[str, str] | None = None

    def close() -> None:
        if current:
            batches.append(DeleteBatch(current[0].partition, tuple(current)))
            current.clear()

    for row in rows:
        partition, key = str(row["PartitionKey"]), str(row["RowKey"])
        last_key = (partition, key)
        stamp = row.get("_timestamp")
        if not isinstance(stamp, datetime) or stamp >= cutoff:
            kept_young += 1
            continue
        if keep is not None and keep(row):
            kept_pending += 1
            continue
        if current and (current[0].partition != partition or len(current) >= limit):
            close()
        current.append(RowRef(partition, key, str(row["_etag"])))
    close()
    return PagePlan(tuple(batches), kept_pending, kept_young, last_key)


def resume_filter(after: tuple[str, str] | None) -> tuple[str, dict[str, str]]:
    """An OData clause (and its parameters) for "rows after this key", in key order."""
    if after is None:
        return "", {}
    # azure-data-tables substitutes ``@name`` only as a space-separated word.
    clause = "( PartitionKey gt @afterPk or ( PartitionKey eq @afterPk and RowKey gt @afterRk ) )"
    return clause, {"afterPk": after[0], "afterRk": after[1]}
