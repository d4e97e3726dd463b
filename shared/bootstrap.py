"""Composition root: builds every adapter from ``Settings`` once per process.

Triggers call :func:`get_app`; tests build an :class:`App` from their own settings (pointing
at Azurite and the simulator) and install it with :func:`set_app`.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any

from azure.identity.aio import DefaultAzureCredential
from azure.monitor.query.aio import LogsQueryClient

from shared.adapters.credentials import BoundedCache, ClientReaderCredentials, vendor_credential
from shared.adapters.graph import GraphClient, build_http_client, build_request_adapter
from shared.adapters.signins import GraphSignInSource, LogAnalyticsSignInSource, NoSignInSource
from shared.adapters.storage import StorageQueues, StorageTables
from shared.config import Settings, load_settings

# Connections to Graph kept by one process, shared by every tenant: 4 pools of 8 for the
# checks one process runs at once (XTAP_CHECK_CONCURRENCY, 96), each of which spends its
# time between storage and one $batch (its token is usually kept from an earlier sweep);
# requests beyond the pools wait for a free connection in front of each pool
# (``GatedTransport``), not in httpcore's queue, which it rescans on every release.
# Several small pools, not one big one: httpcore also scans its whole pool each time a
# request starts or ends (measured at 48 requests in flight against the simulator: one
# pool of 32 costs 4.0 ms of CPU per request, 4 pools of 12 cost 1.3 ms).
# The Graph pools are what a steady sweep waits on: a connection carries about four
# $batch requests a second at 100 ms of service latency (the answer is read and parsed
# by a busy event loop), so 3,000 clients swept in 38.9 s with 20 connections, 30.1 s
# with 28 and 27.3 s with 32 (same run, bench harness). With the token (14), discovery (2:
# clouds are looked up at registration now) and storage (6 + 4) pools that is 58 sockets;
# the SDKs open a few of their own beside them (the vendor's credential, a connection
# being replaced: 65 were once seen with pools of 62), so the pools leave that margin
# under issue 16.1's 64.
GRAPH_POOLS = 4
GRAPH_CONNECTIONS_PER_POOL = 8


class GraphGateway:
    """Graph clients per tenant: the vendor's own identity, or the reader app per client.

    Every client tenant talks to the same Graph host, so all of them share one bounded set
    of pooled HTTP connections (a tenant always uses the same pool); per-tenant objects
    (credential, request adapter) live in a bounded LRU sized by ``XTAP_TENANT_CACHE_SIZE``,
    so a process's memory does not grow with the number of registered clients.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pools = [
            build_http_client(settings.tls_ca_file, max_connections=GRAPH_CONNECTIONS_PER_POOL)
            for _ in range(GRAPH_POOLS)
        ]
        self._vendor_credential = vendor_credential(settings)
        self._vendor: GraphClient | None = None
        self._reader_credentials = ClientReaderCredentials(settings)
        self.clients = BoundedCache[str, GraphClient](settings.tenant_cache_size)

    def _build(self, tenant_id: str, credential: Any) -> GraphClient:
        pool = self._pools[zlib.crc32(tenant_id.encode()) % len(self._pools)]
        adapter = build_request_adapter(credential, self._settings.graph_base_url, pool)
        return GraphClient(adapter, self._settings.graph_base_url, tenant_id)

    def vendor(self) -> GraphClient:
        if self._vendor is None:
            self._vendor = self._build(self._settings.vendor_tenant_id, self._vendor_credential)
        return self._vendor

    def client_tenant(self, tenant_id: str) -> GraphClient:
        return self.clients.get_or_create(
            tenant_id,
            lambda: self._build(tenant_id, self._reader_credentials.for_tenant(tenant_id)),
        )

    @property
    def reader_credentials(self) -> ClientReaderCredentials:
        return self._reader_credentials

    @property
    def vendor_credential(self) -> Any:
        """The vendor tenant's azure-identity credential (for Azure SDK clients)."""
        return self._vendor_credential.inner

    def reader_credential(self, tenant_id: str) -> Any:
        """The read-only app's credential in one client tenant (the CLI checks it first)."""
        return self._reader_credentials.for_tenant(tenant_id)

    async def close(self) -> None:
        await self._reader_credentials.close()
        await self._vendor_credential.close()
        for pool in self._pools:
            await pool.aclose()


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
            kwargs: dict[str, Any] = {"endpoint": self.settings.log_analytics_endpoint}
            if self.settings.tls_ca_file:
                kwargs["connection_verify"] = self.settings.tls_ca_file
            client = self.extras["logs_client"] = LogsQueryClient(
                self.graph.vendor_credential, **kwargs
            )
        return client

    def signin_source(self) -> Any:
        source = self.settings.signin_source
        if source == "graph":
            return GraphSignInSource(self.graph.vendor())
        if source == "log_analytics":
            return LogAnalyticsSignInSource(
                self.logs_client(), self.settings.log_analytics_workspace_id or ""
            )
        return NoSignInSource()

    async def close(self) -> None:
        for name in ("logs_client", "webhooks", "tenant_clouds", "registration_clouds"):
            client = self.extras.pop(name, None)
            if client is not None:
                await client.close()
        await self.queues.close()
        await self.tables.close()
        await self.graph.close()


def build_app(settings: Settings) -> App:
    storage_credential = None
    if not settings.storage.connection_string:
        # In Azure this resolves to the user-assigned managed identity; on an operator's
        # workstation (the CLI against the deployed storage) to their `az login`.
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
