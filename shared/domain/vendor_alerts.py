"""Alerts about the vendor's own side that have one cause for many clients (issue 14.2).

A setting on the vendor's *default* policy or its authorization policy (MFA trusted from
every tenant, invitations disabled, a default inbound that shuts out clients without an
entry) is one cause, however many clients it touches: it gets one alert naming the
affected clients, not one alert per client. The same holds for faults in xtap-watch's own
identity (a broken federated credential fails every client tenant's token) and for a vendor
policy that does not parse (issue 13.7): one alert, with the cause and the fix, repeated at
most once per period while it lasts.

Pure: the services decide when to send, these functions say what.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.domain.finding_catalog import Finding, FindingCode, make_finding
from shared.domain.messages import AlertKind, AlertRecord, FindingRef, Link, Severity
from shared.domain.posture_alerts import AlertContext, cross_tenant_settings_url, finding_links
from shared.domain.token_errors import VENDOR_FAULT_TEXT, TokenFailure, VendorFault

# Codes whose cause is the vendor's default or authorization policy, not the client's entry.
_VENDOR_WIDE_CODES = frozenset(
    {
        FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT,
        FindingCode.VENDOR_INVITES_DISABLED,
        FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT,
        # Invitations restricted to admins while xtap-watch holds no inviting role: one
        # authorization-policy setting and one role assignment, the same for every client.
        FindingCode.VENDOR_APP_CANNOT_INVITE,
    }
)
_ALERTING = frozenset({Severity.HIGH, Severity.MEDIUM})
NAMES_SHOWN = 25  # affected clients named in an alert; the rest are counted


def is_vendor_wide(finding: Finding) -> bool:
    """One cause for every client: the vendor's default or authorization policy."""
    if finding.code in _VENDOR_WIDE_CODES:
        return True
    # An unknown allowInvitesFrom value is on the authorization policy (tenant-wide).
    return (
        finding.code is FindingCode.POLICY_UNKNOWN_VALUE
        and dict(finding.facts).get("path") == "allowInvitesFrom"
    )


def per_client(findings: Iterable[Finding]) -> list[Finding]:
    """The findings a per-client vendor-side alert is about (vendor-wide ones go elsewhere)."""
    return [f for f in findings if not is_vendor_wide(f)]


@dataclass(frozen=True, slots=True)
class VendorWideCause:
    finding: Finding  # the first client's finding of this code (message of that client)
    clients: tuple[str, ...]  # display names of the affected clients, sorted


def vendor_wide_causes(
    findings_by_client: Mapping[str, Sequence[Finding]],
) -> list[VendorWideCause]:
    """Group the alerting vendor-wide findings of every client by code."""
    first: dict[FindingCode, Finding] = {}
    names: dict[FindingCode, set[str]] = {}
    for client, findings in findings_by_client.items():
        for f in findings:
            if is_vendor_wide(f) and f.severity in _ALERTING:
                first.setdefault(f.code, f)
                names.setdefault(f.code, set()).add(client)
    return [
        VendorWideCause(first[code], tuple(sorted(names[code], key=str.lower)))
        for code in sorted(first, key=lambda c: c.value)
    ]


def vendor_wide_signature(causes: Sequence[VendorWideCause]) -> str:
    """What is wrong, vendor-wide (codes only: a new client joining does not re-alert)."""
    codes = "|".join(c.finding.code.value for c in causes)
    return hashlib.sha256(codes.encode()).hexdigest()[:16] if codes else ""


def _named(clients: Sequence[str]) -> str:
    shown = ", ".join(clients[:NAMES_SHOWN])
    rest = len(clients) - NAMES_SHOWN
    return shown + (f" and {rest} more" if rest > 0 else "")


def _general(finding: Finding) -> str:
    """A vendor-wide finding's message without the one client it was computed for."""
    if finding.code is FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT:
        return (
            "The vendor's default inbound B2B collaboration does not admit users of clients "
            "that have no organizational entry; their sign-ins fail with AADSTS500213."
        )
    return finding.message


def _links(findings: Sequence[Finding], ctx: AlertContext) -> tuple[Link, ...]:
    settings = Link(
        title="Cross-tenant access settings", url=cross_tenant_settings_url(ctx.portal_url)
    )
    return (settings, *finding_links(findings, ctx))


def _steps(findings: Iterable[Finding]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.remediation for f in findings if f.remediation))


def vendor_wide_alert(
    causes: Sequence[VendorWideCause],
    signature: str,
    episode: int,
    now: datetime,
    ctx: AlertContext,
) -> AlertRecord:
    """One alert for every vendor-wide cause, naming the clients each one affects."""
    if not causes:
        raise ValueError("a vendor-wide alert needs at least one cause")
    severity = (
        Severity.HIGH
        if any(c.finding.severity is Severity.HIGH for c in causes)
        else Severity.MEDIUM
    )
    findings = [c.finding for c in causes]
    affected = sorted({n for c in causes for n in c.clients}, key=str.lower)
    lines = [f"{_general(c.finding)} Affected clients: {_named(c.clients)}." for c in causes]
    facts = {"Affected clients": str(len(affected)), "Causes": str(len(causes))}
    for cause in causes:
        facts[cause.finding.code.value] = f"{len(cause.clients)} clients"
    refs = tuple(
        FindingRef(
            code=c.finding.code.value,
            severity=c.finding.severity,
            message=f"{_general(c.finding)} Affected clients: {_named(c.clients)}.",
            remediation=c.finding.remediation,
        )
        for c in causes
    )
    return AlertRecord(
        dedup_key=f"vendorwide:{signature}:{episode}",
        kind=AlertKind.VENDOR_POSTURE,
        severity=severity,
        title=(
            f"{ctx.vendor_name}'s default settings affect {len(affected)} "
            f"client{'s' if len(affected) != 1 else ''}"
        ),
        summary=" ".join(lines),
        when=now,
        findings=refs,
        remediation_steps=_steps(findings),
        links=_links(findings, ctx),
        facts=facts,
        created_at=now,
        source="posture",
    )


def period_key(now: datetime, hours: int) -> str:
    """The repeat period ``now`` falls in (alerts of one cause repeat once per period)."""
    hours = max(1, hours)
    return f"{int(now.timestamp() // (hours * 3600))}"


def _single_cause_alert(
    finding: Finding,
    dedup_key: str,
    title: str,
    facts: dict[str, str],
    now: datetime,
    ctx: AlertContext,
) -> AlertRecord:
    return AlertRecord(
        dedup_key=dedup_key,
        kind=AlertKind.VENDOR_POSTURE,
        severity=Severity.HIGH,
        title=title,
        summary=finding.message,
        when=now,
        findings=(finding.to_ref(),),
        remediation_steps=(finding.remediation,),
        links=_links([finding], ctx),
        facts=facts,
        created_at=now,
        source="posture",
    )


def vendor_identity_alert(
    failure: TokenFailure,
    first_tenant: str,
    first_client: str,
    period: str,
    now: datetime,
    ctx: AlertContext,
) -> AlertRecord:
    """xtap-watch's own identity cannot sign in to client tenants (one cause, all clients)."""
    fault = failure.fault or VendorFault.FEDERATED_CREDENTIAL
    what, fix = VENDOR_FAULT_TEXT[fault]
    finding = make_finding(
        FindingCode.VENDOR_IDENTITY_MISCONFIGURED,
        f"xtap-watch could not get a token for the read-only app: {what} "
        f"({failure.code_text}). No client's policy can be read until it is fixed; clients "
        "show UNKNOWN (tenant unreachable) and their consent status is left as it was.",
        fix,
        facts={"fault": fault.value, "code": failure.code_text},
    )
    return _single_cause_alert(
        finding,
        f"vendor-identity:{fault.value}:{failure.code_text}:{period}",
        f"xtap-watch cannot sign in to client tenants: {what}",
        {
            "Fault": fault.value.replace("_", " "),
            "Entra answer": failure.code_text,
            "First seen reading": f"{first_client} ({first_tenant})",
            "Detail": failure.description[:300],
        },
        now,
        ctx,
    )


def vendor_policy_unreadable_alert(
    where: str, problem: str, period: str, now: datetime, ctx: AlertContext
) -> AlertRecord:
    """The vendor's own policy did not parse: vendor-side checks are skipped (issue 13.7)."""
    digest = hashlib.sha256(f"{where}|{problem}".encode()).hexdigest()[:12]
    finding = make_finding(
        FindingCode.VENDOR_POLICY_UNREADABLE,
        f"The vendor's {where} could not be interpreted ({problem}). Vendor-side checks "
        "(inbound access, automatic redemption, MFA trust, invitations) are skipped for the "
        "clients it concerns until it can be read again; client-side verdicts still run.",
        f"Open the {where} in the vendor tenant's Microsoft Entra admin center > External "
        "Identities > Cross-tenant access settings and check that it saves cleanly; compare "
        "it with the same object in Graph Explorer. If Microsoft added a new property or "
        "value, report the raw JSON so the parser can be taught.",
        facts={"where": where, "problem": problem[:300]},
    )
    return _single_cause_alert(
        finding,
        f"vendor-policy-unreadable:{digest}:{period}",
        f"{ctx.vendor_name}'s own policy could not be read: vendor-side checks skipped",
        {"Where": where, "Problem": problem[:300]},
        now,
        ctx,
    )
