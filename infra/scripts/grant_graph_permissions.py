#!/usr/bin/env python3
"""Post-deployment steps that Bicep cannot (or should not) do, for a vendor-tenant admin.

Runs wherever azd runs (Linux, macOS, Windows): azd itself needs Python for this project
(``language: python`` in azure.yaml), and this script uses only the standard library and the
Azure CLI (``az``), signed in to the vendor tenant with ``az login``.

  --postprovision           what azd runs after every provision (azure.yaml): grant the Graph
                            roles the template deferred (first provision of the identity) or
                            that are missing, retrying while Entra replicates a new identity,
                            then --check. Never fails the azd command.
  --check                   read-only: report Graph app roles, a tenant-wide Mail.Send grant and
                            the Entra diagnostic setting (exit 1 if something needs doing)
  --grant-missing           assign the Graph application permissions that are missing
                            (needs Privileged Role Administrator or Global Administrator)
  --entra-diagnostics       stream the tenant's AuditLogs and SignInLogs to the workspace
                            (needs Security Administrator in Entra *and* rights on the workspace)
  --exchange-mail-send      scope Mail.Send to the sender mailbox with Exchange Online RBAC for
                            Applications (writes a PowerShell script; runs it when pwsh is found)
  --assign-support-role ID  give a user or group (object ID) the Reinvite.Request app role
  --assign-guest-inviter    give the managed identity the Guest Inviter directory role, so
                            re-invites work while guest invitations are restricted to admins
                            (allowInvitesFrom = adminsAndGuestInviters; needs Privileged Role
                            Administrator)
  --dry-run                 print the write calls instead of making them

Values come from the azd environment (``azd env get-values``, the outputs of infra/main.bicep)
unless already set in the process environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GRAPH = "https://graph.microsoft.com/v1.0"
ARM = "https://management.azure.com"
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
DIAGNOSTIC_SETTING_NAME = "xtap-watch-entra-logs"
DIAGNOSTICS_API = "api-version=2017-04-01"
ENTRA_LOG_CATEGORIES = ("AuditLogs", "SignInLogs")
# Keep in step with graph-grants.bicep (tests/unit/test_infra.py checks each list). Mail.Send
# is not here on purpose: it is granted per mailbox by --exchange-mail-send. These lists are
# only the fallback when the azd environment has no GRANTED_GRAPH_APP_ROLES output yet.
DEFAULT_GRAPH_APP_ROLES = (
    "Policy.Read.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
    "User.Invite.All",
    "AccessReview.ReadWrite.All",
    "CrossTenantInformation.ReadBasic.All",
)
RESET_REDEMPTION_ROLES = ("User.ReadWrite.All",)  # GRANT_RESET_REDEMPTION
ACCESS_REVIEW_GROUP_ROLES = ("Group.Create", "GroupMember.ReadWrite.All")  # with reviewers
B2B_POLICY_ROLES = ("Policy.Read.B2BManagementPolicy",)  # GRANT_B2B_POLICY_READ
SUPPORT_APP_ROLE = "Reinvite.Request"
# Guest Inviter: the built-in Entra role's template ID, the same in every tenant.
GUEST_INVITER_ROLE_ID = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Graph's answers while a just-created service principal has not reached every replica
# (microsoftgraph/msgraph-bicep-types#193, ARO-HCP and HashiCorp Vault retry the same ones).
REPLICATION_MARKERS = (
    "not a valid reference update",
    "does not exist or one of its queried reference-property objects are not present",
    "request_resourcenotfound",
)
ALREADY_GRANTED_MARKER = "permission being assigned already exists"


class ScriptError(Exception):
    """Stops the script with a one-line explanation (exit status 2)."""


# ------------------------------------------------------------------------------ environment
def azd_env_values(run: Callable[..., subprocess.CompletedProcess[str]]) -> dict[str, str]:
    """``azd env get-values`` as a dict ({} when azd is missing or has no environment)."""
    azd = shutil.which("azd")
    if azd is None:
        return {}
    done = run([azd, "env", "get-values"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {}
    values: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip().strip('"')
    return values


def is_false(value: str | None) -> bool:
    return (value or "").strip().lower() in ("false", "0", "no", "off")


# ------------------------------------------------------------------------------ Azure CLI
@dataclass
class AzResult:
    ok: bool
    body: Any
    error: str


@dataclass
class Az:
    """The Azure CLI, found on PATH (``az.cmd`` on Windows), called with ``az rest``."""

    dry_run: bool = False
    writes: list[list[str]] = field(default_factory=list)
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run

    def __post_init__(self) -> None:
        self.path = shutil.which("az")

    def installed(self) -> bool:
        return self.path is not None

    def call(self, *args: str) -> AzResult:
        if self.path is None:
            raise ScriptError("the Azure CLI (az) is not installed or not on PATH")
        done = self.run([self.path, *args], capture_output=True, text=True, check=False)
        body: Any = None
        if done.stdout.strip():
            try:
                body = json.loads(done.stdout)
            except ValueError:
                body = done.stdout.strip()
        return AzResult(done.returncode == 0, body, (done.stderr or "").strip())

    def account(self) -> dict[str, Any] | None:
        result = self.call("account", "show", "--output", "json")
        return result.body if result.ok and isinstance(result.body, dict) else None

    def get(self, uri: str) -> AzResult:
        return self.call("rest", "--method", "GET", "--uri", uri, "--output", "json")

    def write(self, method: str, uri: str, body: Mapping[str, Any]) -> AzResult:
        args = [
            "rest",
            "--method",
            method,
            "--uri",
            uri,
            "--headers",
            "Content-Type=application/json",
            "--body",
            json.dumps(body, separators=(",", ":")),
            "--output",
            "json",
        ]
        self.writes.append(args)
        if self.dry_run:
            print("DRY-RUN: az " + " ".join(_quote(a) for a in args))
            return AzResult(True, None, "")
        return self.call(*args)


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


# ------------------------------------------------------------------------------ the report
@dataclass
class Report:
    problems: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        print(f"  ok   {text}")

    def problem(self, text: str) -> None:
        print(f"  TODO: {text}")
        self.problems.append(text)


@dataclass
class Context:
    env: dict[str, str]
    az: Az
    report: Report = field(default_factory=Report)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def need(self, name: str) -> str:
        value = self.env.get(name, "").strip()
        if not value:
            raise ScriptError(
                f"missing {name}: run from the azd project after 'azd provision', or export it"
            )
        return value


def signed_in(ctx: Context) -> bool:
    """True when az is installed and signed in to the deployment's tenant; else explain."""
    if not ctx.az.installed():
        print(
            "The Azure CLI (az) is not installed, so the Entra steps were not run. Install it"
            " (https://aka.ms/azure-cli) or use Azure Cloud Shell, then run:\n"
            "  python infra/scripts/grant_graph_permissions.py --postprovision"
        )
        return False
    account = ctx.az.account()
    tenant = ctx.env.get("AZURE_TENANT_ID", "")
    if account is None:
        print(
            "The Azure CLI is not signed in (azd's own sign-in does not cover az). Run:\n"
            f"  az login{' --tenant ' + tenant if tenant else ''}\n"
            "  python infra/scripts/grant_graph_permissions.py --postprovision"
        )
        return False
    if tenant and str(account.get("tenantId", "")).lower() != tenant.lower():
        print(
            f"The Azure CLI is signed in to tenant {account.get('tenantId')}, not the"
            f" deployment's tenant {tenant}. Run:\n  az login --tenant {tenant}\n"
            "  python infra/scripts/grant_graph_permissions.py --postprovision"
        )
        return False
    return True


# ------------------------------------------------------------------------------ Graph roles
def graph_service_principal(ctx: Context) -> dict[str, Any]:
    result = ctx.az.get(
        f"{GRAPH}/servicePrincipals(appId='{MICROSOFT_GRAPH_APP_ID}')?$select=id,appRoles"
    )
    if not result.ok or not isinstance(result.body, dict):
        raise ScriptError(f"cannot read the Microsoft Graph service principal: {result.error}")
    return result.body


def application_role_ids(graph_sp: Mapping[str, Any]) -> dict[str, str]:
    """Role value -> role ID, application permissions only."""
    return {
        str(role["value"]): str(role["id"])
        for role in graph_sp.get("appRoles", [])
        if "Application" in role.get("allowedMemberTypes", [])
    }


def granted_role_ids(ctx: Context, principal_id: str, graph_sp_id: str) -> set[str]:
    uri: str | None = f"{GRAPH}/servicePrincipals/{principal_id}/appRoleAssignments"
    found: set[str] = set()
    while uri:
        result = ctx.az.get(uri)
        if not result.ok or not isinstance(result.body, dict):
            raise ScriptError(f"cannot list the identity's app role assignments: {result.error}")
        for item in result.body.get("value", []):
            if str(item.get("resourceId", "")).lower() == graph_sp_id.lower():
                found.add(str(item.get("appRoleId", "")).lower())
        uri = result.body.get("@odata.nextLink")
    return found


def expected_roles(env: Mapping[str, str]) -> list[str]:
    """What the template grants (its GRANTED_GRAPH_APP_ROLES output), else the same rule."""
    listed = [r.strip() for r in env.get("GRANTED_GRAPH_APP_ROLES", "").split(",") if r.strip()]
    if listed:
        return listed
    roles = list(DEFAULT_GRAPH_APP_ROLES)
    if not is_false(env.get("GRANT_RESET_REDEMPTION")):
        roles += RESET_REDEMPTION_ROLES
    reviews = bool((env.get("XTAP_ACCESS_REVIEW_REVIEWERS") or "").strip())
    if reviews and not is_false(env.get("GRANT_ACCESS_REVIEW_GROUPS")):
        roles += ACCESS_REVIEW_GROUP_ROLES
    if not is_false(env.get("GRANT_B2B_POLICY_READ")):
        roles += B2B_POLICY_ROLES
    return roles


def grant_with_retry(
    ctx: Context, principal_id: str, graph_sp_id: str, role: str, role_id: str
) -> bool:
    """POST one app role assignment; retry while Entra replicates a new identity."""
    # No replication SLA is documented (#193); one report saw more than 5 minutes. 15 minutes
    # by default, both tunable for impatient admins and for the tests.
    deadline = ctx.clock() + 60 * float(ctx.env.get("XTAP_GRANT_RETRY_MINUTES") or 15)
    delay = float(ctx.env.get("XTAP_GRANT_RETRY_SECONDS") or 10)
    body = {"principalId": principal_id, "resourceId": graph_sp_id, "appRoleId": role_id}
    uri = f"{GRAPH}/servicePrincipals/{principal_id}/appRoleAssignments"
    while True:
        result = ctx.az.write("POST", uri, body)
        text = result.error.lower()
        if result.ok or ALREADY_GRANTED_MARKER in text:
            return True
        if "authorization_requestdenied" in text or "insufficient privileges" in text:
            ctx.report.problem(
                f"{role}: refused, the signed-in account cannot grant Microsoft Graph"
                " application permissions. A Privileged Role Administrator or Global"
                " Administrator runs: python infra/scripts/grant_graph_permissions.py"
                " --grant-missing (and set GRANT_GRAPH_APP_ROLES=false until then)"
            )
            return False
        replicating = any(marker in text for marker in REPLICATION_MARKERS)
        if not replicating or ctx.clock() + delay > deadline:
            first_line = (result.error.splitlines() or ["no error text"])[0]
            ctx.report.problem(f"{role}: Graph refused the grant: {first_line}")
            return False
        print(f"  wait {role}: Entra has not replicated the new identity; retry in {delay:.0f} s")
        ctx.sleep(delay)
        delay = min(delay * 2, 60.0)


def check_or_grant_graph_roles(ctx: Context, *, grant: bool) -> None:
    principal_id = ctx.need("MANAGED_IDENTITY_PRINCIPAL_ID")
    graph_sp = graph_service_principal(ctx)
    role_ids = application_role_ids(graph_sp)
    granted = granted_role_ids(ctx, principal_id, str(graph_sp["id"]))
    print("Microsoft Graph application permissions of the managed identity:")
    for role in expected_roles(ctx.env):
        role_id = role_ids.get(role)
        if role_id is None:
            ctx.report.problem(f"{role} is not an application permission of Microsoft Graph")
        elif role_id.lower() in granted:
            ctx.report.ok(role)
        elif grant:
            print(f"  add  {role}")
            grant_with_retry(ctx, principal_id, str(graph_sp["id"]), role, role_id)
        else:
            ctx.report.problem(
                f"{role} is not granted (a Privileged Role Administrator runs --grant-missing)"
            )
    # A tenant-wide Mail.Send grant lets the app send as anyone, and Exchange RBAC for
    # Applications cannot narrow it (the two are additive).
    mail_send = role_ids.get("Mail.Send")
    if mail_send and mail_send.lower() in granted:
        ctx.report.problem(
            "Mail.Send is granted tenant-wide in Entra ID: remove that grant and use"
            " --exchange-mail-send"
        )


# ------------------------------------------------------------------------------ diagnostics
def entra_diagnostic_settings(ctx: Context) -> list[dict[str, Any]]:
    result = ctx.az.get(f"{ARM}/providers/microsoft.aadiam/diagnosticSettings?{DIAGNOSTICS_API}")
    if not result.ok:
        raise ScriptError(
            "cannot read the tenant's Entra diagnostic settings (needs Security Reader or"
            f" Security Administrator): {(result.error.splitlines() or [''])[0]}"
        )
    body = result.body if isinstance(result.body, dict) else {}
    return list(body.get("value", []))


def enabled_categories(setting: Mapping[str, Any]) -> set[str]:
    logs = (setting.get("properties") or {}).get("logs") or []
    return {str(log.get("category")) for log in logs if log.get("enabled")}


def check_entra_diagnostics(ctx: Context) -> None:
    workspace = ctx.need("LOG_ANALYTICS_WORKSPACE_RESOURCE_ID")
    print("Entra diagnostic setting (AuditLogs, SignInLogs -> workspace):")
    # ARM resource IDs are case-insensitive and Entra returns the workspace ID in whatever
    # case it was saved with.
    to_workspace = [
        s
        for s in entra_diagnostic_settings(ctx)
        if str((s.get("properties") or {}).get("workspaceId", "")).lower() == workspace.lower()
    ]
    if not to_workspace:
        ctx.report.problem(
            "no Entra diagnostic setting sends logs to the workspace (run --entra-diagnostics)"
        )
        return
    categories: set[str] = set()
    for setting in to_workspace:
        categories |= enabled_categories(setting)
    missing = [c for c in ENTRA_LOG_CATEGORIES if c not in categories]
    names = ", ".join(str(s.get("name")) for s in to_workspace)
    if missing:
        ctx.report.problem(
            f"diagnostic setting {names} sends logs to the workspace but not"
            f" {', '.join(missing)} (run --entra-diagnostics)"
        )
    else:
        ctx.report.ok(f"{names}: {', '.join(ENTRA_LOG_CATEGORIES)}")


def put_entra_diagnostics(ctx: Context) -> None:
    workspace = ctx.need("LOG_ANALYTICS_WORKSPACE_RESOURCE_ID")
    print(f"Entra diagnostic setting {DIAGNOSTIC_SETTING_NAME} -> {workspace}")
    result = ctx.az.write(
        "PUT",
        f"{ARM}/providers/microsoft.aadiam/diagnosticSettings/{DIAGNOSTIC_SETTING_NAME}?{DIAGNOSTICS_API}",
        {
            "properties": {
                "workspaceId": workspace,
                "logs": [{"category": c, "enabled": True} for c in ENTRA_LOG_CATEGORIES],
            }
        },
    )
    if not result.ok:
        hint = ""
        lowered = result.error.lower()
        if "linkedauthorizationfailed" in lowered or "workspace" in lowered:
            hint = (
                " - the signed-in account also needs rights on the workspace (for example"
                " Log Analytics Contributor on it), not only Security Administrator in Entra"
            )
        raise ScriptError(f"creating the diagnostic setting failed{hint}: {result.error}")


# ------------------------------------------------------------------------------ Exchange
def exchange_mail_send(ctx: Context) -> None:
    principal_id = ctx.need("MANAGED_IDENTITY_PRINCIPAL_ID")
    client_id = ctx.need("MANAGED_IDENTITY_CLIENT_ID")
    sender = ctx.env.get("XTAP_MAIL_SENDER", "").strip()
    if not sender:
        print("XTAP_MAIL_SENDER is empty: alert mail is off, nothing to scope.")
        return
    if GUID.match(sender):
        restriction = f"ExternalDirectoryObjectId -eq '{sender}'"
    else:
        restriction = f"PrimarySmtpAddress -eq '{sender}'"
    script = ctx.env.get("EXCHANGE_SCRIPT") or "./xtap-watch-exchange-mail-send.ps1"
    # The managed identity's service principal: AppId is its client ID, ObjectId its principal.
    lines = [
        "# Generated by infra/scripts/grant_graph_permissions.py:"
        " Exchange Online RBAC for Applications.",
        f"# Lets the xtap-watch managed identity send mail as {sender} and no other mailbox.",
        "Connect-ExchangeOnline",
        f"New-ServicePrincipal -AppId '{client_id}' -ObjectId '{principal_id}'"
        " -DisplayName 'xtap-watch function identity'",
        "New-ManagementScope -Name 'xtap-watch alert sender'"
        f' -RecipientRestrictionFilter "{restriction}"',
        f"New-ManagementRoleAssignment -Name 'xtap-watch Mail.Send' -App '{client_id}'"
        " -Role 'Application Mail.Send' -CustomResourceScope 'xtap-watch alert sender'",
        "# Expect InScope = True for the sender, False for any other mailbox.",
        f"Test-ServicePrincipalAuthorization -Identity '{client_id}' -Resource '{sender}'",
    ]
    with open(script, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"Exchange RBAC for Applications script written to {script}")
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if not ctx.az.dry_run and pwsh:
        # The script path is ours (EXCHANGE_SCRIPT or the default), not user input from afar.
        subprocess.run([pwsh, "-NoProfile", "-File", script], check=False)  # noqa: S603
    else:
        print(
            "  run it in PowerShell with the ExchangeOnlineManagement module as an"
            " Exchange Administrator"
        )


# ------------------------------------------------------------------------------ support role
def assign_support_role(ctx: Context, principal: str) -> None:
    api_sp = ctx.need("API_SERVICE_PRINCIPAL_ID")
    if not GUID.match(principal):
        raise ScriptError(f"--assign-support-role needs an object ID (GUID), got {principal!r}")
    result = ctx.az.get(f"{GRAPH}/servicePrincipals/{api_sp}?$select=id,appRoles")
    roles = result.body.get("appRoles", []) if result.ok and isinstance(result.body, dict) else []
    role_id = next((r["id"] for r in roles if r.get("value") == SUPPORT_APP_ROLE), None)
    if role_id is None:
        raise ScriptError(f"the API app has no {SUPPORT_APP_ROLE} role; was infra/graph deployed?")
    kind = ctx.az.get(f"{GRAPH}/directoryObjects/{principal}?$select=id")
    if kind.ok and isinstance(kind.body, dict) and "group" in str(kind.body.get("@odata.type", "")):
        print(
            "  note: assigning a group to an app role needs Microsoft Entra ID P1 or P2 in the"
            " vendor tenant; without it assign users one by one"
        )
    print(f"Assigning {SUPPORT_APP_ROLE} to {principal}")
    done = ctx.az.write(
        "POST",
        f"{GRAPH}/servicePrincipals/{api_sp}/appRoleAssignedTo",
        {"principalId": principal, "resourceId": api_sp, "appRoleId": role_id},
    )
    if not done.ok and ALREADY_GRANTED_MARKER not in done.error.lower():
        raise ScriptError(f"assigning the role failed: {done.error}")


# ------------------------------------------------------------------------------ guest inviter
def assign_guest_inviter(ctx: Context) -> None:
    """Graph invitation-post: app-only invitations do not work while invitations are restricted
    to administrators; the Guest Inviter role makes the identity one of them (least privilege).
    """
    principal_id = ctx.need("MANAGED_IDENTITY_PRINCIPAL_ID")
    print(f"Assigning the Guest Inviter directory role to {principal_id}")
    done = ctx.az.write(
        "POST",
        f"{GRAPH}/roleManagement/directory/roleAssignments",
        {
            "principalId": principal_id,
            "roleDefinitionId": GUEST_INVITER_ROLE_ID,
            "directoryScopeId": "/",
        },
    )
    if not done.ok and "already exists" not in done.error.lower():
        raise ScriptError(f"assigning Guest Inviter failed: {done.error}")


# ------------------------------------------------------------------------------ main
def postprovision(ctx: Context) -> int:
    """After every `azd provision`: grant what the template deferred, then report."""
    print("xtap-watch post-provision (infra/scripts/grant_graph_permissions.py):")
    if not signed_in(ctx):
        return 0
    grant = not is_false(ctx.env.get("GRANT_GRAPH_APP_ROLES"))
    if not grant:
        print(
            "GRANT_GRAPH_APP_ROLES=false: the Graph permissions are left to a Privileged Role"
            " Administrator."
        )
    elif (ctx.env.get("GRAPH_GRANTS_DEFERRED_TO_HOOK") or "").strip().lower() == "true":
        print(
            "First provision of this identity: the template left the Graph grants to this"
            " step, which retries while Entra replicates the new identity."
        )
    try:
        check_or_grant_graph_roles(ctx, grant=grant)
        if "log_analytics" in (ctx.env.get("XTAP_AUDIT_SOURCE"), ctx.env.get("XTAP_SIGNIN_SOURCE")):
            check_entra_diagnostics(ctx)
    except ScriptError as exc:
        # The provision itself succeeded; say what is left instead of failing azd.
        ctx.report.problem(str(exc))
    summarise(ctx)
    print("Then check the running app: xtap-watch doctor --remote (docs/deploy.md, 'Verify').")
    return 0


def summarise(ctx: Context) -> None:
    if ctx.report.problems:
        print(f"{len(ctx.report.problems)} item(s) to do; see docs/deploy.md, 'After azd up'.")
    else:
        print("All checks passed.")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="grant_graph_permissions.py",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--postprovision", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--grant-missing", action="store_true")
    parser.add_argument("--entra-diagnostics", action="store_true")
    parser.add_argument("--exchange-mail-send", action="store_true")
    parser.add_argument("--assign-support-role", metavar="OBJECT_ID")
    parser.add_argument("--assign-guest-inviter", action="store_true")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    actions = (
        args.postprovision,
        args.check,
        args.grant_missing,
        args.entra_diagnostics,
        args.exchange_mail_send,
        bool(args.assign_support_role),
        args.assign_guest_inviter,
    )
    if not any(actions):
        parser.print_usage(sys.stderr)
        print("choose at least one action (see --help)", file=sys.stderr)
        raise SystemExit(2)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    env = {**azd_env_values(subprocess.run), **{k: v for k, v in os.environ.items() if v}}
    ctx = Context(env=env, az=Az(dry_run=args.dry_run))
    try:
        if args.postprovision:
            return postprovision(ctx)
        if args.check or args.grant_missing:
            if not signed_in(ctx):
                return 2
            check_or_grant_graph_roles(ctx, grant=args.grant_missing)
        if args.assign_guest_inviter:
            assign_guest_inviter(ctx)
        if args.check:
            check_entra_diagnostics(ctx)
        if args.entra_diagnostics:
            put_entra_diagnostics(ctx)
        if args.exchange_mail_send:
            exchange_mail_send(ctx)
        if args.assign_support_role:
            assign_support_role(ctx, args.assign_support_role)
    except ScriptError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        summarise(ctx)
        return 1 if ctx.report.problems else 0
    return 1 if ctx.report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
