"""What-if for the vendor's own policy: pure comparison over realistic Graph JSON.

The current policy is Microsoft's documented default example plus partner entries shaped
like the documented partner example; proposals are what an admin would export or PATCH.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES as FIXTURES
from shared.domain.finding_catalog import FindingCode
from shared.domain.vendor_checks import (
    MFA_REGISTRATION_APPS,
    AuthorizationPolicy,
)
from shared.domain.whatif import (
    Change,
    ClientTarget,
    PartnerProposal,
    Proposal,
    ProposalError,
    ProposedPolicy,
    affected_tenants,
    apply_proposal,
    merge_policy,
    parse_proposal_body,
    vendor_policies,
    what_if,
)
from sim.scenarios import b2b_everyone

VENDOR_APPS = ("5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",)
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # own inbound allowlist, with MFA apps
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"  # own allowlist WITHOUT the MFA apps
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"  # entry that inherits inbound
TAILSPIN = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"  # no entry at all
CLIENTS = [
    ClientTarget(CONTOSO, "Contoso Markets", ("contoso-markets.com",)),
    ClientTarget(FABRIKAM, "Fabrikam Clearing", ("fabrikam-clearing.com",)),
    ClientTarget(NORTHWIND, "Northwind Securities", ("northwind-securities.com",)),
    ClientTarget(TAILSPIN, "Tailspin Capital", ("tailspin-capital.com",)),
]
AUTHZ = AuthorizationPolicy(allow_invites_from="adminsAndGuestInviters")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def targets(kind: str, *ids: str) -> list[dict[str, str]]:
    return [{"target": i, "targetType": kind} for i in ids]


def inbound(apps: tuple[str, ...]) -> dict[str, Any]:
    return {
        "usersAndGroups": {"accessType": "allowed", "targets": targets("user", "AllUsers")},
        "applications": {"accessType": "allowed", "targets": targets("application", *apps)},
    }


BLOCK_INBOUND = {"b2bCollaborationInbound": b2b_everyone("blocked")}


def partner(tenant: str, **properties: Any) -> dict[str, Any]:
    """A partner entry as GET .../partners/{id} returns it (documented example's shape)."""
    entry = copy.deepcopy(load("policies.crossTenantAccessPolicy.partners.id.get.response.json"))
    entry["tenantId"] = tenant
    entry["automaticUserConsentSettings"] = {"inboundAllowed": True, "outboundAllowed": None}
    entry["inboundTrust"] = {
        "isMfaAccepted": True,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    }
    entry.update(properties)
    return entry


def current(*, inheriting_everyone: bool = False) -> Any:
    default = load("policies.crossTenantAccessPolicy.default.get.response.json")
    partners = [partner(NORTHWIND)]
    if not inheriting_everyone:
        partners += [
            partner(
                CONTOSO, b2bCollaborationInbound=inbound(VENDOR_APPS + tuple(MFA_REGISTRATION_APPS))
            ),
            partner(FABRIKAM, b2bCollaborationInbound=inbound(VENDOR_APPS), inboundTrust=None),
        ]
    return vendor_policies(default, partners)


def run(proposal: Proposal, policies: Any = None) -> Any:
    policies = policies or current()
    return what_if(
        CLIENTS,
        policies,
        apply_proposal(policies, proposal),
        VENDOR_APPS,
        AUTHZ,
        only=affected_tenants(proposal),
    )


def default_proposal(raw: Any) -> Proposal:
    return Proposal(default=ProposedPolicy(raw, "default"))


def codes(findings: Any) -> set[str]:
    return {f.code.value for f in findings}


def test_blocking_inbound_on_the_default_breaks_every_client_that_inherits_it():
    result = run(default_proposal(BLOCK_INBOUND), current(inheriting_everyone=True))
    assert {o.tenant_id for o in result.newly_broken} == {c.tenant_id for c in CLIENTS}
    by_tenant = {o.tenant_id: o for o in result.newly_broken}
    # No entry at all: the default decides; an entry that inherits: the entry's inbound.
    assert FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT.value in codes(
        by_tenant[TAILSPIN].added
    )
    assert FindingCode.VENDOR_INBOUND_BLOCKS_CLIENT.value in codes(by_tenant[NORTHWIND].added)
    assert result.newly_recovered == () and result.to_json()["unchanged"] == 0


def test_clients_with_their_own_inbound_setting_are_not_broken_by_the_default():
    result = run(default_proposal(BLOCK_INBOUND))
    assert {o.tenant_id for o in result.newly_broken} == {NORTHWIND, TAILSPIN}
    # Fabrikam is broken already (guests loop on MFA registration) and stays so;
    # Contoso's own allowlist overrides the default: nothing changes for either.
    assert all(o.tenant_id not in (CONTOSO, FABRIKAM) for o in result.outcomes)


def test_the_current_policy_proposed_again_changes_nothing():
    exported = load("policies.crossTenantAccessPolicy.default.get.response.json")
    exported["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#policies/..."
    result = run(default_proposal(exported))
    assert result.outcomes == ()
    assert result.to_json() == {
        "clients": 4,
        "newlyBroken": [],
        "newlyRecovered": [],
        "changed": [],
        "unchanged": 4,
    }


def test_adding_the_mfa_apps_for_a_client_recovers_it_and_touches_no_other():
    fixed = {"b2bCollaborationInbound": inbound(VENDOR_APPS + tuple(MFA_REGISTRATION_APPS))}
    proposal = Proposal(partners=(PartnerProposal(FABRIKAM, ProposedPolicy(fixed, "p"), "p"),))
    result = run(proposal)
    assert [o.tenant_id for o in result.newly_recovered] == [FABRIKAM]
    outcome = result.newly_recovered[0]
    assert FindingCode.VENDOR_INBOUND_APPS_MISSING_MFA_APPS.value in {
        f.code.value for f in outcome.removed
    }
    assert result.newly_broken == () and result.clients == 4


def test_deleting_a_partner_entry_falls_back_to_the_default():
    policies = apply_proposal(current(), default_proposal(BLOCK_INBOUND))
    proposal = Proposal(partners=(PartnerProposal(CONTOSO, None, "p"),))
    result = what_if(CLIENTS, policies, apply_proposal(policies, proposal), VENDOR_APPS, AUTHZ)
    assert [o.tenant_id for o in result.newly_broken] == [CONTOSO]
    assert FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT.value in codes(
        result.newly_broken[0].after
    )


def test_a_patch_body_changes_only_what_it_names():
    patch = {
        "inboundTrust": {
            "isMfaAccepted": True,
            "isCompliantDeviceAccepted": False,
            "isHybridAzureADJoinedDeviceAccepted": False,
        }
    }
    result = run(default_proposal(patch))
    assert result.newly_broken == ()
    # Fabrikam inherits MFA trust from the default: once trusted, its guests no longer
    # register MFA in the vendor tenant, so the missing MFA apps stop trapping them.
    assert [o.tenant_id for o in result.newly_recovered] == [FABRIKAM]
    everyone = result.changed + result.newly_recovered
    assert {o.tenant_id for o in everyone} == {c.tenant_id for c in CLIENTS}
    assert all(FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT.value in codes(o.added) for o in everyone)


def test_merge_replaces_top_level_properties_whole_and_ignores_read_only_ones():
    base = {
        "@odata.context": "x",
        "id": "1",
        "inboundTrust": {"isMfaAccepted": False, "a": 1},
        "b2bCollaborationInbound": {"x": 1},
    }
    merged = merge_policy(
        base, {"InboundTrust": {"isMfaAccepted": True}, "id": "2", "@odata.etag": "e"}
    )
    assert merged == {
        "id": "1",
        "b2bCollaborationInbound": {"x": 1},
        "InboundTrust": {"isMfaAccepted": True},
    }


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([], "default", "JSON object"),
        ({"value": []}, "default", "collection"),
        ({"b2bColaborationInbound": {}}, "default.b2bColaborationInbound", "spelling"),
        (
            {"b2bCollaborationInbound": {"usersAndGroups": []}},
            "default.b2bCollaborationInbound.usersAndGroups",
            "object",
        ),
        ({"tenantId": CONTOSO, "inboundTrust": None}, "default.tenantId", "partner entry"),
    ],
)
def test_a_malformed_default_proposal_names_the_field(raw, field, words):
    with pytest.raises(ProposalError) as caught:
        apply_proposal(current(), default_proposal(raw))
    assert caught.value.field == field
    assert words in caught.value.message


def test_a_partner_proposal_for_another_tenant_is_refused():
    wrong = partner(NORTHWIND)
    proposal = Proposal(
        partners=(
            PartnerProposal(CONTOSO, ProposedPolicy(wrong, "partners[0].policy"), "partners[0]"),
        )
    )
    with pytest.raises(ProposalError) as caught:
        apply_proposal(current(), proposal)
    assert caught.value.field == "partners[0].policy.tenantId"


def test_an_empty_or_duplicated_proposal_is_refused():
    with pytest.raises(ProposalError):
        apply_proposal(current(), Proposal())
    twice = Proposal(
        partners=(PartnerProposal(CONTOSO, None, "a"), PartnerProposal(CONTOSO.upper(), None, "b"))
    )
    with pytest.raises(ProposalError) as caught:
        apply_proposal(current(), twice)
    assert caught.value.field == "b.tenantId"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({}, "body"),
        ({"default": None}, "body"),
        ({"defualt": {}}, "defualt"),
        ({"partners": {}}, "partners"),
        ({"partners": ["x"]}, "partners[0]"),
        ({"partners": [{"tenantId": "nope", "policy": None}]}, "partners[0].tenantId"),
        ({"partners": [{"tenantId": CONTOSO}]}, "partners[0].policy"),
        ({"partners": [{"tenantId": CONTOSO, "policy": None, "x": 1}]}, "partners[0].x"),
    ],
)
def test_the_api_body_is_validated_field_by_field(body, field):
    with pytest.raises(ProposalError) as caught:
        parse_proposal_body(body)
    assert caught.value.field == field


def test_the_api_body_becomes_a_proposal():
    proposal = parse_proposal_body(
        {"default": BLOCK_INBOUND, "partners": [{"tenantId": CONTOSO.upper(), "policy": None}]}
    )
    assert proposal.default is not None and proposal.default.label == "default"
    assert proposal.partners == (PartnerProposal(CONTOSO, None, "partners[0]"),)
    assert affected_tenants(proposal) is None


def test_outcome_json_lists_added_findings_with_their_runbook_page():
    result = run(default_proposal(BLOCK_INBOUND))
    body = result.to_json()
    first = body["newlyBroken"][0]
    assert first["change"] == Change.NEWLY_BROKEN.value
    assert first["brokenBefore"] is False and first["brokenAfter"] is True
    assert all(f["doc"] == f"docs/findings/{f['code']}.md" for f in first["added"])
