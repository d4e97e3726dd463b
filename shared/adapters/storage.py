"""Azure Storage queues and tables (Azurite locally) over the real storage protocol.

Queue messages are base64-encoded text, as the Functions queue trigger expects by default.
Locally the storage account is reached with a connection string; in Azure with the
managed identity (identity-based ``AzureWebJobsStorage__*`` settings).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.adapters.http_env import azure_transport_kwargs
from shared.config import QUEUES, TABLES, StorageSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from pydantic import BaseModel

log = logging.getLogger(__name__)


class EntityConflict(Exception):
    """An optimistic-concurrency update lost the race (ETag mismatch) or the row exists."""


@dataclass(frozen=True)
class ReceivedMessage:
    id: str
    pop_receipt: str
    content: str
    dequeue_count: int
    inserted_on: Any


def poison_queue_name(queue: str) -> str:
    return f"{queue}-poison"


class StorageQueues:
    def __init__(self, settings: StorageSettings, credential: AsyncTokenCredential | None) -> None:
        from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
        from azure.storage.queue.aio import QueueServiceClient

        policies = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        policies.update(azure_transport_kwargs())  # no per-request proxy lookups
        if settings.connection_string:
            self._service = QueueServiceClient.from_connection_string(
                settings.connection_string, **policies
            )
        else:
            self._service = QueueServiceClient(
                account_url=settings.queue_service_uri, credential=credential, **policies
            )
        self._clients: dict[str, Any] = {}

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
                    await self._queue(queue).create_queue()
                except ResourceExistsError:
                    pass

    async def send(
        self, queue: str, message: BaseModel | str, visibility_timeout: int | None = None
    ) -> None:
        text = message if isinstance(message, str) else message.model_dump_json()
        if len(text.encode("utf-8")) > 48 * 1024:
            # 64 KiB on the wire after base64: refuse here with a clear reason, not in Azure.
            raise ValueError(f"message for {queue} is {len(text):,} bytes; the limit is 48 KiB")
        await self._queue(queue).send_message(text, visibility_timeout=visibility_timeout)

    async def receive(
        self, queue: str, max_messages: int = 16, visibility_timeout: int = 30
    ) -> list[ReceivedMessage]:
        client = self._queue(queue)
        out: list[ReceivedMessage] = []
        pager = client.receive_messages(
            messages_per_page=max_messages,
            max_messages=max_messages,
            visibility_timeout=visibility_timeout,
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
        await self._queue(queue).delete_message(message.id, message.pop_receipt)

    async def release(self, queue: str, message: ReceivedMessage, delay_seconds: int = 0) -> None:
        """Make a failed message visible again (after ``delay_seconds``), as the host does."""
        await self._queue(queue).update_message(
            message.id, message.pop_receipt, visibility_timeout=delay_seconds
        )

    async def peek_all(self, queue: str, limit: int = 32) -> list[str]:
        msgs = await self._queue(queue).peek_messages(max_messages=min(limit, 32))
        return [m.content for m in msgs]

    async def approximate_count(self, queue: str) -> int:
        props = await self._queue(queue).get_queue_properties()
        return int(props.approximate_message_count or 0)

    async def clear(self, queue: str) -> None:
        await self._queue(queue).clear_messages()

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        await self._service.close()


class StorageTables:
    def __init__(self, settings: StorageSettings, credential: AsyncTokenCredential | None) -> None:
        from azure.data.tables.aio import TableServiceClient

        transport = azure_transport_kwargs()  # no per-request proxy lookups
        if settings.connection_string:
            self._service = TableServiceClient.from_connection_string(
                settings.connection_string, **transport
            )
        else:
            self._service = TableServiceClient(
                endpoint=settings.table_service_uri, credential=credential, **transport
            )
        self._clients: dict[str, Any] = {}

    def _table(self, name: str) -> Any:
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self._service.get_table_client(name)
        return client

    async def ensure_tables(self, names: tuple[str, ...] = TABLES) -> None:
        for name in names:
            await self._service.create_table_if_not_exists(name)

    async def get(self, table: str, partition: str, row: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = await self._table(table).get_entity(partition, row)
        except ResourceNotFoundError:
            return None
        result = dict(entity)
        result["_etag"] = entity.metadata.get("etag")
        return result

    async def upsert(self, table: str, entity: Mapping[str, Any]) -> None:
        from azure.data.tables import UpdateMode

        await self._table(table).upsert_entity(_clean(entity), mode=UpdateMode.REPLACE)

    async def insert(self, table: str, entity: Mapping[str, Any]) -> bool:
        """Create the row; False if it already exists (an idempotency claim)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            await self._table(table).create_entity(_clean(entity))
        except ResourceExistsError:
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
            pager = client.query_entities(filter, parameters=dict(parameters or {}), select=select)
        else:
            pager = client.list_entities(select=select)
        return [dict(e) async for e in pager]

    async def delete(self, table: str, partition: str, row: str) -> None:
        await self._table(table).delete_entity(partition, row)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        await self._service.close()


def _clean(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entity.items() if not k.startswith("_")}


def dumps(value: Any) -> str:
    """JSON for a table column (tables hold strings; 64 KiB per property)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    if len(text.encode()) > 60_000:
        raise ValueError("value too large for one table property")
    return text
