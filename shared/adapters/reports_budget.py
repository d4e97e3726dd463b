"""One request budget for Graph's identity-and-access-reports service, per app and tenant.

Graph throttles ``/auditLogs/*`` (directoryAudits and signIns together) at 5 requests per
10 s per app per tenant ("Microsoft Graph service-specific throttling limits"). The audit
watcher and the sweep's sign-in query use the same app identity against the same tenant,
so they draw from one budget in this process, and every 429 that still happens (another
instance, another process) is retried by the SDK's handler after its Retry-After.

The limiter keeps no asyncio lock: a slot is reserved synchronously (no await between the
check and the reservation), so one limiter serves every event loop of the process.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

REPORTS_LIMIT: Final = (5, 10.0)  # requests, seconds: Graph's documented reports limit
# A little under the window edge, so clock granularity never lands a 6th request in it.
_MARGIN_S: Final = 0.05


class ReportsBudget:
    """At most ``limit`` acquisitions in any ``window`` seconds (a sliding window).

    A leaky bucket would allow a burst plus a steady rate that still breaks a sliding
    window, and every 429 costs a Retry-After wait, so we keep exactly to the window.
    """

    def __init__(self, limit: int = REPORTS_LIMIT[0], window: float = REPORTS_LIMIT[1]) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be ≥ 1 and window > 0")
        self._limit = limit
        self._window = window
        self._slots: deque[float] = deque()  # granted (or reserved) start times, ascending
        self.waited_s = 0.0  # total time callers spent waiting for a slot (observability)

    def _reserve(self) -> float:
        now = time.monotonic()
        while self._slots and self._slots[0] <= now - self._window:
            self._slots.popleft()
        start = now
        if len(self._slots) >= self._limit:
            start = max(now, self._slots[-self._limit] + self._window + _MARGIN_S)
        self._slots.append(start)
        return start - now

    async def __aenter__(self) -> None:
        delay = self._reserve()
        if delay > 0:
            self.waited_s += delay
            await asyncio.sleep(delay)

    async def __aexit__(self, *exc: object) -> None:
        return None


_BUDGETS: dict[tuple[str, str], ReportsBudget] = {}


def reports_budget(tenant_id: str, app_id: str = "") -> ReportsBudget:
    """The process-wide budget of one app identity against one tenant."""
    key = (tenant_id.strip().lower(), app_id.strip().lower())
    budget = _BUDGETS.get(key)
    if budget is None:
        budget = _BUDGETS[key] = ReportsBudget()
    return budget
