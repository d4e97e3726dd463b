"""Cross-tenant access audit events from the vendor tenant: Graph or Log Analytics.

:meth:`read` never raises for a failure of the source: it returns an :class:`AuditRead`
with the records it got, the moment up to which they are complete (the scan's cursor
moves only that far), and a :class:`SourceProblem` when the source failed or answered in
part — so the scan can tell the admins it is blind, once, with the cause and the fix.

Graph's directoryAudits shares the identity-and-access-reports budget (5 requests per
10 s per app per tenant) with the sign-in query: both draw from
:func:`shared.adapters.reports_budget.reports_budget`, and the SDK's retry handler honours
Retry-After if another process shares the budget.

Log Analytics rows arrive late: ``TimeGenerated`` is when the workspace *received* the
row (Entra monitoring FAQ), minutes to days after the change. The Log Analytics source
therefore bounds its window by ingestion time (``ingestion_time()``), not by
``ActivityDateTime``: an event ingested 45 minutes late is read by the first scan after it
arrives, and the scan de-duplicates by event ID.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.core.exceptions import AzureError

from shared.adapters.graph import BAD_SHAPE, GraphClient, GraphError
from shared.adapters.reports_budget import ReportsBudget, reports_budget
from shared.adapters.signins import (
    log_analytics_problem,
    partial_problem,
    result_tables,
    rows_of,
)
from shared.domain.source_health import SourceKind, SourceProblem

log = logging.getLogger(__name__)

CATEGORIES = ("CrossTenantAccessSettings", "CrossTenantIdentitySyncSettings")
# How far before the window TimeGenerated may lie and still hold a row ingested in it
# (TimeGenerated is the ingestion time, but the timespan must never cut a late row off).
LATE_ROW_REACH = timedelta(days=1)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ceil(moment: datetime) -> str:
    # The upper bound is rounded up: truncating it would miss events logged in its second.
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return _iso(moment)


@dataclass(frozen=True)
class AuditRead:
    records: list[dict[str, Any]]
    complete_until: datetime | None  # records are complete up to here (None: read failed)
    problem: SourceProblem | None = None

    @property
    def failed(self) -> bool:
        return self.complete_until is None


class AuditSource(Protocol):
    async def read(self, since: datetime, until: datetime) -> AuditRead: ...

    async def fetch(self, since: datetime, until: datetime) -> list[dict[str, Any]]: ...


class AuditSourceError(Exception):
    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


class _Fetches:
    async def read(self, since: datetime, until: datetime) -> AuditRead:
        raise NotImplementedError

    async def fetch(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """The records, or AuditSourceError when the source could not be read."""
        result = await self.read(since, until)
        if result.failed and result.problem is not None:
            raise AuditSourceError(result.problem)
        return result.records


def _problem(cause: str, reason: str, fix: str, detail: str, *, persistent: bool) -> SourceProblem:
    return SourceProblem(SourceKind.AUDIT_LOG, cause, reason, fix, detail, persistent)


def graph_audit_problem(exc: GraphError) -> SourceProblem:
    """Why Graph's audit log could not be read, for the admins."""
    detail = f"{exc.status} {exc.code}: {exc.message}"
    if exc.status in (401, 403):
        return _problem(
            "access_denied",
            f"Graph refused the audit log ({exc.code})",
            "Grant xtap-watch's identity the AuditLog.Read.All application permission in the "
            "vendor tenant (Enterprise applications > the app > Permissions > Grant admin "
            "consent); until then changes to the vendor's cross-tenant access settings are "
            "not watched.",
            detail,
            persistent=True,
        )
    if exc.code == BAD_SHAPE:
        return _problem(
            "bad_answer",
            "Graph answered the audit log query with something that is not Graph JSON",
            "Check for a proxy or gateway between xtap-watch and graph.microsoft.com (an "
            "HTML page where JSON belongs); the scan retries every run.",
            detail,
            persistent=False,
        )
    if exc.status == 429:
        return _problem(
            "throttled",
            "Graph kept throttling the audit log query (5 requests per 10 s per app and tenant)",
            "Another process with the same app identity reads the audit or sign-in logs: "
            "give it its own app registration or move its schedule.",
            detail,
            persistent=False,
        )
    return _problem(
        "unreachable",
        f"Graph's audit log did not answer ({exc.status or 'no answer'} {exc.code})",
        "Usually transient; if it persists, check outbound connectivity to "
        "graph.microsoft.com and the Microsoft 365 service health page.",
        detail,
        persistent=not exc.transient,
    )


class GraphAuditSource(_Fetches):
    def __init__(
        self, graph: GraphClient, limiter: ReportsBudget | None = None, page_size: int = 500
    ) -> None:
        self._graph = graph
        self._limiter = limiter or reports_budget(graph.tenant_id)
        self._page_size = page_size
        self.category_filter_supported = True
        self.requests = 0

    async def _pages(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        next_path: str | None = "/auditLogs/directoryAudits"
        next_params: dict[str, Any] | None = params
        while next_path:
            async with self._limiter:
                self.requests += 1
                page = await self._graph.get_json(next_path, next_params)
            records.extend(page.get("value", []))
            link = page.get("@odata.nextLink")
            next_path, next_params = (link if isinstance(link, str) else None), None
        return records

    async def _fetch(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        window = f"activityDateTime ge {_iso(since)} and activityDateTime le {_iso_ceil(until)}"
        if self.category_filter_supported:
            categories = " or ".join(f"category eq '{c}'" for c in CATEGORIES)
            try:
                return await self._pages(
                    {"$filter": f"{window} and ({categories})", "$top": self._page_size}
                )
            except GraphError as exc:
                if exc.status != 400:
                    raise
                # Filtering on category is used widely but not documented: if this tenant
                # refuses it, read the time window and let the decoder skip other events.
                log.warning("category filter refused (%s); falling back to time only", exc.code)
                self.category_filter_supported = False
        return await self._pages({"$filter": window, "$top": self._page_size})

    async def read(self, since: datetime, until: datetime) -> AuditRead:
        try:
            return AuditRead(await self._fetch(since, until), complete_until=until)
        except GraphError as exc:
            problem = graph_audit_problem(exc)
            log.error("audit log unreadable: %s (%s)", problem.reason, problem.detail)
            return AuditRead([], None, problem)


def _as_utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return _as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


class LogAnalyticsAuditSource(_Fetches):
    def __init__(self, logs_client: Any, workspace_id: str) -> None:
        self._client = logs_client
        self._workspace_id = workspace_id

    async def read(self, since: datetime, until: datetime) -> AuditRead:
        """Rows *ingested* in ``(since, until]``, oldest ingestion first.

        A partial answer (a Log Analytics limit) keeps its rows; the read is complete only
        up to the last ingestion time it holds, so the cursor stops there.
        """
        categories = ", ".join(f'"{c}"' for c in CATEGORIES)
        query = (
            "AuditLogs"
            f" | where ingestion_time() > datetime({_iso(since)})"
            f" and ingestion_time() <= datetime({_iso_ceil(until)})"
            f" | where Category in ({categories})"
            " | order by TimeGenerated asc"
            " | project Id, ActivityDateTime, TimeGenerated, OperationName, Category, Result,"
            " TargetResources, InitiatedBy, CorrelationId"
        )
        try:
            response = await self._client.query_workspace(
                self._workspace_id, query, timespan=(since - LATE_ROW_REACH, until)
            )
        except (AzureError, ValueError) as exc:
            problem = log_analytics_problem(
                exc, SourceKind.AUDIT_LOG, "AuditLogs", self._workspace_id
            )
            log.error("audit log unreadable: %s (%s)", problem.reason, problem.detail)
            return AuditRead([], None, problem)
        tables, partial_error = result_tables(response)
        rows = rows_of(tables)
        if partial_error is None:
            return AuditRead(rows, complete_until=until)
        problem = partial_problem(partial_error, SourceKind.AUDIT_LOG, "AuditLogs")
        log.warning("audit log answer partial: %s", problem.detail)
        ingested = [t for t in (_as_utc(r.get("TimeGenerated")) for r in rows) if t is not None]
        # Rows are ordered by ingestion: everything up to the last one read is complete.
        return AuditRead(rows, complete_until=max(ingested) if ingested else since, problem=problem)
