"""Vendor-side checks per registered client (DESIGN §3.7)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.finding_catalog import Finding, FindingCode
from shared.domain.messages import Severity
from shared.domain.policy import PolicyParseError, parse_default_policy, parse_partner_policy
from shared.domain.vendor_checks import (
    MFA_REGISTRATION_APPS,
    MICROSOFT_APP_ACCESS_PANEL,
    MY_APPS,
    MY_PROFILE,
    MY_SIGNINS,
    InvitationDomainPolicy,
    evaluate_vendor_side,
    parse_authorization_policy,
    parse_invitation_domain_policy,
)

GRAPH = GRAPH_FIXTURES
CLIENT = "22223333-cccc-4444-dddd-5555eeee6666"  # the partner tenant in reference/003
VENDOR_APP = "11112222-aaaa-bbbb-cccc-333344445555"
CLIENT_GROUP = "9a9a8b8b-7c7c-6d6d-5e5e-4f4f3a3a2b2b"


def load(name: str) -> Any:
    return json.loads((GRAPH / name).read_text())


DEFAULT_JSON = load("policies.crossTenantAccessPolicy.default.get.response.json")
AUTHZ_JSON = load("policies.authorizationPolicy.get.response.json")

# reference/003 "I keep the default restrictive": block inbound B2B collaboration by default.
RESTRICTIVE_INBOUND = {
    "usersAndGroups": {
        "accessType": "blocked",
        "targets": [{"target": "AllUsers", "targetType": "user"}],
    },
    "applications": {
        "accessType": "blocked",
        "targets": [{"target": "AllApplications", "targetType": "application"}],
    },
}
# reference/003 "Author an inbound policy for a named partner": one group, one app.
PARTNER_INBOUND = {
    "usersAndGroups": {
        "accessType": "allowed",
        "targets": [{"target": CLIENT_GROUP, "targetType": "group"}],
    },
    "applications": {
        "accessType": "allowed",
        "targets": [{"target": VENDOR_APP, "targetType": "application"}],
    },
}


def apps_allowlist(*app_ids: str) -> dict[str, Any]:
    return {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": a, "targetType": "application"} for a in app_ids],
        },
    }


def entry(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenantId": CLIENT,
        "inboundTrust": {"isMfaAccepted": False, "isCompliantDeviceAccepted": False},
        "automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": None},
        "b2bCollaborationInbound": None,
    }
    body.update(fields)
    return body


def check(
    default: dict[str, Any] | None = None,
    partner: dict[str, Any] | None = None,
    apps: tuple[str, ...] = (VENDOR_APP,),
    authz: dict[str, Any] | None = None,
    domains: tuple[str, ...] = ("contoso.com",),
    invitation_domains: InvitationDomainPolicy | None = None,
) -> list[Finding]:
    return evaluate_vendor_side(
        parse_default_policy(default if default is not None else DEFAULT_JSON),
        None if partner is None else parse_partner_policy(partner),
        CLIENT,
        apps,
        None if authz is None else parse_authorization_policy(authz),
        domains,
        invitation_domains=invitation_domains,
        client_name="Contoso",
    )


def codes(findings: list[Finding]) -> set[str]:
    return {f.code.value for f in findings}


def one(findings: list[Finding], code: FindingCode) -> Finding:
    matching = [f for f in findings if f.code is code]
    assert len(matching) == 1, codes(findings)
    return matching[0]


def test_mfa_registration_app_ids_are_microsofts_documented_ones():
    # "Considerations for allowing Microsoft applications" (entra-docs) and reference/002.
    assert MFA_REGISTRATION_APPS == {
        "2793995e-0a7d-40d7-bd35-6968ba142197": "My Apps",
        "0000000c-0000-0000-c000-000000000000": "Microsoft App Access Panel",
        "8c59ead7-d703-4a27-9e55-c96a0054c8d2": "My Profile",
        "19db86c3-b2b9-44cc-b339-36da233a3be2": "My Sign-ins",
    }


def test_service_default_and_no_entry_admits_but_asks_for_an_entry():
    findings = check(partner=None, authz=AUTHZ_JSON)
    assert codes(findings) == {"VENDOR_PARTNER_ENTRY_MISSING", "VENDOR_AUTO_REDEMPTION_NOT_TICKED"}
    auto = one(findings, FindingCode.VENDOR_AUTO_REDEMPTION_NOT_TICKED)
    assert "needs an organizational entry" in auto.message


def test_restrictive_default_without_entry_blocks_the_client():
    default = dict(copy.deepcopy(DEFAULT_JSON), b2bCollaborationInbound=RESTRICTIVE_INBOUND)
    findings = check(default=default, partner=None)
    blocked = one(findings, FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT)
    assert blocked.severity is Severity.HIGH
    assert VENDOR_APP in blocked.message and "AADSTS500213" in blocked.message
    # nothing is admitted, so neither auto-redemption nor the MFA apps are worth a word
    assert "VENDOR_AUTO_REDEMPTION_NOT_TICKED" not in codes(findings)
    assert "VENDOR_INBOUND_APPS_MISSING_MFA_APPS" not in codes(findings)


def test_reference_partner_policy_scoped_to_one_group_and_one_app():
    default = dict(copy.deepcopy(DEFAULT_JSON), b2bCollaborationInbound=RESTRICTIVE_INBOUND)
    findings = check(default=default, partner=entry(b2bCollaborationInbound=PARTNER_INBOUND))

    assert "VENDOR_INBOUND_BLOCKS_CLIENT" not in codes(findings)
    scoped = one(findings, FindingCode.VENDOR_INBOUND_USERS_SCOPED)
    assert scoped.severity is Severity.INFO
    assert dict(scoped.facts)["principals"] == CLIENT_GROUP
    mfa = one(findings, FindingCode.VENDOR_INBOUND_APPS_MISSING_MFA_APPS)
    # MFA from the client is not trusted: guests must register MFA here and would loop
    assert mfa.severity is Severity.HIGH
    assert set(dict(mfa.facts)["missing"].split(", ")) == set(MFA_REGISTRATION_APPS)
    assert "loop" in mfa.message
    assert "PATCH /policies/crossTenantAccessPolicy/partners/" + CLIENT in mfa.remediation


def test_microsofts_documented_allowlist_patch_satisfies_the_mfa_check():
    allowlist = apps_allowlist(
        MY_APPS, MICROSOFT_APP_ACCESS_PANEL, MY_PROFILE, MY_SIGNINS, VENDOR_APP
    )
    findings = check(partner=entry(b2bCollaborationInbound=allowlist))
    assert codes(findings) == set()


def test_missing_landing_apps_with_trusted_mfa_is_medium():
    allowlist = apps_allowlist(MICROSOFT_APP_ACCESS_PANEL, MY_SIGNINS, VENDOR_APP)
    trusted = entry(b2bCollaborationInbound=allowlist, inboundTrust={"isMfaAccepted": True})
    mfa = one(check(partner=trusted), FindingCode.VENDOR_INBOUND_APPS_MISSING_MFA_APPS)
    assert mfa.severity is Severity.MEDIUM
    assert dict(mfa.facts) == {"missing": f"{MY_APPS}, {MY_PROFILE}", "mfaTrusted": "true"}


def test_all_microsoft_apps_keyword_covers_the_registration_apps():
    allowlist = apps_allowlist("AllMicrosoftApps", VENDOR_APP)
    assert "VENDOR_INBOUND_APPS_MISSING_MFA_APPS" not in codes(
        check(partner=entry(b2bCollaborationInbound=allowlist))
    )


def test_blocklist_naming_my_signins_is_caught():
    blocklist = {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "blocked",
            "targets": [{"target": MY_SIGNINS, "targetType": "application"}],
        },
    }
    mfa = one(
        check(partner=entry(b2bCollaborationInbound=blocklist)),
        FindingCode.VENDOR_INBOUND_APPS_MISSING_MFA_APPS,
    )
    assert dict(mfa.facts)["missing"] == MY_SIGNINS


def test_entry_that_leaves_out_the_vendor_app_blocks_the_client():
    other_app = "99998888-aaaa-bbbb-cccc-777766665555"
    findings = check(
        partner=entry(b2bCollaborationInbound=apps_allowlist(other_app, *MFA_REGISTRATION_APPS))
    )
    blocked = one(findings, FindingCode.VENDOR_INBOUND_BLOCKS_CLIENT)
    assert blocked.severity is Severity.HIGH
    assert dict(blocked.facts)["apps"] == VENDOR_APP


@pytest.mark.parametrize(
    ("users_access", "users_target", "apps_access", "apps_target", "problem"),
    [
        ("blocked", "AllUsers", "allowed", "AllApplications", "all external users are blocked"),
        ("allowed", "AllUsers", "blocked", "AllApplications", "all applications are blocked"),
        ("blocked", "AllUsers", "blocked", "AllApplications", None),
        ("allowed", "AllUsers", "allowed", "AllApplications", None),
    ],
)
def test_users_and_applications_must_agree(
    users_access, users_target, apps_access, apps_target, problem
):
    inbound = {
        "usersAndGroups": {
            "accessType": users_access,
            "targets": [{"target": users_target, "targetType": "user"}],
        },
        "applications": {
            "accessType": apps_access,
            "targets": [{"target": apps_target, "targetType": "application"}],
        },
    }
    findings = check(partner=entry(b2bCollaborationInbound=inbound))
    if problem is None:
        assert "VENDOR_INBOUND_TARGETS_INCONSISTENT" not in codes(findings)
    else:
        finding = one(findings, FindingCode.VENDOR_INBOUND_TARGETS_INCONSISTENT)
        assert problem in finding.message
        assert "VENDOR_INBOUND_BLOCKS_CLIENT" in codes(findings)


@pytest.mark.parametrize(
    ("inbound_allowed", "flagged"), [(True, False), (False, True), (None, True)]
)
def test_inbound_automatic_redemption(inbound_allowed, flagged):
    partner = entry(automaticUserConsentSettings={"inboundAllowed": inbound_allowed})
    assert ("VENDOR_AUTO_REDEMPTION_NOT_TICKED" in codes(check(partner=partner))) is flagged


def test_mfa_trust_on_the_default_policy_is_flagged():
    default = copy.deepcopy(DEFAULT_JSON)
    default["inboundTrust"]["isMfaAccepted"] = True
    finding = one(check(default=default, partner=entry()), FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT)
    assert finding.severity is Severity.MEDIUM


def test_mfa_trust_inherited_by_the_entry_is_not_decided_per_partner():
    finding = one(
        check(partner=entry(inboundTrust=None)), FindingCode.VENDOR_MFA_TRUST_NOT_SET_FOR_CLIENT
    )
    assert finding.severity is Severity.INFO
    assert dict(finding.facts)["inheritedValue"] == "false"
    assert "VENDOR_MFA_TRUST_NOT_SET_FOR_CLIENT" not in codes(check(partner=entry()))


@pytest.mark.parametrize(
    ("allow_invites_from", "code"),
    [
        ("everyone", None),
        ("adminsAndGuestInviters", None),
        ("adminsGuestInvitersAndAllMembers", None),
        ("none", "VENDOR_INVITES_DISABLED"),
        ("unknownFutureValue", "POLICY_UNKNOWN_VALUE"),
    ],
)
def test_allow_invites_from(allow_invites_from, code):
    authz = dict(AUTHZ_JSON, allowInvitesFrom=allow_invites_from)
    found = codes(check(partner=entry(), authz=authz))
    if code is None:
        assert found == set()
    else:
        assert found == {code}


def test_authorization_policy_examples_parse():
    assert parse_authorization_policy(AUTHZ_JSON).allow_invites_from == "everyone"
    beta = load("policies.authorizationPolicy.get.entra-docs-guestUserRoleId.response.json")
    assert parse_authorization_policy(beta).allow_invites_from is None
    with pytest.raises(PolicyParseError):
        parse_authorization_policy(["not", "an", "object"])


def test_invitation_domain_allowlist_and_denylist():
    # reference/003's allowlist body
    allow = parse_invitation_domain_policy(
        {
            "invitationsAllowedAndBlockedDomainsPolicy": {
                "allowedDomains": ["fabrikam.com", "contoso-partner.com"]
            }
        }
    )
    assert (
        codes(check(partner=entry(), domains=("Fabrikam.com",), invitation_domains=allow)) == set()
    )
    refused = one(
        check(partner=entry(), domains=("fabrikam.com", "contoso.com"), invitation_domains=allow),
        FindingCode.VENDOR_CLIENT_DOMAIN_NOT_ALLOWED,
    )
    assert dict(refused.facts)["domains"] == "contoso.com"
    assert "not on the allowlist" in refused.message

    # the legacy B2B management policy: definition is a list of JSON *strings*
    legacy = parse_invitation_domain_policy(
        {
            "definition": [
                json.dumps(
                    {
                        "B2BManagementPolicy": {
                            "InvitationsAllowedAndBlockedDomainsPolicy": {
                                "BlockedDomains": ["contoso.com"]
                            },
                            "AutoRedeemPolicy": {"AdminConsentedForUsersIntoTenantIds": []},
                        }
                    }
                )
            ],
            "displayName": "B2BManagementPolicy",
            "type": "B2BManagementPolicy",
        }
    )
    assert legacy.blocked_domains == ("contoso.com",)
    denied = one(
        check(partner=entry(), domains=("contoso.com",), invitation_domains=legacy),
        FindingCode.VENDOR_CLIENT_DOMAIN_NOT_ALLOWED,
    )
    assert "on the denylist" in denied.message
    assert (
        codes(check(partner=entry(), domains=("fabrikam.com",), invitation_domains=legacy)) == set()
    )
    # wildcard entries cover subdomains
    wildcard = InvitationDomainPolicy(allowed_domains=("*.contoso.com",))
    assert (
        codes(check(partner=entry(), domains=("eu.contoso.com",), invitation_domains=wildcard))
        == set()
    )


def test_unknown_value_in_the_vendor_inbound_policy_is_reviewed():
    odd = copy.deepcopy(PARTNER_INBOUND)
    odd["usersAndGroups"]["accessType"] = "unknownFutureValue"
    findings = check(partner=entry(b2bCollaborationInbound=odd))
    finding = one(findings, FindingCode.POLICY_UNKNOWN_VALUE)
    assert dict(finding.facts)["path"] == "b2bCollaborationInbound.usersAndGroups.accessType"
    # undetermined admission is not claimed as a block
    assert "VENDOR_INBOUND_BLOCKS_CLIENT" not in codes(findings)


def test_caller_bugs_raise():
    with pytest.raises(ValueError, match="GUID"):
        evaluate_vendor_side(parse_default_policy(DEFAULT_JSON), None, "contoso.com", (), None, ())
    other = parse_partner_policy(entry(tenantId="123f4846-ba00-4fd7-ba43-dac1f8f63013"))
    with pytest.raises(ValueError, match="not for"):
        evaluate_vendor_side(parse_default_policy(DEFAULT_JSON), other, CLIENT, (), None, ())


def test_without_vendor_app_ids_an_allowlist_is_not_called_a_block():
    allowlist = apps_allowlist(VENDOR_APP, *MFA_REGISTRATION_APPS)
    findings = check(
        partner=entry(
            b2bCollaborationInbound=allowlist,
            automaticUserConsentSettings={"inboundAllowed": False},
        ),
        apps=(),
    )
    # the vendor app cannot be looked for, so no block is claimed; the rest is still checked
    assert codes(findings) == {"VENDOR_AUTO_REDEMPTION_NOT_TICKED"}


# ------------------------------------------------- invitations the vendor refuses
GUEST_INVITER = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
RESTRICTED = dict(AUTHZ_JSON, allowInvitesFrom="adminsAndGuestInviters")


def invite_check(**kwargs: Any) -> list[Finding]:
    partner = kwargs.pop("partner", entry())
    authz = kwargs.pop("authz", RESTRICTED)
    return evaluate_vendor_side(
        parse_default_policy(DEFAULT_JSON),
        None if partner is None else parse_partner_policy(partner),
        CLIENT,
        (VENDOR_APP,),
        parse_authorization_policy(authz),
        ("contoso.com",),
        client_name="Contoso",
        **kwargs,
    )


@pytest.mark.parametrize(
    ("authz", "roles", "flagged"),
    [
        (RESTRICTED, frozenset(), True),
        (RESTRICTED, frozenset({"88d8e3e3-8f55-4a1e-953a-9b9898b8876b"}), True),  # Readers
        (RESTRICTED, frozenset({GUEST_INVITER}), False),
        (RESTRICTED, frozenset({"fe930be7-5e62-47db-91af-98c3a49a38b1"}), False),  # User Admin
        (RESTRICTED, None, False),  # roles not known: no guess
        (dict(AUTHZ_JSON, allowInvitesFrom="everyone"), frozenset(), False),
    ],
)
def test_restricted_invitations_need_an_inviting_role_for_the_app(authz, roles, flagged):
    """Issue 11.4 / Graph invitation-post: app-only invitations do not work while B2B
    invitations are restricted to administrators, unless the app's principal holds one of
    the inviting roles (Guest Inviter, User Administrator, Global Administrator)."""
    found = invite_check(authz=authz, inviter_role_ids=roles)
    assert (FindingCode.VENDOR_APP_CANNOT_INVITE.value in codes(found)) is flagged
    if flagged:
        finding = one(found, FindingCode.VENDOR_APP_CANNOT_INVITE)
        assert "Guest Inviter" in finding.remediation and finding.severity is Severity.HIGH


def test_b2b_management_policy_collection_from_the_beta_endpoint():
    from shared.domain.vendor_checks import parse_b2b_management_policies

    # Microsoft's List example, verbatim: a definition in single quotes, isOrganizationDefault
    # as a string, and no domain lists (no restriction).
    documented = {
        "value": [
            {
                "@odata.type": "#microsoft.graph.b2bManagementPolicy",
                "id": "f596ef0d-42f9-0359-1aaa-12d02b38802a",
                "deletedDateTime": None,
                "description": "Policy used for B2B features",
                "displayName": "Policy1",
                "definition": ["{'B2BManagementPolicy':{'Version':1}}"],
                "isOrganizationDefault": "true",
            }
        ]
    }
    assert parse_b2b_management_policies(documented) == InvitationDomainPolicy()
    assert parse_b2b_management_policies({"value": []}) == InvitationDomainPolicy()
    allowlist = {
        "value": [
            {"definition": ['{"B2BManagementPolicy":{}}'], "isOrganizationDefault": False},
            {
                "definition": [
                    '{"B2BManagementPolicy":{"InvitationsAllowedAndBlockedDomainsPolicy":'
                    '{"AllowedDomains":["fabrikam.com"],"BlockedDomains":[]}}}'
                ],
                "isOrganizationDefault": True,
            },
        ]
    }
    parsed = parse_b2b_management_policies(allowlist)
    assert parsed.allowed_domains == ("fabrikam.com",)
    refused = one(
        invite_check(authz=AUTHZ_JSON, invitation_domains=parsed),
        FindingCode.VENDOR_CLIENT_DOMAIN_NOT_ALLOWED,
    )
    assert "contoso.com" in refused.message
    with pytest.raises(PolicyParseError):
        parse_b2b_management_policies({"value": "nope"})


def test_a_client_in_another_cloud_needs_cross_cloud_settings_and_an_entry():
    """ "Enable B2B collaboration across Microsoft clouds": the cloud ticked in Microsoft
    cloud settings and the partner added as an organization — on both sides."""
    from shared.domain.vendor_checks import CloudContext

    gov = "microsoftonline.us"
    nothing = invite_check(authz=AUTHZ_JSON, cloud=CloudContext("microsoftonline.com", gov, ()))
    finding = one(nothing, FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED)
    assert "Azure Government" in finding.message and "allowedCloudEndpoints" in finding.remediation
    assert "client's admin" in finding.remediation
    no_entry = one(
        invite_check(
            authz=AUTHZ_JSON, partner=None, cloud=CloudContext("microsoftonline.com", gov, (gov,))
        ),
        FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED,
    )
    assert "no organizational entry" in no_entry.message
    ready = invite_check(authz=AUTHZ_JSON, cloud=CloudContext("microsoftonline.com", gov, (gov,)))
    assert FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED.value not in codes(ready)
    same_cloud = invite_check(
        authz=AUTHZ_JSON, cloud=CloudContext("microsoftonline.com", "microsoftonline.com", ())
    )
    assert FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED.value not in codes(same_cloud)
    unknown = invite_check(authz=AUTHZ_JSON, cloud=CloudContext("microsoftonline.com", None, ()))
    assert FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED.value not in codes(unknown)
