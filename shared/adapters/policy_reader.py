"""Reads cross-tenant access policy JSON from a tenant (client or vendor).

"No partner entry" is a conclusion with consequences (the default applies entirely; a
client's missing entry can mean BLOCKED, and recovery triggers guest resets), so it is drawn
only from Graph's documented not-found answer: HTTP 404 with Graph's JSON error object and a
not-found code. A 404 from a gateway (an HTML page), with an unexpected or empty code, or
without a body is inconclusive: :class:`InconclusiveNotFound`, retried like a transient
failure and, if it persists, an UNKNOWN verdict — never "no entry" (issue 13.4).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from shared.adapters.graph import BatchItem, GraphClient, GraphError, GraphResponse

DEFAULT_PATH = "/policies/crossTenantAccessPolicy/default"
PARTNERS_PATH = "/policies/crossTenantAccessPolicy/partners"
AUTHORIZATION_POLICY_PATH = "/policies/authorizationPolicy"

# Graph's not-found codes: directory-backed resources answer Request_ResourceNotFound
# (what the partner GET returns for a tenant without an entry); ResourceNotFound and
# itemNotFound are the generic Graph codes ("Microsoft Graph error responses").
NOT_FOUND_CODES = frozenset({"Request_ResourceNotFound", "ResourceNotFound", "itemNotFound"})


def partner_path(partner_tenant_id: str) -> str:
    # A GUID checked upstream; path segments never carry user input.
    return f"{PARTNERS_PATH}/{partner_tenant_id}"


class InconclusiveNotFound(GraphError):
    """A 404 that is not Graph's documented not-found error: nothing can be concluded."""

    def __init__(self, response: GraphResponse, path: str) -> None:
        body = response.body
        if isinstance(body, dict):
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            what = f"code {str((error or {}).get('code') or '')!r}"
        elif isinstance(body, str) and body:
            what = f"a non-JSON body ({body[:60]!r})"
        else:
            what = "no body"
        super().__init__(
            404,
            "inconclusive_not_found",
            f"404 with {what}, not Graph's documented not-found error",
            path=path,
        )

    @property
    def transient(self) -> bool:
        return True


def is_documented_not_found(response: GraphResponse) -> bool:
    if response.status != 404 or not isinstance(response.body, dict):
        return False
    error = response.body.get("error")
    return isinstance(error, dict) and str(error.get("code") or "") in NOT_FOUND_CODES


def _partner_from(response: GraphResponse, path: str) -> dict[str, Any] | None:
    if response.status == 404:
        if is_documented_not_found(response):
            return None
        raise InconclusiveNotFound(response, path)
    response.raise_for_status(path)
    return dict(response.body)


def _object_from(response: GraphResponse, path: str) -> dict[str, Any]:
    if response.status == 404:
        # The default policy always exists: any 404 for it is a gateway's, not Graph's.
        raise InconclusiveNotFound(response, path)
    response.raise_for_status(path)
    return dict(response.body)


@dataclass(frozen=True)
class PolicyPair:
    default: dict[str, Any]
    partner: dict[str, Any] | None  # None: no partner entry, the default applies entirely


_RETRY_ALONE = (429, 500, 502, 503, 504)


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
    if default_resp is None or default_resp.status in _RETRY_ALONE:
        default_resp = await graph.request("GET", DEFAULT_PATH)
    if partner_resp is None or partner_resp.status in _RETRY_ALONE:
        partner_resp = await graph.request("GET", ppath)
    return PolicyPair(
        default=_object_from(default_resp, DEFAULT_PATH),
        partner=_partner_from(partner_resp, ppath),
    )


async def read_partner(graph: GraphClient, partner_tenant_id: str) -> dict[str, Any] | None:
    """One partner entry; ``None`` only on Graph's documented not-found answer."""
    path = partner_path(partner_tenant_id)
    return _partner_from(await graph.request("GET", path), path)


async def read_default(graph: GraphClient) -> dict[str, Any]:
    return _object_from(await graph.request("GET", DEFAULT_PATH), DEFAULT_PATH)


async def partner_pages(
    graph: GraphClient, max_pages: int = 10_000
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every partner entry of the tenant, page by page (``@odata.nextLink`` followed).

    Raises rather than stopping early: a caller concludes "no entry" from absence, which is
    only sound when the list was read to its end.
    """
    path: str | None = PARTNERS_PATH
    for _ in range(max_pages):
        if path is None:
            return
        page = await graph.get_json(path)
        if not isinstance(page, dict) or not isinstance(page.get("value"), list):
            raise GraphError(
                0, "unexpected_shape", "partner list page is not a collection", path=path
            )
        yield [p for p in page["value"] if isinstance(p, dict)]
        link = page.get("@odata.nextLink")
        path = str(link) if link else None
    raise GraphError(0, "paging_incomplete", f"more than {max_pages} pages", path=PARTNERS_PATH)


async def read_authorization_policy(graph: GraphClient) -> dict[str, Any] | None:
    try:
        body = await graph.get_json(AUTHORIZATION_POLICY_PATH)
    except GraphError as exc:
        if exc.status in (403, 404):
            return None
        raise
    # v1.0 returns the single policy object; older shapes wrap it in "value".
    if isinstance(body, dict) and isinstance(body.get("value"), list):
        return dict(body["value"][0]) if body["value"] else None
    return dict(body) if isinstance(body, dict) else None
