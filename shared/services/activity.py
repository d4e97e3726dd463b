"""Record the client events the daily heartbeat reports (drifts opened and closed).

Bookkeeping only: a failure here is logged and never stops the check that produced it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.adapters.activity_log import ActivityEntry, ActivityLog

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.client_state import Transition
    from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

_ACTIVITY = {"drifted": "drift_opened", "recovered": "drift_closed"}


async def record_transitions(
    app: App, client: ClientRecord, transitions: Iterable[Transition]
) -> None:
    activity = ActivityLog(app.tables)
    for t in transitions:
        kind = _ACTIVITY.get(t.kind.value)
        if kind is None:
            continue
        entry = ActivityEntry(kind, client.tenant_id, client.name, t.at, t.observation.verdict)
        try:
            await activity.record(t.dedup_key, entry)
        except Exception:
            log.warning("activity of %s not recorded", client.tenant_id, exc_info=True)
