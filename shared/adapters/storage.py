"""Azure Storage queues and tables (Azurite locally) over the real storage protocol.

Queue messages are base64-encoded text, as the Functions queue trigger expects by default.
Locally the storage account is reached with a connection string; in Azure with the
managed identity (identity-based ``AzureWebJobsStorage__*`` settings).

Every call is bounded by a :class:`StoragePolicy` (connect and read timeouts, retries). The
SDK defaults would let one call hang for minutes during a storage stall (azure-storage-queue:
20 s connect / 60 s read, 3 retries from 15 s back-off; azure-data-tables: azure-core's 300 s
timeouts and 10 retries), so a support caller waited > 60 s and health still said "ok".
Background work (queue and timer triggers) uses :data:`BACKGROUND`: a few retries with short
exponential back-off, then the error surfaces and the Functions host retries the message.
The HTTP API uses :data:`INTERACTIVE` (one retry, then a 503), the health probe
:data:`PROBE` (no retry). ``with_policy`` gives a view of the same clients (same connection
pools) with other bounds.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from shared.adapters.http_env import azure_transport_kwargs
from shared.config import QUEUES, TABLES, ConfigError, StorageSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from pydantic import BaseModel

log = logging.getLogger(__name__)


class EntityConflict(Exception):
    """An optimistic-concurrency update lost the race (ETag mismatch) or the row exists."""


# What one entity group transaction may hold (Azure Table storage: 100 entities, 4 MiB of
# payload); the byte bound leaves room for the multipart framing around each entity.
TRANSACTION_ENTITIES = 100
TRANSACTION_BYTES = 3 * 1024 * 1024


@dataclass(frozen=True)
class TableWrite:
    """One write of an entity group transaction: ``create`` (fails if the row exists),
    ``replace`` (only while the row still has ``etag``) or ``upsert``."""

    kind: str
    entity: Mapping[str, Any]
    etag: str | None = None


@dataclass(frozen=True)
class ReceivedMessage:
    id: str
    pop_receipt: str
    content: str
    dequeue_count: int
    inserted_on: Any


def poison_queue_name(queue: str) -> str:
    return f"{queue}-poison"


# Back-off between retries, the same shape for both SDKs: about 1 s, 3 s, 5 s (queues:
# ExponentialRetry ``initial_backoff + increment_base ** n`` with ±1 s jitter; tables:
# azure-core's ``backoff_factor * 2 ** (n - 1)``, first retry immediate, at most 8 s).
RETRY_INITIAL_BACKOFF = 1
RETRY_INCREMENT_BASE = 2
RETRY_JITTER = 1
TABLE_BACKOFF_FACTOR = 1.0
TABLE_BACKOFF_MAX = 8.0


@dataclass(frozen=True)
class StoragePolicy:
    """Bounds for one kind of caller, applied to every request (SDK per-call options).

    ``read_timeout`` is the longest silence on an open connection (aiohttp ``sock_read``),
    so it bounds server processing, not transfer. The Table service runs a query for at
    most 5 s before answering with a continuation, and entity and message operations answer
    in milliseconds in-region: a healthy account never comes near these values.
    """

    name: str
    connection_timeout: float
    read_timeout: float
    retries: int

    def call_options(self) -> dict[str, Any]:
        return {
            "connection_timeout": self.connection_timeout,
            "read_timeout": self.read_timeout,
            "retry_total": self.retries,
        }

    def worst_case_seconds(self) -> float:
        """Longest one call can take before it raises (every attempt timing out)."""
        attempts = self.retries + 1
        backoff = sum(
            RETRY_INITIAL_BACKOFF + (RETRY_INCREMENT_BASE**n if n else 0) + RETRY_JITTER
            for n in range(self.retries)
        )
        return attempts * (self.connection_timeout + self.read_timeout) + backoff


# Background: the host retries a failed message (maxDequeueCount), so a call gives up after
# ~70 s at worst instead of holding a worker for minutes.
BACKGROUND = StoragePolicy("background", connection_timeout=5, read_timeout=10, retries=3)
# A person or a script waits for the answer: one retry (a dropped pooled connection is the
# common transient), then 503 with Retry-After (~11 s in a stall, ~17 s at worst).
INTERACTIVE = StoragePolicy("interactive", connection_timeout=3, read_timeout=5, retries=1)
# The health probe: no retry, a few seconds at most; its result is cached.
PROBE = StoragePolicy("probe", connection_timeout=2, read_timeout=3, retries=0)


# Connections one process keeps to each storage service, shared by all its callers (the
# SDK's own transport allows 100 per client): a check makes one or two table calls of a
# few milliseconds each (its message's range reads are shared), so these carry the
# process's 96 concurrent checks; further calls wait for a free connection
# (shared/adapters/pooled_transport.py). Queue sends are an alert or a retried client
# now and then (the host's own receive and delete are not ours). Measured at 3,000
# clients: 6 and 4 sweep as fast as 10 and 6 did; the sockets go to Graph instead (see
# shared/bootstrap.py).
TABLE_POOL_CONNECTIONS = 6
QUEUE_POOL_CONNECTIONS = 4


def _pooled(connections: int) -> Any:
    from shared.adapters.pooled_transport import PooledAioHttpTransport

    return PooledAioHttpTransport(connections, **azure_transport_kwargs())


def _service_uri(uri: str | None, setting: str) -> str:
    """An identity-based endpoint: load_settings requires both when there is no connection
    string, so a missing one is a settings object built by hand."""
    if not uri:
        raise ConfigError(setting, "is required when AzureWebJobsStorage is not set")
    return uri


def _transport_options(policy: StoragePolicy) -> dict[str, Any]:
    return {"connection_timeout": policy.connection_timeout, "read_timeout": policy.read_timeout}


class _Bounded:
    """Per-call bounds for every request of a storage adapter, swappable per caller."""

    _opts: dict[str, Any]

    def _bound(self, policy: StoragePolicy) -> None:
        self.policy = policy
        self._opts = policy.call_options()

    def with_policy(self, policy: StoragePolicy) -> Self:
        """The same clients (same connection pools) with other per-call bounds.
        Close the original, not the view."""
        view = copy.copy(self)
        view._bound(policy)
        return view


class StorageQueues(_Bounded):
    def __init__(
        self,
        settings: StorageSettings,
        credential: AsyncTokenCredential | None,
        policy: StoragePolicy = BACKGROUND,
    ) -> None:
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
        from azure.storage.queue.aio import QueueServiceClient

        options: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
            # The async client builds its own (async) ExponentialRetry from these keywords.
            "initial_backoff": RETRY_INITIAL_BACKOFF,
            "increment_base": RETRY_INCREMENT_BASE,
            "retry_total": policy.retries,
            "random_jitter_range": RETRY_JITTER,
            **_transport_options(policy),
        }
        options.update(azure_transport_kwargs())  # no per-request proxy lookups
        options["transport"] = _pooled(QUEUE_POOL_CONNECTIONS)
        if settings.connection_string:
            self._service = QueueServiceClient.from_connection_string(
                settings.connection_string, **options
            )
        else:
            self._service = QueueServiceClient(
                account_url=_service_uri(
                    settings.queue_service_uri, "AzureWebJobsStorage__queueServiceUri"
                ),
                credential=credential,
                **options,
            )
        self._clients: dict[str, Any] = {}
        self._bound(policy)

    def _queue(self, name: str) -> Any:
        client = self._clients.get(name)
        if client is None:
            from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy

            # get_queue_client does not inherit the service client's message policies, and
            # the Functions host reads base64 (host.json messageEncoding).
            client = self._clients[name] = self._service.get_queue_client(
                name,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
            )
        return client

    async def ensure_queues(self, names: tuple[str, ...] = QUEUES) -> None:
        from azure.core.exceptions import ResourceExistsError

        for name in names:
            for queue in (name, poison_queue_name(name)):
                try:
                    # Once per process, on the first trigger: fail fast rather than hold it.
                    await self._queue(queue).create_queue(**INTERACTIVE.call_options())
                except ResourceExistsError:
                    pass

    async def send(
        self, queue: str, message: BaseModel | str, visibility_timeout: int | None = None
    ) -> None:
        text = message if isinstance(message, str) else message.model_dump_json()
        if len(text.encode("utf-8")) > 48 * 1024:
            # 64 KiB on the wire after base64: refuse here with a clear reason, not in Azure.
            raise ValueError(f"message for {queue} is {len(text):,} bytes; the limit is 48 KiB")
        await self._queue(queue).send_message(
            text, visibility_timeout=visibility_timeout, **self._opts
        )

    async def receive(
        self, queue: str, max_messages: int = 16, visibility_timeout: int = 30
    ) -> list[ReceivedMessage]:
        client = self._queue(queue)
        out: list[ReceivedMessage] = []
        pager = client.receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
            **self._opts,
        )
        async for msg in pager:
            out.append(
                ReceivedMessage(
                    id=msg.id,
                    pop_receipt=msg.pop_receipt,
                    content=msg.content,
                    dequeue_count=msg.dequeue_count,
                    inserted_on=msg.inserted_on,
                )
            )
        return out

    async def delete(self, queue: str, message: ReceivedMessage) -> None:
        await self._queue(queue).delete_message(message.id, message.pop_receipt, **self._opts)

    async def release(self, queue: str, message: ReceivedMessage, delay_seconds: int = 0) -> None:
        """Make a failed message visible again (after ``delay_seconds``), as the host does."""
        await self._queue(queue).update_message(
            message.id, message.pop_receipt, visibility_timeout=delay_seconds, **self._opts
        )

    async def peek_all(self, queue: str, limit: int = 32) -> list[str]:
        msgs = await self._queue(queue).peek_messages(max_messages=min(limit, 32), **self._opts)
        return [m.content for m in msgs]

    async def approximate_count(self, queue: str) -> int:
        props = await self._queue(queue).get_queue_properties(**self._opts)
        return int(props.approximate_message_count or 0)

    async def clear(self, queue: str) -> None:
        await self._queue(queue).clear_messages(**self._opts)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        await self._service.close()


class StorageTables(_Bounded):
    def __init__(
        self,
        settings: StorageSettings,
        credential: AsyncTokenCredential | None,
        policy: StoragePolicy = BACKGROUND,
    ) -> None:
        from azure.data.tables.aio import TableServiceClient

        options: dict[str, Any] = {
            "retry_total": policy.retries,
            "retry_backoff_factor": TABLE_BACKOFF_FACTOR,
            "retry_backoff_max": TABLE_BACKOFF_MAX,
            **_transport_options(policy),
            **azure_transport_kwargs(),  # no per-request proxy lookups
            "transport": _pooled(TABLE_POOL_CONNECTIONS),
        }
        if settings.connection_string:
            self._service = TableServiceClient.from_connection_string(
                settings.connection_string, **options
            )
        else:
            self._service = TableServiceClient(
                endpoint=_service_uri(
                    settings.table_service_uri, "AzureWebJobsStorage__tableServiceUri"
                ),
                credential=credential,
                **options,
            )
        self._clients: dict[str, Any] = {}
        self._bound(policy)

    def _table(self, name: str) -> Any:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self._service.get_table_client(name)
        return client

    async def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        for name in names:
            # Once per process, on the first trigger: fail fast rather than hold it.
            await self._service.create_table_if_not_exists(name, **INTERACTIVE.call_options())

    async def get(self, table: str, partition: str, row: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await self._table(table).get_entity(partition, row, **self._opts)
        except ResourceNotFoundError:
            return None
        result = dict(entity)
        result["_etag"] = entity.metadata.get("etag")
        return result

    async def upsert(self, table: str, entity: Mapping[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        await self._table(table).upsert_entity(
            _clean(entity), mode=UpdateMode.REPLACE, **self._opts
        )

    async def insert(self, table: str, entity: Mapping[str, Any]) -> bool:
        """Create the row; False if it already exists (an idempotency claim)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            await self._table(table).create_entity(_clean(entity), **self._opts)
        except ResourceExistsError:
            return False
        return True

    async def replace(self, table: str, entity: Mapping[str, Any]) -> bool:
        """Replace an existing row whatever its ETag; False if there is no such row."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            await self._table(table).update_entity(
                _clean(entity), mode=UpdateMode.REPLACE, **self._opts
            )
        except ResourceNotFoundError:
            return False
        return True

    async def replace_if_match(self, table: str, entity: Mapping[str, Any], etag: str) -> None:
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        try:
            await self._table(table).update_entity(
                _clean(entity),
                mode=UpdateMode.REPLACE,
                etag=etag,
                match_condition=MatchConditions.IfNotModified,
                **self._opts,
            )
        except HttpResponseError as exc:
            if exc.status_code in (409, 412):
                raise EntityConflict(str(exc)) from exc
            raise

    async def query(
        self,
        table: str,
        filter: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        select: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        client = self._table(table)
        if filter:
            pager = client.query_entities(
                filter, parameters=dict(parameters or {}), select=select, **self._opts
            )
        else:
            pager = client.list_entities(select=select, **self._opts)
        return [dict(e) async for e in pager]

    async def delete(self, table: str, partition: str, row: str) -> None:
        await self._table(table).delete_entity(partition, row, **self._opts)

    async def rows_between(
        self, table: str, partition: str, first: str, last: str, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The rows of one partition whose RowKey lies in [first, last], in key order, at
        most ``limit`` of them (one service page), each with its ``_etag``; and whether
        they are all there are (False when the service had more to give)."""
        pager = (
            self._table(table)
            .query_entities(
                "PartitionKey eq @p and RowKey ge @first and RowKey le @last",
                parameters={"p": partition, "first": first, "last": last},
                results_per_page=limit,
                **self._opts,
            )
            .by_page()
        )
        rows: list[dict[str, Any]] = []
        async for page in pager:
            async for entity in page:
                row = dict(entity)
                row["_etag"] = entity.metadata.get("etag")
                rows.append(row)
            return rows, not pager.continuation_token
        return rows, True

    async def pages(
        self,
        table: str,
        filter: str,
        parameters: Mapping[str, Any] | None = None,
        select: list[str] | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Query results one service page at a time (≤ 1,000 rows, key order), each row with
        its ``_etag`` and server ``_timestamp``. Stop iterating to stop reading."""
        if select is not None and "Timestamp" not in select:
            select = [*select, "Timestamp"]  # a $select without it drops it from the answer
        pager = (
            self._table(table)
            .query_entities(
                filter,
                parameters=dict(parameters or {}),
                select=select,
                results_per_page=page_size,
                **self._opts,
            )
            .by_page()
        )
        async for page in pager:
            rows = []
            async for entity in page:
                row = dict(entity)
                row["_etag"] = entity.metadata.get("etag")
                row["_timestamp"] = entity.metadata.get("timestamp")
                rows.append(row)
            yield rows

    async def write_together(self, table: str, writes: Sequence[TableWrite]) -> None:
        """The writes (one table, one partition, within the transaction bounds) in one
        entity group transaction: all of them or none. Raises if any one fails (a conflict
        as well as a storage error): the caller then writes them one by one."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        operations: list[Any] = []
        for write in writes:
            entity = _clean(write.entity)
            if write.kind == "create":
                operations.append(("create", entity))
            elif write.kind == "replace":
                operations.append(
                    (
                        "update",
                        entity,
                        {
                            "mode": UpdateMode.REPLACE,
                            "etag": write.etag,
                            "match_condition": MatchConditions.IfNotModified,
                        },
                    )
                )
            elif write.kind == "upsert":
                operations.append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
            else:
                raise ValueError(f"unknown table write {write.kind!r}")
        await self._table(table).submit_transaction(operations, **self._opts)

    async def delete_unchanged(
        self, table: str, partition: str, rows: Sequence[tuple[str, str]]
    ) -> int:
        """Delete ``(RowKey, ETag)`` rows of one partition in one entity group transaction
        (≤ 100), each only if nobody wrote it since it was read. Rows changed or deleted in
        the meantime are left alone. Returns how many rows this call deleted."""
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError

        if len(rows) > 100:
            raise ValueError("an entity group transaction holds at most 100 entities")
        pending = list(rows)
        client = self._table(table)
        # A row written or deleted since it was read fails the whole transaction (412/404,
        # naming its index): drop it and commit the rest.
        while pending:
            operations = [
                (
                    "delete",
                    {"PartitionKey": partition, "RowKey": row},
                    {"etag": etag, "match_condition": MatchConditions.IfNotModified},
                )
                for row, etag in pending
            ]
            try:
                await client.submit_transaction(operations, **self._opts)
            except TableTransactionError as exc:
                index = getattr(exc, "index", None)
                if exc.status_code not in (404, 412) or not isinstance(index, int):
                    raise
                if not 0 <= index < len(pending):
                    raise
                log.info("purge: %s/%s changed meanwhile; kept", partition, pending[index][0])
                del pending[index]
                continue
            return len(pending)
        return 0

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        await self._service.close()


def transaction_groups(
    writes: Sequence[tuple[str, TableWrite]],
) -> list[list[tuple[str, TableWrite]]]:
    """Keyed writes of one partition cut into groups one transaction can hold each."""
    groups: list[list[tuple[str, TableWrite]]] = []
    size = 0
    for keyed in writes:
        # An upper-bound estimate, not a second serialization of every entity (the
        # documents are JSON text already): characters of the keys and values.
        entity_bytes = sum(len(k) + len(str(v)) for k, v in keyed[1].entity.items())
        if (
            not groups
            or len(groups[-1]) >= TRANSACTION_ENTITIES
            or size + entity_bytes > TRANSACTION_BYTES
        ):
            groups.append([])
            size = 0
        groups[-1].append(keyed)
        size += entity_bytes
    return groups


def _clean(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if not k.startswith("_")}


def dumps(value: Any) -> str:
    """JSON for a table column (tables hold strings; 64 KiB per property)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text.encode()) > 60_000:
        raise ValueError("value too large for one table property")
    return text
