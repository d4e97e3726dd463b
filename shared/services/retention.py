"""Use case: purge expired rows from the ledgers and the seen-events table, in bounded runs.

Three tables grow with use: the delivery ledger (with the digest batch rows), the job
ledger, and the seen audit event IDs. Each has a retention from configuration; what
de-duplication still needs is kept whatever its age (``shared/domain/retention.py`` says
why, table by table).

One run, per table:

* reads rows with ``Timestamp`` older than the cutoff, a service page (≤ 1,000) at a time,
  in key order, starting after the key where the previous run stopped;
* deletes them in entity group transactions of ≤ 100 rows of one partition, each row only
  if unchanged since it was read (a row touched meanwhile is young again and stays);
* stops after ``XTAP_PURGE_MAX_ROWS`` deletions or :data:`MAX_PAGES_PER_TABLE` pages and
  records where (``xtapCursors``/``purge``), so one invocation stays short; the next run
  resumes there, and a run that reaches the end of the table starts the next pass at the
  beginning.

A run killed midway loses nothing and repeats nothing harmful: the cursor is written after
the rows before it were handled, so the next run re-reads at most one page, whose deleted
rows no longer match.

The posture table also loses the rows of its former layout (one partition per tenant) once
a week old: by then every registered client has a row of the new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from shared.adapters.repositories import LEGACY_POSTURE_FILTER, PurgeCursors, cursor_store
from shared.config import TABLE_DELIVERIES, TABLE_JOBS, TABLE_POSTURE, TABLE_SEEN_EVENTS
from shared.domain.retention import (
    RowFilter,
    holds_pending_digest,
    ledger_cutoff,
    plan_page,
    resume_filter,
    seen_events_cutoff,
)
from shared.services.audit_scan import CURSOR_KEY as AUDIT_CURSOR_KEY
from shared.services.audit_scan import FIRST_SCAN_LOOKBACK

if TYPE_CHECKING:
    from shared.adapters.storage import StorageTables
    from shared.bootstrap import App

log = logging.getLogger(__name__)

MAX_PAGES_PER_TABLE = 20
LEGACY_POSTURE_KEPT = timedelta(days=7)
PAGE_SIZE = 1000  # the Table service's largest page


@dataclass(frozen=True)
class PurgeRule:
    table: str
    cutoff: datetime
    keep: RowFilter | None = None  # old rows that must stay anyway
    where: str | None = None  # only rows matching this filter are purged at all
    select: tuple[str, ...] = ("PartitionKey", "RowKey")


@dataclass
class TablePurge:
    table: str
    cutoff: datetime
    deleted: int = 0
    attempted: int = 0
    examined: int = 0
    kept_pending: int = 0
    pages: int = 0
    complete: bool = False  # reached the end of the table: the next run starts a new pass
    stopped_by: str = ""  # "row cap" | "page cap" when the run stopped early


@dataclass
class PurgeOutcome:
    tables: list[TablePurge] = field(default_factory=list)

    @property
    def deleted(self) -> int:
        return sum(t.deleted for t in self.tables)

    def by_table(self) -> dict[str, TablePurge]:
        return {t.table: t for t in self.tables}


async def last_audit_scan_end(app: App) -> datetime | None:
    """Where the audit scan's cursor stands (None: no cursor, or one we cannot read)."""
    state, _ = await cursor_store(app.tables).get(AUDIT_CURSOR_KEY)
    value = (state or {}).get("scanned_to") if isinstance(state, dict) else None
    if not value:
        return None
    try:
        end = datetime.fromisoformat(str(value))
    except ValueError:
        log.warning("audit cursor %r not understood; seen events kept for the look-back", value)
        return None
    return end if end.tzinfo else end.replace(tzinfo=UTC)


async def purge_rules(app: App, now: datetime) -> list[PurgeRule]:
    retention = app.settings.retention
    seen_cutoff = seen_events_cutoff(
        now,
        overlap=timedelta(minutes=app.settings.audit_overlap_minutes),
        margin=timedelta(minutes=retention.seen_events_margin_minutes),
        last_scan_end=await last_audit_scan_end(app),
        first_scan_lookback=FIRST_SCAN_LOOKBACK,
    )
    return [
        PurgeRule(TABLE_SEEN_EVENTS, seen_cutoff),
        PurgeRule(
            TABLE_DELIVERIES,
            ledger_cutoff(now, retention.delivery_retention_days),
            keep=holds_pending_digest,
            select=("PartitionKey", "RowKey", "Status", "Kind", "Pending"),
        ),
        PurgeRule(TABLE_JOBS, ledger_cutoff(now, retention.job_retention_days)),
        # Posture rows of the layout before one partition held them all: read only for a
        # client not checked since the upgrade, which every sweep does within the hour.
        PurgeRule(TABLE_POSTURE, now - LEGACY_POSTURE_KEPT, where=LEGACY_POSTURE_FILTER),
    ]


async def purge_table(
    tables: StorageTables,
    cursors: PurgeCursors,
    rule: PurgeRule,
    now: datetime,
    *,
    max_rows: int,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES_PER_TABLE,
) -> TablePurge:
    result = TablePurge(rule.table, rule.cutoff)
    after = await cursors.get(rule.table)
    clause, params = resume_filter(after)
    query = " and ".join(
        f"( {part} )" for part in ("Timestamp lt @cutoff", rule.where, clause) if part
    )
    pages = tables.pages(
        rule.table, query, {"cutoff": rule.cutoff, **params}, list(rule.select), page_size
    )
    async for page in pages:
        result.pages += 1
        result.examined += len(page)
        plan = plan_page(page, rule.cutoff, rule.keep)
        result.kept_pending += plan.kept_pending
        for batch in plan.batches:
            rows = batch.rows[: max_rows - result.attempted]
            result.attempted += len(rows)
            result.deleted += await tables.delete_unchanged(
                rule.table, batch.partition, [(r.row, r.etag) for r in rows]
            )
            if result.attempted >= max_rows:
                await cursors.save(rule.table, (rows[-1].partition, rows[-1].row), now)
                result.stopped_by = "row cap"
                return result
        after = plan.last_key or after
        await cursors.save(rule.table, after, now)
        if result.pages >= max_pages:
            result.stopped_by = "page cap"
            return result
    await cursors.save(rule.table, None, now)
    result.complete = True
    return result


async def purge_expired(
    app: App,
    now: datetime,
    *,
    max_rows: int | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES_PER_TABLE,
) -> PurgeOutcome:
    """One bounded purge run over every growing table (the timer calls this)."""
    cap = max_rows if max_rows is not None else app.settings.retention.purge_max_rows
    cursors = PurgeCursors(app.tables)
    outcome = PurgeOutcome()
    for rule in await purge_rules(app, now):
        result = await purge_table(
            app.tables, cursors, rule, now, max_rows=cap, page_size=page_size, max_pages=max_pages
        )
        outcome.tables.append(result)
        log.info(
            "purge %s: %d deleted of %d examined (older than %s)%s",
            rule.table,
            result.deleted,
            result.examined,
            rule.cutoff.isoformat(),
            f"; stopped at the {result.stopped_by}, resumes next run" if result.stopped_by else "",
        )
        if result.kept_pending:
            log.warning(
                "purge %s: kept %d rows older than the retention because a digest still needs "
                "them (held alerts or a flush still due): a digest flush may have been lost",
                rule.table,
                result.kept_pending,
            )
    return outcome
