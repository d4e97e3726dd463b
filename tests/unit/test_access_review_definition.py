"""The guest access review definition and its failures (pure)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from shared.domain.access_reviews import (
    build_review_definition,
    explain_review_error,
    guest_scope_query,
    is_licence_error,
    review_display_name,
    review_failed_alert,
)
from shared.domain.clients import ClientRecord

CLIENT = ClientRecord(
    tenant_id="2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    name="Fabrikam Clearing",
    domains=("fabrikam-clearing.com", "fabrikamclearing.onmicrosoft.com"),
)
REVIEWER = "6f2a9c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b"


def test_definition_follows_the_documented_request(graph_fixtures):
    documented = json.loads(
        (
            graph_fixtures
            / "identityGovernance.accessReviews.definitions.post.inactiveGuests-teams.request.json"
        ).read_text()
    )
    body = build_review_definition(
        CLIENT, [REVIEWER], vendor_name="OSTTRA", start=date(2026, 11, 30)
    )
    assert set(body) <= set(documented)
    assert set(body["settings"]) <= set(documented["settings"])
    assert set(body["settings"]["recurrence"]) == set(documented["settings"]["recurrence"])
    assert body["displayName"] == "xtap-watch guest review: Fabrikam Clearing"
    assert body["scope"]["@odata.type"] == "#microsoft.graph.accessReviewQueryScope"
    assert body["scope"]["queryType"] == "MicrosoftGraph"
    assert body["reviewers"] == [{"query": f"/users/{REVIEWER}", "queryType": "MicrosoftGraph"}]
    settings = body["settings"]
    assert settings["autoApplyDecisionsEnabled"] and settings["defaultDecisionEnabled"]
    assert settings["defaultDecision"] == "Recommendation"
    assert settings["recurrence"]["pattern"] == {
        "type": "absoluteMonthly",
        "interval": 3,
        "dayOfMonth": 28,  # the 30th does not exist every month
    }
    assert settings["recurrence"]["range"] == {"type": "noEnd", "startDate": "2026-11-30"}


def test_scope_covers_each_client_domain_with_quoted_literals():
    assert guest_scope_query(["contoso-markets.com"]) == (
        "/users?$filter=(userType eq 'Guest') and endswith(mail,'@contoso-markets.com')"
    )
    assert guest_scope_query(CLIENT.domains).endswith(
        "(endswith(mail,'@fabrikam-clearing.com') or "
        "endswith(mail,'@fabrikamclearing.onmicrosoft.com'))"
    )
    assert "''" in guest_scope_query(["o'hare.example"])  # a quote can never close the literal
    assert guest_scope_query([], group_id="119cc181-22f0-4e18-8537-264e7524ee0b").startswith(
        "/groups/119cc181-22f0-4e18-8537-264e7524ee0b/transitiveMembers"
    )
    with pytest.raises(ValueError):
        guest_scope_query([])


def test_no_reviewer_is_an_error():
    with pytest.raises(ValueError, match="XTAP_ACCESS_REVIEW_REVIEWERS"):
        build_review_definition(CLIENT, [], vendor_name="OSTTRA", start=date(2026, 11, 3))


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


def test_failure_alert_is_keyed_per_client_per_day():
    failure = explain_review_error(403, "Forbidden", "no valid license")
    alert = review_failed_alert(
        CLIENT.name, CLIENT.tenant_id, failure, datetime(2026, 11, 3, tzinfo=UTC), "job-1"
    )
    assert alert.dedup_key == f"access-review-failed:{CLIENT.tenant_id}:20261103"
    assert alert.kind == "access_review_failed" and alert.remediation_steps
    assert review_display_name(CLIENT) == alert.title.replace(
        "Guest access review for Fabrikam Clearing could not be created",
        "xtap-watch guest review: Fabrikam Clearing",
    )
