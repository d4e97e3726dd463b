"""Use case: the portfolio report of every registered client (issue 17.1).

Reads the registry and the alert state first (small rows), then streams the posture
table page by page, reducing each stored posture record to its report row at once.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.portfolio_source import PortfolioSource
from shared.domain.clients import ClientRecord
from shared.domain.report import PortfolioReport, ReportRow, build_report, report_row

if TYPE_CHECKING:
    from shared.bootstrap import App


async def portfolio_report(app: App, now: datetime) -> PortfolioReport:
    source = PortfolioSource(app.tables)

    async def registry() -> dict[str, ClientRecord]:
        return {c.tenant_id: c async for page in source.clients() for c in page}

    async def states() -> dict[str, dict[str, Any]]:
        return {k: v async for page in source.alert_states() for k, v in page}

    clients, alert_states = await asyncio.gather(registry(), states())
    rows: dict[str, ReportRow] = {}
    async for page in source.postures():
        for tenant, checked_at, result in page:
            client = clients.get(tenant)
            if client is None:
                continue  # a client removed from the registry keeps its last posture row
            rows[tenant] = report_row(
                client, result, alert_states.get(tenant), checked_at=checked_at
            )
    for tenant, client in clients.items():
        if tenant not in rows:
            rows[tenant] = report_row(client, None, alert_states.get(tenant))
    return build_report(rows.values(), now, app.settings.vendor_name)
