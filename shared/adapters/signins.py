"""Sign-in failure evidence from the vendor tenant: Graph signIns or Log Analytics.

Both sources answer the same question — how many cross-tenant policy failures per home
tenant in the window — so the sweep does not care which one a deployment uses.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.adapters.graph import GraphClient

EVIDENCE_CODES = ("500212", "500213", "5000211")

Counts = dict[str, dict[str, int]]  # home tenant id -> AADSTS code -> failures


class SignInSource(Protocol):
    async def failure_counts(self, now: datetime, window_hours: int) -> Counts: ...


class NoSignInSource:
    async def failure_counts(self, now: datetime, window_hours: int) -> Counts:
        return {}


class GraphSignInSource:
    def __init__(self, graph: GraphClient, page_size: int = 999) -> None:
        self._graph = graph
        self._page_size = page_size

    async def failure_counts(self, now: datetime, window_hours: int) -> Counts:
        since = (now - timedelta(hours=window_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
        codes = " or ".join(f"status/errorCode eq {code}" for code in EVIDENCE_CODES)
        params = {"$filter": f"createdDateTime ge {since} and ({codes})", "$top": self._page_size}
        counts: Counts = defaultdict(lambda: defaultdict(int))
        async for page in self._graph.get_pages("/auditLogs/signIns", params):
            for record in page:
                home = str(record.get("homeTenantId") or "").lower()
                code = str((record.get("status") or {}).get("errorCode") or "")
                if home and code in EVIDENCE_CODES:
                    counts[home][code] += 1
        return {tenant: dict(by_code) for tenant, by_code in counts.items()}


class LogAnalyticsSignInSource:
    def __init__(self, logs_client: Any, workspace_id: str) -> None:
        self._client = logs_client
        self._workspace_id = workspace_id

    async def failure_counts(self, now: datetime, window_hours: int) -> Counts:
        codes = ", ".join(f'"{c}"' for c in EVIDENCE_CODES)
        query = (
            "SigninLogs"
            f" | where TimeGenerated > ago({int(window_hours)}h)"
            f" | where ResultType in ({codes})"
            " | summarize Failures = count() by HomeTenantId, ResultType"
        )
        response = await self._client.query_workspace(
            self._workspace_id, query, timespan=timedelta(hours=window_hours)
        )
        counts: Counts = defaultdict(dict)
        for table in response.tables:
            columns = list(table.columns)
            for row in table.rows:
                values = dict(zip(columns, row, strict=False))
                home = str(values.get("HomeTenantId") or "").lower()
                if home:
                    counts[home][str(values.get("ResultType"))] = int(values.get("Failures", 0))
        return dict(counts)
