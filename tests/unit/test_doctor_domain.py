"""The doctor's verdicts and its table (shared/domain/doctor.py), without I/O."""

from __future__ import annotations

import base64
import json

import pytest

from shared.domain.doctor import (
    CheckLine,
    DoctorReport,
    Features,
    Status,
    easy_auth_environment_line,
    easy_auth_line,
    explain_token_error,
    fail,
    graph_roles_line,
    key_vault_line,
    ok,
    optional_graph_roles,
    render_table,
    required_graph_roles,
    skip,
    teams_line,
    token_claims,
    warn,
)

ALL_ROLES = [
    "Policy.Read.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
    "User.Invite.All",
    "User.ReadWrite.All",
    "AccessReview.ReadWrite.All",
    "Group.Create",
    "GroupMember.ReadWrite.All",
    "CrossTenantInformation.ReadBasic.All",
]
OPTIONAL_ROLES = ["Policy.Read.B2BManagementPolicy"]


def jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.x"


def test_table_shows_every_line_and_the_fix_under_each_failure():
    report = DoctorReport(
        (
            ok("settings", "valid"),
            fail("storage-queues", "queue xtap-alerts does not exist", "azd provision"),
            warn("teams", "accepted (202)", "build the confirming flow"),
            skip("mail", "alert mail is off"),
        )
    )
    table = render_table(report).splitlines()
    assert table[0].split() == ["check", "status", "detail"]
    row = next(i for i, line in enumerate(table) if line.startswith("storage-queues"))
    assert "fail" in table[row] and "fix: azd provision" in table[row + 1]
    assert any("fix: build the confirming flow" in line for line in table)
    assert not any("fix:" in line and "mail" in line for line in table)
    assert table[-1] == "1 check(s) failed."
    assert not report.healthy and [line.name for line in report.failed] == ["storage-queues"]


def test_report_round_trips_through_json():
    report = DoctorReport((ok("a", "fine"), fail("b", "broken", "mend it")))
    again = DoctorReport.from_dict(json.loads(json.dumps(report.as_dict())))
    assert again == report
    assert report.as_dict()["status"] == "fail"
    assert DoctorReport((ok("a", "fine"), warn("b", "hm"))).as_dict()["status"] == "ok"


def test_required_roles_follow_the_enabled_features():
    everything = required_graph_roles(
        Features(audit_source="graph", signin_source="graph", access_reviews=True)
    )
    assert set(everything) == set(ALL_ROLES)
    assert everything["AuditLog.Read.All"] == (
        "audit log watcher (Graph)",
        "sign-in evidence (Graph)",
    )
    from_logs = required_graph_roles(
        Features(audit_source="log_analytics", signin_source="none", reinvites=False)
    )
    assert "AuditLog.Read.All" not in from_logs
    assert "User.ReadWrite.All" not in from_logs and "AccessReview.ReadWrite.All" not in from_logs
    # The guests group each access review scopes: created and kept only with reviews on.
    assert "Group.Create" not in from_logs and "GroupMember.ReadWrite.All" not in from_logs
    assert "guests group" in everything["Group.Create"][0]
    # Mail.Send never belongs in the token: Exchange RBAC for Applications authorises it.
    assert "Mail.Send" not in everything


def test_missing_role_fails_naming_the_feature_and_the_grant_script():
    required = required_graph_roles(Features(audit_source="graph", signin_source="graph"))
    claims = token_claims(jwt({"roles": ["Policy.Read.All", "Directory.Read.All"]}))
    line = graph_roles_line(claims, required)
    assert line.status is Status.FAIL
    assert "AuditLog.Read.All (audit log watcher (Graph), sign-in evidence (Graph))" in line.detail
    assert "--grant-missing" in line.fix


def test_tenant_wide_mail_send_is_a_warning():
    required = required_graph_roles(Features(audit_source="graph", signin_source="graph"))
    line = graph_roles_line({"roles": [*ALL_ROLES, "Mail.Send"]}, required)
    assert line.status is Status.WARN and "--exchange-mail-send" in line.fix
    assert graph_roles_line({"roles": ALL_ROLES}, required).status is Status.OK


FEATURES_ON = Features(audit_source="graph", signin_source="graph", access_reviews=True)


def test_missing_access_review_group_roles_fail_naming_the_feature():
    roles = [r for r in ALL_ROLES if r != "GroupMember.ReadWrite.All"] + OPTIONAL_ROLES
    line = graph_roles_line(
        {"roles": roles}, required_graph_roles(FEATURES_ON), optional_graph_roles(FEATURES_ON)
    )
    assert line.status is Status.FAIL
    assert line.detail == (
        "the token's roles lack GroupMember.ReadWrite.All"
        " (guest access reviews (keeping the guests groups' members))"
    )


def test_a_missing_optional_role_warns_naming_the_check_it_skips():
    line = graph_roles_line(
        {"roles": ALL_ROLES}, required_graph_roles(FEATURES_ON), optional_graph_roles(FEATURES_ON)
    )
    assert line.status is Status.WARN
    assert "without Policy.Read.B2BManagementPolicy (vendor-side check" in line.detail
    assert "allow/deny list" in line.detail and "--grant-missing" in line.fix
    full = graph_roles_line(
        {"roles": ALL_ROLES + OPTIONAL_ROLES},
        required_graph_roles(FEATURES_ON),
        optional_graph_roles(FEATURES_ON),
    )
    assert full.status is Status.OK
    # A required role missing as well: one failing line naming both.
    lacking = [r for r in ALL_ROLES if r != "AccessReview.ReadWrite.All"]
    line = graph_roles_line(
        {"roles": lacking}, required_graph_roles(FEATURES_ON), optional_graph_roles(FEATURES_ON)
    )
    assert line.status is Status.FAIL
    assert "AccessReview.ReadWrite.All (guest access reviews); also Policy.Read.B2BM" in line.detail


def test_documented_higher_privileged_roles_satisfy_the_feature():
    broader = [r for r in ALL_ROLES if r not in ("Group.Create", "GroupMember.ReadWrite.All")]
    roles = [*broader, "Group.ReadWrite.All", "Policy.ReadWrite.B2BManagementPolicy"]
    line = graph_roles_line(
        {"roles": roles}, required_graph_roles(FEATURES_ON), optional_graph_roles(FEATURES_ON)
    )
    assert line.status is Status.OK, line.detail
    # A broader role of another feature does not count.
    line = graph_roles_line(
        {"roles": [*broader, "Policy.ReadWrite.All"]},
        required_graph_roles(FEATURES_ON),
        optional_graph_roles(FEATURES_ON),
    )
    assert line.status is Status.FAIL and "Group.Create" in line.detail


@pytest.mark.parametrize("token", ["abc", "a.b.c", "a." + base64.b64encode(b"[1]").decode() + ".c"])
def test_a_malformed_token_is_a_clear_error(token):
    with pytest.raises(ValueError):
        token_claims(token)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Status.OK),
        (202, Status.WARN),
        (429, Status.WARN),
        (502, Status.FAIL),
        (404, Status.FAIL),
        (None, Status.FAIL),
    ],
)
def test_teams_answers(status, expected):
    line = teams_line(status, "boom" if status is None else None)
    assert line.status is expected
    if status == 202:
        assert "cannot confirm" in line.detail
    if expected is Status.FAIL and status != 502:
        assert "docs/deploy.md step 4" in line.fix


def test_easy_auth_platform_401_is_ok_but_the_functions_own_answer_is_not():
    url = "https://func.example/api/v1/reinvites/0"
    platform = easy_auth_line(
        401, {"WWW-Authenticate": 'Bearer realm="func.example"'}, b"You do not have permission", url
    )
    assert platform.status is Status.OK
    function_401 = easy_auth_line(
        401,
        {"WWW-Authenticate": 'Bearer realm="xtap-watch"'},
        b'{"error":{"code":"unauthenticated"}}',
        url,
    )
    assert function_401.status is Status.FAIL and "reached the function" in function_401.detail
    open_door = easy_auth_line(404, {}, b'{"error":{"code":"not_found"}}', url)
    assert open_door.status is Status.FAIL
    assert easy_auth_line(200, {}, b"<html>", url).status is Status.FAIL


def test_easy_auth_setting_only_matters_in_azure():
    assert easy_auth_environment_line({}) is None
    assert (
        easy_auth_environment_line({"WEBSITE_SITE_NAME": "f", "WEBSITE_AUTH_ENABLED": "True"})
        is None
    )
    line = easy_auth_environment_line({"WEBSITE_SITE_NAME": "f"})
    assert isinstance(line, CheckLine) and line.status is Status.FAIL


def test_key_vault_line():
    reference = "@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/x)"
    unresolved = key_vault_line({"XTAP_TEAMS_WEBHOOK_URL": reference}, ["XTAP_TEAMS_WEBHOOK_URL"])
    assert unresolved.status is Status.FAIL and "XTAP_TEAMS_WEBHOOK_URL" in unresolved.detail
    resolved = key_vault_line({"XTAP_TEAMS_WEBHOOK_URL": "https://x"}, ["XTAP_TEAMS_WEBHOOK_URL"])
    assert resolved.status is Status.OK
    assert key_vault_line({}, ["XTAP_TEAMS_WEBHOOK_URL"]).status is Status.SKIP


def test_token_errors_are_explained_by_their_aadsts_code():
    assert "subject" in explain_token_error("AADSTS700213: No matching federated identity record")
    assert "consent" in explain_token_error("ClientAuthenticationError: AADSTS700016: not found")
    assert explain_token_error("AADSTS999999: new") == "AADSTS999999"
    assert explain_token_error("connection refused\nmore") == "connection refused"
