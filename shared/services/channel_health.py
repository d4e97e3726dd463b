"""How each delivery route did lately: written by delivery, read by the watchdog.

One row per route (``xtapCursors``, partition ``channel``): ``ok``, or ``failing`` since the
first failure after the last success. The row is written only when the status changes, so a
healthy channel costs one read per delivery and no write. Recording never fails a
delivery: the alert matters more than its bookkeeping.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from shared.adapters.storage import dumps
from shared.config import TABLE_CURSORS
from shared.domain.watchdog import ChannelHealth

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

CHANNEL_PARTITION = "channel"


def _row_key(route_id: str) -> str:
    return "".join("_" if ch in "/\\#?" or ord(ch) < 32 else ch for ch in route_id)[:250]


async def read_channel_health(app: App) -> list[ChannelHealth]:
    rows = await app.tables.query(
        TABLE_CURSORS, "PartitionKey eq @p", {"p": CHANNEL_PARTITION}, select=["State"]
    )
    out = []
    for row in rows:
        try:
            health = ChannelHealth.from_dict(json.loads(row.get("State") or "null"))
        except ValueError:
            health = None
        if health is not None:
            out.append(health)
    return out


async def record_delivery(
    app: App, route_id: str, channel: str, ok: bool, now: datetime, detail: str = ""
) -> None:
    """Record one delivery attempt's outcome on ``route_id`` (never raises)."""
    try:
        key = _row_key(route_id)
        row = await app.tables.get(TABLE_CURSORS, CHANNEL_PARTITION, key)
        known = ChannelHealth.from_dict(json.loads(row["State"])) if row else None
        before = known or ChannelHealth(route_id, channel, "ok")
        after = before.after(ok, now, detail)
        if known is not None and after.status == known.status:
            return
        await app.tables.upsert(
            TABLE_CURSORS,
            {"PartitionKey": CHANNEL_PARTITION, "RowKey": key, "State": dumps(after.to_dict())},
        )
        if known is not None:
            log.warning("delivery route %s is now %s", route_id, after.status)
    except Exception:
        log.warning("delivery outcome of %s not recorded", route_id, exc_info=True)
