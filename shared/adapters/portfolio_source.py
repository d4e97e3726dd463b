"""Reads the three tables behind the portfolio report, one service page at a time.

The registry (``xtapClients``), the latest posture per client (``xtapPosture``, row
``latest``) and the alert state (``xtapAlertState``) are read with ``$select`` and
paged (1,000 entities a page), and each page is decoded before the next is fetched:
10,000 clients never sit in memory as raw JSON all at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.adapters.repositories import CLIENT_PARTITION, PostureStore
from shared.adapters.storage import StorageTables
from shared.config import TABLE_ALERT_STATE, TABLE_CLIENTS
from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

ALERT_STATE_PARTITION = "client"  # repositories.alert_state_store


class PortfolioSource:
    def __init__(self, tables: StorageTables, page_size: int = 1000) -> None:
        self._tables = tables
        self._page_size = page_size

    async def clients(self) -> AsyncIterator[list[ClientRecord]]:
        pages = self._tables.pages(
            TABLE_CLIENTS,
            "PartitionKey eq @p",
            {"p": CLIENT_PARTITION},
            select=["RowKey", "Record"],
            page_size=self._page_size,
        )
        async for page in pages:
            records = []
            for entity in page:
                try:
                    records.append(ClientRecord.model_validate_json(entity["Record"]))
                except (KeyError, ValidationError) as exc:
                    # One bad registry row must not hide the portfolio; it is logged.
                    log.error("registry row %s unreadable: %s", entity.get("RowKey"), exc)
            yield records

    async def alert_states(self) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
        pages = self._tables.pages(
            TABLE_ALERT_STATE,
            "PartitionKey eq @p",
            {"p": ALERT_STATE_PARTITION},
            select=["RowKey", "State"],
            page_size=self._page_size,
        )
        async for page in pages:
            yield [
                (str(e["RowKey"]).lower(), state)
                for e in page
                if isinstance(state := _loads(e.get("State"), e.get("RowKey")), dict)
            ]

    async def postures(
        self,
    ) -> AsyncIterator[list[tuple[str, datetime | None, dict[str, Any]]]]:
        async for page in PostureStore(self._tables).rows(
            ["CheckedAt", "Result"], page_size=self._page_size
        ):
            out = []
            for e in page:
                result = _loads(e.get("Result"), e["Tenant"])
                if isinstance(result, dict):
                    checked = e.get("CheckedAt")
                    out.append(
                        (e["Tenant"], checked if isinstance(checked, datetime) else None, result)
                    )
            yield out


def _loads(text: Any, key: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        log.error("stored JSON for %s unreadable", key)
        return None
