"""Reads of the vendor's own directory settings that decide whether guests can be invited.

* ``GET /servicePrincipals(appId='…')`` + ``GET /roleManagement/directory/roleAssignments
  ?$filter=principalId eq '…'`` — the directory roles of xtap-watch's own service principal
  (``Directory.Read.All``; ``RoleManagement.Read.Directory`` is the narrower choice);
* ``GET /beta/policies/b2bManagementPolicies`` — the invitation domain allow/deny list.
  **Beta only** (there is no v1.0 endpoint), global cloud only, and it needs
  ``Policy.Read.B2BManagementPolicy`` (``Policy.Read.All`` is not listed): so it is
  optional — a 403/404/400 answer means "not known", never "no restriction";
* ``GET /policies/crossTenantAccessPolicy`` — ``allowedCloudEndpoints``, the vendor's
  Microsoft cloud settings;
* ``GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`` — the
  ``cloud_instance_name`` of any tenant (anonymous; the commercial authority answers for
  tenants of the other clouds too).
"""

from __future__ import annotations

import logging
import re
import ssl
from typing import Any

import httpx

from shared.adapters.gated_transport import GatedTransport
from shared.adapters.graph import GraphClient, GraphError

log = logging.getLogger(__name__)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
OPTIONAL_STATUSES = frozenset({400, 403, 404})
# Connections a Functions host keeps to the login host for OpenID lookups. Few: a client's
# cloud is looked up when it is registered, and a check looks it up again only when that
# entry is one to two days old (about one client in a hundred per 15-minute sweep).
DISCOVERY_CONNECTIONS = 2
# The operator's ``clients import`` registers thousands of clients in one go, a lookup
# each, in its own process (not the host's socket budget): more of them at once.
REGISTRATION_LOOKUP_CONNECTIONS = 12
DISCOVERY_TIMEOUT_S = 10.0


async def service_principal_role_ids(graph: GraphClient, app_id: str) -> frozenset[str] | None:
    """Role template IDs held by the service principal of ``app_id``; None if unreadable."""
    if not _GUID.match(app_id):
        raise ValueError(f"not an application ID: {app_id!r}")
    try:
        principal = await graph.get_json(f"/servicePrincipals(appId='{app_id}')", {"$select": "id"})
        principal_id = str((principal or {}).get("id") or "")
        if not _GUID.match(principal_id):
            return None
        roles: set[str] = set()
        async for page in graph.get_pages(
            "/roleManagement/directory/roleAssignments",
            {"$filter": f"principalId eq '{principal_id}'"},
        ):
            roles.update(
                str(item.get("roleDefinitionId") or "").lower()
                for item in page
                if isinstance(item, dict)
            )
    except GraphError as exc:
        if exc.status in OPTIONAL_STATUSES:
            log.warning("roles of xtap-watch's service principal not readable: %s", exc)
            return None
        raise
    return frozenset(r for r in roles if r)


def beta_url(graph: GraphClient, path: str) -> str:
    root = graph.base_url.rsplit("/", 1)[0]
    return f"{root}/beta/{path.lstrip('/')}"


async def read_b2b_management_policies(graph: GraphClient) -> Any | None:
    """The beta collection's JSON, or None when the endpoint is not available to us."""
    try:
        return await graph.get_json(beta_url(graph, "/policies/b2bManagementPolicies"))
    except GraphError as exc:
        if exc.status in OPTIONAL_STATUSES:
            log.info("B2B management policy not readable (beta, optional): %s", exc)
            return None
        raise


async def read_allowed_cloud_endpoints(graph: GraphClient) -> tuple[str, ...] | None:
    try:
        body = await graph.get_json("/policies/crossTenantAccessPolicy")
    except GraphError as exc:
        if exc.status in OPTIONAL_STATUSES:
            return None
        raise
    if isinstance(body, dict) and isinstance(body.get("value"), list) and body["value"]:
        body = body["value"][0]  # one documented example wraps the object in "value"
    values = body.get("allowedCloudEndpoints") if isinstance(body, dict) else None
    if not isinstance(values, list):
        return ()
    return tuple(str(v).strip().lower() for v in values if isinstance(v, str))


class TenantCloudResolver:
    """``cloud_instance_name`` of a tenant from its OpenID configuration."""

    def __init__(
        self,
        authority_host: str,
        ca_file: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connections: int = DISCOVERY_CONNECTIONS,
    ) -> None:
        self._authority = authority_host.rstrip("/")
        verify: ssl.SSLContext | bool = True
        if ca_file:
            verify = ssl.create_default_context(cafile=ca_file)
        # Lookups beyond the connections wait in front of the pool, not in httpcore's
        # queue (GatedTransport; at the host's concurrency that rescan once made a sweep's
        # lookups cost more CPU than its Graph $batch); one not started within the bound
        # is "unreachable" like any other failed lookup.
        pool = transport or httpx.AsyncHTTPTransport(
            verify=verify, limits=httpx.Limits(max_connections=connections)
        )
        self._http = httpx.AsyncClient(
            transport=GatedTransport(pool, connections, DISCOVERY_TIMEOUT_S),
            timeout=httpx.Timeout(DISCOVERY_TIMEOUT_S),
            verify=verify,
        )

    async def cloud_of(self, tenant_id: str) -> str | None:
        if not _GUID.match(tenant_id):
            raise ValueError(f"not a tenant ID: {tenant_id!r}")
        url = f"{self._authority}/{tenant_id}/v2.0/.well-known/openid-configuration"
        try:
            response = await self._http.get(url)
        except httpx.HTTPError as exc:
            log.warning("OpenID configuration of %s unreachable: %s", tenant_id, exc)
            return None
        if response.status_code != 200:
            return None
        try:
            name = response.json().get("cloud_instance_name")
        except (ValueError, AttributeError):
            return None
        return name.strip().lower() if isinstance(name, str) and name.strip() else None

    async def close(self) -> None:
        await self._http.aclose()
