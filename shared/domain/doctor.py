"""The doctor's pure parts: check lines, the Graph roles each feature needs, verdicts on
what a probe saw, and the one table an admin reads.

``shared/services/doctor.py`` runs the probes (storage, Graph, Log Analytics, Teams, the
app's own URL) and hands what it saw to the functions here, so every verdict and every fix
text is unit-tested without I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
FUNCTION_CHALLENGE_REALM = 'realm="xtap-watch"'


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # works, but an admin should know (never changes the exit code)
    FAIL = "fail"
    SKIP = "skip"  # not applicable here, or not checked on purpose (the detail says why)


@dataclass(frozen=True)
class CheckLine:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def ok(name: str, detail: str) -> CheckLine:
    return CheckLine(name, Status.OK, detail)


def fail(name: str, detail: str, fix: str) -> CheckLine:
    return CheckLine(name, Status.FAIL, detail, fix)


def warn(name: str, detail: str, fix: str = "") -> CheckLine:
    return CheckLine(name, Status.WARN, detail, fix)


def skip(name: str, detail: str) -> CheckLine:
    return CheckLine(name, Status.SKIP, detail)


@dataclass(frozen=True)
class DoctorReport:
    lines: tuple[CheckLine, ...]

    @property
    def failed(self) -> tuple[CheckLine, ...]:
        return tuple(line for line in self.lines if line.status is Status.FAIL)

    @property
    def healthy(self) -> bool:
        return not self.failed

    def line(self, name: str) -> CheckLine:
        return next(line for line in self.lines if line.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "fail",
            "checks": [line.as_dict() for line in self.lines],
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> DoctorReport:
        lines = []
        for item in body.get("checks", []):
            lines.append(
                CheckLine(
                    str(item["check"]),
                    Status(str(item["status"])),
                    str(item.get("detail", "")),
                    str(item.get("fix", "")),
                )
            )
        return cls(tuple(lines))


def render_table(report: DoctorReport, width: int = 100) -> str:
    """One table: check, status, what was seen; the fix indented under every failing line."""
    name_width = max([len(line.name) for line in report.lines] + [5])
    out = [f"{'check'.ljust(name_width)}  status  detail", "-" * min(width, name_width + 60)]
    for line in report.lines:
        out.append(f"{line.name.ljust(name_width)}  {line.status.value.ljust(6)}  {line.detail}")
        if line.fix and line.status in (Status.FAIL, Status.WARN):
            out.append(f"{' ' * name_width}  {'':6}  fix: {line.fix}")
    failed = len(report.failed)
    out.append("")
    out.append(f"{failed} check(s) failed." if failed else "All checks passed.")
    return "\n".join(out)


# ------------------------------------------------------------------------------ settings
def unresolved_key_vault_references(env: Mapping[str, str]) -> list[str]:
    """Settings App Service could not resolve: it passes the reference text itself."""
    return sorted(
        name for name, value in env.items() if value.strip().startswith(KEY_VAULT_REFERENCE)
    )


def key_vault_line(env: Mapping[str, str], secret_settings: Iterable[str]) -> CheckLine:
    name = "key-vault-references"
    unresolved = unresolved_key_vault_references(env)
    if unresolved:
        return fail(
            name,
            f"unresolved: {', '.join(unresolved)} (the app sees the literal @Microsoft.KeyVault"
            " text)",
            "give the app's identity Key Vault Secrets User on the vault, check the secret name"
            " and keyVaultReferenceIdentity, then restart the app; the portal's Environment"
            " variables blade shows each reference's status",
        )
    present = [s for s in secret_settings if env.get(s, "").strip()]
    if not present:
        return skip(name, "no secret settings are set (the Teams webhook is not configured)")
    return ok(name, f"resolved: {', '.join(present)}")


# ------------------------------------------------------------------------------ Graph roles
@dataclass(frozen=True)
class Features:
    audit_source: str
    signin_source: str
    reinvites: bool = True
    access_reviews: bool = False
    mail: bool = False


def required_graph_roles(features: Features) -> dict[str, tuple[str, ...]]:
    """Application permission -> the features that break without it (docs/permissions.md)."""
    needs: dict[str, list[str]] = {
        "Policy.Read.All": ["vendor policy and vendor-side checks"],
        "Directory.Read.All": [
            "guest and group lookups",
            "vendor-side check that xtap-watch may invite (its own directory roles)",
        ],
        "CrossTenantInformation.ReadBasic.All": ["client lookups by domain"],
    }
    if features.audit_source == "graph":
        needs.setdefault("AuditLog.Read.All", []).append("audit log watcher (Graph)")
    if features.signin_source == "graph":
        needs.setdefault("AuditLog.Read.All", []).append("sign-in evidence (Graph)")
    if features.reinvites:
        needs["User.Invite.All"] = ["re-invites"]
        needs["User.ReadWrite.All"] = ["re-invites (reset redemption)"]
    if features.access_reviews:
        needs["AccessReview.ReadWrite.All"] = ["guest access reviews"]
        needs["Group.Create"] = ["guest access reviews (creating each client's guests group)"]
        needs["GroupMember.ReadWrite.All"] = [
            "guest access reviews (keeping the guests groups' members)"
        ]
    return {role: tuple(why) for role, why in needs.items()}


def optional_graph_roles(features: Features) -> dict[str, tuple[str, ...]]:
    """Permissions whose absence only blinds one check (it is skipped): a warning, not a fail."""
    del features  # the B2B policy check runs whatever else is enabled
    return {
        "Policy.Read.B2BManagementPolicy": (
            "vendor-side check that every client domain passes the B2B invitation"
            " allow/deny list (skipped without it)",
        ),
    }


# Higher-privileged permissions Microsoft Graph documents as also sufficient for every call the
# feature makes; holding one of them satisfies the requirement (least privilege is the grant
# script's business, not a reason to report a working feature as broken).
SATISFIED_BY: dict[str, tuple[str, ...]] = {
    "Directory.Read.All": ("Directory.ReadWrite.All",),
    "User.Invite.All": ("User.ReadWrite.All", "Directory.ReadWrite.All"),
    "Group.Create": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "GroupMember.ReadWrite.All": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "Policy.Read.B2BManagementPolicy": ("Policy.ReadWrite.B2BManagementPolicy",),
}


def _lacking(roles: set[str], wanted: Mapping[str, Sequence[str]]) -> list[str]:
    return [
        role
        for role in wanted
        if role not in roles and not roles.intersection(SATISFIED_BY.get(role, ()))
    ]


def _named(missing: Sequence[str], why: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{role} ({', '.join(why[role])})" for role in missing)


def token_claims(access_token: str) -> dict[str, Any]:
    """The payload of a JWT access token, unverified: we only read our own token's claims."""
    parts = access_token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the token payload is not base64url JSON") from exc
    if not isinstance(claims, dict):
        raise ValueError("the token payload is not a JSON object")
    return claims


def graph_roles_line(
    claims: Mapping[str, Any],
    required: Mapping[str, Sequence[str]],
    optional: Mapping[str, Sequence[str]] | None = None,
) -> CheckLine:
    name = "graph-permissions"
    roles = {str(r) for r in claims.get("roles") or []}
    missing = _lacking(roles, required)
    missing_optional = _lacking(roles, optional or {})
    grant = (
        "a Privileged Role Administrator runs infra/scripts/grant_graph_permissions.py"
        " --grant-missing; new grants reach tokens issued after them (restart the app to"
        " drop cached tokens)"
    )
    if missing:
        detail = f"the token's roles lack {_named(missing, required)}"
        if missing_optional:
            detail += f"; also {_named(missing_optional, optional or {})}"
        return fail(name, detail, grant)
    detail = f"token roles cover {len(required)} permission(s) the enabled features need"
    notes: list[str] = []
    fixes: list[str] = []
    if missing_optional:
        notes.append(f"without {_named(missing_optional, optional or {})}")
        fixes.append(
            "to run that check, a Privileged Role Administrator runs the grant script with"
            " --grant-missing (azd: GRANT_B2B_POLICY_READ=true); otherwise accept it skipped"
        )
    if "Mail.Send" in roles:
        notes.append("Mail.Send is in the token, i.e. granted tenant-wide")
        fixes.append(
            "remove the Entra Mail.Send grant and scope it with Exchange RBAC for Applications"
            " (grant script --exchange-mail-send): the tenant-wide grant lets the app send as"
            " anyone"
        )
    if notes:
        return warn(name, "; ".join([detail, *notes]), "; ".join(fixes))
    return ok(name, detail)


# ------------------------------------------------------------------------------ errors
# AADSTS codes the doctor meets when it asks for tokens, with the fix for each.
AADSTS_FIXES: dict[str, str] = {
    "700016": "the app is not in that tenant: its admin has not consented or revoked consent",
    "7000229": "the app has no service principal in that tenant: its admin must consent again",
    "700211": "the federated credential's issuer does not match the managed identity's token",
    "700212": "the federated credential's audience must be api://AzureADTokenExchange",
    "700213": "the federated credential's subject must be the managed identity's principal ID",
    "70021": "no federated credential on the reader app matches the managed identity",
    "53003": "Conditional Access for workload identities blocks the app's sign-in",
    "90002": "the tenant does not exist (deleted, or a wrong tenant ID)",
    "7000215": "the client secret is wrong (local settings only)",
}


def aadsts_code(message: str) -> str | None:
    match = re.search(r"AADSTS(\d+)", message)
    return match.group(1) if match else None


def explain_token_error(message: str) -> str:
    code = aadsts_code(message)
    if code and code in AADSTS_FIXES:
        return f"AADSTS{code}: {AADSTS_FIXES[code]}"
    if code:
        return f"AADSTS{code}"
    first = message.strip().splitlines()[0] if message.strip() else "no message"
    return first[:200]


# ------------------------------------------------------------------------------ probes
def teams_line(status: int | None, error: str | None) -> CheckLine:
    """What the admins' Workflows flow answered to a test card.

    The simple contract the delivery code uses too: 200 = the flow posted and said so
    (a flow built with "Respond to a webhook request"), 202 = accepted but unconfirmed (a plain
    "When a Teams webhook request is received" trigger answers before the flow runs).
    """
    name = "teams"
    if status == 200:
        return ok(name, "the flow posted the test card and confirmed it (200)")
    if status == 202:
        return warn(
            name,
            "the flow accepted the test card (202) but cannot confirm it was posted",
            "build the confirming flow of docs/teams-workflow.md (it answers 200 only after"
            ' "Post card in a chat or channel" succeeded) so failed posts become visible; until'
            " then check the flow's run history",
        )
    if status is not None and status < 300:
        return warn(name, f"the flow answered {status}; 200 confirms, 202 accepts", "")
    if status == 429:
        return warn(name, "the flow throttled the test card (429)", "run the doctor again later")
    if status == 502:
        return fail(
            name,
            "the confirming flow ran but could not post the test card (502)",
            "open the flow's run history in Teams Workflows: the post action names the error",
        )
    detail = f"the flow answered {status}" if status else "the flow could not be reached"
    if error:
        detail += f": {error[:160]}"
    return fail(
        name,
        detail,
        "create the Workflows flow again and store its URL in Key Vault (docs/deploy.md step 4)",
    )


def easy_auth_line(status: int, headers: Mapping[str, str], body: bytes, url: str) -> CheckLine:
    """An anonymous call to a protected route must be refused before it reaches the app."""
    name = "easy-auth"
    lowered = {k.lower(): v for k, v in headers.items()}
    reached_function = FUNCTION_CHALLENGE_REALM in lowered.get("www-authenticate", "")
    if not reached_function:
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        reached_function = isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)
    if status == 401 and not reached_function:
        return ok(name, f"App Service Authentication refused an anonymous call to {url} (401)")
    if reached_function:
        return fail(
            name,
            f"an anonymous call to {url} reached the function (it answered {status} itself)",
            "turn App Service Authentication on with unauthenticatedClientAction Return401 and"
            " only /api/v1/health excluded (authsettingsV2 in infra/modules/app-config.bicep);"
            " azd provision restores it",
        )
    return fail(
        name,
        f"an anonymous call to {url} answered {status}, not 401",
        "check XTAP_PUBLIC_API_URL and App Service Authentication (authsettingsV2)",
    )


def easy_auth_environment_line(env: Mapping[str, str]) -> CheckLine | None:
    """In Azure, App Service sets WEBSITE_AUTH_ENABLED=True when Authentication is on."""
    if not env.get("WEBSITE_SITE_NAME"):
        return None
    if env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true":
        return None
    return fail(
        "easy-auth",
        "App Service Authentication is off for this app (WEBSITE_AUTH_ENABLED is not True)",
        "azd provision restores authsettingsV2 (infra/modules/app-config.bicep)",
    )
