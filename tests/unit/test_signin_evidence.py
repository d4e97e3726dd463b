"""Sign-in evidence: counting 500212 / 500213 / 5000211 per home tenant, beside the verdict."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.finding_catalog import FindingCode
from shared.domain.messages import Severity
from shared.domain.policy import parse_default_policy
from shared.domain.posture import Verdict, evaluate_outbound_posture, unknown_posture
from shared.domain.signin_evidence import (
    EvidenceThreshold,
    build_evidence,
    combine,
    count_failures,
    counts_from_summary,
    parse_signin,
    significant_evidence,
)

GRAPH = GRAPH_FIXTURES
VENDOR = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CONTOSO = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"  # tenant from the findTenantInformation example
FABRIKAM = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"
START = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=1)

SIGNIN_EXAMPLE = json.loads((GRAPH / "auditLogs.signIns.list.response.json").read_text())["value"][
    0
]

FAILURE_REASONS = {
    500212: "AADSTS500212: The user is not allowed to access the resource tenant because "
    "of the outbound cross-tenant access policy of the user's home tenant.",
    500213: "AADSTS500213: The resource tenant's cross-tenant access policy does not allow "
    "this user to access this tenant.",
    5000211: "AADSTS5000211: A tenant restrictions policy added to this request by a device "
    "or network administrator does not allow access to this tenant.",
}


def graph_signin(
    code: int,
    home: str,
    minute: int,
    user: str = "26be570a-ae82-4189-b4e2-a37c6808512d",
    resource: str = VENDOR,
) -> dict[str, Any]:
    """Microsoft's documented signIn example, turned into a cross-tenant guest sign-in."""
    record = copy.deepcopy(SIGNIN_EXAMPLE)
    record.update(
        {
            "createdDateTime": (START + timedelta(minutes=minute)).strftime(
                "%Y-%m-%dT%H:%M:%S.%f0Z"
            ),
            "userId": user,
            "homeTenantId": home,
            "resourceTenantId": resource,
            "crossTenantAccessType": "b2bCollaboration",
            "appId": "11112222-aaaa-bbbb-cccc-333344445555",
        }
    )
    record["status"] = {
        "errorCode": code,
        "failureReason": FAILURE_REASONS.get(code),
        "additionalDetails": None,
    }
    return record


def la_row(code: str, home: str, minute: int, user: str) -> dict[str, Any]:
    """A Log Analytics SigninLogs row: PascalCase columns, ResultType a string."""
    return {
        "TimeGenerated": START + timedelta(minutes=minute),
        "HomeTenantId": home,
        "ResourceTenantId": VENDOR,
        "ResultType": code,
        "ResultDescription": FAILURE_REASONS.get(int(code)) if code.isdigit() else None,
        "UserId": user,
        "AppId": "11112222-aaaa-bbbb-cccc-333344445555",
        "CrossTenantAccessType": "b2bCollaboration",
    }


def user(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def test_the_documented_example_itself_is_a_success_and_not_evidence():
    assert parse_signin(SIGNIN_EXAMPLE) is None


def test_parse_both_record_shapes():
    g = parse_signin(graph_signin(500212, CONTOSO.upper(), 5))
    assert g is not None
    assert (g.home_tenant_id, g.resource_tenant_id, g.error_code) == (CONTOSO, VENDOR, 500212)
    assert g.created_at == START + timedelta(minutes=5)
    row = parse_signin(la_row("500213", CONTOSO, 7, user(1)))
    assert row is not None and row.error_code == 500213 and row.user_id == user(1)
    assert parse_signin(la_row("0", CONTOSO, 7, user(1))) is None
    assert parse_signin(la_row("50126", CONTOSO, 7, user(1))) is None


def test_count_per_home_tenant_over_the_window():
    records = (
        [graph_signin(500212, CONTOSO, m, user(m % 4)) for m in range(10)]
        + [graph_signin(500213, CONTOSO, 20, user(9))]
        + [la_row("5000211", FABRIKAM, m, user(50 + m)) for m in range(3)]
        + [graph_signin(0, CONTOSO, 30)]  # success
        + [graph_signin(50126, CONTOSO, 31)]  # wrong password: not a policy failure
        + [graph_signin(500212, CONTOSO, 90)]  # after the window
        + [graph_signin(500212, CONTOSO, -1)]  # before the window
        + [graph_signin(500212, VENDOR, 5)]  # the vendor's own user
        + [graph_signin(500212, CONTOSO, 5, resource=FABRIKAM)]  # sign-in into another tenant
    )
    counts = count_failures(records, window_start=START, window_end=END, vendor_tenant_id=VENDOR)

    assert counts.skipped == 0
    assert set(counts.by_tenant) == {CONTOSO, FABRIKAM}
    contoso = counts.by_tenant[CONTOSO]
    assert contoso.counts == {500212: 10, 500213: 1}
    assert contoso.distinct_users == {500212: 4, 500213: 1}
    assert contoso.first_seen == START
    assert contoso.last_seen == START + timedelta(minutes=20)
    assert counts.by_tenant[FABRIKAM].counts == {5000211: 3}


def test_unreadable_records_are_counted_as_skipped_not_dropped():
    no_home = graph_signin(500212, CONTOSO, 1)
    del no_home["homeTenantId"]
    bad_time = graph_signin(500212, CONTOSO, 1)
    bad_time["createdDateTime"] = "yesterday"
    no_status = {"id": "x", "createdDateTime": START.isoformat()}
    naive = la_row("500212", CONTOSO, 1, user(1))
    naive["TimeGenerated"] = datetime(2026, 11, 20, 8, 1)  # no timezone
    counts = count_failures(
        [no_home, bad_time, no_status, "not a record", naive, graph_signin(500212, CONTOSO, 2)],  # type: ignore[list-item]
        window_start=START,
        window_end=END,
    )
    assert counts.skipped == 5
    assert counts.by_tenant[CONTOSO].counts == {500212: 1}


def test_threshold_turns_counts_into_evidence_with_a_finding_per_code():
    records = (
        [graph_signin(500212, CONTOSO, m, user(m)) for m in range(3)]
        + [graph_signin(500213, CONTOSO, m, user(m)) for m in range(2)]
        + [graph_signin(5000211, CONTOSO, m, user(m)) for m in range(4)]
    )
    counts = count_failures(records, window_start=START, window_end=END, vendor_tenant_id=VENDOR)
    evidence = build_evidence(counts, CONTOSO, EvidenceThreshold(min_failures=3))

    assert evidence.significant == {500212, 5000211}
    assert evidence.suggests_client_drift
    assert [f.code for f in evidence.findings] == [
        FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED,
        FindingCode.SIGNIN_TENANT_RESTRICTIONS_BLOCKED,
    ]
    first = evidence.findings[0]
    assert first.severity is Severity.HIGH
    assert "3 sign-ins by 3 users" in first.message and CONTOSO in first.message
    assert evidence.alert_evidence() == {"AADSTS500212": 3, "AADSTS500213": 2, "AADSTS5000211": 4}
    assert evidence.to_dict()["significant"] == ["AADSTS500212", "AADSTS5000211"]


def test_distinct_user_threshold_ignores_one_user_retrying():
    records = [graph_signin(500212, CONTOSO, m, user(1)) for m in range(20)]
    counts = count_failures(records, window_start=START, window_end=END)
    evidence = build_evidence(
        counts, CONTOSO, EvidenceThreshold(min_failures=3, min_distinct_users=2)
    )
    assert evidence.significant == frozenset()
    assert evidence.counts[500212] == 20


def test_no_failures_is_empty_evidence():
    counts = count_failures([], window_start=START, window_end=END)
    evidence = build_evidence(counts, CONTOSO)
    assert evidence.significant == frozenset() and evidence.findings == ()
    assert evidence.alert_evidence() == {}
    assert significant_evidence(counts) == {}


def test_aggregates_from_a_kql_summary_are_accepted():
    summary = {
        CONTOSO.upper(): {"500212": 12, "50126": 4},
        FABRIKAM: {500213: 1},
        "garbage": {"500212": 9},
    }
    counts = counts_from_summary(summary, window_start=START, window_end=END)
    assert set(counts.by_tenant) == {CONTOSO, FABRIKAM}
    assert counts.by_tenant[CONTOSO].counts == {500212: 12}
    found = significant_evidence(counts)
    assert set(found) == {CONTOSO}
    # without per-user detail only the count is judged
    assert "12 sign-ins from tenant" in found[CONTOSO].findings[0].message


def test_combine_with_unknown_posture_makes_suspected_drift_without_changing_the_verdict():
    records = [graph_signin(500212, CONTOSO, m, user(m)) for m in range(5)]
    evidence = build_evidence(count_failures(records, window_start=START, window_end=END), CONTOSO)
    unknown = unknown_posture("CLIENT_CONSENT_MISSING", "403 from Graph")

    combined = combine(unknown, evidence)

    assert combined.verdict is Verdict.UNKNOWN
    assert combined.reason_code is FindingCode.CLIENT_CONSENT_MISSING
    assert combined.evidence is evidence
    assert [f.code for f in combined.findings] == [
        FindingCode.CLIENT_CONSENT_MISSING,
        FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED,
        FindingCode.CLIENT_SUSPECTED_DRIFT,
    ]
    body = combined.to_dict()
    assert body["evidence"]["counts"] == {"AADSTS500212": 5}


@pytest.mark.parametrize(
    ("verdict_default", "note"), [(None, "contradicts"), ("blocked", "consistent")]
)
def test_combine_never_overrides_a_policy_verdict(verdict_default, note):
    default_json = json.loads(
        (GRAPH / "policies.crossTenantAccessPolicy.default.get.response.json").read_text()
    )
    if verdict_default == "blocked":
        default_json["b2bCollaborationOutbound"]["usersAndGroups"]["accessType"] = "blocked"
        default_json["b2bCollaborationOutbound"]["applications"]["accessType"] = "blocked"
    result = evaluate_outbound_posture(parse_default_policy(default_json), None, VENDOR, ())
    records = [graph_signin(500212, CONTOSO, m, user(m)) for m in range(4)]
    evidence = build_evidence(count_failures(records, window_start=START, window_end=END), CONTOSO)

    combined = combine(result, evidence)

    assert combined.verdict is result.verdict
    assert FindingCode.CLIENT_SUSPECTED_DRIFT not in combined.codes
    assert FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED in combined.codes
    assert note in combined.explanation[-1]
    assert combine(result, None) is result
