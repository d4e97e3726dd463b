"""Use case: what would a proposed vendor policy do to every registered client (17.2)?

Reads the vendor's current default policy, every partner entry (``GET
/policies/crossTenantAccessPolicy/partners``, following ``@odata.nextLink``) and the
authorization policy from Graph, lays the proposal over them and compares the vendor-side
checks of every registered client. Read-only: nothing is ever written to Graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.adapters.policy_reader import DEFAULT_PATH, read_authorization_policy
from shared.adapters.portfolio_source import PortfolioSource
from shared.domain.policy import PolicyParseError
from shared.domain.vendor_checks import parse_authorization_policy
from shared.domain.whatif import (
    ClientTarget,
    Proposal,
    ProposalError,
    VendorPolicies,
    WhatIfResult,
    affected_tenants,
    apply_proposal,
    vendor_policies,
    what_if,
)

if TYPE_CHECKING:
    from shared.adapters.graph import GraphClient
    from shared.bootstrap import App

PARTNERS_PATH = "/policies/crossTenantAccessPolicy/partners"


class CurrentPolicyUnreadable(Exception):
    """The vendor's current policy, as Graph returned it, is not understood."""


def check_proposal(proposal: Proposal) -> None:
    """Refuse a malformed proposal before Graph or storage is touched.

    The proposal is laid over an empty policy: properties are replaced whole, so a
    property that does not parse on its own will not parse over the current one either.
    """
    empty = vendor_policies({}, [])
    apply_proposal(empty, proposal)


async def current_vendor_policies(graph: GraphClient) -> VendorPolicies:
    default = await graph.get_json(DEFAULT_PATH)
    partners = [item async for page in graph.get_pages(PARTNERS_PATH) for item in page]
    try:
        return vendor_policies(default, partners)
    except PolicyParseError as exc:
        raise CurrentPolicyUnreadable(f"the vendor's current policy: {exc}") from exc


async def run_whatif(app: App, proposal: Proposal) -> WhatIfResult:
    check_proposal(proposal)
    source = PortfolioSource(app.tables)
    clients = [
        ClientTarget(c.tenant_id, c.name, c.domains)
        async for page in source.clients()
        for c in page
    ]
    registered = {c.tenant_id for c in clients}
    for item in proposal.partners:
        if item.tenant_id not in registered:
            raise ProposalError(
                item.label, "not a registered client (the what-if compares clients)", "tenantId"
            )
    graph = app.graph.vendor()
    current = await current_vendor_policies(graph)
    raw_authorization = await read_authorization_policy(graph)
    try:
        authorization = (
            parse_authorization_policy(raw_authorization) if raw_authorization else None
        )
    except PolicyParseError as exc:
        raise CurrentPolicyUnreadable(f"the vendor's authorization policy: {exc}") from exc
    proposed = apply_proposal(current, proposal)
    return what_if(
        clients,
        current,
        proposed,
        app.settings.vendor_app_ids,
        authorization,
        only=affected_tenants(proposal),
    )
