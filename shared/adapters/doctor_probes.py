"""The few I/O probes the doctor needs that the ordinary adapters do not offer.

* a queue round trip that deletes exactly the message it wrote (by ID and pop receipt), so
  it can run against a live deployment without touching real work;
* a plain HTTP GET of the app's own public URL, without credentials, to see who answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.config import StorageSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

PROBE_TEXT = "xtap-watch doctor probe: written and deleted at once; safe to delete"


async def queue_round_trip(
    storage: StorageSettings, credential: AsyncTokenCredential | None, queue: str
) -> None:
    """Write one invisible message to ``queue`` and delete that very message."""
    from azure.storage.queue.aio import QueueClient

    if storage.connection_string:
        client = QueueClient.from_connection_string(storage.connection_string, queue)
    else:
        client = QueueClient(
            account_url=storage.queue_service_uri or "", queue_name=queue, credential=credential
        )
    async with client:
        # Invisible for five minutes: nothing else can receive it before it is deleted.
        sent = await client.send_message(PROBE_TEXT, visibility_timeout=300)
        await client.delete_message(sent.id, sent.pop_receipt)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


async def anonymous_get(url: str, ca_file: str | None) -> HttpAnswer:
    import httpx

    verify: Any = True
    if ca_file:
        import ssl

        verify = ssl.create_default_context(cafile=ca_file)
    timeout = httpx.Timeout(20.0, connect=10.0)
    async with httpx.AsyncClient(verify=verify, timeout=timeout, follow_redirects=False) as http:
        response = await http.get(url)
    return HttpAnswer(response.status_code, dict(response.headers), response.content)
