"""The storage check behind ``GET /api/v1/health``: cheap, bounded, cached for a few seconds.

Without storage xtap-watch can do nothing (no queue, no ledger, no cursor), so health is
"unavailable" while storage does not answer. The probe reads one (absent) table row and
one queue's properties with the :data:`~shared.adapters.storage.PROBE` bounds — no retry,
a few seconds at most — and its answer, good or bad, is reused for
:data:`STORAGE_CHECK_TTL` seconds. Concurrent health calls share one probe, so a
platform health check or a load balancer polling during a stall costs one probe per TTL,
not one per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.adapters.storage import PROBE
from shared.config import QUEUE_ALERTS, TABLE_CURSORS

if TYPE_CHECKING:
    from shared.adapters.storage import StorageQueues, StorageTables
    from shared.bootstrap import App

log = logging.getLogger(__name__)

STORAGE_CHECK_TTL = 5.0
PROBE_PARTITION = "health"


class StorageHealth:
    def __init__(
        self,
        tables: StorageTables,
        queues: StorageQueues,
        *,
        ttl: float = STORAGE_CHECK_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tables = tables.with_policy(PROBE)
        self._queues = queues.with_policy(PROBE)
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._last: tuple[bool, float] | None = None

    def _fresh(self) -> bool | None:
        if self._last is not None and self._clock() - self._last[1] < self._ttl:
            return self._last[0]
        return None

    async def ok(self) -> bool:
        cached = self._fresh()
        if cached is not None:
            return cached
        async with self._lock:
            cached = self._fresh()  # another caller probed while we waited
            if cached is not None:
                return cached
            healthy = await self._probe()
            self._last = (healthy, self._clock())
            return healthy

    async def _probe(self) -> bool:
        try:
            await asyncio.gather(
                self._tables.get(TABLE_CURSORS, PROBE_PARTITION, "probe"),
                self._queues.approximate_count(QUEUE_ALERTS),
            )
        except Exception as exc:
            log.warning("storage health probe failed: %s: %.200s", type(exc).__name__, exc)
            return False
        return True


async def storage_healthy(app: App) -> bool:
    """True while storage answers (cached per process for a few seconds)."""
    check = app.extras.get("storage_health")
    if check is None:
        check = app.extras["storage_health"] = StorageHealth(app.tables, app.queues)
    return bool(await check.ok())
