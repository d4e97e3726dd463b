"""The vendor-side facts about *inviting* guests, read once and cached per process.

Used by the vendor-side checks (one set of inputs for every client checked in a sweep)
and by the re-invite worker (to explain a 403 correctly). Vendor-wide values are kept for
:data:`VENDOR_TTL_SECONDS`, like the vendor's default policy; a client's Microsoft cloud
changes only by tenant migration and is kept for a day or two (``shared.domain.tenant_cloud``,
also in the client's alert state, so a restarted process does not look it up again). Every reader
here is best-effort: what cannot be read is ``None`` ("not known"), and the checks that
need it are skipped rather than guessed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from shared.adapters.graph import GraphError
from shared.adapters.policy_reader import read_authorization_policy
from shared.adapters.vendor_directory import (
    REGISTRATION_LOOKUP_CONNECTIONS,
    TenantCloudResolver,
    read_allowed_cloud_endpoints,
    read_b2b_management_policies,
    service_principal_role_ids,
)
from shared.domain.policy import PolicyParseError
from shared.domain.tenant_cloud import CLOUD_TTL, KnownCloud, is_fresh
from shared.domain.vendor_checks import (
    PUBLIC_CLOUD,
    AuthorizationPolicy,
    CloudContext,
    InvitationDomainPolicy,
    parse_authorization_policy,
    parse_b2b_management_policies,
)

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger(__name__)

VENDOR_TTL_SECONDS = 300.0
_CACHE = "vendor_inputs"
_LOCKS = "vendor_inputs_locks"
T = TypeVar("T")


async def _cached(
    app: App, key: str, ttl: float, read: Callable[[], Awaitable[T | None]]
) -> T | None:
    """``read()`` once per ``ttl``. Its ``None`` ("not available to us", e.g. a 403 for a
    permission the vendor chose not to grant) is kept like a value, so a sweep of thousands
    of clients does not ask again for each; a Graph failure or an unreadable shape is
    logged, answers None and is *not* kept (it may be transient)."""
    cache: dict[str, tuple[float, Any]] = app.extras.setdefault(_CACHE, {})
    locks: dict[str, asyncio.Lock] = app.extras.setdefault(_LOCKS, {})
    # One read at a time per key: the checks of one sweep batch run concurrently and
    # would otherwise all miss the empty cache together.
    async with locks.setdefault(key, asyncio.Lock()):
        hit: tuple[float, T | None] | None = cache.get(key)  # what ``read`` gave for key
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        try:
            value = await read()
        except (GraphError, PolicyParseError) as exc:
            log.warning("vendor setting %s not readable now: %s", key, exc)
            return None
        cache[key] = (time.monotonic(), value)
        return value


def forget(app: App) -> None:
    """Drop the cached vendor-wide values (after the audit log shows a change)."""
    app.extras.pop(_CACHE, None)
    app.extras.pop(_LOCKS, None)


def own_app_id(app: App) -> str | None:
    """The application (client) ID xtap-watch signs in to the vendor tenant with."""
    settings = app.settings
    if settings.vendor_credential == "managed_identity":
        return settings.managed_identity_client_id
    return settings.vendor_client_id


async def authorization_policy(app: App) -> AuthorizationPolicy | None:
    async def read() -> AuthorizationPolicy | None:
        raw = await read_authorization_policy(app.graph.vendor())
        return parse_authorization_policy(raw) if raw else None

    return await _cached(app, "authorization", VENDOR_TTL_SECONDS, read)


async def inviter_role_ids(app: App) -> frozenset[str] | None:
    """Directory role template IDs of xtap-watch's service principal (None: not known)."""
    app_id = own_app_id(app)
    if not app_id:
        return None

    async def read() -> frozenset[str] | None:
        return await service_principal_role_ids(app.graph.vendor(), app_id)

    return await _cached(app, "inviter_roles", VENDOR_TTL_SECONDS, read)


async def invitation_domains(app: App) -> InvitationDomainPolicy | None:
    async def read() -> InvitationDomainPolicy | None:
        raw = await read_b2b_management_policies(app.graph.vendor())
        return parse_b2b_management_policies(raw) if raw is not None else None

    return await _cached(app, "b2b_management_policy", VENDOR_TTL_SECONDS, read)


async def allowed_cloud_endpoints(app: App) -> tuple[str, ...] | None:
    async def read() -> tuple[str, ...] | None:
        return await read_allowed_cloud_endpoints(app.graph.vendor())

    return await _cached(app, "allowed_clouds", VENDOR_TTL_SECONDS, read)


def _resolver(app: App) -> TenantCloudResolver:
    resolver = app.extras.get("tenant_clouds")
    if resolver is None:
        resolver = app.extras["tenant_clouds"] = TenantCloudResolver(
            app.settings.authority_host, app.settings.tls_ca_file
        )
    return resolver


def registration_resolver(app: App) -> TenantCloudResolver:
    """The OpenID resolver of ``clients add`` / ``clients import`` (the operator's process:
    more connections than a Functions host keeps, see ``REGISTRATION_LOOKUP_CONNECTIONS``)."""
    resolver = app.extras.get("registration_clouds")
    if resolver is None:
        resolver = app.extras["registration_clouds"] = TenantCloudResolver(
            app.settings.authority_host,
            app.settings.tls_ca_file,
            connections=REGISTRATION_LOOKUP_CONNECTIONS,
        )
    return resolver


async def vendor_cloud(app: App) -> str:
    """The vendor tenant's own Microsoft cloud, looked up once a day per process; the
    public cloud while it cannot be looked up (asked again next time)."""

    async def read() -> str:
        cloud = await _resolver(app).cloud_of(app.settings.vendor_tenant_id)
        if cloud is None:  # not kept: a failed lookup is asked again
            raise GraphError(0, "unreachable", "the vendor's OpenID configuration")
        return cloud

    return await _cached(app, "vendor_cloud", CLOUD_TTL.total_seconds(), read) or PUBLIC_CLOUD


async def client_cloud(
    app: App, tenant_id: str, stored: KnownCloud | None, now: datetime
) -> KnownCloud | None:
    """A client tenant's cloud: the one its alert state remembers while that is fresh,
    otherwise looked up now; None when the lookup fails (asked again at the next check)."""
    if stored is not None and is_fresh(stored, tenant_id, now):
        return stored
    name = await _resolver(app).cloud_of(tenant_id)
    return KnownCloud(name, now) if name is not None else None


async def cloud_context(app: App, client: KnownCloud | None) -> CloudContext | None:
    allowed = await allowed_cloud_endpoints(app)
    vendor = await vendor_cloud(app)
    if allowed is None or client is None:
        return None
    return CloudContext(
        vendor_cloud=vendor, client_cloud=client.name, allowed_cloud_endpoints=allowed
    )


async def vendor_side_inputs(app: App, cloud: KnownCloud | None) -> dict[str, Any]:
    """The invitation-related keyword arguments of ``evaluate_vendor_side`` for one client
    (``cloud``: the client's)."""
    return {
        "invitation_domains": await invitation_domains(app),
        "inviter_role_ids": await inviter_role_ids(app),
        "cloud": await cloud_context(app, cloud),
    }
