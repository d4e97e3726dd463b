"""Sign-in failure evidence from the vendor tenant: Graph signIns or Log Analytics.

Both sources answer the same question — how many cross-tenant policy failures per home
tenant in the window — so the sweep does not care which one a deployment uses.

Evidence is a signal, never a precondition (DESIGN §3.3): :meth:`read` never raises for a
failure of the source. It returns the counts it could get and, when the source failed or
answered only in part, a :class:`SourceProblem` naming the cause and its fix:

* Graph sign-in logs need Entra ID P1/P2: 403
  ``Authentication_RequestFromNonPremiumTenantOrB2CTenant``;
* the reports API is throttled (5 requests per 10 s per app per tenant, shared with the
  audit watcher through :mod:`shared.adapters.reports_budget`);
* a Log Analytics workspace without a ``SigninLogs`` table (a diagnostic setting can take
  days to create it) answers 400 SEM0100;
* a query past Log Analytics' limits comes back partial (``LogsQueryPartialResult``).

Sign-in records can be duplicated (Entra republishes a batch whose delivery failed; the
monitoring FAQ says so): failures are counted per distinct sign-in ``id``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from azure.core.exceptions import AzureError, HttpResponseError

from shared.adapters.graph import BAD_SHAPE, GraphClient, GraphError
from shared.adapters.reports_budget import ReportsBudget, reports_budget
from shared.domain.source_health import SourceKind, SourceProblem

log = logging.getLogger(__name__)

EVIDENCE_CODES = ("500212", "500213", "5000211")

Counts = dict[str, dict[str, int]]  # home tenant id -> AADSTS code -> failures


class EvidenceUnavailable(Exception):
    """The evidence source failed; ``problem`` says why and how to fix it."""

    def __init__(self, problem: SourceProblem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


@dataclass(frozen=True)
class EvidenceRead:
    """What one read of the source gave: counts, and a problem when it was not all."""

    counts: Counts
    problem: SourceProblem | None = None

    @property
    def unavailable(self) -> str | None:
        """The reason to show on posture records, when there is no evidence at all."""
        if self.problem is not None and self.problem.cause != "partial_answer":
            return self.problem.reason
        return None


class SignInSource(Protocol):
    async def read(self, now: datetime, window_hours: int) -> EvidenceRead: ...

    async def failure_counts(self, now: datetime, window_hours: int) -> Counts: ...


class _Reads:
    """``failure_counts`` on top of ``read``: the counts, or EvidenceUnavailable."""

    async def read(self, now: datetime, window_hours: int) -> EvidenceRead:
        raise NotImplementedError

    async def failure_counts(self, now: datetime, window_hours: int) -> Counts:
        result = await self.read(now, window_hours)
        if result.unavailable is not None and result.problem is not None:
            raise EvidenceUnavailable(result.problem)
        return result.counts


class NoSignInSource(_Reads):
    async def read(self, now: datetime, window_hours: int) -> EvidenceRead:
        return EvidenceRead({})


def _problem(
    cause: str, reason: str, fix: str, detail: str, *, persistent: bool = True
) -> SourceProblem:
    return SourceProblem(
        source=SourceKind.SIGNIN_EVIDENCE,
        cause=cause,
        reason=reason,
        fix=fix,
        detail=detail,
        persistent=persistent,
    )


_SWITCH_SOURCE = (
    "Or set XTAP_SIGNIN_SOURCE to log_analytics (Entra sign-in logs routed to a Log "
    "Analytics workspace) or to none (policy reads only)."
)


def graph_problem(exc: GraphError) -> SourceProblem:
    """Why Graph's sign-in log could not be read, for the admins."""
    detail = f"{exc.status} {exc.code}: {exc.message}"
    if exc.code == "Authentication_RequestFromNonPremiumTenantOrB2CTenant":
        return _problem(
            "non_premium_tenant",
            "Entra ID P1/P2 licence missing: Graph serves sign-in logs only to premium tenants",
            "License the vendor tenant with Microsoft Entra ID P1 or P2 (sign-in logs in "
            "Graph need it; data appears within a day of licensing). " + _SWITCH_SOURCE,
            detail,
        )
    if exc.status in (401, 403):
        return _problem(
            "access_denied",
            f"Graph refused the sign-in log ({exc.code})",
            "Grant xtap-watch's identity the AuditLog.Read.All application permission in "
            "the vendor tenant (Enterprise applications > the app > Permissions > Grant "
            "admin consent).",
            detail,
        )
    if exc.status == 429:
        return _problem(
            "throttled",
            "Graph throttled the sign-in log query (5 requests per 10 s per app and tenant)",
            "Nothing to do if it clears; if it persists, another process with the same app "
            "identity is reading the audit or sign-in logs: give it its own app "
            "registration or move its schedule.",
            detail,
            persistent=False,
        )
    if exc.code == BAD_SHAPE:
        return _problem(
            "bad_answer",
            "Graph answered the sign-in log query with something that is not Graph JSON",
            "Check for a proxy or gateway between xtap-watch and graph.microsoft.com; it "
            "usually clears by itself.",
            detail,
            persistent=False,
        )
    return _problem(
        "unreachable",
        f"Graph's sign-in log did not answer ({exc.status or 'no answer'} {exc.code})",
        "Usually transient; if it persists, check outbound connectivity to "
        "graph.microsoft.com and the service health page.",
        detail,
        persistent=not exc.transient,
    )


class GraphSignInSource(_Reads):
    def __init__(
        self, graph: GraphClient, page_size: int = 999, budget: ReportsBudget | None = None
    ) -> None:
        self._graph = graph
        self._page_size = page_size
        self._budget = budget

    async def read(self, now: datetime, window_hours: int) -> EvidenceRead:
        since = (now - timedelta(hours=window_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        codes = " or ".join(f"status/errorCode eq {code}" for code in EVIDENCE_CODES)
        params: dict[str, Any] | None = {
            "$filter": f"createdDateTime ge {since} and ({codes})",
            "$top": self._page_size,
        }
        budget = self._budget or reports_budget(self._graph.tenant_id)
        seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        next_path: str | None = "/auditLogs/signIns"
        try:
            while next_path:
                async with budget:
                    page = await self._graph.get_json(next_path, params)
                for record in page.get("value", []):
                    home = str(record.get("homeTenantId") or "").lower()
                    code = str((record.get("status") or {}).get("errorCode") or "")
                    if home and code in EVIDENCE_CODES:
                        seen[home][code].add(str(record.get("id")))
                link = page.get("@odata.nextLink")
                next_path, params = (link, None) if isinstance(link, str) else (None, None)
        except GraphError as exc:
            problem = graph_problem(exc)
            log.warning("sign-in evidence unavailable: %s (%s)", problem.reason, problem.detail)
            return EvidenceRead({}, problem)
        return EvidenceRead(
            {
                tenant: {code: len(ids) for code, ids in per_code.items()}
                for tenant, per_code in seen.items()
            }
        )


def _error_text(exc: Exception) -> str:
    """The error as one line, inner errors included (SEM0100: no such table)."""
    status = getattr(exc, "status_code", None)
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (f"{status} " if status else "") + text[:500]


def log_analytics_problem(
    exc: Exception, source: SourceKind, table: str, workspace_id: str
) -> SourceProblem:
    """Why a Log Analytics query failed, for the admins (sign-in or audit source)."""
    detail = _error_text(exc)
    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    text = detail
    route = (
        "Entra ID > Monitoring & health > Diagnostic settings: send "
        + ("SignInLogs" if table == "SigninLogs" else "AuditLogs")
        + f" to workspace {workspace_id}"
    )
    if "SEM0100" in text or "Failed to resolve table" in text:
        return SourceProblem(
            source,
            "table_missing",
            f"the Log Analytics workspace has no {table} table yet",
            f"In {route}. A new diagnostic setting can take up to three days before the "
            "first rows (and the table) appear.",
            detail,
        )
    if status in (401, 403):
        return SourceProblem(
            source,
            "access_denied",
            f"Log Analytics refused the query ({status})",
            f"Give xtap-watch's managed identity the Log Analytics Reader role on workspace "
            f"{workspace_id} (Access control (IAM) > Add role assignment).",
            detail,
        )
    if status == 404:
        return SourceProblem(
            source,
            "workspace_not_found",
            f"Log Analytics workspace {workspace_id} was not found",
            "Set XTAP_LOG_ANALYTICS_WORKSPACE_ID to the workspace's ID (Workspace ID on its "
            "Overview page, not the resource ID).",
            detail,
        )
    if status == 429:
        return SourceProblem(
            source,
            "throttled",
            "Log Analytics throttled the query",
            "Nothing to do if it clears; otherwise reduce other queries made with the same "
            "identity (Log Analytics allows 200 queries per 30 s per user).",
            detail,
            persistent=False,
        )
    return SourceProblem(
        source,
        "unreachable",
        f"Log Analytics did not answer the {table} query",
        "Usually transient; if it persists, check connectivity to api.loganalytics.io and "
        "the workspace's health.",
        detail,
        persistent=False,
    )


def partial_problem(partial_error: Any, source: SourceKind, table: str) -> SourceProblem:
    """A partial answer: rows are used, the error is reported."""
    message = getattr(partial_error, "message", None) or "partial answer"
    code = getattr(partial_error, "code", None) or "PartialError"
    # The cause (a limit, a timeout) sits in details[].innererror (Kusto's own words).
    for item in getattr(partial_error, "details", None) or []:
        inner = item.get("innererror") if isinstance(item, Mapping) else None
        if isinstance(inner, Mapping) and inner.get("message"):
            message = f"{message} {inner['message']}"
    return SourceProblem(
        source,
        "partial_answer",
        f"Log Analytics answered the {table} query only in part",
        "Nothing is lost if it clears: the next run reads again. If it persists, the window "
        "holds more rows than one query may return; shorten the window or the schedule.",
        f"{code}: {message}",
        persistent=False,
    )


def result_tables(response: Any) -> tuple[list[Any], Any]:
    """The tables of a LogsQueryResult, or the partial ones of a LogsQueryPartialResult."""
    tables = getattr(response, "tables", None)
    if tables is not None:
        return list(tables), None
    return list(getattr(response, "partial_data", None) or []), getattr(
        response, "partial_error", None
    )


def rows_of(tables: list[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for table in tables:
        columns = list(table.columns)
        rows.extend(dict(zip(columns, row, strict=False)) for row in table.rows)
    return rows


class LogAnalyticsSignInSource(_Reads):
    def __init__(self, logs_client: Any, workspace_id: str) -> None:
        self._client = logs_client
        self._workspace_id = workspace_id

    async def read(self, now: datetime, window_hours: int) -> EvidenceRead:
        codes = ", ".join(f'"{c}"' for c in EVIDENCE_CODES)
        start = (now - timedelta(hours=window_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # CreatedDateTime is the sign-in; TimeGenerated is when Log Analytics received the
        # row (later), so the timespan reaches an hour further back. Distinct Id first:
        # a republished record counts once.
        query = (
            "SigninLogs"
            f" | where CreatedDateTime >= datetime({start})"
            f" | where ResultType in ({codes})"
            " | distinct Id, HomeTenantId, ResultType"
            " | summarize Failures = count() by HomeTenantId, ResultType"
        )
        try:
            response = await self._client.query_workspace(
                self._workspace_id, query, timespan=timedelta(hours=window_hours + 1)
            )
        except (AzureError, ValueError) as exc:
            problem = log_analytics_problem(
                exc, SourceKind.SIGNIN_EVIDENCE, "SigninLogs", self._workspace_id
            )
            log.warning("sign-in evidence unavailable: %s (%s)", problem.reason, problem.detail)
            return EvidenceRead({}, problem)
        tables, partial_error = result_tables(response)
        counts: Counts = defaultdict(dict)
        for values in rows_of(tables):
            home = str(values.get("HomeTenantId") or "").lower()
            if home:
                counts[home][str(values.get("ResultType"))] = int(values.get("Failures") or 0)
        if partial_error is None:
            return EvidenceRead(dict(counts))
        problem = partial_problem(partial_error, SourceKind.SIGNIN_EVIDENCE, "SigninLogs")
        log.warning("sign-in evidence partial: %s", problem.detail)
        return EvidenceRead(dict(counts), problem)
