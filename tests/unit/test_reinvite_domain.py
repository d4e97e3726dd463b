"""Re-invite requests, guest eligibility and Graph error explanations (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.domain.clients import ClientRecord
from shared.domain.jobs import JobError, JobState, ReinviteJob
from shared.domain.principal import encode_client_principal, parse_client_principal
from shared.domain.reinvite import (
    RequestInvalid,
    check_eligibility,
    explain_invitation_error,
    home_addresses,
    is_external_account,
    is_strict_email,
    parse_reinvite_request,
    redirect_allowed,
    reinvite_result_alert,
    requester_address,
)
from shared.services.reinvites import invitation_body

NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
ADATUM = ClientRecord(
    tenant_id="6babcaad-604b-40ac-a9d7-9fd97c0b779f", name="Adatum", domains=("adatum.com",)
)
CONTOSO = ClientRecord(
    tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    name="Contoso Markets",
    domains=("contoso-markets.com", "contosomarkets.onmicrosoft.com"),
)


# ------------------------------------------------------------------- validation
def test_a_request_by_email_is_normalised():
    request = parse_reinvite_request(
        {
            "email": "Adele.Vance@ADATUM.com",
            "reason": "  new laptop  ",
            "sendInvitationMessage": True,
            "redirectUrl": "https://sso.osttra.com/landing",
        }
    )
    assert request.email == "Adele.Vance@adatum.com"  # local part kept, domain lower-cased
    assert request.user_id is None
    assert request.reason == "new laptop"
    assert request.send_invitation_message is True
    assert request.redirect_url == "https://sso.osttra.com/landing"


def test_a_request_by_user_id_is_lower_cased():
    request = parse_reinvite_request(
        {"userId": "264E6D50-EAEC-461E-B187-873B1BCF855F", "reason": "reset"}
    )
    assert request.user_id == "264e6d50-eaec-461e-b187-873b1bcf855f"
    assert request.send_invitation_message is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ("email", "body"),
        ({"reason": "x"}, "userId"),  # neither
        (
            {"userId": "264e6d50-eaec-461e-b187-873b1bcf855f", "email": "a@b.co", "reason": "x"},
            "userId",
        ),
        ({"email": "a@b.co"}, "reason"),
        ({"email": "a@b.co", "reason": ""}, "reason"),
        ({"email": "a@b.co", "reason": "   "}, "reason"),
        ({"email": "a@b.co", "reason": "x" * 501}, "reason"),
        ({"email": "a@b.co", "reason": "bell\x07"}, "reason"),
        ({"email": "a@b.co", "reason": 5}, "reason"),
        (
            {"email": "a@b.co", "reason": "x", "sendInvitationMessage": "true"},
            "sendInvitationMessage",
        ),
        ({"email": "a@b.co", "reason": "x", "sendInvitationMessage": 1}, "sendInvitationMessage"),
        ({"email": "a@b.co", "reason": "x", "redirectUrl": "http://sso.osttra.com"}, "redirectUrl"),
        ({"email": "a@b.co", "reason": "x", "redirectUrl": "javascript:alert(1)"}, "redirectUrl"),
        (
            {"email": "a@b.co", "reason": "x", "redirectUrl": "https://u@evil.example"},
            "redirectUrl",
        ),
        ({"email": "a@b.co", "reason": "x", "redirectUrl": "https://a b.example"}, "redirectUrl"),
        ({"email": "a@b.co", "reason": "x", "admin": True}, "admin"),
        ({"email": None, "reason": "x"}, "email"),
        ({"userId": "not-a-guid", "reason": "x"}, "userId"),
        ({"userId": "264e6d50-eaec-461e-b187-873b1bcf855f\n", "reason": "x"}, "userId"),
    ],
)
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(RequestInvalid) as caught:
        parse_reinvite_request(body)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "email",
    [
        "x' or userType eq 'Member",
        "o'brien@contoso-markets.com",  # legitimate, but re-invite such a guest by userId
        '"quoted"@contoso-markets.com',
        "a(comment)@contoso-markets.com",
        "a b@contoso-markets.com",
        "a@contoso-markets.com\n",
        "a\x00@contoso-markets.com",
        "a@@contoso-markets.com",
        "a@contoso-markets",
        "a..b@contoso-markets.com",
        ".a@contoso-markets.com",
        "a@-contoso.com",
        "a@contoso-markets.com' or '1' eq '1",
        "%27@contoso-markets.com",
        "x" * 65 + "@contoso-markets.com",
    ],
)
def test_email_syntax_refuses_anything_odd(email):
    assert not is_strict_email(email)
    with pytest.raises(RequestInvalid) as caught:
        parse_reinvite_request({"email": email, "reason": "x"})
    assert caught.value.field == "email"


@pytest.mark.parametrize(
    "email",
    ["bob.ops@contoso-markets.com", "AdeleV@adatum.com", "first_last+b2b@sub.example-co.co.uk"],
)
def test_plain_addresses_pass(email):
    assert is_strict_email(email)


# ------------------------------------------------------------------ eligibility
def documented_guest(fixtures) -> dict:
    """Microsoft's documented B2B guest (user-list Example 8) plus the userType we $select."""
    body = json.loads((fixtures / "users.list.filter-b2b-guests-by-upn.response.json").read_text())
    return body["value"][0] | {"userType": "Guest", "externalUserState": "Accepted"}


def test_documented_guest_is_eligible_for_its_client(graph_fixtures):
    guest = documented_guest(graph_fixtures)
    verdict = check_eligibility(guest, [CONTOSO, ADATUM])
    assert verdict.eligible and verdict.client == ADATUM
    assert verdict.address.address == "AdeleV@adatum.com" and verdict.address.source == "mail"


def test_home_addresses_read_mail_then_the_ext_upn(graph_fixtures):
    guest = documented_guest(graph_fixtures)
    addresses = home_addresses(guest | {"userPrincipalName": "AdeleV_adatum.com#EXT#@cntoso.com"})
    assert [(a.source, a.domain) for a in addresses] == [
        ("mail", "adatum.com"),
        ("upn", "adatum.com"),
    ]
    # Without mail, the #EXT# UPN (last "_" is the "@") tells the home domain.
    no_mail = guest | {"mail": None, "userPrincipalName": "first_last_adatum.com#EXT#@osttra.com"}
    verdict = check_eligibility(no_mail, [ADATUM])
    assert verdict.eligible and verdict.address.address == "first_last@adatum.com"


def test_identities_issuer_names_a_federated_home():
    guest = {
        "id": "a1b2c3d4-0000-4000-8000-000000000001",
        "userType": "Guest",
        "mail": None,
        "userPrincipalName": "guest#EXT#@osttra.com",
        "identities": [
            {"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None},
            {"signInType": "federated", "issuer": "adatum.com", "issuerAssignedId": "g@adatum.com"},
        ],
    }
    verdict = check_eligibility(guest, [ADATUM])
    assert verdict.eligible and verdict.address.source == "identities"


def test_members_are_never_eligible_even_with_a_client_mail():
    member = {
        "id": "b1b2c3d4-0000-4000-8000-000000000002",
        "displayName": "J Doe (contractor, member)",
        "userType": "Member",
        "mail": "j.doe@contoso-markets.com",
        "userPrincipalName": "j.doe.contractor@osttra.com",
    }
    verdict = check_eligibility(member, [CONTOSO])
    assert not verdict.eligible and verdict.code == "member"
    assert "J Doe" in verdict.reason


def test_guest_of_an_unregistered_company_is_refused():
    guest = {
        "id": "c1b2c3d4-0000-4000-8000-000000000003",
        "userType": "Guest",
        "mail": "eve@litware.example",
        "userPrincipalName": "eve_litware.example#EXT#@osttra.com",
    }
    verdict = check_eligibility(guest, [CONTOSO, ADATUM])
    assert not verdict.eligible and verdict.code == "not_a_client"
    assert "litware.example" in verdict.reason


def test_mail_decides_the_client_when_present():
    # mail says an unregistered company even though the UPN looks like a client's: the
    # invitation would go to the unregistered address, so it is refused.
    guest = {
        "id": "d1b2c3d4-0000-4000-8000-000000000004",
        "userType": "Guest",
        "mail": "eve@litware.example",
        "userPrincipalName": "eve_contoso-markets.com#EXT#@osttra.com",
    }
    assert not check_eligibility(guest, [CONTOSO]).eligible


def test_guest_without_any_home_evidence_is_refused():
    verdict = check_eligibility(
        {"id": "x", "userType": "Guest", "userPrincipalName": "guest#EXT#@osttra.com"}, [CONTOSO]
    )
    assert not verdict.eligible and verdict.code == "no_home_domain"


def test_an_internal_account_typed_guest_is_never_eligible():
    """Issue 11.5: userType Guest is not evidence. An internal account (own UPN, no external
    identity) whose mail is at a client's domain would be *converted* to B2B by
    POST /invitations ("Invite internal users to B2B collaboration"), one way."""
    internal_guest = {
        "id": "e1b2c3d4-0000-4000-8000-000000000005",
        "displayName": "Legacy contractor account",
        "userType": "Guest",
        "mail": "legacy@contoso-markets.com",
        "userPrincipalName": "legacy.contractor@osttra.com",
        "identities": [
            {
                "signInType": "userPrincipalName",
                "issuer": "osttra.onmicrosoft.com",
                "issuerAssignedId": "legacy.contractor@osttra.com",
            }
        ],
    }
    verdict = check_eligibility(internal_guest, [CONTOSO])
    assert not verdict.eligible and verdict.code == "internal"
    assert "convert" in verdict.reason and "one way" in verdict.reason
    assert not is_external_account(internal_guest)


def test_external_accounts_are_recognised_by_upn_or_identities(graph_fixtures):
    # Microsoft's documented guest shows #EXT# only in identities[].issuerAssignedId.
    assert is_external_account(documented_guest(graph_fixtures))
    assert is_external_account({"userPrincipalName": "a_b.com#ext#@osttra.com"})
    assert is_external_account(
        {"identities": [{"signInType": "federated", "issuer": "ExternalAzureAD"}]}
    )
    assert not is_external_account({"userPrincipalName": "a@osttra.com", "identities": None})


# ---------------------------------------------------------------- Graph errors
def test_directory_role_403_is_explained_as_permanent():
    explained = explain_invitation_error(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )
    assert explained.permanent
    assert "directory role" in explained.summary
    assert "Reset redemption status" in explained.remediation


def test_invitations_switched_off_is_recognised_from_message_or_policy():
    by_message = explain_invitation_error(
        403,
        "Authorization_RequestDenied",
        "Guest invitations not allowed for your company. Contact your company administrator "
        "for more details.",
    )
    by_policy = explain_invitation_error(
        403, "Authorization_RequestDenied", "Insufficient privileges", allow_invites_from="none"
    )
    for explained in (by_message, by_policy):
        assert explained.permanent and "switched off" in explained.summary
        assert "allowInvitesFrom" in explained.remediation


def test_restricted_invitations_are_explained_as_the_apps_missing_role_not_the_guests():
    """Issue 11.4: under allowInvitesFrom = adminsAndGuestInviters an app-only invitation is
    refused with the same generic 403 as a guest holding a role; the policy and the app's
    own roles decide which it is."""
    generic = ("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
    lacks_role = explain_invitation_error(
        403, *generic, allow_invites_from="adminsAndGuestInviters", app_can_invite=False
    )
    assert lacks_role.permanent and "restricted to admins and Guest Inviters" in lacks_role.summary
    assert "directory role" not in lacks_role.summary
    assert "Guest Inviter" in lacks_role.remediation and "--assign-guest-inviter" in (
        lacks_role.remediation
    )
    unknown = explain_invitation_error(
        403, *generic, allow_invites_from="adminsAndGuestInviters", app_can_invite=None
    )
    assert "Guest Inviter" in unknown.summary and "Reset redemption status" in unknown.remediation
    holds_role = explain_invitation_error(
        403, *generic, allow_invites_from="adminsAndGuestInviters", app_can_invite=True
    )
    assert "directory role" in holds_role.summary and "restricted" not in holds_role.summary


def test_redirect_urls_may_only_name_the_vendors_hosts():
    hosts = ("sso.osttra.com", "myapps.microsoft.com")
    assert redirect_allowed("https://sso.osttra.com/landing?x=1", hosts)
    assert redirect_allowed("https://SSO.osttra.com:443/", hosts)
    assert not redirect_allowed("https://evil.example/phish", hosts)
    assert not redirect_allowed("https://sso.osttra.com.evil.example/", hosts)
    assert not redirect_allowed("https://sso.osttra.com:8443/", hosts)
    with pytest.raises(RequestInvalid) as caught:
        parse_reinvite_request(
            {"email": "a@b.co", "reason": "x", "redirectUrl": "https://evil.example/"},
            allowed_redirect_hosts=hosts,
        )
    assert caught.value.field == "redirectUrl" and "sso.osttra.com" in caught.value.message


def test_requester_address_comes_from_the_upn_claim_not_the_display_form():
    """Issue 13.8: "name (oid)" is not an address; the UPN/mail claim is."""
    person = parse_client_principal(
        encode_client_principal(
            name="support.lead@osttra.com",
            object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
            roles=("Reinvite.Request",),
        )
    )
    assert person.display == "support.lead@osttra.com (7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93)"
    assert requester_address(person) == "support.lead@osttra.com"
    app_only = parse_client_principal(
        encode_client_principal(object_id="0c9b8a7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d")
    )
    assert requester_address(app_only) is None


@pytest.mark.parametrize("status", [0, 408, 429, 500, 502, 503, 504])
def test_throttling_and_outages_are_transient(status):
    assert not explain_invitation_error(status, "TooManyRequests", "slow down").permanent


def test_member_and_missing_user_answers():
    member = explain_invitation_error(
        400,
        "BadRequest",
        "The redemption status can be reset only for guest users; 'x' is a member.",
    )
    assert member.permanent and "member" in member.summary
    gone = explain_invitation_error(
        400, "BadRequest", "The invited user 'x' was not found in this directory."
    )
    assert gone.permanent and "no longer exists" in gone.summary


# ---------------------------------------------------------- invitation + alert
def _job(**changes) -> ReinviteJob:
    job = ReinviteJob.queued(
        job_id="5f0c7a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f",
        user_id="264e6d50-eaec-461e-b187-873b1bcf855f",
        reason="Switched laptops",
        requested_by="support.lead@osttra.com (7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93)",
        now=NOW,
        email="AdeleV@adatum.com",
        display_name="Adele Vance",
        client_tenant_id=ADATUM.tenant_id,
        client_name=ADATUM.name,
    )
    return job.model_copy(update=changes)


def test_invitation_body_has_the_documented_reset_shape(graph_fixtures):
    documented = json.loads(
        (graph_fixtures / "invitations.post.resetRedemption.beta.request.json").read_text()
    )
    body = invitation_body(_job(), "https://myapps.microsoft.com")
    assert set(documented) <= set(body)
    assert body["resetRedemption"] is True
    assert body["invitedUser"] == {"id": "264e6d50-eaec-461e-b187-873b1bcf855f"}
    assert body["invitedUserEmailAddress"] == "AdeleV@adatum.com"
    assert body["inviteRedirectUrl"] == "https://myapps.microsoft.com"
    assert body["sendInvitationMessage"] is False
    custom = invitation_body(_job(redirect_url="https://sso.osttra.com"), "https://x.example")
    assert custom["inviteRedirectUrl"] == "https://sso.osttra.com"


def test_result_alerts_say_who_asked_and_what_happened():
    running = _job().advance(JobState.RUNNING, NOW, "attempt 1")
    done = running.advance(JobState.DONE, NOW, "reset")
    alert = reinvite_result_alert(done, NOW)
    assert alert.kind == "reinvite_done" and alert.dedup_key == f"reinvite:{done.job_id}:done"
    assert alert.who == done.requested_by and alert.facts["Reason"] == "Switched laptops"
    assert alert.notify == ()  # no address was recorded for this requester
    told = reinvite_result_alert(done.model_copy(update={"requester_email": "s@osttra.com"}), NOW)
    assert told.notify == ("s@osttra.com",)
    assert alert.client is not None and alert.client.tenant_id == ADATUM.tenant_id

    error = JobError(
        status=403,
        code="Authorization_RequestDenied",
        explanation="The guest holds a directory role.",
        remediation="Reset it in the Entra admin center.",
    )
    failed = running.advance(JobState.FAILED, NOW, "refused", error=error)
    alert = reinvite_result_alert(failed, NOW)
    assert alert.kind == "reinvite_failed" and alert.severity == "medium"
    assert alert.summary == "The guest holds a directory role."
    assert alert.remediation_steps == ("Reset it in the Entra admin center.",)
    assert alert.facts["Graph answer"] == "403 Authorization_RequestDenied"
