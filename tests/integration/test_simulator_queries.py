"""The Graph simulator's query languages and scenarios, without a server.

The OData ``$filter`` parser and the KQL subset decide what the simulated Graph and Log
Analytics return; a parser that silently widened a query would hide injection bugs in the
product, so refusals are tested as carefully as matches.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sim.kql import KqlError, compile_query
from sim.loganalytics import AUDIT_COLUMNS, SIGNIN_COLUMNS, parse_timespan
from sim.odata import FilterError, compile_filter, parse_datetime
from sim.scenarios import (
    VENDOR_TENANT_ID,
    generated_client,
    generated_scenario,
    load_scenario,
)
from sim.state import SimState, encode_setting_value

pytestmark = pytest.mark.integration

GUEST = {
    "id": "39807bd1-3dde-48f3-8165-81ddd4e46de0",
    "displayName": "Adele Vance",
    "mail": "AdeleV@adatum.com",
    "userPrincipalName": "AdeleV_adatum.com#EXT#@contoso.com",
    "userType": "Guest",
    "externalUserState": "PendingAcceptance",
    "accountEnabled": True,
}
MEMBER = {
    "id": "6ea91a8d-e32e-41a1-b7bd-d2d185eed0e0",
    "displayName": "Conf Room Adams",
    "mail": "Adams@contoso.com",
    "userPrincipalName": "Adams@contoso.com",
    "userType": "Member",
    "externalUserState": None,
    "accountEnabled": True,
}
SIGN_IN = {
    "id": "66ea54eb-6301-4ee5-be62-ff5a759b0100",
    "createdDateTime": "2020-03-13T19:15:41.6195833Z",
    "status": {"errorCode": 500212, "failureReason": "NotAllowedByOutboundPolicyTenant"},
    "homeTenantId": "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80",
}
USERS = [GUEST, MEMBER]


def matching(filter_text: str, items: list[dict]) -> list[str]:
    predicate = compile_filter(filter_text)
    return [item["id"] for item in items if predicate(item)]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("userType eq 'Guest'", [GUEST["id"]]),
        ("userType ne 'Guest'", [MEMBER["id"]]),
        ("mail eq 'adelev@ADATUM.com'", [GUEST["id"]]),  # directory strings: case-insensitive
        ("startswith(mail,'adele')", [GUEST["id"]]),
        ("startsWith(mail, 'Adele')", [GUEST["id"]]),  # Graph accepts either casing
        ("endswith(userPrincipalName,'#EXT#@contoso.com')", [GUEST["id"]]),
        ("contains(displayName,'room')", [MEMBER["id"]]),
        (f"id in ('{MEMBER['id']}', 'nobody')", [MEMBER["id"]]),
        (f"id eq {GUEST['id']}", [GUEST["id"]]),  # bare GUID literal
        ("externalUserState eq null", [MEMBER["id"]]),
        ("externalUserState ne null", [GUEST["id"]]),
        ("accountEnabled eq true and not (userType eq 'Member')", [GUEST["id"]]),
        (
            "(userType eq 'Member' or externalUserState eq 'PendingAcceptance')"
            " and accountEnabled eq true",
            [GUEST["id"], MEMBER["id"]],
        ),
        ("mail eq 'O''Brien@contoso.com'", []),
    ],
)
def test_filter_matches_like_graph(filter_text, expected):
    assert matching(filter_text, USERS) == expected


def test_filter_doubled_quote_is_part_of_the_literal():
    person = {**MEMBER, "id": "x", "mail": "O'Brien@contoso.com"}
    assert matching("mail eq 'O''Brien@contoso.com'", [person]) == ["x"]


def test_filter_nested_paths_numbers_and_datetimes():
    assert matching("status/errorCode eq 500212", [SIGN_IN]) == [SIGN_IN["id"]]
    assert matching("status/errorCode in (500212, 500213)", [SIGN_IN]) == [SIGN_IN["id"]]
    assert matching(
        "createdDateTime ge 2020-03-13T00:00:00Z and createdDateTime lt 2020-03-14T00:00:00Z",
        [SIGN_IN],
    ) == [SIGN_IN["id"]]
    assert matching("createdDateTime gt 2020-03-13T19:15:41.62Z", [SIGN_IN]) == []
    # Graph writes 7 fractional digits; they must parse.
    assert parse_datetime("2018-01-09T21:20:02.7215374Z") == datetime(
        2018, 1, 9, 21, 20, 2, 721537, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "bad_filter",
    [
        # The classic injection: x' or '1' eq '1 concatenated into mail eq '...'.
        "mail eq 'x' or '1' eq '1'",
        "mail eq 'x",  # unterminated literal
        "mail eq",
        "mail equals 'x'",
        "'x' eq mail",
        "mail eq 'x' or",
        "(mail eq 'x'",
        "mail eq 'x')",
        "identities/any(c:c/issuer eq 'contoso.com')",
        "unknownFunction(mail,'x')",
        "startswith(mail, 3)",
        "mail eq 'x'; drop",
        "",
    ],
)
def test_malformed_or_injected_filters_are_errors(bad_filter):
    with pytest.raises(FilterError):
        compile_filter(bad_filter)


def test_quoted_injection_is_a_literal_match_not_a_widened_query():
    hostile = "x' or '1' eq '1"
    escaped = "'" + hostile.replace("'", "''") + "'"
    assert matching(f"mail eq {escaped}", USERS) == []


def test_type_mismatch_is_an_error_like_graph():
    with pytest.raises(FilterError, match="incompatible types"):
        compile_filter("status/errorCode eq '500212'")(SIGN_IN)


def test_filter_refuses_properties_outside_the_collection_allowlist():
    with pytest.raises(FilterError, match="not supported"):
        compile_filter("passwordProfile/password eq 'x'", ["mail", "userType"])


# ---------------------------------------------------------------------------------------
# KQL
# ---------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SCHEMAS = {"SigninLogs": SIGNIN_COLUMNS, "AuditLogs": AUDIT_COLUMNS}
ROWS = [
    {
        "TimeGenerated": NOW - timedelta(hours=1),
        "HomeTenantId": "t1",
        "ResultType": "500212",
        "UserPrincipalName": "a@t1.com",
    },
    {
        "TimeGenerated": NOW - timedelta(hours=2),
        "HomeTenantId": "t1",
        "ResultType": "500212",
        "UserPrincipalName": "b@t1.com",
    },
    {
        "TimeGenerated": NOW - timedelta(hours=3),
        "HomeTenantId": "t2",
        "ResultType": "500213",
        "UserPrincipalName": "c@t2.com",
    },
    {
        "TimeGenerated": NOW - timedelta(days=3),
        "HomeTenantId": "t3",
        "ResultType": "500212",
        "UserPrincipalName": "d@t3.com",
    },
    {
        "TimeGenerated": NOW - timedelta(minutes=5),
        "HomeTenantId": "t4",
        "ResultType": "0",
        "UserPrincipalName": "e@t4.com",
    },
]


def run_kql(text: str) -> tuple[list[dict], list[tuple[str, str]]]:
    return compile_query(text, SCHEMAS, NOW).run(list(ROWS), list(SIGNIN_COLUMNS))


def test_kql_where_summarize_order():
    rows, columns = run_kql(
        "SigninLogs | where TimeGenerated > ago(24h)"
        ' | where ResultType in ("500212", "500213", "5000211")'
        " | summarize Failures=count() by HomeTenantId, ResultType | order by Failures desc"
    )
    assert columns == [("HomeTenantId", "string"), ("ResultType", "string"), ("Failures", "long")]
    assert rows == [
        {"HomeTenantId": "t1", "ResultType": "500212", "Failures": 2},
        {"HomeTenantId": "t2", "ResultType": "500213", "Failures": 1},
    ]


def test_kql_operators():
    def upns(text: str) -> list[str]:
        return [r["UserPrincipalName"] for r in run_kql(text)[0]]

    assert upns('SigninLogs | where ResultType != "0" and HomeTenantId =~ "T1"') == [
        "a@t1.com",
        "b@t1.com",
    ]
    assert upns(
        'SigninLogs | where UserPrincipalName startswith "C@" or UserPrincipalName contains "T4"'
    ) == ["c@t2.com", "e@t4.com"]
    assert upns('SigninLogs | where HomeTenantId !in ("t1", "t2")') == ["d@t3.com", "e@t4.com"]
    assert upns(
        "SigninLogs | where TimeGenerated >= datetime(2026-11-23T09:30:00Z)"
        " | order by TimeGenerated asc"
    ) == [
        "b@t1.com",
        "a@t1.com",
        "e@t4.com",
    ]
    assert upns("SigninLogs | order by TimeGenerated desc | take 2") == ["e@t4.com", "a@t1.com"]
    assert run_kql("SigninLogs | where ResultType == '500212' | count")[0] == [{"Count": 3}]
    assert run_kql("SigninLogs | project Who=UserPrincipalName | take 1")[0] == [
        {"Who": "a@t1.com"}
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SigninLogs | extend X = 1", "Unsupported KQL operator 'extend'"),
        (
            "SigninLogs | where ResultType == 500212",
            "Cannot compare values of types string and long",
        ),
        (
            "SigninLogs | where NoSuchColumn == 'x'",
            "Failed to resolve scalar expression named 'NoSuchColumn'",
        ),
        ("NoSuchTable | take 1", "Failed to resolve table or column expression"),
        ("SigninLogs | summarize count() by bin(TimeGenerated, 1h)", "not supported"),
        ("SigninLogs | where ResultType matches regex '5.*'", "Unsupported operator"),
        ("let x = 1; SigninLogs", "not supported"),
        ("SigninLogs | take", "Expected a row count"),
        ("SigninLogs | where TimeGenerated > ago(1w)", "Unsupported or invalid syntax"),
    ],
)
def test_kql_outside_the_subset_is_refused_with_a_clear_message(query, message):
    with pytest.raises(KqlError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_kql(query)


def test_timespans_as_azure_monitor_query_sends_them():
    assert parse_timespan("PT86400.0S", NOW) == (NOW - timedelta(days=1), NOW)
    assert parse_timespan("P1DT12H", NOW) == (NOW - timedelta(days=1, hours=12), NOW)
    start = "2026-11-20T00:00:00.000Z"
    assert parse_timespan(f"{start}/PT3600.0S", NOW) == (
        parse_datetime(start),
        parse_datetime(start) + timedelta(hours=1),
    )
    assert parse_timespan(None, NOW) is None
    with pytest.raises(KqlError):
        parse_timespan("yesterday", NOW)


# ---------------------------------------------------------------------------------------
# Scenarios and audit value encoding
# ---------------------------------------------------------------------------------------


def test_audit_values_use_numeric_access_types_in_both_key_styles():
    setting = {
        "usersAndGroups": {
            "accessType": "blocked",
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }
    assert encode_setting_value(setting, "camel") == (
        '{"usersAndGroups":{"accessType":2,"targets":[{"target":"AllUsers","targetType":"user"}]},'
        '"applications":{"accessType":1,"targets":[{"target":"AllApplications","targetType":"application"}]}}'
    )
    assert encode_setting_value(setting, "pascal").startswith(
        '{"UsersAndGroups":{"AccessType":2,"Targets":[{"Target":"AllUsers"'
    )
    assert encode_setting_value(None, "camel") is None


def test_demo_scenario_has_the_cases_the_product_needs():
    state = SimState.from_scenario(load_scenario("demo"))
    vendor = state.tenants[VENDOR_TENANT_ID]
    assert {"osttra.com", "sso.osttra.com"} <= set(vendor.domains)
    clients = [t for t in state.tenants.values() if t.id != VENDOR_TENANT_ID]
    assert len(clients) >= 4
    reader = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"
    assert {state.consent(c.id, reader).state for c in clients} == {"granted", "none", "revoked"}
    guests = [u for u in vendor.users.values() if u["userType"] == "Guest"]
    assert {u["externalUserState"] for u in guests} == {"PendingAcceptance", "Accepted"}
    assert any(vendor.directory_roles.get(u["id"]) for u in guests)
    assert any(s["status"]["errorCode"] == 500212 for s in vendor.sign_ins)
    assert vendor.access_reviews and vendor.audits


def test_generated_scenario_is_deterministic_and_mixed():
    first = generated_scenario(200)
    second = generated_scenario(200)
    assert first == second
    kinds = {generated_client(i).kind for i in range(200)}
    assert kinds == {"allowed", "limited", "blocked", "unconsented"}
    state = SimState.from_scenario(first)
    assert len(state.tenants) == 201
    assert generated_client(7).tenant_id in state.tenants
