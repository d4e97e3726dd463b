"""One request budget for Graph's identity-and-access-reports service, per app and tenant.

Graph throttles ``/auditLogs/*`` (directoryAudits and signIns together) at 5 requests per
10 s per app per tenant ("Microsoft Graph service-specific throttling limits"). The audit
watcher and the sweep's sign-in query use the same app identity against the same tenant,
so they draw from one budget in this process, and every 429 that still happens (another
instance, another process) is retried by the SDK's handler after its Retry-After.

A request holds its slot from sending until a full window after its answer (see
:class:`ReportsBudget`), so network delay can never squeeze a sixth request into the
service's window.
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
    """At most ``limit`` requests in any ``window`` seconds, as the service counts them.

    A request occupies its slot from the moment it is sent until ``window`` seconds after
    its answer came back: the service received it somewhere in between, so however long
    the network or a busy machine delays it, no ``limit + 1``-th request can land in the
    service's window. (Counting from the send time alone lets a slow first request and a
    fast sixth one arrive less than a window apart: a 429.)
    """

    def __init__(self, limit: int = REPORTS_LIMIT[0], window: float = REPORTS_LIMIT[1]) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be ≥ 1 and window > 0")
        self._limit = limit
        self._window = window
        self._in_flight = 0
        self._done: deque[float] = deque()  # answer times, ascending
        self.waited_s = 0.0  # total time callers spent waiting for a slot (observability)

    def _wait_needed(self) -> float:
        """0 when a slot is free now (and takes it), else how long to wait before asking."""
        now = time.monotonic()
        while self._done and self._done[0] <= now - self._window:
            self._done.popleft()
        if self._in_flight + len(self._done) < self._limit:
            self._in_flight += 1
            return 0.0
        if self._done:
            return max(self._done[0] + self._window - now + _MARGIN_S, 0.01)
        return 0.05  # every slot is a request still in flight: ask again shortly

    async def __aenter__(self) -> None:
        # No lock: the check and the take happen without an await in between, so one
        # budget serves every task and every event loop of the process.
        while (delay := self._wait_needed()) > 0:
            self.waited_s += delay
            await asyncio.sleep(delay)

    async def __aexit__(self, *exc: object) -> None:
        self._in_flight -= 1
        self._done.append(time.monotonic())


_BUDGETS: dict[tuple[str, str], ReportsBudget] = {}


def reports_budget(tenant_id: str, app_id: str = "") -> ReportsBudget:
    """The process-wide budget of one app identity against one tenant."""
    key = (tenant_id.strip().lower(), app_id.strip().lower())
    budget = _BUDGETS.get(key)
    if budget is None:
        budget = _BUDGETS[key] = ReportsBudget()
    return budget
