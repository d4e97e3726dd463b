"""Cross-tenant access audit events from the vendor tenant: Graph or Log Analytics.

Graph's directoryAudits is throttled at 5 requests per 10 s per app per tenant: we pace
ourselves to that (sliding window) and the SDK's retry handler honours Retry-After if
another process shares the budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.adapters.graph import GraphClient, GraphError

log = logging.getLogger(__name__)

CATEGORIES = ("CrossTenantAccessSettings", "CrossTenantIdentitySyncSettings")
AUDIT_RATE = (5, 10.0)  # requests, seconds


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ceil(moment: datetime) -> str:
    # The upper bound is rounded up: truncating it would miss events logged in its second.
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return _iso(moment)


class SlidingWindowLimiter:
    """At most ``limit`` acquisitions in any ``window`` seconds (what Graph enforces).

    A leaky bucket would allow a burst plus a steady rate that still breaks a sliding
    window, and every 429 costs a Retry-After wait, so we keep exactly to the window.
    """

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._times and now - self._times[0] >= self._window:
                    self._times.popleft()
                if len(self._times) < self._limit:
                    self._times.append(now)
                    return
                await asyncio.sleep(self._window - (now - self._times[0]) + 0.01)

    async def __aexit__(self, *exc: object) -> None:
        return None


class AuditSource(Protocol):
    async def fetch(self, since: datetime, until: datetime) -> list[dict[str, Any]]: ...


class GraphAuditSource:
    def __init__(self, graph: GraphClient, limiter: Any = None, page_size: int = 500) -> None:
        self._graph = graph
        self._limiter = limiter or SlidingWindowLimiter(*AUDIT_RATE)
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
            next_path, next_params = page.get("@odata.nextLink"), None
        return records

    async def fetch(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
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


class LogAnalyticsAuditSource:
    def __init__(self, logs_client: Any, workspace_id: str) -> None:
        self._client = logs_client
        self._workspace_id = workspace_id

    async def fetch(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        categories = ", ".join(f'"{c}"' for c in CATEGORIES)
        query = (
            "AuditLogs"
            f" | where ActivityDateTime >= datetime({_iso(since)})"
            f" and ActivityDateTime <= datetime({_iso_ceil(until)})"
            f" | where Category in ({categories})"
            " | project Id, ActivityDateTime, OperationName, Category, Result,"
            " TargetResources, InitiatedBy, CorrelationId"
        )
        response = await self._client.query_workspace(
            self._workspace_id, query, timespan=(since - timedelta(hours=1), until)
        )
        rows: list[dict[str, Any]] = []
        for table in response.tables:
            columns = list(table.columns)
            rows.extend(dict(zip(columns, row, strict=False)) for row in table.rows)
        return rows
