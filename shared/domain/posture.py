"""Client outbound posture toward the vendor tenant (DESIGN §3.1-3.2).

``evaluate_outbound_posture`` takes the client's default policy and its partner entry for
the vendor (or ``None``), applies null-inheritance and Microsoft's users x applications
rules, and returns a verdict with coded findings:

* ``ALLOWED``  - every user can reach every vendor app;
* ``LIMITED``  - only some users, or only some of the vendor's apps (or the app list
  cannot be checked because the vendor's app IDs were not given);
* ``BLOCKED``  - nobody can reach any vendor app;
* ``UNKNOWN``  - no evidence: an unknown enum value in the decisive setting, a missing
  setting, or (from :func:`unknown_posture`) no consent / tenant unreachable.

Findings never change the verdict; the verdict never hides a finding. The checklist is
the vendor's onboarding guide (reference/000): outbound B2B collaboration allowed, external
applications allowed, B2B direct connect blocked, automatic redemption ticked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from shared.domain.finding_catalog import CATALOG, Finding, FindingCode, make_finding
from shared.domain.messages import Severity
from shared.domain.policy import (
    Access,
    DefaultPolicy,
    EffectiveB2BSetting,
    EffectivePolicy,
    PartnerPolicy,
    Reach,
    ReachKind,
    Source,
    Sourced,
    TargetConfiguration,
    UnknownValue,
    has_unknown_targets,
    is_guid,
    permits_anything,
    reach_for_app,
    reach_options,
    resolve_effective,
    users_readings,
)

if TYPE_CHECKING:
    from shared.domain.signin_evidence import SigninEvidence

ADMIN_CENTER_PATH = (
    "Microsoft Entra admin center (https://entra.microsoft.com) > Entra ID > "
    "External Identities > Cross-tenant access settings"
)


class Verdict(StrEnum):
    ALLOWED = "ALLOWED"
    LIMITED = "LIMITED"
    BLOCKED = "BLOCKED"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class AppReach:
    """Who can reach one vendor app; ``app_id=None`` is "any vendor app" (IDs not given)."""

    app_id: str | None
    reach: Reach

    def to_json(self) -> dict[str, Any]:
        return {"appId": self.app_id, **self.reach.to_json()}


@dataclass(frozen=True, slots=True)
class PostureResult:
    vendor_tenant_id: str
    verdict: Verdict
    findings: tuple[Finding, ...]
    explanation: tuple[str, ...]
    effective: EffectivePolicy | None = None  # None when the policy could not be read
    reach: tuple[AppReach, ...] = ()
    reason_code: FindingCode | None = None  # why the verdict is UNKNOWN
    evidence: SigninEvidence | None = None  # sign-in evidence shown beside the verdict

    @property
    def codes(self) -> frozenset[FindingCode]:
        return frozenset(f.code for f in self.findings)

    @property
    def max_severity(self) -> Severity | None:
        order = [Severity.HIGH, Severity.MEDIUM, Severity.REVIEW, Severity.LOW, Severity.INFO]
        present = {f.severity for f in self.findings}
        return next((s for s in order if s in present), None)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "verdict": self.verdict.value,
            "vendorTenantId": self.vendor_tenant_id,
            "findings": [f.to_dict() for f in self.findings],
            "explanation": list(self.explanation),
            "reach": [r.to_json() for r in self.reach],
            "effective": None if self.effective is None else self.effective.to_json(),
        }
        if self.reason_code is not None:
            body["reason"] = self.reason_code.value
        if self.evidence is not None:
            body["evidence"] = self.evidence.to_dict()
        return body


# --------------------------------------------------------------------- remediation text


@dataclass(frozen=True, slots=True)
class _Vendor:
    name: str
    tenant_id: str
    domain: str | None


def _org_steps(vendor: _Vendor) -> str:
    # Steps 3-5 of the vendor's onboarding guide: add the vendor as an organization and
    # open its outbound settings.
    lookup = (
        f"{vendor.domain} (or the tenant ID {vendor.tenant_id})"
        if vendor.domain
        else f"the tenant ID {vendor.tenant_id}"
    )
    return (
        f"In the {ADMIN_CENTER_PATH} > Organizational settings: if {vendor.name} is not "
        f"listed, select Add organization, enter {lookup} and select Add; then select the "
        f"link in the Outbound access column on the row for {vendor.name}"
    )


def _allow_collaboration_steps(vendor: _Vendor) -> str:
    vendor_tenant_id = vendor.tenant_id
    return (
        f"{_org_steps(vendor)}. On the B2B collaboration tab select "
        "Customize settings; under Users and groups choose Allow access and Applies to: All "
        "users (or select the groups that must reach the vendor); under External applications "
        "choose Allow access and All external applications; Save. "
        "Graph: PATCH /policies/crossTenantAccessPolicy/partners/"
        f"{vendor_tenant_id} with b2bCollaborationOutbound usersAndGroups and applications set "
        "to accessType 'allowed' (targets AllUsers / AllApplications); create the entry first "
        'with POST /policies/crossTenantAccessPolicy/partners {"tenantId": "'
        f'{vendor_tenant_id}"}} if it does not exist.'
    )


# ------------------------------------------------------------------------------ engine


def _describe_config(name: str, sourced: Sourced[TargetConfiguration]) -> str:
    where = {
        Source.PARTNER: "set on the vendor's organizational entry",
        Source.DEFAULT: "inherited from the default settings",
        Source.NOT_SET: "not set anywhere",
    }[sourced.source]
    config = sourced.value
    if config is None:
        return f"{name}: {where}"
    targets = ", ".join(t.target for t in config.targets) or "(no targets)"
    return f"{name}: {config.access_type} [{targets}] ({where})"


def explain_effective(effective: EffectivePolicy, vendor: str) -> tuple[str, ...]:
    lines = [
        (
            f"Organizational entry for {vendor} ({effective.partner_tenant_id}): "
            + (
                "present; null fields inherit from the default"
                if effective.partner_entry_present
                else "missing; the default settings apply entirely"
            )
        ),
        _describe_config(
            "Outbound B2B collaboration, users and groups",
            effective.b2b_collaboration_outbound.users_and_groups,
        ),
        _describe_config(
            "Outbound B2B collaboration, external applications",
            effective.b2b_collaboration_outbound.applications,
        ),
        _describe_config(
            "Outbound B2B direct connect, users and groups",
            effective.b2b_direct_connect_outbound.users_and_groups,
        ),
        _describe_config(
            "Outbound B2B direct connect, external applications",
            effective.b2b_direct_connect_outbound.applications,
        ),
        "Automatic redemption (outbound): "
        + ("ticked" if effective.automatic_redemption_outbound.value else "not ticked")
        + (
            " on the entry"
            if effective.partner_entry_present
            else " (only an organizational entry can tick it)"
        ),
    ]
    return tuple(lines)


def _touches(values: Sequence[UnknownValue], prefix: str) -> list[UnknownValue]:
    return [u for u in values if u.path.startswith(prefix)]


def _relevant_unknowns(
    effective: EffectivePolicy, default: DefaultPolicy, partner: PartnerPolicy | None
) -> list[UnknownValue]:
    """Unknown values in the outbound fields that are actually in effect."""
    relevant: list[UnknownValue] = []
    for setting_name, setting in (
        ("b2bCollaborationOutbound", effective.b2b_collaboration_outbound),
        ("b2bDirectConnectOutbound", effective.b2b_direct_connect_outbound),
    ):
        for field_name, sourced in (
            ("usersAndGroups", setting.users_and_groups),
            ("applications", setting.applications),
        ):
            source_values = (
                partner.unknown_values
                if sourced.source is Source.PARTNER and partner is not None
                else default.unknown_values
                if sourced.source is Source.DEFAULT
                else ()
            )
            relevant.extend(_touches(source_values, f"{setting_name}.{field_name}"))
    return relevant


def _collaboration_blocked_finding(setting: EffectiveB2BSetting, vendor: _Vendor) -> Finding:
    from_default = (
        setting.users_and_groups.source is Source.DEFAULT
        and setting.applications.source is Source.DEFAULT
    )
    if from_default:
        return make_finding(
            FindingCode.CLIENT_DEFAULT_OUTBOUND_BLOCKED,
            f"The client's default outbound B2B collaboration blocks access and there is no "
            f"exception for {vendor.name}: no user can sign in to the vendor's apps "
            "(they fail with AADSTS500212).",
            "Add the vendor exception (keep the default as it is): "
            + _allow_collaboration_steps(vendor),
            facts={"vendorTenantId": vendor.tenant_id},
        )
    return make_finding(
        FindingCode.CLIENT_OUTBOUND_BLOCKED,
        f"The client's organizational entry for {vendor.name} blocks outbound B2B collaboration: "
        "no user can sign in to the vendor's apps (they fail with AADSTS500212).",
        _allow_collaboration_steps(vendor),
        facts={"vendorTenantId": vendor.tenant_id},
    )


def _unknown_reason(setting: EffectiveB2BSetting) -> FindingCode:
    """Why the verdict could not be determined, most fundamental cause first."""
    if not setting.complete:
        return FindingCode.POLICY_INCOMPLETE
    if any(
        s.value is not None and s.value.access is Access.UNKNOWN
        for s in (setting.users_and_groups, setting.applications)
    ):
        return FindingCode.POLICY_UNKNOWN_VALUE
    if has_unknown_targets(setting):
        return FindingCode.POLICY_UNKNOWN_VALUE
    # Only remaining cause: an explicit app list and no vendor app IDs to look for.
    return FindingCode.CLIENT_OUTBOUND_APPS_UNVERIFIED


def _possible_verdicts(setting: EffectiveB2BSetting, apps: Sequence[str | None]) -> set[Verdict]:
    """Every verdict the setting can mean, over the readings of what we cannot know.

    A user keyword we do not know is read the same way for every app; whether an unknown
    application keyword covers an app is read app by app. The verdict stands only where
    all readings agree: an unknown value never decides it (issue 13, item 5).
    """
    verdicts: set[Verdict] = set()
    for cover in users_readings(setting):
        kinds = [
            {r.kind for r in reach_options(setting, app, users_cover_all=cover)} for app in apps
        ]
        if any(ReachKind.UNDETERMINED in k for k in kinds):
            verdicts.add(Verdict.UNKNOWN)
            continue
        if all(ReachKind.ALL in k for k in kinds):
            verdicts.add(Verdict.ALLOWED)
        if all(ReachKind.NOBODY in k for k in kinds):
            verdicts.add(Verdict.BLOCKED)
        # LIMITED: some choice of one reading per app is neither all-ALL nor all-NOBODY.
        partial = any(k - {ReachKind.ALL, ReachKind.NOBODY} for k in kinds)
        mixed = any(
            ReachKind.ALL in ki and ReachKind.NOBODY in kj
            for i, ki in enumerate(kinds)
            for j, kj in enumerate(kinds)
            if i != j
        )
        if partial or mixed:
            verdicts.add(Verdict.LIMITED)
    return verdicts


def evaluate_outbound_posture(
    default_policy: DefaultPolicy,
    partner_policy: PartnerPolicy | None,
    vendor_tenant_id: str,
    vendor_app_ids: Sequence[str],
    *,
    vendor_name: str = "the vendor",
    vendor_domain: str | None = None,
) -> PostureResult:
    """The client's outbound posture toward ``vendor_tenant_id`` and its apps.

    ``partner_policy`` is the client's entry for the vendor tenant (``None``: not
    configured, the default applies entirely). ``vendor_app_ids`` are the application
    (client) IDs of the vendor's apps guests sign in to; with none, any non-Microsoft app
    is assumed and an explicit app list is reported as unverifiable.
    Raises ``ValueError`` if the tenant ID is not a GUID or the partner entry belongs to
    another tenant (a caller bug, not a posture).
    """
    if not is_guid(vendor_tenant_id.strip()):
        raise ValueError(f"vendor tenant ID is not a GUID: {vendor_tenant_id!r}")
    tenant = vendor_tenant_id.strip().lower()
    vendor = _Vendor(vendor_name, tenant, vendor_domain)
    apps: tuple[str | None, ...] = tuple(
        dict.fromkeys(a.strip().lower() for a in vendor_app_ids)
    ) or (None,)
    effective = resolve_effective(default_policy, partner_policy, tenant)
    explanation = explain_effective(effective, vendor_name)
    collaboration = effective.b2b_collaboration_outbound
    findings: list[Finding] = []

    unknowns = _relevant_unknowns(effective, default_policy, partner_policy)
    for u in unknowns:
        findings.append(
            make_finding(
                FindingCode.POLICY_UNKNOWN_VALUE,
                f"The client's policy holds {u.value!r} at {u.path}, a value this version of "
                "xtap-watch does not know. Every meaning it could have is considered: where "
                "one of them would change the verdict, the verdict is UNKNOWN.",
                "Check the setting in the admin center and report the value so the rule can be "
                "taught; no change is needed on the client's side if access works.",
                facts={"path": u.path, "value": u.value},
            )
        )

    if not collaboration.complete:
        missing = [
            name
            for name, sourced in (
                ("usersAndGroups", collaboration.users_and_groups),
                ("applications", collaboration.applications),
            )
            if sourced.value is None
        ]
        findings.append(
            make_finding(
                FindingCode.POLICY_INCOMPLETE,
                "Neither the client's entry for the vendor nor its default policy holds "
                f"b2bCollaborationOutbound.{' / '.join(missing)}, so the verdict cannot be "
                "decided.",
                "Re-read the policy (GET /policies/crossTenantAccessPolicy/default and "
                f"/partners/{tenant}); if the property is really absent, ask the client's admin "
                "to open and save the outbound settings once.",
                facts={"missing": ", ".join(missing)},
            )
        )

    reaches = tuple(AppReach(app, reach_for_app(collaboration, app)) for app in apps)
    verdicts = _possible_verdicts(collaboration, apps)
    verdict = verdicts.pop() if len(verdicts) == 1 else Verdict.UNKNOWN
    reason = _unknown_reason(collaboration) if verdict is Verdict.UNKNOWN else None

    if verdict is Verdict.BLOCKED:
        findings.append(_collaboration_blocked_finding(collaboration, vendor))
    else:
        findings.extend(
            _partial_findings(
                reaches,
                collaboration,
                vendor,
                apps_unverifiable=reason is FindingCode.CLIENT_OUTBOUND_APPS_UNVERIFIED,
            )
        )
        if reason is FindingCode.CLIENT_OUTBOUND_APPS_UNVERIFIED:
            # Unknowable app list without vendor app IDs is a limited posture we can
            # describe, not an absence of evidence.
            verdict, reason = Verdict.LIMITED, None

    if not effective.partner_entry_present:
        findings.append(
            make_finding(
                FindingCode.CLIENT_VENDOR_ENTRY_MISSING,
                f"The client has no organizational entry for {vendor_name}; its default "
                "settings apply, so a later hardening of the default will cut the vendor off "
                "without anyone touching a vendor setting.",
                "Add the vendor as an organization and customize its outbound settings: "
                + _allow_collaboration_steps(vendor)
                + " Then, on Trust settings, tick Automatically redeem invitations.",
                facts={"vendorTenantId": tenant},
            )
        )
    elif verdict is not Verdict.BLOCKED and (
        collaboration.users_and_groups.source is Source.DEFAULT
        or collaboration.applications.source is Source.DEFAULT
    ):
        inherited = [
            name
            for name, sourced in (
                ("users and groups", collaboration.users_and_groups),
                ("external applications", collaboration.applications),
            )
            if sourced.source is Source.DEFAULT
        ]
        findings.append(
            make_finding(
                FindingCode.CLIENT_OUTBOUND_INHERITS_DEFAULT,
                f"The client's entry for {vendor_name} inherits outbound B2B collaboration "
                f"({' and '.join(inherited)}) from the default settings; a change to the default "
                "will reach the vendor.",
                f"{_org_steps(vendor)}. On the B2B collaboration tab switch from "
                "Default settings to Customize settings and allow users and groups and external "
                "applications explicitly; Save.",
                facts={"inherited": ", ".join(inherited)},
            )
        )

    findings.extend(_direct_connect_findings(effective, vendor))

    if not effective.automatic_redemption_outbound.value:
        findings.append(
            make_finding(
                FindingCode.CLIENT_AUTO_REDEMPTION_NOT_TICKED,
                "Automatically redeem invitations is not ticked on the client's outbound trust "
                f"settings for {vendor_name}"
                + ("" if effective.partner_entry_present else " (it needs an organizational entry)")
                + ": users see a consent prompt on first sign-in.",
                f"{_org_steps(vendor)}. Select the Trust settings tab, tick "
                f"Automatically redeem invitations with the tenant {vendor_name}, Save. "
                f"Graph: PATCH /policies/crossTenantAccessPolicy/partners/{tenant} "
                '{"automaticUserConsentSettings": {"outboundAllowed": true}}.',
                facts={"vendorTenantId": tenant},
            )
        )

    return PostureResult(
        vendor_tenant_id=tenant,
        verdict=verdict,
        findings=tuple(findings),
        explanation=explanation,
        effective=effective,
        reach=reaches,
        reason_code=reason,
    )


def _partial_findings(
    reaches: Sequence[AppReach],
    setting: EffectiveB2BSetting,
    vendor: _Vendor,
    *,
    apps_unverifiable: bool,
) -> list[Finding]:
    findings: list[Finding] = []
    nobody = [r.app_id for r in reaches if r.reach.kind is ReachKind.NOBODY and r.app_id]
    if nobody:
        findings.append(
            make_finding(
                FindingCode.CLIENT_VENDOR_APP_NOT_ALLOWED,
                f"The client's outbound external-applications setting does not let anyone reach "
                f"{len(nobody)} of the vendor's apps ({', '.join(nobody)}); sign-ins to "
                f"{'it' if len(nobody) == 1 else 'them'} fail with AADSTS500212.",
                f"{_org_steps(vendor)}. On B2B collaboration > External applications "
                "choose Allow access and either All external applications, or pick the vendor's "
                f"apps {', '.join(nobody)}; if the access status is Block access, take those "
                "apps out of the list. Graph: GET the partner entry, add the app IDs to "
                "b2bCollaborationOutbound.applications.targets (a PATCH replaces the whole list), "
                "PATCH it back.",
                facts={"apps": ", ".join(nobody)},
            )
        )
    scoped = [r for r in reaches if r.reach.kind in (ReachKind.ONLY, ReachKind.ALL_EXCEPT)]
    if scoped:
        principals = sorted({p for r in scoped for p in r.reach.principals})
        only = any(r.reach.kind is ReachKind.ONLY for r in scoped)
        who = (
            f"only the users and groups {', '.join(principals)}"
            if only
            else f"everyone except {', '.join(principals)}"
        )
        findings.append(
            make_finding(
                FindingCode.CLIENT_OUTBOUND_USERS_SCOPED,
                f"Outbound B2B collaboration to {vendor.name} is allowed for {who}; other "
                "users fail with AADSTS500212. That is fine when the client meant it "
                "(register the expected scope), otherwise it is drift.",
                f"If all users should reach the vendor: {_org_steps(vendor)}. On B2B "
                "collaboration > Users and groups choose Allow access and Applies to: All users; "
                "Save. If the scope is intended, record it as the client's expected scope in the "
                "registry so it is not reported as drift.",
                facts={
                    "principals": ", ".join(principals),
                    "mode": "only" if only else "all_except",
                },
            )
        )
    apps_config = setting.applications.value
    if apps_unverifiable and apps_config is not None:
        listed = ", ".join(t.target for t in apps_config.targets)
        findings.append(
            make_finding(
                FindingCode.CLIENT_OUTBOUND_APPS_UNVERIFIED,
                f"The client {'allows' if apps_config.access is Access.ALLOWED else 'blocks'} only "
                f"listed external applications ({listed}) and the vendor's app IDs are not "
                "configured, so whether the vendor's apps are covered cannot be checked.",
                "Vendor side: configure the vendor's app IDs (setting XTAP_VENDOR_APP_IDS, or "
                "--vendor-app on the CLI) so the list can be checked. Client side, to remove the "
                f"doubt: {_org_steps(vendor)}. Under B2B collaboration > External applications "
                "choose Allow access and All external applications.",
                facts={"targets": listed},
            )
        )
    return findings


def _direct_connect_findings(effective: EffectivePolicy, vendor: _Vendor) -> list[Finding]:
    setting = effective.b2b_direct_connect_outbound
    if permits_anything(setting) is not True:
        return []
    source = (
        "the client's entry for the vendor"
        if Source.PARTNER in (setting.users_and_groups.source, setting.applications.source)
        else "the client's default settings"
    )
    return [
        make_finding(
            FindingCode.CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN,
            f"B2B direct connect outbound toward {vendor.name} is not blocked ({source}). "
            "The vendor does not support B2B direct connect and asks for it to stay "
            "blocked; an open outbound setting shares limited contact data about the "
            "client's users.",
            f"{_org_steps(vendor)}. Select the B2B direct connect tab, choose Customize "
            "settings (or Default settings if the default blocks it), set Users and groups to "
            "Block access for All users and External applications to Block access for All "
            "external applications; Save. Graph: PATCH /policies/crossTenantAccessPolicy/"
            f"partners/{vendor.tenant_id} with b2bDirectConnectOutbound usersAndGroups "
            "AllUsers and applications AllApplications, both accessType 'blocked'.",
            facts={"source": source},
        )
    ]


# --------------------------------------------------------------------- unknown posture


def unknown_posture(
    reason_code: FindingCode | str, message: str, *, vendor_tenant_id: str = ""
) -> PostureResult:
    """A verdict of UNKNOWN with its reason, for when the policy could not be read.

    ``reason_code`` is normally ``CLIENT_CONSENT_MISSING`` (401/403: consent never given
    or revoked) or ``CLIENT_TENANT_UNREACHABLE`` (timeouts, 5xx, throttling exhausted).
    The verdict is never "blocked": not being able to look is not evidence of a block.
    """
    try:
        code = FindingCode(str(reason_code))
    except ValueError:
        code = FindingCode.CLIENT_TENANT_UNREACHABLE
    if code is FindingCode.CLIENT_CONSENT_MISSING:
        remediation = (
            "Send the client's admin the admin-consent link for the read-only xtap-watch app "
            "(xtap-watch clients add prints it); a Global Administrator or Privileged Role "
            "Administrator of the client tenant must approve Policy.Read.All. Until then the "
            "posture is watched only through the vendor's sign-in log."
        )
    else:
        remediation = (
            "Nothing to change on the client's side yet: the next sweep retries. If it persists, "
            "check the client's tenant ID in the registry and the read-only app's sign-in logs."
        )
    finding = make_finding(
        code,
        message,
        remediation,
        severity=CATALOG[code].severity if code in CATALOG else Severity.REVIEW,
        facts={"reason": str(reason_code)},
    )
    return PostureResult(
        vendor_tenant_id=vendor_tenant_id.strip().lower(),
        verdict=Verdict.UNKNOWN,
        findings=(finding,),
        explanation=(f"The client's policy was not read: {message}",),
        reason_code=code,
    )


def with_findings(result: PostureResult, extra: Sequence[Finding], **changes: Any) -> PostureResult:
    """A copy of ``result`` with ``extra`` findings appended (verdict untouched)."""
    return replace(result, findings=result.findings + tuple(extra), **changes)
