"""Token credentials: the vendor tenant's identity and the per-client reader identity.

In Azure both come from the user-assigned managed identity: directly for the vendor tenant,
and as a federated credential (the MI token is the client assertion) for the multi-tenant
read-only app in each client tenant — no secret anywhere. Locally the simulator's token
endpoint is used with client secrets over TLS and a test CA.

Every credential handed out here raises :class:`TokenRequestError` (a ``GraphError``) that
says what a failed token request *means* (``shared.domain.token_errors``): not every
refusal is "the client has not consented".

Memory stays flat however many client tenants there are: reader credentials live in a
bounded LRU (``XTAP_TENANT_CACHE_SIZE``) and all of them share one connection pool to the
token endpoint. A credential keeps its token for the life of its cache entry, so retries
and the checks of one sweep reuse it; an evicted tenant just asks for a new token.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity import CredentialUnavailableError
from azure.identity import ManagedIdentityCredential as SyncManagedIdentityCredential
from azure.identity.aio import (
    ClientAssertionCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)

from shared.adapters.graph import GraphError
from shared.adapters.http_env import environment_proxies_in_use
from shared.config import AUTHORITY_HOST, ConfigError, Settings
from shared.domain.token_errors import TokenFailure, TokenFailureKind, classify_token_error

# Audience of the token a managed identity presents as a federated client assertion.
FEDERATION_AUDIENCE = "api://AzureADTokenExchange/.default"
# Connections to the token endpoint, shared by every client tenant's credential: further
# requests wait for a free one. Most sweeps ask for few tokens (they are kept), but a
# restarted process, and the sweep in which the tokens of one hour expire together, ask
# for one per client beside its $batch (see shared/bootstrap.py for the socket budget).
TOKEN_POOL_CONNECTIONS = 14
# A cached token is used until this long before it expires (azure-identity's own refresh
# margin is 5 minutes), so a check never starts with a token about to lapse.
TOKEN_REFRESH_MARGIN_S = 300
TokenKey = tuple[str, tuple[str, ...], bool]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A least-recently-used map with a fixed size (evicted values are simply dropped)."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self.size = size
        self.evictions = 0
        self._items: OrderedDict[K, V] = OrderedDict()

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        value = self._items.get(key)
        if value is None:
            value = self._items[key] = create()
            if len(self._items) > self.size:
                self._items.popitem(last=False)
                self.evictions += 1
        else:
            self._items.move_to_end(key)
        return value

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
            self.evictions += 1

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def values(self) -> list[V]:
        return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)


class TokenRequestError(GraphError):
    """A token request failed; ``failure`` says whose problem it is (DESIGN §4)."""

    def __init__(self, failure: TokenFailure, tenant_id: str) -> None:
        status = 0 if failure.retry else 401
        super().__init__(status, f"token_{failure.kind.value}", failure.description)
        self.failure = failure
        self.tenant_id = tenant_id

    @property
    def transient(self) -> bool:
        return self.failure.retry

    @property
    def consent_missing(self) -> bool:
        return self.failure.kind is TokenFailureKind.CONSENT_MISSING


class _AssertionSourceError(Exception):
    """The managed identity (the federated assertion's source) gave no token."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _response_of(exc: BaseException) -> tuple[int | None, Any]:
    response = getattr(exc, "response", None)
    if response is None:
        return None, None
    status = getattr(response, "status_code", None)
    try:
        body = response.text()
    except Exception:  # a response whose body was never read
        body = None
    return status, body


def token_request_error(
    exc: BaseException, tenant_id: str, *, managed_identity: bool = False
) -> TokenRequestError:
    """Classify an azure-identity failure (the body's AADSTS code decides)."""
    status, body = _response_of(exc)
    unreachable = isinstance(exc, ServiceRequestError) or (
        isinstance(exc, CredentialUnavailableError) and status is None
    )
    failure = classify_token_error(
        status,
        body,
        str(exc),
        endpoint_unreachable=unreachable,
        managed_identity=managed_identity,
    )
    return TokenRequestError(failure, tenant_id)


class ClassifiedCredential:
    """Wraps an async azure-identity credential so its failures say what they mean.

    With ``tokens`` (the client tenants' shared token cache) a token outlives the
    credential: the credentials' LRU holds a few hundred tenants, the token cache the
    tokens of every tenant a sweep reads, so a sweep of thousands of clients every 15
    minutes asks Entra for a client's token about once an hour, not at every sweep.
    """

    def __init__(
        self,
        inner: Any,
        tenant_id: str,
        *,
        managed_identity: bool = False,
        tokens: BoundedCache[TokenKey, AccessToken] | None = None,
    ) -> None:
        self._inner = inner
        self._tenant_id = tenant_id
        self._managed_identity = managed_identity
        self._tokens = tokens
        # Requests for a token already being asked for wait for that answer: the sweep's
        # fan-out reads the vendor's policies at once, and each would otherwise ask Entra.
        self._asking: dict[TokenKey, asyncio.Future[AccessToken]] = {}

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        # A claims challenge (continuous access evaluation) means the cached token was
        # refused: ask Entra, and keep what it answers.
        key: TokenKey = (self._tenant_id, scopes, bool(kwargs.get("enable_cae")))
        if kwargs.get("claims"):
            return await self._ask(key, *scopes, **kwargs)
        if self._tokens is not None:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_on - time.time() > TOKEN_REFRESH_MARGIN_S:
                return cached
        asking = self._asking.get(key)
        if asking is not None:
            try:
                return await asyncio.shield(asking)
            except asyncio.CancelledError:
                if not asking.cancelled():
                    raise  # this caller was cancelled
                # the one asking was cancelled: ask again here
        future = self._asking[key] = asyncio.get_running_loop().create_future()
        try:
            token = await self._ask(key, *scopes, **kwargs)
        except asyncio.CancelledError:
            future.cancel()  # its waiters then ask themselves
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(token)
            return token
        finally:
            self._asking.pop(key, None)

    async def _ask(self, key: TokenKey, *scopes: str, **kwargs: Any) -> AccessToken:
        token = await self._request_token(*scopes, **kwargs)
        if self._tokens is not None:
            self._tokens.put(key, token)
        return token

    async def _request_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            token: AccessToken = await self._inner.get_token(*scopes, **kwargs)
        except _AssertionSourceError as exc:
            raise token_request_error(exc.cause, self._tenant_id, managed_identity=True) from exc
        except (ClientAuthenticationError, ServiceRequestError) as exc:
            raise token_request_error(
                exc, self._tenant_id, managed_identity=self._managed_identity
            ) from exc
        return token

    @property
    def inner(self) -> Any:
        return self._inner

    async def close(self) -> None:
        await self._inner.close()

    async def __aenter__(self) -> ClassifiedCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _common_kwargs(settings: Settings, *, verify: bool = True) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"authority": settings.authority_host}
    if settings.authority_host.rstrip("/") != AUTHORITY_HOST:
        # A non-Microsoft authority (the local simulator) has no instance metadata to find.
        kwargs["disable_instance_discovery"] = True
    if verify and settings.tls_ca_file:
        kwargs["connection_verify"] = settings.tls_ca_file
    return kwargs


def managed_identity_credential(settings: Settings) -> AsyncTokenCredential:
    kwargs: dict[str, Any] = {}
    if settings.tls_ca_file:
        kwargs["connection_verify"] = settings.tls_ca_file
    return ManagedIdentityCredential(client_id=settings.managed_identity_client_id, **kwargs)


def vendor_credential(settings: Settings) -> Any:
    """The vendor tenant's own identity (its failures are always the vendor's to fix)."""
    if settings.vendor_credential == "managed_identity":
        return ClassifiedCredential(
            managed_identity_credential(settings), settings.vendor_tenant_id, managed_identity=True
        )
    return ClassifiedCredential(
        ClientSecretCredential(
            tenant_id=settings.vendor_tenant_id,
            client_id=settings.vendor_client_id or "",
            client_secret=settings.vendor_client_secret or "",
            **_common_kwargs(settings),
        ),
        settings.vendor_tenant_id,
    )


class ClientReaderCredentials:
    """One credential per client tenant for the read-only app, in a bounded LRU.

    All of them share one HTTP transport (one connection pool, one TLS context): thousands
    of client tenants must not mean thousands of pools, sockets or TLS handshakes.
    """

    def __init__(self, settings: Settings, cache_size: int | None = None) -> None:
        self._settings = settings
        self.cache = BoundedCache[str, ClassifiedCredential](
            cache_size or settings.tenant_cache_size
        )
        self.tokens = BoundedCache[TokenKey, AccessToken](settings.token_cache_size)
        self._assertion_source: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._transport: AioHttpTransport | None = None

    def _shared_transport(self) -> AioHttpTransport:
        if self._transport is None:
            # One SSL context for the pool: a CA *path* passed per request would make
            # azure-core build a context per request, and aiohttp never reuses a
            # connection across contexts (a TLS handshake per token).
            context: ssl.SSLContext | bool = True
            if self._settings.tls_ca_file:
                context = ssl.create_default_context(cafile=self._settings.tls_ca_file)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=context, limit=TOKEN_POOL_CONNECTIONS),
                trust_env=environment_proxies_in_use(),
            )
            self._transport = AioHttpTransport(session=self._session, session_owner=False)
        return self._transport

    def for_tenant(self, tenant_id: str) -> ClassifiedCredential:
        return self.cache.get_or_create(tenant_id, lambda: self._build(tenant_id))

    def _build(self, tenant_id: str) -> ClassifiedCredential:
        s = self._settings
        if not s.client_reader_app_id:
            raise ConfigError(
                "XTAP_CLIENT_READER_APP_ID", "is required to read client tenants' policies"
            )
        inner: Any
        if s.client_reader_credential == "client_secret":
            inner = ClientSecretCredential(
                tenant_id=tenant_id,
                client_id=s.client_reader_app_id,
                client_secret=s.client_reader_secret or "",
                transport=_Shared(self._shared_transport()),
                **_common_kwargs(s, verify=False),
            )
        else:
            inner = ClientAssertionCredential(
                tenant_id=tenant_id,
                client_id=s.client_reader_app_id,
                func=self._managed_identity_assertion,
                transport=_Shared(self._shared_transport()),
                **_common_kwargs(s, verify=False),
            )
        return ClassifiedCredential(inner, tenant_id, tokens=self.tokens)

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
        try:
            return str(self._assertion_source.get_token(FEDERATION_AUDIENCE).token)
        except (ClientAuthenticationError, ServiceRequestError) as exc:
            raise _AssertionSourceError(exc) from exc

    async def close(self) -> None:
        for credential in self.cache.values():
            await credential.close()
        if self._session is not None:
            await self._session.close()
        if self._assertion_source is not None:
            self._assertion_source.close()


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
