"""Token credentials: the vendor tenant's identity and the per-client reader identity.

In Azure both come from the user-assigned managed identity: directly for the vendor tenant,
and as a federated credential (the MI token is the client assertion) for the multi-tenant
read-only app in each client tenant — no secret anywhere. Locally the simulator's token
endpoint is used with client secrets over TLS and a test CA.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity import ManagedIdentityCredential as SyncManagedIdentityCredential
from azure.identity.aio import (
    ClientAssertionCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)

from shared.config import AUTHORITY_HOST, ConfigError, Settings

# Audience of the token a managed identity presents as a federated client assertion.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange/.default"


def _common_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"authority": settings.authority_host}
    if settings.authority_host.rstrip("/") != AUTHORITY_HOST:
        # A non-Microsoft authority (the local simulator) has no instance metadata to find.
        kwargs["disable_instance_discovery"] = True
    if settings.tls_ca_file:
        kwargs["connection_verify"] = settings.tls_ca_file
    return kwargs


def managed_identity_credential(settings: Settings) -> AsyncTokenCredential:
    kwargs: dict[str, Any] = {}
    if settings.tls_ca_file:
        kwargs["connection_verify"] = settings.tls_ca_file
    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id, **kwargs)


def vendor_credential(settings: Settings) -> AsyncTokenCredential:
    if settings.vendor_credential == "managed_identity":
        return managed_identity_credential(settings)
    return ClientSecretCredential(
        tenant_id=settings.vendor_tenant_id,
        client_id=settings.vendor_client_id or "",
        client_secret=settings.vendor_client_secret or "",
        **_common_kwargs(settings),
    )


class ClientReaderCredentials:
    """One credential per client tenant for the read-only app, created on first use.

    All of them share one HTTP transport: thousands of client tenants must not mean
    thousands of connection pools (and TLS handshakes) to the token endpoint.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._by_tenant: dict[str, AsyncTokenCredential] = {}
        self._assertion_source: Any = None
        self._transport: Any = None

    def _shared_transport(self) -> Any:
        if self._transport is None:
            kwargs: dict[str, Any] = {}
            if self._settings.tls_ca_file:
                kwargs["connection_verify"] = self._settings.tls_ca_file
            self._transport = AioHttpTransport(**kwargs)
        return self._transport

    def for_tenant(self, tenant_id: str) -> AsyncTokenCredential:
        credential = self._by_tenant.get(tenant_id)
        if credential is None:
            credential = self._by_tenant[tenant_id] = self._build(tenant_id)
        return credential

    def _build(self, tenant_id: str) -> AsyncTokenCredential:
        s = self._settings
        if not s.client_reader_app_id:
            raise ConfigError(
                "XTAP_CLIENT_READER_APP_ID", "is required to read client tenants' policies"
            )
        if s.client_reader_credential == "client_secret":
            return ClientSecretCredential(
                tenant_id=tenant_id,
                client_id=s.client_reader_app_id,
                client_secret=s.client_reader_secret or "",
                transport=_Shared(self._shared_transport()),
                **_common_kwargs(s),
            )
        return ClientAssertionCredential(
            tenant_id=tenant_id,
            client_id=s.client_reader_app_id,
            func=self._managed_identity_assertion,
            transport=_Shared(self._shared_transport()),
            **_common_kwargs(s),
        )

    def _managed_identity_assertion(self) -> str:
        # azure-identity calls this synchronously; the MI token is cached by the sync
        # credential, so the blocking call happens about once an hour per process.
        if self._assertion_source is None:
            kwargs: dict[str, Any] = {}
            if self._settings.tls_ca_file:
                kwargs["connection_verify"] = self._settings.tls_ca_file
            self._assertion_source = SyncManagedIdentityCredential(
                client_id=self._settings.managed_identity_client_id, **kwargs
            )
        return str(self._assertion_source.get_token(FEDERATION_AUDIENCE).token)

    async def close(self) -> None:
        for credential in self._by_tenant.values():
            await credential.close()
        if self._transport is not None:
            await self._transport.close()


class _Shared:
    """Lends a transport to a credential without letting the credential close it."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    async def __aenter__(self) -> _Shared:
        await self._transport.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None  # the owner closes it once, at shutdown

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return await self._transport.send(request, **kwargs)

    async def open(self) -> None:
        await self._transport.open()

    async def close(self) -> None:
        return None
