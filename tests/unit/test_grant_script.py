"""infra/scripts/grant_graph_permissions.py, driven through a fake ``az`` that records calls.

The fake Azure CLI is a small Python program put first on PATH: it answers the ``az rest``
reads the script makes from a JSON state file and appends every call to a log, so each test
sees exactly which Graph and ARM writes the script would make. It is the script's only
dependency, which is what lets the same code run as azd's post-provision hook on Linux,
macOS and Windows.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "scripts" / "grant_graph_permissions.py"
SHIM = ROOT / "infra" / "scripts" / "grant-graph-permissions.sh"

FAKE_AZ = r'''#!{python}
"""Stands in for the Azure CLI: logs each call, answers from (and updates) a state file."""
import json, os, sys
args = sys.argv[1:]
state_path = os.environ["FAKE_AZ_STATE"]
state = json.load(open(state_path))
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")

def answer(body=None, code=0, error=""):
    json.dump(state, open(state_path, "w"))
    if body is not None:
        print(json.dumps(body))
    if error:
        print(error, file=sys.stderr)
    sys.exit(code)

if args[:2] == ["account", "show"]:
    if not state.get("account"):
        answer(code=1, error="Please run 'az login' to setup account.")
    answer(state["account"])
if args[:1] != ["rest"]:
    answer(code=2, error="fake az: unexpected command " + " ".join(args))
method = args[args.index("--method") + 1]
uri = args[args.index("--uri") + 1]
body = json.loads(args[args.index("--body") + 1]) if "--body" in args else None
mi = state["mi"]
if method == "GET" and "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')" in uri:
    answer({"id": "graph-sp", "appRoles": [
        {"id": rid, "value": value, "allowedMemberTypes": ["Application"]}
        for value, rid in state["graph_roles"].items()]})
if method == "GET" and uri.endswith(f"/servicePrincipals/{mi}/appRoleAssignments"):
    answer({"value": [{"appRoleId": rid, "resourceId": "graph-sp"} for rid in state["granted"]]})
if method == "POST" and uri.endswith(f"/servicePrincipals/{mi}/appRoleAssignments"):
    if state.get("post_errors"):
        answer(code=1, error=state["post_errors"].pop(0))
    state["granted"].append(body["appRoleId"])
    answer({"id": "assignment"})
if "microsoft.aadiam/diagnosticSettings" in uri and method == "GET":
    if state.get("diagnostics_error"):
        answer(code=1, error=state["diagnostics_error"])
    answer({"value": state.get("diagnostic_settings", [])})
if "microsoft.aadiam/diagnosticSettings" in uri and method == "PUT":
    if state.get("put_error"):
        answer(code=1, error=state["put_error"])
    answer({})
if method == "GET" and "/directoryObjects/" in uri:
    answer({"@odata.type": state.get("principal_type", "#microsoft.graph.user")})
if method == "GET" and "/servicePrincipals/" in uri:
    role = {"id": state["support_role_id"], "value": "Reinvite.Request"}
    answer({"id": "api-sp", "appRoles": [role]})
if method == "POST" and uri.endswith("/appRoleAssignedTo"):
    answer({})
if method == "POST" and uri.endswith("/roleManagement/directory/roleAssignments"):
    answer({"id": "role-assignment"})
answer(code=2, error="fake az: unexpected request " + method + " " + uri)
'''

GRAPH_ROLE_IDS = {
    "Policy.Read.All": "246dd0d5-5bd0-4def-940b-0421030a5b68",
    "AuditLog.Read.All": "b0afded3-3588-46d8-8b3d-9842eff778da",
    "Directory.Read.All": "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
    "User.Invite.All": "09850681-111b-4a89-9bed-3f2cae46d706",
    "AccessReview.ReadWrite.All": "ef5f7d5c-338f-44b0-86c3-351f46c8bb5f",
    "CrossTenantInformation.ReadBasic.All": "cac88765-0581-4025-9725-5ebc13f729ee",
    "User.ReadWrite.All": "741f803b-c850-494e-b5df-cde7c675a1ca",
    "Group.Create": "bf7b1a76-6e77-406b-b258-bf5c7720e98f",
    "GroupMember.ReadWrite.All": "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
    # The script looks roles up by name; this ID only has to be unique in the fake.
    "Policy.Read.B2BManagementPolicy": "0b2b0b2b-0000-4000-8000-00000000b2b0",
    "Mail.Send": "b633e1c5-b582-4048-a93e-9f11b44c7e96",
}
ACCESS_REVIEW_GROUP_ROLES = ["Group.Create", "GroupMember.ReadWrite.All"]
# Without reviewers the access-review group roles are not expected (nor granted by Bicep).
EXPECTED = [r for r in GRAPH_ROLE_IDS if r != "Mail.Send" and r not in ACCESS_REVIEW_GROUP_ROLES]
MI_PRINCIPAL = "11111111-2222-3333-4444-555555555555"
MI_CLIENT = "66666666-7777-8888-9999-000000000000"
TENANT = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
WORKSPACE = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/log"
)
REPLICATION_ERROR = (
    'Bad Request({"error":{"code":"Request_BadRequest","message":"Not a valid reference update."}})'
)


def _state(granted: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "account": {"tenantId": TENANT, "user": {"name": "admin@vendor.example"}},
        "mi": MI_PRINCIPAL,
        "graph_roles": GRAPH_ROLE_IDS,
        "granted": [GRAPH_ROLE_IDS[r] for r in granted],
        "support_role_id": "abababab-0000-0000-0000-000000000001",
        **extra,
    }


def _diagnostic(workspace: str, categories: list[str]) -> dict[str, Any]:
    return {
        "name": "xtap-watch-entra-logs",
        "properties": {
            "workspaceId": workspace,
            "logs": [{"category": c, "enabled": True} for c in categories],
        },
    }


@pytest.fixture
def run_script(tmp_path: Path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    az = fake_bin / "az"
    az.write_text(FAKE_AZ.replace("{python}", sys.executable))
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "az.log"
    state_file = tmp_path / "state.json"

    def run(
        *args: str, state: dict[str, Any] | None, with_az: bool = True, **env: str
    ) -> tuple[subprocess.CompletedProcess[str], list[list[str]], dict[str, Any]]:
        log.write_text("")
        state_file.write_text(json.dumps(state or {}))
        path = f"{fake_bin}:/usr/bin:/bin" if with_az else "/usr/bin:/bin"
        environment = {
            "PATH": path,
            "HOME": str(tmp_path),
            "FAKE_AZ_LOG": str(log),
            "FAKE_AZ_STATE": str(state_file),
            "AZURE_TENANT_ID": TENANT,
            "MANAGED_IDENTITY_PRINCIPAL_ID": MI_PRINCIPAL,
            "MANAGED_IDENTITY_CLIENT_ID": MI_CLIENT,
            "XTAP_GRANT_RETRY_SECONDS": "0.01",
            **env,
        }
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        return done, calls, json.loads(state_file.read_text())

    return run


def _writes(calls: list[list[str]], method: str) -> list[list[str]]:
    return [c for c in calls if c[:1] == ["rest"] and c[c.index("--method") + 1] == method]


# ------------------------------------------------------------------------------ --check
def test_check_reports_missing_roles_a_tenant_wide_mail_send_and_no_diagnostics(run_script):
    granted = ["Policy.Read.All", "AuditLog.Read.All", "Mail.Send"]
    done, calls, _ = run_script(
        "--check", state=_state(granted), LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ok   Policy.Read.All" in done.stdout
    assert "User.Invite.All is not granted" in done.stdout
    assert "Mail.Send is granted tenant-wide" in done.stdout
    assert "no Entra diagnostic setting" in done.stdout
    assert _writes(calls, "POST") == [] and _writes(calls, "PUT") == []  # --check never writes


def test_check_passes_when_everything_is_in_place(run_script):
    state = _state(
        EXPECTED, diagnostic_settings=[_diagnostic(WORKSPACE, ["AuditLogs", "SignInLogs"])]
    )
    done, _, _ = run_script("--check", state=state, LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All checks passed." in done.stdout


def test_diagnostics_workspace_ids_compare_case_insensitively(run_script):
    # Entra hands the workspace ID back in the case it was saved with; ARM IDs ignore case.
    setting = _diagnostic(WORKSPACE.upper(), ["AuditLogs", "SignInLogs"])
    state = _state(EXPECTED, diagnostic_settings=[setting])
    done, _, _ = run_script("--check", state=state, LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE)
    assert done.returncode == 0, done.stdout
    assert "ok   xtap-watch-entra-logs: AuditLogs, SignInLogs" in done.stdout


def test_diagnostics_check_names_a_missing_log_category(run_script):
    state = _state(EXPECTED, diagnostic_settings=[_diagnostic(WORKSPACE, ["AuditLogs"])])
    done, _, _ = run_script("--check", state=state, LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE)
    assert done.returncode == 1
    assert "sends logs to the workspace but not SignInLogs" in done.stdout


def test_check_without_az_login_says_how_to_sign_in(run_script):
    done, calls, _ = run_script("--check", state={**_state([]), "account": None})
    assert done.returncode == 2
    assert f"az login --tenant {TENANT}" in done.stdout
    assert [c for c in calls if c[:1] == ["rest"]] == []


# ------------------------------------------------------------------------------ grants
def test_grant_missing_posts_only_the_missing_roles(run_script):
    done, calls, state = run_script("--grant-missing", state=_state(["Policy.Read.All"]))
    assert done.returncode == 0, done.stdout + done.stderr
    posts = _writes(calls, "POST")
    bodies = [json.loads(c[c.index("--body") + 1]) for c in posts]
    assert {b["appRoleId"] for b in bodies} == {GRAPH_ROLE_IDS[r] for r in EXPECTED[1:]}
    for call, body in zip(posts, bodies, strict=True):
        assert call[call.index("--uri") + 1] == (
            f"https://graph.microsoft.com/v1.0/servicePrincipals/{MI_PRINCIPAL}/appRoleAssignments"
        )
        assert body == {**body, "principalId": MI_PRINCIPAL, "resourceId": "graph-sp"}
    assert sorted(state["granted"]) == sorted(GRAPH_ROLE_IDS[r] for r in EXPECTED)


def test_without_the_template_output_the_expected_roles_follow_the_same_switches(run_script):
    """The fallback (no GRANTED_GRAPH_APP_ROLES yet) applies graph-grants.bicep's rule."""
    with_reviews = {"XTAP_ACCESS_REVIEW_REVIEWERS": "0c6b7a3e-2d41-4f58-9b1e-7a6c5d4e3f21"}
    done, _, state = run_script("--grant-missing", state=_state([]), **with_reviews)
    assert done.returncode == 0, done.stdout + done.stderr
    granted = {r for r, rid in GRAPH_ROLE_IDS.items() if rid in state["granted"]}
    assert granted == {*EXPECTED, *ACCESS_REVIEW_GROUP_ROLES}

    done, _, state = run_script(
        "--grant-missing",
        state=_state([]),
        GRANT_ACCESS_REVIEW_GROUPS="false",
        GRANT_B2B_POLICY_READ="false",
        GRANT_RESET_REDEMPTION="false",
        **with_reviews,
    )
    granted = {r for r, rid in GRAPH_ROLE_IDS.items() if rid in state["granted"]}
    assert granted == set(EXPECTED) - {"User.ReadWrite.All", "Policy.Read.B2BManagementPolicy"}

    # The template's own output wins over the switches.
    done, _, state = run_script(
        "--check", state=_state([]), GRANTED_GRAPH_APP_ROLES="Policy.Read.All,Group.Create"
    )
    assert "Policy.Read.All is not granted" in done.stdout
    assert "Group.Create is not granted" in done.stdout
    assert "User.Invite.All" not in done.stdout


def test_grant_retries_while_entra_replicates_a_new_identity(run_script):
    """microsoftgraph/msgraph-bicep-types#193: the first grants fail, the later ones work."""
    state = _state([], post_errors=[REPLICATION_ERROR, REPLICATION_ERROR])
    done, calls, final = run_script("--grant-missing", state=state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Entra has not replicated the new identity") == 2
    assert len(_writes(calls, "POST")) == len(EXPECTED) + 2
    assert sorted(final["granted"]) == sorted(GRAPH_ROLE_IDS[r] for r in EXPECTED)


def test_grant_gives_up_after_the_retry_window_and_says_so(run_script):
    state = _state([], post_errors=[REPLICATION_ERROR] * 50)
    done, _, _ = run_script("--grant-missing", state=state, XTAP_GRANT_RETRY_MINUTES="0.001")
    assert done.returncode == 1
    assert "Graph refused the grant: Bad Request" in done.stdout


def test_grant_without_privileged_role_administrator_names_the_role(run_script):
    denied = (
        'Forbidden({"error":{"code":"Authorization_RequestDenied",'
        '"message":"Insufficient privileges to complete the operation."}})'
    )
    state = _state([], post_errors=[denied] * 10)
    done, _calls, _ = run_script("--grant-missing", state=state)
    assert done.returncode == 1
    assert "Privileged Role Administrator" in done.stdout
    assert "GRANT_GRAPH_APP_ROLES=false" in done.stdout


def test_an_existing_assignment_counts_as_granted(run_script):
    exists = (
        'Bad Request({"error":{"message":'
        '"Permission being assigned already exists on the object"}})'
    )
    state = _state(EXPECTED[:-1], post_errors=[exists])
    done, _, _ = run_script("--grant-missing", state=state)
    assert done.returncode == 0, done.stdout


# ------------------------------------------------------------------------------ the hook
def test_postprovision_grants_what_the_template_deferred_then_reports(run_script):
    state = _state([], post_errors=[REPLICATION_ERROR])
    done, _, final = run_script(
        "--postprovision", state=state, GRAPH_GRANTS_DEFERRED_TO_HOOK="true"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(final["granted"]) == sorted(GRAPH_ROLE_IDS[r] for r in EXPECTED)
    assert "First provision of this identity" in done.stdout
    assert "All checks passed." in done.stdout
    assert "xtap-watch doctor --remote" in done.stdout


def test_postprovision_with_grants_switched_off_only_reports(run_script):
    done, calls, _ = run_script("--postprovision", state=_state([]), GRANT_GRAPH_APP_ROLES="false")
    assert done.returncode == 0
    assert _writes(calls, "POST") == []
    assert "GRANT_GRAPH_APP_ROLES=false" in done.stdout
    assert "is not granted" in done.stdout


def test_postprovision_without_az_login_explains_and_does_not_fail_azd(run_script):
    done, _, _ = run_script("--postprovision", state={**_state([]), "account": None})
    assert done.returncode == 0
    assert "The Azure CLI is not signed in" in done.stdout
    assert f"az login --tenant {TENANT}" in done.stdout


def test_postprovision_in_the_wrong_tenant_says_which(run_script):
    other = {"tenantId": "99999999-0000-0000-0000-000000000000"}
    done, calls, _ = run_script("--postprovision", state={**_state([]), "account": other})
    assert done.returncode == 0
    assert "not the deployment's tenant" in done.stdout
    assert [c for c in calls if c[:1] == ["rest"]] == []


def test_postprovision_without_the_azure_cli_says_how_to_get_it(run_script):
    done, _, _ = run_script("--postprovision", state=None, with_az=False)
    assert done.returncode == 0
    assert "The Azure CLI (az) is not installed" in done.stdout


def test_postprovision_checks_diagnostics_when_a_source_is_log_analytics(run_script):
    done, _, _ = run_script(
        "--postprovision",
        state=_state(EXPECTED),
        XTAP_AUDIT_SOURCE="log_analytics",
        LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE,
    )
    assert done.returncode == 0
    assert "no Entra diagnostic setting sends logs to the workspace" in done.stdout


# ------------------------------------------------------------------------------ other steps
def test_entra_diagnostics_puts_audit_and_signin_logs_to_the_workspace(run_script):
    done, calls, _ = run_script(
        "--entra-diagnostics", state=_state([]), LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE
    )
    assert done.returncode == 0, done.stderr
    (put,) = _writes(calls, "PUT")
    uri = put[put.index("--uri") + 1]
    assert uri.startswith(
        "https://management.azure.com/providers/microsoft.aadiam/diagnosticSettings/"
    )
    assert uri.endswith("?api-version=2017-04-01")
    body = json.loads(put[put.index("--body") + 1])
    assert body["properties"]["workspaceId"] == WORKSPACE
    assert {(log["category"], log["enabled"]) for log in body["properties"]["logs"]} == {
        ("AuditLogs", True),
        ("SignInLogs", True),
    }


def test_entra_diagnostics_refused_on_the_workspace_names_the_missing_right(run_script):
    state = _state(
        [],
        put_error="(LinkedAuthorizationFailed) The client has no permission on the workspace",
    )
    done, _, _ = run_script(
        "--entra-diagnostics", state=state, LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE
    )
    assert done.returncode == 2
    assert "also needs rights on the workspace" in done.stderr


def test_exchange_script_scopes_mail_send_to_the_sender_mailbox(run_script, tmp_path: Path):
    done, calls, _ = run_script(
        "--exchange-mail-send",
        "--dry-run",
        state=_state([]),
        XTAP_MAIL_SENDER="alerts@vendor.example",
    )
    assert done.returncode == 0, done.stderr
    assert calls == []  # nothing to call in Azure for this step
    ps1 = (tmp_path / "xtap-watch-exchange-mail-send.ps1").read_text()
    assert f"New-ServicePrincipal -AppId '{MI_CLIENT}' -ObjectId '{MI_PRINCIPAL}'" in ps1
    assert "-RecipientRestrictionFilter \"PrimarySmtpAddress -eq 'alerts@vendor.example'\"" in ps1
    assert "-Role 'Application Mail.Send' -CustomResourceScope 'xtap-watch alert sender'" in ps1
    assert "Test-ServicePrincipalAuthorization" in ps1


def test_exchange_scope_by_object_id(run_script, tmp_path: Path):
    sender = "0f0f0f0f-1111-2222-3333-444444444444"
    done, _, _ = run_script(
        "--exchange-mail-send", "--dry-run", state=_state([]), XTAP_MAIL_SENDER=sender
    )
    assert done.returncode == 0, done.stderr
    ps1 = (tmp_path / "xtap-watch-exchange-mail-send.ps1").read_text()
    assert f"ExternalDirectoryObjectId -eq '{sender}'" in ps1


def test_assign_support_role_to_a_group_warns_about_p1(run_script):
    group = "12121212-3434-5656-7878-909090909090"
    done, calls, _ = run_script(
        "--assign-support-role",
        group,
        "--dry-run",
        state=_state([], principal_type="#microsoft.graph.group"),
        API_SERVICE_PRINCIPAL_ID="api-sp",
    )
    assert done.returncode == 0, done.stderr
    assert _writes(calls, "POST") == []  # dry run: only the reads were made
    assert "DRY-RUN: az rest --method POST" in done.stdout
    assert "servicePrincipals/api-sp/appRoleAssignedTo" in done.stdout
    assert "abababab-0000-0000-0000-000000000001" in done.stdout
    assert "needs Microsoft Entra ID P1 or P2" in done.stdout


def test_assign_guest_inviter_gives_the_identity_the_directory_role(run_script):
    done, calls, _ = run_script("--assign-guest-inviter", state=_state([]))
    assert done.returncode == 0, done.stderr
    (post,) = _writes(calls, "POST")
    assert post[post.index("--uri") + 1] == (
        "https://graph.microsoft.com/v1.0/roleManagement/directory/roleAssignments"
    )
    assert json.loads(post[post.index("--body") + 1]) == {
        "principalId": MI_PRINCIPAL,
        "roleDefinitionId": "95e79109-95c0-4d8e-aee3-d01accf2d47b",
        "directoryScopeId": "/",
    }


def test_script_refuses_without_an_action(run_script):
    done, calls, _ = run_script(state=_state([]))
    assert done.returncode == 2
    assert calls == []


# ------------------------------------------------------------------------------ wrappers
@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_the_shell_name_still_works(tmp_path: Path):
    assert os.access(SHIM, os.X_OK)
    done = subprocess.run(
        ["sh", str(SHIM), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--postprovision" in done.stdout


def test_checkov_wrapper_pins_the_version_and_skips_only_the_graph_folder():
    text = (ROOT / "scripts" / "checkov.sh").read_text()
    assert 'CHECKOV_VERSION="3.3.30"' in text
    assert "--skip-download" in text
    assert "--skip-path infra/graph" in text
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / "checkov.sh")], check=True)
