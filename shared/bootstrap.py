"""Composition root: builds every adapter from ``Settings`` once per process.

Triggers call :func:`get_app`; tests build an :class:`App` from their own settings (pointing
at Azurite and the simulator) and install it with :func:`set_app`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.config import Settings, load_settings

if TYPE_CHECKING:
    from shared.adapters.graph import GraphClient
    from shared.adapters.storage import StorageQueues, StorageTables


class GraphGateway:
    """Graph clients per tenant: the vendor's own identity, or the reader app per client."""

    def __init__(self, settings: Settings) -> None:
        from shared.adapters.credentials import (
            ClientReaderCredentials,
            vendor_credential,
        )
        from shared.adapters.graph import build_http_client

        self._settings = settings
        self._http = build_http_client(settings.tls_ca_file)
        self._vendor_credential = vendor_credential(settings)
        self._reader_credentials = ClientReaderCredentials(settings)
        self._clients: dict[tuple[str, str], GraphClient] = {}

    def _client(self, kind: str, tenant_id: str, credential: Any) -> GraphClient:
        from shared.adapters.graph import GraphClient, build_request_adapter

        key = (kind, tenant_id)
        client = self._clients.get(key)
        if client is None:
            adapter = build_request_adapter(credential, self._settings.graph_base_url, self._http)
            client = self._clients[key] = GraphClient(
                adapter, self._settings.graph_base_url, tenant_id
            )
        return client

    def vendor(self) -> GraphClient:
        return self._client("vendor", self._settings.vendor_tenant_id, self._vendor_credential)

    def client_tenant(self, tenant_id: str) -> GraphClient:
        return self._client("reader", tenant_id, self._reader_credentials.for_tenant(tenant_id))

    @property
    def vendor_credential(self) -> Any:
        return self._vendor_credential

    def reader_credential(self, tenant_id: str) -> Any:
        """The read-only app's credential in one client tenant (the CLI checks it first)."""
        return self._reader_credentials.for_tenant(tenant_id)

    async def close(self) -> None:
        await self._reader_credentials.close()
        await self._vendor_credential.close()
        await self._http.aclose()


@dataclass
class App:
    settings: Settings
    queues: StorageQueues
    tables: StorageTables
    graph: GraphGateway
    extras: dict[str, Any] = field(default_factory=dict)
    _ready: bool = False

    async def ensure_storage(self) -> None:
        """Create queues and tables once per process (idempotent; cheap after the first)."""
        if not self._ready:
            await self.queues.ensure_queues()
            await self.tables.ensure_tables()
            self._ready = True

    def logs_client(self) -> Any:
        """azure-monitor-query's async LogsQueryClient, built on first use."""
        client = self.extras.get("logs_client")
        if client is None:
            from azure.monitor.query.aio import LogsQueryClient

            kwargs: dict[str, Any] = {"endpoint": self.settings.log_analytics_endpoint}
            if self.settings.tls_ca_file:
                kwargs["connection_verify"] = self.settings.tls_ca_file
            client = self.extras["logs_client"] = LogsQueryClient(
                self.graph.vendor_credential, **kwargs
            )
        return client

    def signin_source(self) -> Any:
        from shared.adapters.signins import (
            GraphSignInSource,
            LogAnalyticsSignInSource,
            NoSignInSource,
        )

        source = self.settings.signin_source
        if source == "graph":
            return GraphSignInSource(self.graph.vendor())
        if source == "log_analytics":
            return LogAnalyticsSignInSource(
                self.logs_client(), self.settings.log_analytics_workspace_id or ""
            )
        return NoSignInSource()

    async def close(self) -> None:
        for name in ("logs_client", "webhooks", "tenant_clouds"):
            client = self.extras.pop(name, None)
            if client is not None:
                await client.close()
        await self.queues.close()
        await self.tables.close()
        await self.graph.close()


def build_app(settings: Settings) -> App:
    from shared.adapters.storage import StorageQueues, StorageTables

    storage_credential = None
    if not settings.storage.connection_string:
        # In Azure this resolves to the user-assigned managed identity; on an operator's
        # workstation (the CLI against the deployed storage) to their `az login`.
        from azure.identity.aio import DefaultAzureCredential

        storage_credential = DefaultAzureCredential(
            managed_identity_client_id=settings.storage.client_id
            or settings.managed_identity_client_id,
            exclude_interactive_browser_credential=True,
        )
    return App(
        settings=settings,
        queues=StorageQueues(settings.storage, storage_credential),
        tables=StorageTables(settings.storage, storage_credential),
        graph=GraphGateway(settings),
    )


_app: App | None = None
_app_loop: asyncio.AbstractEventLoop | None = None


async def get_app() -> App:
    """The process-wide App, built on first use (and rebuilt if the event loop changed)."""
    global _app, _app_loop
    loop = asyncio.get_running_loop()
    if _app is None or _app_loop is not loop:
        # Async clients are bound to the loop they were created on.
        _app = build_app(load_settings())
        _app_loop = loop
    await _app.ensure_storage()
    return _app


def set_app(app: App | None) -> None:
    global _app, _app_loop
    _app = app
    _app_loop = asyncio.get_running_loop() if app is not None else None
