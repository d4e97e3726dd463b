"""Reads cross-tenant access policy JSON from a tenant (client or vendor)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.adapters.graph import BatchItem, GraphClient, GraphError, GraphResponse

DEFAULT_PATH = "/policies/crossTenantAccessPolicy/default"


def partner_path(partner_tenant_id: str) -> str:
    # A GUID checked upstream; path segments never carry user input.
    return f"/policies/crossTenantAccessPolicy/partners/{partner_tenant_id}"


@dataclass(frozen=True)
class PolicyPair:
    default: dict[str, Any]
    partner: dict[str, Any] | None  # None: no partner entry, the default applies entirely


def _partner_from(response: GraphResponse, path: str) -> dict[str, Any] | None:
    if response.status == 404:
        return None
    response.raise_for_status(path)
    return dict(response.body)


async def read_policy_pair(graph: GraphClient, partner_tenant_id: str) -> PolicyPair:
    """Default + partner entry in one ``$batch`` round trip (falls back to two GETs).

    A batch item that was throttled or failed transiently is re-read on its own so the
    SDK's retry handler (Retry-After aware) deals with it.
    """
    ppath = partner_path(partner_tenant_id)
    try:
        results = await graph.batch(
            [BatchItem("default", "GET", DEFAULT_PATH), BatchItem("partner", "GET", ppath)]
        )
    except GraphError as exc:
        if exc.status in (400, 404, 405, 501):
            results = {}
        else:
            raise
    default_resp = results.get("default")
    partner_resp = results.get("partner")
    if default_resp is None or default_resp.status in (429, 500, 502, 503, 504):
        default_resp = await graph.request("GET", DEFAULT_PATH)
    if partner_resp is None or partner_resp.status in (429, 500, 502, 503, 504):
        partner_resp = await graph.request("GET", ppath)
    default_resp.raise_for_status(DEFAULT_PATH)
    return PolicyPair(default=dict(default_resp.body), partner=_partner_from(partner_resp, ppath))


async def read_authorization_policy(graph: GraphClient) -> dict[str, Any] | None:
    try:
        body = await graph.get_json("/policies/authorizationPolicy")
    except GraphError as exc:
        if exc.status in (403, 404):
            return None
        raise
    # v1.0 returns the single policy object; older shapes wrap it in "value".
    if isinstance(body, dict) and isinstance(body.get("value"), list):
        return dict(body["value"][0]) if body["value"] else None
    return dict(body) if isinstance(body, dict) else None
