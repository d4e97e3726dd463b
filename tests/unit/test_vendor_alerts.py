"""One alert per vendor-side cause (issue 14.2): grouping, signatures, wording."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.finding_catalog import FindingCode
from shared.domain.policy import parse_default_policy
from shared.domain.posture_alerts import AlertContext
from shared.domain.token_errors import classify_token_error
from shared.domain.vendor_alerts import (
    NAMES_SHOWN,
    is_vendor_wide,
    per_client,
    period_key,
    vendor_identity_alert,
    vendor_policy_unreadable_alert,
    vendor_wide_alert,
    vendor_wide_causes,
    vendor_wide_signature,
)
from shared.domain.vendor_checks import AuthorizationPolicy, evaluate_vendor_side

APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
CTX = AlertContext("OSTTRA", "https://entra.microsoft.com", "https://docs.example/docs")
MFA_ON = parse_default_policy(
    {
        "inboundTrust": {"isMfaAccepted": True},
        "b2bCollaborationInbound": {
            "usersAndGroups": {
                "accessType": "allowed",
                "targets": [{"target": "AllUsers", "targetType": "user"}],
            },
            "applications": {
                "accessType": "allowed",
                "targets": [{"target": "AllApplications", "targetType": "application"}],
            },
        },
    }
)


def _tenant(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def _findings(i: int, auth: AuthorizationPolicy | None = None):  # type: ignore[no-untyped-def]
    return evaluate_vendor_side(MFA_ON, None, _tenant(i), [APP], auth, [f"c{i}.example"])


def test_mfa_trust_on_the_default_is_vendor_wide_and_left_out_of_per_client_alerts():
    findings = _findings(1)
    codes = {f.code for f in findings}
    assert FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT in codes
    assert FindingCode.VENDOR_PARTNER_ENTRY_MISSING in codes  # per client: its own entry
    wide = [f for f in findings if is_vendor_wide(f)]
    assert [f.code for f in wide] == [FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT]
    assert FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT not in {f.code for f in per_client(findings)}


def test_an_unknown_allow_invites_from_is_vendor_wide_but_an_unknown_partner_value_is_not():
    findings = _findings(1, AuthorizationPolicy(allow_invites_from="someNewValue"))
    unknown = [f for f in findings if f.code is FindingCode.POLICY_UNKNOWN_VALUE]
    assert unknown and all(is_vendor_wide(f) for f in unknown)


def test_causes_group_every_client_under_one_code_and_the_alert_names_them():
    by_client = {f"Client {i:02d}": _findings(i) for i in range(30)}
    causes = vendor_wide_causes(by_client)
    assert [c.finding.code for c in causes] == [FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT]
    assert len(causes[0].clients) == 30
    signature = vendor_wide_signature(causes)
    alert = vendor_wide_alert(causes, signature, 1, NOW, CTX)
    assert alert.client is None
    assert alert.dedup_key == f"vendorwide:{signature}:1"
    assert "affect 30 clients" in alert.title
    assert "Client 00" in alert.summary and f"and {30 - NAMES_SHOWN} more" in alert.summary
    assert alert.facts["VENDOR_MFA_TRUST_ON_DEFAULT"] == "30 clients"
    assert alert.remediation_steps and alert.links


def test_the_signature_depends_on_the_causes_not_on_who_is_affected():
    few = vendor_wide_causes({"A": _findings(1)})
    many = vendor_wide_causes({f"C{i}": _findings(i) for i in range(5)})
    assert vendor_wide_signature(few) == vendor_wide_signature(many) != ""
    assert vendor_wide_signature([]) == ""


def test_the_identity_alert_names_the_fault_and_is_keyed_per_period():
    failure = classify_token_error(
        401,
        '{"error": "invalid_client", "error_codes": [700213], "error_description": '
        '"AADSTS700213: No matching federated identity record found for presented assertion '
        "subject 'x'.\"}",
    )
    alert = vendor_identity_alert(failure, _tenant(1), "Contoso", period_key(NOW, 24), NOW, CTX)
    assert "federated credential" in alert.title
    assert alert.findings[0].code == "VENDOR_IDENTITY_MISCONFIGURED"
    assert alert.dedup_key.startswith("vendor-identity:federated_credential:AADSTS700213:")
    again = vendor_identity_alert(failure, _tenant(2), "Fabrikam", period_key(NOW, 24), NOW, CTX)
    assert again.dedup_key == alert.dedup_key  # one cause, one key, whichever client saw it


def test_the_unreadable_alert_carries_the_problem_and_a_fix():
    alert = vendor_policy_unreadable_alert(
        "partner entry for Contoso", "inboundTrust: expected an object", "1", NOW, CTX
    )
    assert "partner entry for Contoso" in alert.summary
    assert "inboundTrust: expected an object" in alert.summary
    assert alert.remediation_steps
    assert alert.findings[0].code == "VENDOR_POLICY_UNREADABLE"


def test_period_keys_change_once_per_period():
    assert period_key(NOW, 24) == period_key(NOW.replace(hour=23), 24)
    assert period_key(NOW, 24) != period_key(NOW.replace(day=1), 24)
