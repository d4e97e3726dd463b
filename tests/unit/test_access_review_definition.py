"""The guest access review definition and its failures (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from shared.domain.access_reviews import (
    build_review_definition,
    explain_review_error,
    guest_scope_query,
    guests_group_body,
    guests_group_nickname,
    is_licence_error,
    plan_membership,
    review_display_name,
    review_failed_alert,
    scope_group_id,
)
from shared.domain.clients import ClientRecord

CLIENT = ClientRecord(
    tenant_id="2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    name="Fabrikam Clearing",
    domains=("fabrikam-clearing.com", "fabrikamclearing.onmicrosoft.com"),
)
REVIEWER = "6f2a9c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b"
GROUP = "119cc181-22f0-4e18-8537-264e7524ee0b"


def test_definition_follows_the_documented_request(graph_fixtures):
    documented = json.loads(
        (
            graph_fixtures
            / "identityGovernance.accessReviews.definitions.post.inactiveGuests-teams.request.json"
        ).read_text()
    )
    body = build_review_definition(
        CLIENT, [REVIEWER], vendor_name="OSTTRA", start=date(2026, 11, 30), group_id=GROUP
    )
    assert set(body) <= set(documented)
    assert set(body["settings"]) <= set(documented["settings"]) | {"applyActions"}
    assert set(body["settings"]["recurrence"]) == set(documented["settings"]["recurrence"])
    assert body["displayName"] == "xtap-watch guest review: Fabrikam Clearing"
    assert body["scope"]["@odata.type"] == "#microsoft.graph.accessReviewQueryScope"
    assert body["scope"]["queryType"] == "MicrosoftGraph"
    assert body["reviewers"] == [{"query": f"/users/{REVIEWER}", "queryType": "MicrosoftGraph"}]
    settings = body["settings"]
    # Denied guests are blocked and removed (removal from the group alone grants nothing
    # and would be undone by the next sync); unanswered guests keep their access.
    assert settings["autoApplyDecisionsEnabled"] and not settings["defaultDecisionEnabled"]
    assert settings["applyActions"] == [
        {"@odata.type": "#microsoft.graph.disableAndDeleteUserApplyAction"}
    ]
    assert settings["recurrence"]["pattern"] == {
        "type": "absoluteMonthly",
        "interval": 3,
        "dayOfMonth": 28,  # the 30th does not exist every month
    }
    assert settings["recurrence"]["range"] == {"type": "noEnd", "startDate": "2026-11-30"}


def test_scope_is_microsofts_documented_guests_of_a_group_example(graph_fixtures):
    """Issue 11.3: a review reviews access to a resource; Example 2 of "Configure the scope
    of your access review" is "all guest users assigned to a group"."""
    assert guest_scope_query(GROUP) == (
        f"/groups/{GROUP}/transitiveMembers/microsoft.graph.user/?$filter=(userType eq 'Guest')"
    )
    documented = json.loads(
        (
            graph_fixtures / "identityGovernance.accessReviews.definitions.post.group.request.json"
        ).read_text()
    )
    assert guest_scope_query(GROUP).startswith(
        documented["scope"]["query"].replace("02f3bafb-448c-487c-88c2-5fd65ce49a41", GROUP)
    )
    for bad in ("", "x/../users", "x?$filter=1"):
        with pytest.raises(ValueError):
            guest_scope_query(bad)
    assert scope_group_id({"scope": {"query": guest_scope_query(GROUP)}}) == GROUP
    assert scope_group_id({"scope": {"query": "/users?$filter=(userType eq 'Guest')"}}) is None


def test_guests_group_is_an_assigned_security_group_found_by_a_stable_nickname():
    body = guests_group_body(CLIENT, "OSTTRA")
    assert (
        body["mailNickname"]
        == guests_group_nickname(CLIENT)
        == ("xtap-guests-2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e")
    )
    assert len(body["mailNickname"]) <= 64
    assert body["securityEnabled"] is True and body["mailEnabled"] is False
    assert body["groupTypes"] == []  # assigned: no DynamicMembership, no membershipRule
    assert "membershipRule" not in body


def _guest(n: int, mail: str, **extra) -> dict:
    return {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "userType": "Guest",
        "mail": mail,
        "userPrincipalName": mail.replace("@", "_") + "#EXT#@osttra.com",
        "accountEnabled": True,
    } | extra


def test_membership_holds_exactly_the_clients_enabled_external_guests():
    carol = _guest(1, "carol@fabrikam-clearing.com")
    erin = _guest(2, "erin@fabrikam-clearing.com")
    denied = _guest(3, "dan@fabrikam-clearing.com", accountEnabled=False)  # review said no
    internal = {  # internal account typed Guest: never a member
        "id": "00000000-0000-4000-8000-000000000004",
        "userType": "Guest",
        "mail": "old@fabrikam-clearing.com",
        "userPrincipalName": "old@osttra.com",
    }
    stranger = _guest(5, "eve@litware.example")
    plan = plan_membership(
        CLIENT,
        [carol, erin, denied, internal, stranger],
        [erin["id"], denied["id"], stranger["id"], "00000000-0000-4000-8000-000000000099"],
    )
    assert plan.add == (carol["id"],)
    assert set(plan.remove) == {
        denied["id"],
        stranger["id"],
        "00000000-0000-4000-8000-000000000099",
    }
    assert plan.members == 2


def test_no_reviewer_is_an_error():
    with pytest.raises(ValueError, match="XTAP_ACCESS_REVIEW_REVIEWERS"):
        build_review_definition(
            CLIENT, [], vendor_name="OSTTRA", start=date(2026, 11, 3), group_id=GROUP
        )


def test_licence_errors_are_permanent_with_a_clear_fix():
    message = (
        "The tenant does not have a valid license for this feature: access reviews require"
        " Microsoft Entra ID P2 or Microsoft Entra ID Governance."
    )
    assert is_licence_error(403, "Forbidden", message)
    failure = explain_review_error(403, "Forbidden", message)
    assert failure.permanent and "licence" in failure.summary and "P2" in failure.remediation
    assert not is_licence_error(403, "Authorization_RequestDenied", "Insufficient privileges")
    assert (
        "AccessReview.ReadWrite.All"
        in explain_review_error(
            403, "Authorization_RequestDenied", "Insufficient privileges"
        ).remediation
    )
    assert not explain_review_error(503, "ServiceUnavailable", "try later").permanent


def test_failures_of_one_cause_collapse_into_one_alert_a_day():
    """Issue 14.2: one missing licence or permission → one card, not one per client."""
    day = datetime(2026, 11, 3, tzinfo=UTC)
    licence = explain_review_error(403, "Forbidden", "no valid license")
    alerts = {
        review_failed_alert(name, tid, licence, day, f"job-{n}").dedup_key
        for n, (name, tid) in enumerate(
            [
                (CLIENT.name, CLIENT.tenant_id),
                ("Contoso Markets", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
                ("Northwind", "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"),
            ]
        )
    }
    assert len(alerts) == 1
    alert = review_failed_alert(CLIENT.name, CLIENT.tenant_id, licence, day, "job-1")
    assert alert.client is None and alert.facts["First client affected"] == CLIENT.name
    assert "every client" in alert.summary
    # A missing permission at one step is one cause too, and another cause another card.
    group_denied = explain_review_error(
        403, "Authorization_RequestDenied", "Insufficient privileges", step="group"
    )
    assert "Group.Create" in group_denied.remediation
    assert (
        review_failed_alert("A", CLIENT.tenant_id, group_denied, day, "j").dedup_key
        == review_failed_alert(
            "B", "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f", group_denied, day, "k"
        ).dedup_key
        != alert.dedup_key
    )


def test_a_client_specific_failure_stays_keyed_per_client_per_day():
    from shared.domain.access_reviews import ReviewFailure

    failure = ReviewFailure(True, "Cannot build the review for X: bad domain", "Fix it.")
    alert = review_failed_alert(
        CLIENT.name, CLIENT.tenant_id, failure, datetime(2026, 11, 3, tzinfo=UTC), "job-1"
    )
    assert alert.dedup_key == f"access-review-failed:{CLIENT.tenant_id}:20261103"
    assert alert.kind == "access_review_failed" and alert.remediation_steps
    assert review_display_name(CLIENT) == alert.title.replace(
        "Guest access review for Fabrikam Clearing could not be created",
        "xtap-watch guest review: Fabrikam Clearing",
    )
