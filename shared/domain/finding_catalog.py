"""Finding codes: one stable code, one severity, one documentation page each.

Like Maester's checks, a finding code never changes meaning once published: alerts,
dashboards and de-duplication keys refer to it. Every code here has a page at
``docs/findings/<CODE>.md`` (a unit test keeps the two in step), and every alert links
to that page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.domain.messages import FindingRef, Severity

FINDINGS_DOC_DIR = "docs/findings"


class FindingCode(StrEnum):
    # --- client outbound posture (toward the vendor tenant) ---
    CLIENT_VENDOR_ENTRY_MISSING = "CLIENT_VENDOR_ENTRY_MISSING"
    CLIENT_OUTBOUND_INHERITS_DEFAULT = "CLIENT_OUTBOUND_INHERITS_DEFAULT"
    CLIENT_DEFAULT_OUTBOUND_BLOCKED = "CLIENT_DEFAULT_OUTBOUND_BLOCKED"
    CLIENT_OUTBOUND_BLOCKED = "CLIENT_OUTBOUND_BLOCKED"
    CLIENT_OUTBOUND_USERS_SCOPED = "CLIENT_OUTBOUND_USERS_SCOPED"
    CLIENT_VENDOR_APP_NOT_ALLOWED = "CLIENT_VENDOR_APP_NOT_ALLOWED"
    CLIENT_OUTBOUND_APPS_UNVERIFIED = "CLIENT_OUTBOUND_APPS_UNVERIFIED"
    CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN = "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN"
    CLIENT_AUTO_REDEMPTION_NOT_TICKED = "CLIENT_AUTO_REDEMPTION_NOT_TICKED"
    CLIENT_CONSENT_MISSING = "CLIENT_CONSENT_MISSING"
    CLIENT_TENANT_UNREACHABLE = "CLIENT_TENANT_UNREACHABLE"
    CLIENT_SUSPECTED_DRIFT = "CLIENT_SUSPECTED_DRIFT"
    # --- either side ---
    POLICY_UNKNOWN_VALUE = "POLICY_UNKNOWN_VALUE"
    POLICY_INCOMPLETE = "POLICY_INCOMPLETE"
    # --- the vendor's own sign-in log ---
    SIGNIN_CLIENT_OUTBOUND_BLOCKED = "SIGNIN_CLIENT_OUTBOUND_BLOCKED"
    SIGNIN_VENDOR_INBOUND_BLOCKED = "SIGNIN_VENDOR_INBOUND_BLOCKED"
    SIGNIN_TENANT_RESTRICTIONS_BLOCKED = "SIGNIN_TENANT_RESTRICTIONS_BLOCKED"
    # --- vendor-side checks (the vendor's own tenant, per client) ---
    VENDOR_PARTNER_ENTRY_MISSING = "VENDOR_PARTNER_ENTRY_MISSING"
    VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT = "VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT"
    VENDOR_INBOUND_BLOCKS_CLIENT = "VENDOR_INBOUND_BLOCKS_CLIENT"
    VENDOR_INBOUND_USERS_SCOPED = "VENDOR_INBOUND_USERS_SCOPED"
    VENDOR_INBOUND_TARGETS_INCONSISTENT = "VENDOR_INBOUND_TARGETS_INCONSISTENT"
    VENDOR_AUTO_REDEMPTION_NOT_TICKED = "VENDOR_AUTO_REDEMPTION_NOT_TICKED"
    VENDOR_MFA_TRUST_ON_DEFAULT = "VENDOR_MFA_TRUST_ON_DEFAULT"
    VENDOR_MFA_TRUST_NOT_SET_FOR_CLIENT = "VENDOR_MFA_TRUST_NOT_SET_FOR_CLIENT"
    VENDOR_INBOUND_APPS_MISSING_MFA_APPS = "VENDOR_INBOUND_APPS_MISSING_MFA_APPS"
    VENDOR_INVITES_DISABLED = "VENDOR_INVITES_DISABLED"
    VENDOR_CLIENT_DOMAIN_NOT_ALLOWED = "VENDOR_CLIENT_DOMAIN_NOT_ALLOWED"
    VENDOR_APP_CANNOT_INVITE = "VENDOR_APP_CANNOT_INVITE"
    VENDOR_CROSS_CLOUD_NOT_ENABLED = "VENDOR_CROSS_CLOUD_NOT_ENABLED"


@dataclass(frozen=True, slots=True)
class FindingSpec:
    code: FindingCode
    title: str
    severity: Severity  # the usual severity; a producer may raise or lower it with reason


CATALOG: Mapping[FindingCode, FindingSpec] = {
    spec.code: spec
    for spec in (
        FindingSpec(
            FindingCode.CLIENT_VENDOR_ENTRY_MISSING,
            "No organizational entry for the vendor: the default settings apply",
            Severity.LOW,
        ),
        FindingSpec(
            FindingCode.CLIENT_OUTBOUND_INHERITS_DEFAULT,
            "The vendor entry inherits outbound B2B collaboration from the default",
            Severity.LOW,
        ),
        FindingSpec(
            FindingCode.CLIENT_DEFAULT_OUTBOUND_BLOCKED,
            "Default outbound B2B collaboration is blocked and there is no vendor exception",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.CLIENT_OUTBOUND_BLOCKED,
            "The client's entry for the vendor blocks outbound B2B collaboration",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.CLIENT_OUTBOUND_USERS_SCOPED,
            "Outbound B2B collaboration to the vendor is limited to some users or groups",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.CLIENT_VENDOR_APP_NOT_ALLOWED,
            "A vendor application is not allowed as an external application",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.CLIENT_OUTBOUND_APPS_UNVERIFIED,
            "External applications are limited to a list that cannot be checked",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN,
            "B2B direct connect outbound to the vendor is not blocked",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.CLIENT_AUTO_REDEMPTION_NOT_TICKED,
            "Automatic redemption (outbound) is not ticked for the vendor",
            Severity.LOW,
        ),
        FindingSpec(
            FindingCode.CLIENT_CONSENT_MISSING,
            "The client has not consented (or revoked consent) to the read-only app",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.CLIENT_TENANT_UNREACHABLE,
            "The client's policy could not be read",
            Severity.LOW,
        ),
        FindingSpec(
            FindingCode.CLIENT_SUSPECTED_DRIFT,
            "Suspected client drift: sign-ins fail with AADSTS500212 and the policy is unreadable",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.POLICY_UNKNOWN_VALUE,
            "A cross-tenant policy holds a value this version does not know",
            Severity.REVIEW,
        ),
        FindingSpec(
            FindingCode.POLICY_INCOMPLETE,
            "A cross-tenant policy is missing a setting needed for the verdict",
            Severity.REVIEW,
        ),
        FindingSpec(
            FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED,
            "Sign-ins fail with AADSTS500212 (the client's outbound policy blocks the vendor)",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.SIGNIN_VENDOR_INBOUND_BLOCKED,
            "Sign-ins fail with AADSTS500213 (the vendor's inbound policy blocks the client)",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.SIGNIN_TENANT_RESTRICTIONS_BLOCKED,
            "Sign-ins fail with AADSTS5000211 (tenant restrictions v2 on the users' device or "
            "network)",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.VENDOR_PARTNER_ENTRY_MISSING,
            "The vendor has no organizational entry for the client",
            Severity.LOW,
        ),
        FindingSpec(
            FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT,
            "The vendor's default inbound settings block the client and there is no entry",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.VENDOR_INBOUND_BLOCKS_CLIENT,
            "The vendor's inbound B2B collaboration does not admit the client to a vendor app",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.VENDOR_INBOUND_USERS_SCOPED,
            "The vendor admits only some of the client's users",
            Severity.INFO,
        ),
        FindingSpec(
            FindingCode.VENDOR_INBOUND_TARGETS_INCONSISTENT,
            "The vendor's inbound users and applications targets contradict each other",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.VENDOR_AUTO_REDEMPTION_NOT_TICKED,
            "Automatic redemption (inbound) is not ticked for the client",
            Severity.LOW,
        ),
        FindingSpec(
            FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT,
            "The vendor trusts MFA from every tenant (set on the default policy)",
            Severity.MEDIUM,
        ),
        FindingSpec(
            FindingCode.VENDOR_MFA_TRUST_NOT_SET_FOR_CLIENT,
            "MFA trust for the client is inherited from the default, not decided per partner",
            Severity.INFO,
        ),
        FindingSpec(
            FindingCode.VENDOR_INBOUND_APPS_MISSING_MFA_APPS,
            "The inbound application allowlist omits the apps guests need to register MFA",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.VENDOR_INVITES_DISABLED,
            "The vendor's authorization policy does not permit invitations",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.VENDOR_CLIENT_DOMAIN_NOT_ALLOWED,
            "A client domain cannot be invited (domain allowlist or denylist)",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.VENDOR_APP_CANNOT_INVITE,
            "Invitations are restricted to admins and xtap-watch holds no inviting role",
            Severity.HIGH,
        ),
        FindingSpec(
            FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED,
            "The client is in another Microsoft cloud without cross-cloud settings",
            Severity.HIGH,
        ),
    )
}


def doc_path(code: str) -> str:
    """Repository path of the page that explains ``code``."""
    return f"{FINDINGS_DOC_DIR}/{code}.md"


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation beside a verdict: what is wrong, how bad, and the exact fix.

    ``facts`` are short name/value pairs (tenant IDs, app IDs, the offending value) that
    alerts show as a fact table; they are data, never part of the stable code.
    """

    code: FindingCode
    severity: Severity
    message: str
    remediation: str
    facts: tuple[tuple[str, str], ...] = ()

    @property
    def title(self) -> str:
        return CATALOG[self.code].title

    @property
    def doc(self) -> str:
        return doc_path(self.code.value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "severity": self.severity.value,
            "title": self.title,
            "message": self.message,
            "remediation": self.remediation,
            "doc": self.doc,
            "facts": dict(self.facts),
        }

    def to_ref(self) -> FindingRef:
        """The queue-message form carried by alert records."""
        return FindingRef(
            code=self.code.value,
            severity=self.severity,
            message=self.message,
            remediation=self.remediation,
        )


def make_finding(
    code: FindingCode,
    message: str,
    remediation: str,
    *,
    severity: Severity | None = None,
    facts: Mapping[str, str] | None = None,
) -> Finding:
    return Finding(
        code=code,
        severity=severity if severity is not None else CATALOG[code].severity,
        message=message,
        remediation=remediation,
        facts=tuple(facts.items()) if facts else (),
    )
