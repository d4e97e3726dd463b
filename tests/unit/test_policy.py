"""Parsing Graph crossTenantAccessPolicy JSON and resolving the effective policy."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.policy import (
    Access,
    PolicyParseError,
    Source,
    parse_b2b_setting,
    parse_default_policy,
    parse_partner_list,
    parse_partner_policy,
    resolve_effective,
)

GRAPH = GRAPH_FIXTURES
DOC_PARTNER = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"  # the tenant in Microsoft's partner example
G1 = "4d4d3e3e-2f2f-1a1a-0b0b-9c9c8d8d7e7e"


def load(name: str) -> Any:
    return json.loads((GRAPH / name).read_text())


@pytest.fixture
def default_json() -> dict[str, Any]:
    return load("policies.crossTenantAccessPolicy.default.get.response.json")


@pytest.fixture
def partner_json() -> dict[str, Any]:
    return load("policies.crossTenantAccessPolicy.partners.id.get.response.json")


def test_microsoft_default_example_parses_field_by_field(default_json):
    policy = parse_default_policy(default_json)

    assert policy.is_service_default is True
    outbound = policy.b2b_collaboration_outbound
    assert outbound is not None and outbound.users_and_groups is not None
    assert outbound.users_and_groups.access is Access.ALLOWED
    assert [t.target for t in outbound.users_and_groups.targets] == ["AllUsers"]
    assert outbound.users_and_groups.targets[0].is_all_users
    assert outbound.applications is not None
    assert outbound.applications.targets[0].is_all_applications
    dc = policy.b2b_direct_connect_outbound
    assert dc is not None and dc.users_and_groups is not None and dc.applications is not None
    assert dc.users_and_groups.access is Access.BLOCKED
    assert dc.applications.access is Access.BLOCKED
    assert policy.inbound_trust is not None and policy.inbound_trust.is_mfa_accepted is False
    assert policy.unknown_values == ()


def test_microsoft_partner_example_keeps_nulls_as_inheritance_markers(partner_json):
    partner = parse_partner_policy(partner_json)

    assert partner.tenant_id == DOC_PARTNER
    assert partner.inbound_trust is None
    assert partner.b2b_collaboration_outbound is None
    assert partner.b2b_collaboration_inbound is None
    assert partner.b2b_direct_connect_outbound is None
    assert partner.automatic_user_consent_settings is not None
    assert partner.automatic_user_consent_settings.outbound_allowed is None
    dci = partner.b2b_direct_connect_inbound
    assert dci is not None and dci.applications is not None
    assert dci.applications.targets[0].target == "Office365"
    assert dci.applications.targets[0].is_microsoft_app_keyword
    assert partner.unknown_values == ()


def test_partner_list_example_parses_every_entry():
    entries = parse_partner_list(
        load("policies.crossTenantAccessPolicy.partners.list.response.json")
    )
    assert [e.tenant_id for e in entries] == ["123f4846-ba00-4fd7-ba43-dac1f8f63013"]
    assert parse_partner_list([]) == ()


def test_effective_policy_from_microsoft_examples_says_where_each_field_came_from(
    default_json, partner_json
):
    effective = resolve_effective(
        parse_default_policy(default_json), parse_partner_policy(partner_json), DOC_PARTNER
    )

    assert effective.partner_entry_present
    out = effective.b2b_collaboration_outbound
    assert out.users_and_groups.source is Source.DEFAULT
    assert out.applications.source is Source.DEFAULT
    assert out.users_and_groups.value is not None
    assert out.users_and_groups.value.access is Access.ALLOWED
    dci = effective.b2b_direct_connect_inbound
    assert dci.users_and_groups.source is Source.PARTNER
    assert dci.applications.value is not None
    assert dci.applications.value.targets[0].target == "Office365"
    assert effective.is_mfa_accepted.source is Source.DEFAULT
    assert effective.is_mfa_accepted.value is False
    # null on the entry and nothing on the default: automatic redemption is off
    assert effective.automatic_redemption_outbound.value is False
    body = effective.to_json()
    assert body["partnerEntry"] == "present"
    assert body["b2bCollaborationOutbound"]["usersAndGroups"]["source"] == "default"
    assert body["b2bDirectConnectInbound"]["applications"]["source"] == "partner"


def test_null_inherits_field_by_field_inside_a_setting(default_json):
    partner = {
        "tenantId": DOC_PARTNER,
        "b2bCollaborationOutbound": {
            "usersAndGroups": {
                "accessType": "allowed",
                "targets": [{"target": G1, "targetType": "group"}],
            },
            "applications": None,
        },
    }
    effective = resolve_effective(
        parse_default_policy(default_json), parse_partner_policy(partner), DOC_PARTNER
    )
    out = effective.b2b_collaboration_outbound
    assert out.users_and_groups.source is Source.PARTNER
    assert out.users_and_groups.value is not None
    assert out.users_and_groups.value.targets[0].target == G1
    assert out.applications.source is Source.DEFAULT
    assert out.applications.value is not None
    assert out.applications.value.targets[0].is_all_applications


def test_missing_partner_means_the_default_applies_entirely(default_json):
    effective = resolve_effective(parse_default_policy(default_json), None, DOC_PARTNER.upper())
    assert effective.partner_tenant_id == DOC_PARTNER
    assert not effective.partner_entry_present
    for setting in (
        effective.b2b_collaboration_outbound,
        effective.b2b_collaboration_inbound,
        effective.b2b_direct_connect_outbound,
        effective.b2b_direct_connect_inbound,
    ):
        assert setting.users_and_groups.source is Source.DEFAULT
        assert setting.applications.source is Source.DEFAULT


def test_a_setting_absent_everywhere_is_not_set():
    effective = resolve_effective(
        parse_default_policy({"isServiceDefault": True}), None, DOC_PARTNER
    )
    assert effective.b2b_collaboration_outbound.users_and_groups.source is Source.NOT_SET
    assert not effective.b2b_collaboration_outbound.complete
    assert effective.is_mfa_accepted.source is Source.NOT_SET


def test_automatic_redemption_only_counts_on_a_partner_entry(default_json):
    # On the default policy the setting is always false and read-only; a default that
    # claims true (a hand-edited export) must not tick it for everyone.
    hacked = copy.deepcopy(default_json)
    hacked["automaticUserConsentSettings"] = {"inboundAllowed": True, "outboundAllowed": True}
    default = parse_default_policy(hacked)
    assert (
        resolve_effective(default, None, DOC_PARTNER).automatic_redemption_outbound.value is False
    )

    partner = parse_partner_policy(
        {"tenantId": DOC_PARTNER, "automaticUserConsentSettings": {"outboundAllowed": True}}
    )
    effective = resolve_effective(default, partner, DOC_PARTNER)
    assert effective.automatic_redemption_outbound.value is True
    assert effective.automatic_redemption_outbound.source is Source.PARTNER
    assert effective.automatic_redemption_inbound.value is False


def test_unknown_enum_values_are_kept_verbatim_not_fatal(default_json):
    odd = copy.deepcopy(default_json)
    odd["b2bCollaborationOutbound"]["usersAndGroups"]["accessType"] = "unknownFutureValue"
    odd["b2bCollaborationOutbound"]["applications"]["targets"][0]["targetType"] = "servicePrincipal"
    odd["b2bDirectConnectOutbound"]["applications"]["targets"].append(
        {"target": "AllAgentApps", "targetType": "application"}
    )
    policy = parse_default_policy(odd)

    ug = policy.b2b_collaboration_outbound.users_and_groups  # type: ignore[union-attr]
    assert ug is not None and ug.access_type == "unknownFutureValue"
    assert ug.access is Access.UNKNOWN
    assert {(u.path, u.value) for u in policy.unknown_values} == {
        ("b2bCollaborationOutbound.usersAndGroups.accessType", "unknownFutureValue"),
        ("b2bCollaborationOutbound.applications.targets[0].targetType", "servicePrincipal"),
        ("b2bDirectConnectOutbound.applications.targets[1].target", "AllAgentApps"),
    }


def test_access_type_spellings_from_docs_and_audit_log_are_understood():
    # Microsoft's own interpretation table prints " blocked" with a leading space, and audit
    # before/after values encode the access type as 1 (allowed) / 2 (blocked).
    setting, unknown = parse_b2b_setting(
        {
            "usersAndGroups": {"accessType": " blocked", "targets": []},
            "applications": {"accessType": 1, "targets": []},
        }
    )
    assert unknown == ()
    assert setting is not None and setting.users_and_groups is not None
    assert setting.users_and_groups.access is Access.BLOCKED
    assert setting.applications is not None
    assert setting.applications.access is Access.ALLOWED
    assert setting.applications.access_type == "1"


def test_keys_are_matched_case_insensitively():
    policy = parse_partner_policy(
        {
            "TenantId": DOC_PARTNER.upper(),
            "B2BCollaborationOutbound": {
                "UsersAndGroups": {"AccessType": "Allowed", "Targets": [{"Target": "AllUsers"}]},
                "Applications": {
                    "AccessType": "Allowed",
                    "Targets": [{"Target": "AllApplications"}],
                },
            },
        }
    )
    assert policy.tenant_id == DOC_PARTNER
    out = policy.b2b_collaboration_outbound
    assert out is not None and out.users_and_groups is not None
    assert out.users_and_groups.access is Access.ALLOWED
    assert out.users_and_groups.targets[0].is_all_users


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "expected an object"),
        ({"b2bCollaborationOutbound": "allowed"}, "b2bCollaborationOutbound: expected an object"),
        (
            {
                "b2bCollaborationOutbound": {
                    "usersAndGroups": {"accessType": "allowed", "targets": {}}
                }
            },
            "targets: expected a list",
        ),
        ({"inboundTrust": {"isMfaAccepted": "yes"}}, "inboundTrust.isMfaAccepted"),
        (
            {
                "b2bCollaborationOutbound": {
                    "applications": {"targets": [{"targetType": "application"}]}
                }
            },
            "targets[0].target: missing",
        ),
        (
            {"b2bCollaborationOutbound": {"applications": {"targets": [None]}}},
            "targets[0]: expected an object",
        ),
    ],
)
def test_malformed_shapes_raise_a_parse_error_naming_the_path(payload, message):
    with pytest.raises(PolicyParseError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_default_policy(payload)


def test_partner_entry_needs_a_tenant_guid(partner_json):
    broken = dict(partner_json)
    broken["tenantId"] = "contoso.com"
    with pytest.raises(PolicyParseError, match="tenantId"):
        parse_partner_policy(broken)
    with pytest.raises(PolicyParseError, match="partner list"):
        parse_partner_list({"value": "nope"})


def test_effective_policy_refuses_an_entry_for_another_tenant(default_json, partner_json):
    with pytest.raises(ValueError, match="not for"):
        resolve_effective(
            parse_default_policy(default_json),
            parse_partner_policy(partner_json),
            "123f4846-ba00-4fd7-ba43-dac1f8f63013",
        )
