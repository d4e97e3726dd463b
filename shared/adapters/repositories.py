"""Table-backed repositories: domain records in, entities out (and back)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.adapters.storage import (
    EntityConflict,
    StorageTables,
    TableWrite,
    dumps,
    transaction_groups,
)
from shared.config import (
    TABLE_ALERT_STATE,
    TABLE_CLIENTS,
    TABLE_CURSORS,
    TABLE_POSTURE,
)
from shared.domain.clients import ClientRecord

CLIENT_PARTITION = "client"
# The posture table's layout before its rows moved into one partition: PartitionKey the
# tenant, RowKey this, in every row. Read for a client not checked since; purged later.
LEGACY_ROW = "latest"
# Key ranges around the new rows' partition, so the service need not scan it for them.
LEGACY_POSTURE_FILTER = (
    f"( PartitionKey lt '{CLIENT_PARTITION}' or PartitionKey gt '{CLIENT_PARTITION}' )"
    f" and RowKey eq '{LEGACY_ROW}'"
)
log = logging.getLogger(__name__)


async def write_together(
    tables: StorageTables,
    table: str,
    writes: Sequence[tuple[str, TableWrite]],
    one_by_one: Callable[[str], Awaitable[None]],
) -> dict[str, Exception]:
    """Keyed writes of one partition in as few entity group transactions as they fit.

    A transaction is all or nothing: when one fails (a row changed meanwhile, a storage
    error), its writes are made one by one (``one_by_one(key)``), so one conflicting row
    does not fail the others. Returns the keys whose own write failed, with the error.
    """
    failures: dict[str, Exception] = {}
    for group in transaction_groups(writes):
        try:
            await tables.write_together(table, [write for _, write in group])
            continue
        except Exception as exc:  # any failure: the writes are made one by one instead
            log.info("%s: %d writes together failed (%s); one by one", table, len(group), exc)
        keys = [key for key, _ in group]
        outcomes = await asyncio.gather(*(one_by_one(k) for k in keys), return_exceptions=True)
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, Exception):
                failures[key] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
    return failures


def registry_row(record: ClientRecord) -> dict[str, Any]:
    """The registry entity of a record. A record without a cloud is stored without the key,
    so the version before clouds were kept at registration can still read it (a rollback
    of the app must not leave clients unreadable)."""
    exclude = {"cloud"} if record.cloud is None else None
    return {
        "PartitionKey": CLIENT_PARTITION,
        "RowKey": record.tenant_id,
        "Name": record.name,
        "Record": record.model_dump_json(exclude=exclude),
    }


class ClientRegistry:
    def __init__(self, tables: StorageTables) -> None:
        self._tables = tables

    async def upsert(self, record: ClientRecord) -> None:
        await self._tables.upsert(TABLE_CLIENTS, registry_row(record))

    async def upsert_many(self, records: Sequence[ClientRecord]) -> dict[str, Exception]:
        """Every record (all in the registry's one partition) in as few round trips as
        transactions allow; the tenants whose write failed, with the error."""
        by_tenant = {r.tenant_id: r for r in records}

        async def one(tenant_id: str) -> None:
            await self.upsert(by_tenant[tenant_id])

        writes = [(t, TableWrite("upsert", registry_row(r))) for t, r in by_tenant.items()]
        return await write_together(self._tables, TABLE_CLIENTS, writes, one)

    async def get(self, tenant_id: str) -> ClientRecord | None:
        entity = await self._tables.get(TABLE_CLIENTS, CLIENT_PARTITION, tenant_id.lower())
        return ClientRecord.model_validate_json(entity["Record"]) if entity else None

    async def between(
        self, first: str, last: str, limit: int
    ) -> tuple[dict[str, ClientRecord | None], bool]:
        """The clients whose tenant IDs sort in [first, last] (one range read), and whether
        that is all of them (see ``StorageTables.rows_between``). A row this version
        cannot read maps to None: its own read (``get``) raises, with the reason."""
        rows, complete = await self._tables.rows_between(
            TABLE_CLIENTS, CLIENT_PARTITION, first.lower(), last.lower(), limit
        )
        records: dict[str, ClientRecord | None] = {}
        for row in rows:
            try:
                records[str(row["RowKey"])] = ClientRecord.model_validate_json(row["Record"])
            except (KeyError, ValueError):
                records[str(row["RowKey"])] = None
        return records, complete

    async def list(self) -> list[ClientRecord]:
        rows = await self._tables.query(
            TABLE_CLIENTS, "PartitionKey eq @p", {"p": CLIENT_PARTITION}, select=["Record"]
        )
        return sorted(
            (ClientRecord.model_validate_json(r["Record"]) for r in rows),
            key=lambda c: c.name.lower(),
        )

    async def delete(self, tenant_id: str) -> None:
        await self._tables.delete(TABLE_CLIENTS, CLIENT_PARTITION, tenant_id.lower())

    async def find_by_domain(self, domain: str) -> ClientRecord | None:
        domain = domain.lower()
        for record in await self.list():
            if record.owns_domain(domain):
                return record
        return None


class PostureStore:
    """The latest evaluated posture per client (what the API and the CLI show).

    Rows live in one partition, keyed by tenant ID (``client``/<tenant>), so a sweep
    message's postures are one entity group transaction (``save_many``) and each row is
    found by its own RowKey. Earlier versions kept one partition per tenant with the RowKey
    ``latest`` in every row (:data:`LEGACY_ROW`); such a row is still read, for a client
    not checked since the upgrade, until retention purges it (``LEGACY_POSTURE_FILTER``).
    """

    def __init__(self, tables: StorageTables) -> None:
        self._tables = tables

    @staticmethod
    def entity(tenant_id: str, checked_at: datetime, result: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "PartitionKey": CLIENT_PARTITION,
            "RowKey": tenant_id.lower(),
            "Verdict": str(result.get("verdict", "")),
            "CheckedAt": checked_at,
            "Result": dumps(result),
        }

    async def save(self, tenant_id: str, checked_at: datetime, result: dict[str, Any]) -> None:
        await self._tables.upsert(TABLE_POSTURE, self.entity(tenant_id, checked_at, result))

    async def save_many(self, entities: Mapping[str, dict[str, Any]]) -> dict[str, Exception]:
        """Each ``tenant: entity`` (made by ``entity``, so a check can let go of its result
        while its message's others finish) in as few round trips as transactions allow;
        the tenants whose write failed, with the error."""

        async def one(tenant_id: str) -> None:
            await self._tables.upsert(TABLE_POSTURE, entities[tenant_id])

        writes = [(tenant, TableWrite("upsert", e)) for tenant, e in entities.items()]
        return await write_together(self._tables, TABLE_POSTURE, writes, one)

    async def get(self, tenant_id: str) -> dict[str, Any] | None:
        tenant = tenant_id.lower()
        entity = await self._tables.get(TABLE_POSTURE, CLIENT_PARTITION, tenant)
        if not entity:
            entity = await self._tables.get(TABLE_POSTURE, tenant, LEGACY_ROW)
        if not entity:
            return None
        result: dict[str, Any] = json.loads(entity["Result"])
        result["checkedAt"] = entity["CheckedAt"].isoformat()
        return result

    async def rows(
        self, select: Sequence[str], page_size: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Every client's latest posture row, page by page: ``Tenant`` (lower case) and the
        ``select``ed properties. A legacy row counts only for a tenant without a new one."""
        wanted = sorted({"RowKey", "PartitionKey", *select})
        seen: set[str] = set()
        async for page in self._tables.pages(
            TABLE_POSTURE, "PartitionKey eq @p", {"p": CLIENT_PARTITION}, wanted, page_size
        ):
            out = [row | {"Tenant": str(row["RowKey"]).lower()} for row in page]
            seen.update(row["Tenant"] for row in out)
            yield out
        async for page in self._tables.pages(
            TABLE_POSTURE, LEGACY_POSTURE_FILTER, None, wanted, page_size
        ):
            legacy = [
                row | {"Tenant": tenant}
                for row in page
                if (tenant := str(row["PartitionKey"]).lower()) not in seen
            ]
            if legacy:
                yield legacy

    async def list(self) -> list[dict[str, Any]]:
        return [
            json.loads(r["Result"]) | {"tenantId": r["Tenant"]}
            async for page in self.rows(["Result"])
            for r in page
        ]

    async def delete(self, tenant_id: str) -> None:
        """The client's row, and its legacy row if one is left (deleting none is fine)."""
        tenant = tenant_id.lower()
        await asyncio.gather(
            self._tables.delete(TABLE_POSTURE, CLIENT_PARTITION, tenant),
            self._tables.delete(TABLE_POSTURE, tenant, LEGACY_ROW),
        )


class JsonStateStore:
    """A JSON document per key with ETag-guarded updates (alert state, cursors)."""

    def __init__(self, tables: StorageTables, table: str, partition: str) -> None:
        self._tables = tables
        self._table = table
        self._partition = partition

    async def get(self, key: str) -> tuple[Any, str | None]:
        entity = await self._tables.get(self._table, self._partition, key)
        if entity is None:
            return None, None
        return json.loads(entity["State"]), entity["_etag"]

    async def between(
        self, first: str, last: str, limit: int
    ) -> tuple[dict[str, tuple[Any, str | None]], bool]:
        """The documents whose keys sort in [first, last], each with its ETag (one range
        read), and whether that is all of them."""
        rows, complete = await self._tables.rows_between(
            self._table, self._partition, first, last, limit
        )
        return {str(r["RowKey"]): (json.loads(r["State"]), r["_etag"]) for r in rows}, complete

    async def put(self, key: str, state: Any, etag: str | None) -> None:
        """Write ``state``; with ``etag`` only if nobody changed it since it was read."""
        entity = self._entity(key, state)
        if etag is None:
            if not await self._tables.insert(self._table, entity):
                raise EntityConflict(f"{self._table}/{key} was created concurrently")
        else:
            await self._tables.replace_if_match(self._table, entity, etag)

    async def put_many(
        self, documents: Mapping[str, tuple[Any, str | None]]
    ) -> dict[str, Exception]:
        """``put`` of each ``key: (state, etag)`` (this store's one partition) in as few
        round trips as transactions allow; the keys whose write failed, with the error
        (``EntityConflict`` when the document changed since it was read)."""

        async def one(key: str) -> None:
            await self.put(key, *documents[key])

        writes = [
            (
                key,
                TableWrite("create", self._entity(key, state))
                if etag is None
                else TableWrite("replace", self._entity(key, state), etag),
            )
            for key, (state, etag) in documents.items()
        ]
        return await write_together(self._tables, self._table, writes, one)

    def _entity(self, key: str, state: Any) -> dict[str, Any]:
        return {"PartitionKey": self._partition, "RowKey": key, "State": dumps(state)}


def alert_state_store(tables: StorageTables) -> JsonStateStore:
    return JsonStateStore(tables, TABLE_ALERT_STATE, "client")


def cursor_store(tables: StorageTables) -> JsonStateStore:
    return JsonStateStore(tables, TABLE_CURSORS, "cursor")


PURGE_PARTITION = "purge"


class PurgeCursors:
    """Where the retention purge stopped in each table (``xtapCursors``, partition ``purge``).

    A key, not the service's continuation token: the next run's query has a later cutoff,
    and the Table service documents continuation tokens only for the request that produced
    them. Resuming "after this key" is a fresh, well-defined query.
    """

    def __init__(self, tables: StorageTables) -> None:
        self._tables = tables

    async def get(self, table: str) -> tuple[str, str] | None:
        entity = await self._tables.get(TABLE_CURSORS, PURGE_PARTITION, table)
        if not entity or not entity.get("After"):
            return None
        partition, row = json.loads(entity["After"])
        return str(partition), str(row)

    async def save(self, table: str, after: tuple[str, str] | None, now: datetime) -> None:
        await self._tables.upsert(
            TABLE_CURSORS,
            {
                "PartitionKey": PURGE_PARTITION,
                "RowKey": table,
                "After": json.dumps(list(after)) if after else "",
                "At": now,
            },
        )
