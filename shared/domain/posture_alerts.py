"""From a client's state transition (or vendor-side findings) to an outbox alert record."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.client_state import Transition, TransitionKind
from shared.domain.clients import ClientRecord
from shared.domain.effective_changes import effective_changes
from shared.domain.finding_catalog import Finding
from shared.domain.messages import (
    AlertKind,
    AlertRecord,
    ClientRef,
    Link,
    SettingChange,
    Severity,
)
from shared.domain.posture import PostureResult, Verdict
from shared.domain.runbooks import runbook_url


@dataclass(frozen=True)
class AlertContext:
    vendor_name: str
    portal_url: str  # Entra admin center base URL
    docs_base_url: str  # runbook base: this app's route or a published docs/ (runbooks.py)
    api_base_url: str | None = None


def cross_tenant_settings_url(portal_url: str) -> str:
    return (
        f"{portal_url.rstrip('/')}/#view/Microsoft_AAD_IAM/CompanyRelationshipsMenuBlade"
        "/~/CrossTenantAccessSettings"
    )


def finding_links(findings: Sequence[Finding], ctx: AlertContext) -> tuple[Link, ...]:
    seen: dict[str, Link] = {}
    for finding in findings:
        code = finding.code.value
        if code not in seen:
            url = runbook_url(ctx.docs_base_url, code)
            seen[code] = Link(title=f"Runbook: {finding.title}", url=url)
    return tuple(seen.values())


def _steps(findings: Sequence[Finding]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.remediation for f in findings if f.remediation))


def _client_ref(client: ClientRecord) -> ClientRef:
    return ClientRef(name=client.name, tenant_id=client.tenant_id, domains=client.domains)


def unknown_cause(result: PostureResult) -> str:
    """Why the posture could not be determined, in words (the reason finding's title)."""
    reason = next((f for f in result.findings if f.code is result.reason_code), None)
    if reason is not None:
        return reason.title
    return result.reason_code.value if result.reason_code else "no conclusive observation"


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} h" if hours >= 1 else f"{delta.total_seconds() / 60:.0f} min"


def _title(t: Transition, client: ClientRecord, result: PostureResult, vendor: str) -> str:
    verdict = result.verdict
    if t.kind is TransitionKind.POSTURE_UNKNOWN:
        return f"{client.name}: the posture toward {vendor} cannot be determined"
    if t.kind is TransitionKind.UNKNOWN_PROLONGED:
        since = t.episode_started_at or t.at
        return (
            f"{client.name}: the posture toward {vendor} has been unknown for "
            f"{_hours(t.at - since)}"
        )
    if t.kind is TransitionKind.POSTURE_KNOWN:
        return f"{client.name}: the posture toward {vendor} can be determined again"
    if t.kind is TransitionKind.RECOVERED:
        return f"{client.name}: users can reach {vendor} again"
    if t.kind is TransitionKind.CONSENT_MISSING:
        return f"{client.name}: the read-only app cannot read the client's policy"
    if t.kind is TransitionKind.CONSENT_RESTORED:
        return f"{client.name}: the client's policy can be read again"
    if verdict is Verdict.BLOCKED:
        what = f"users can no longer reach {vendor}"
    elif verdict is Verdict.LIMITED:
        what = f"only some users or apps can reach {vendor}"
    else:
        what = f"sign-ins to {vendor} are failing (suspected outbound block)"
    if t.kind is TransitionKind.REMINDER:
        return f"Reminder {t.number}: {client.name} still drifted, {what}"
    if t.kind is TransitionKind.DRIFT_CHANGED:
        return f"{client.name}: drift changed, {what}"
    return f"{client.name}: {what}"


def alert_for_transition(
    t: Transition,
    client: ClientRecord,
    result: PostureResult,
    ctx: AlertContext,
    previous_verdict: str | None = None,
    previous_effective: Mapping[str, Any] | None = None,
) -> AlertRecord:
    kind = t.alert_kind
    if kind is None:  # every transition kind maps to an alert kind; guard the invariant
        raise ValueError(f"transition {t.kind} has no alert kind")
    closing = t.kind in (TransitionKind.RECOVERED, TransitionKind.POSTURE_KNOWN)
    findings = () if closing else result.findings
    facts = {
        "Verdict": result.verdict.value,
        "Client tenant": client.tenant_id,
        "Episode": str(t.episode),
    }
    unknown = t.kind in (TransitionKind.POSTURE_UNKNOWN, TransitionKind.UNKNOWN_PROLONGED)
    if unknown or t.kind is TransitionKind.POSTURE_KNOWN:
        facts["Episode"] = f"unknown {t.episode}"
        if t.episode_started_at is not None:
            facts["Unknown since"] = t.episode_started_at.isoformat()
    if unknown:
        facts["Cause"] = unknown_cause(result)
        if result.reason_code is not None:
            facts["Reason code"] = result.reason_code.value
    elif t.episode_started_at is not None and t.kind not in (
        TransitionKind.DRIFTED,
        TransitionKind.POSTURE_KNOWN,
    ):
        facts["Drifted since"] = t.episode_started_at.isoformat()
    changes: tuple[SettingChange, ...] = ()
    if previous_verdict and previous_verdict != result.verdict.value:
        facts["Previous verdict"] = previous_verdict
        changes = (
            SettingChange(
                setting="Outbound posture toward the vendor",
                before=previous_verdict,
                after=result.verdict.value,
            ),
        )
    # The effective settings that changed since the last check say more than the verdict.
    changes = effective_changes(
        previous_effective,
        result.effective.to_json() if result.effective else None,
        ctx.vendor_name,
    ) or changes
    links = (
        Link(title="Cross-tenant access settings", url=cross_tenant_settings_url(ctx.portal_url)),
        *finding_links(findings, ctx),
    )
    if ctx.api_base_url:
        links += (
            Link(
                title="Posture (API)",
                url=f"{ctx.api_base_url.rstrip('/')}/v1/clients/{client.tenant_id}/posture",
            ),
        )
    return AlertRecord(
        dedup_key=t.dedup_key,
        kind=kind,
        severity=t.severity,
        title=_title(t, client, result, ctx.vendor_name),
        summary=_summary(t, client, result, ctx.vendor_name, findings),
        details=result.explanation,
        client=_client_ref(client),
        changes=changes,
        when=t.at,
        evidence=result.evidence.alert_evidence() if result.evidence else {},
        findings=tuple(f.to_ref() for f in findings),
        remediation_steps=_steps(findings),
        links=links,
        facts=facts,
        created_at=t.at,
        source="posture",
    )


def _summary(
    t: Transition,
    client: ClientRecord,
    result: PostureResult,
    vendor: str,
    findings: Sequence[Finding],
) -> str:
    """One or two sentences: the most severe finding says what is wrong; the effective
    policy, line by line, goes to the alert's details."""
    if t.kind is TransitionKind.RECOVERED:
        return (
            f"{client.name}'s outbound policy allows {vendor} again "
            f"(verdict {result.verdict.value})."
        )
    if t.kind is TransitionKind.POSTURE_KNOWN:
        return (
            f"{client.name}'s posture toward {vendor} is known again: "
            f"{result.verdict.value}. No action needed."
        )
    if t.kind in (TransitionKind.POSTURE_UNKNOWN, TransitionKind.UNKNOWN_PROLONGED):
        return (
            f"xtap-watch cannot tell whether {client.name}'s users can reach {vendor}: "
            f"{unknown_cause(result)}. A drift would go unnoticed until this is fixed."
        )
    if findings:
        order = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.REVIEW: 2, Severity.LOW: 3,
                 Severity.INFO: 4}
        return min(findings, key=lambda f: order[f.severity]).message
    return " ".join(result.explanation)


def vendor_side_signature(findings: Sequence[Finding]) -> str:
    """Stable identity of a set of vendor-side findings (what, not the wording)."""
    codes = sorted({f.code.value for f in findings if f.severity in _ALERTING})
    return hashlib.sha256("|".join(codes).encode()).hexdigest()[:16] if codes else ""


_ALERTING = frozenset({Severity.HIGH, Severity.MEDIUM})


def vendor_side_alert(
    findings: Sequence[Finding],
    client: ClientRecord,
    signature: str,
    now: datetime,
    ctx: AlertContext,
) -> AlertRecord:
    alerting = [f for f in findings if f.severity in _ALERTING]
    severity = (
        Severity.HIGH if any(f.severity is Severity.HIGH for f in alerting) else (Severity.MEDIUM)
    )
    return AlertRecord(
        dedup_key=f"vendorside:{client.tenant_id}:{signature}",
        kind=AlertKind.VENDOR_POSTURE,
        severity=severity,
        title=f"{ctx.vendor_name}'s own settings get in the way of {client.name}'s users",
        summary=" ".join(f.message for f in alerting),
        client=_client_ref(client),
        when=now,
        findings=tuple(f.to_ref() for f in alerting),
        remediation_steps=_steps(alerting),
        links=(
            Link(
                title="Cross-tenant access settings",
                url=cross_tenant_settings_url(ctx.portal_url),
            ),
            *finding_links(alerting, ctx),
        ),
        facts={"Client tenant": client.tenant_id, "Findings": str(len(alerting))},
        created_at=now,
        source="posture",
    )
