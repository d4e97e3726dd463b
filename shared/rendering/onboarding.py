"""The client's checklist: the vendor's onboarding guide, step by step, tailored to findings.

Source: the vendor's guide "SSO - Azure/Entra Enable External Client"
(``../shared/reference/000_589611ff25a60f44.txt``). Its eight steps are kept in its order
and wording, with the vendor's name, sign-in domain and tenant ID filled in. Tailoring
marks the steps that the posture findings say must change ("needed"), and the steps to
verify when a finding's code is not one we can place ("check"); the others stay as
context so the client's administrator can follow the guide from the top.

The posture engine's codes are pinned to steps in ``FINDING_CODE_TOPICS``; a code not
listed there is placed by the words it contains (``…DIRECT_CONNECT…`` → step 8), and one
that names no topic marks the outbound steps "check".
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from shared.domain.messages import FindingRef

Topic = Literal["network", "default", "partner", "users", "apps", "direct_connect", "redeem",
                "consent"]

# The posture engine's client-side codes (docs/findings/), pinned to the guide's steps.
# Codes not listed here are placed by the words they contain (below).
FINDING_CODE_TOPICS: dict[str, frozenset[Topic]] = {
    # no entry for the vendor: add the organization, then allow users and apps
    "CLIENT_VENDOR_ENTRY_MISSING": frozenset({"partner", "users", "apps"}),
    "CLIENT_DEFAULT_OUTBOUND_BLOCKED": frozenset({"default", "partner", "users", "apps"}),
    "SIGNIN_CLIENT_OUTBOUND_BLOCKED": frozenset({"partner", "users", "apps"}),
    # the entry exists: customize its outbound access
    "CLIENT_OUTBOUND_BLOCKED": frozenset({"users", "apps"}),
    "CLIENT_OUTBOUND_INHERITS_DEFAULT": frozenset({"users", "apps"}),
    "CLIENT_OUTBOUND_USERS_SCOPED": frozenset({"users"}),
    "CLIENT_VENDOR_APP_NOT_ALLOWED": frozenset({"apps"}),
    "CLIENT_OUTBOUND_APPS_UNVERIFIED": frozenset({"apps"}),
    "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN": frozenset({"direct_connect"}),
    "CLIENT_AUTO_REDEMPTION_NOT_TICKED": frozenset({"redeem"}),
    "CLIENT_CONSENT_MISSING": frozenset({"consent"}),
    "SIGNIN_TENANT_RESTRICTIONS_BLOCKED": frozenset({"network"}),
}


def is_client_side(code: str) -> bool:
    """Vendor-side findings (``VENDOR_…``, the vendor's inbound block seen in sign-ins)
    are the vendor's to fix and never go into the client's e-mail."""
    return not code.startswith(("VENDOR_", "SIGNIN_VENDOR_"))

# Checked in order; the first rule whose words all occur in the code wins.
_TOPIC_RULES: tuple[tuple[frozenset[str], frozenset[Topic]], ...] = (
    (frozenset({"DIRECT", "CONNECT"}), frozenset({"direct_connect"})),
    (frozenset({"DIRECTCONNECT"}), frozenset({"direct_connect"})),
    (frozenset({"REDEEM"}), frozenset({"redeem"})),
    (frozenset({"REDEMPTION"}), frozenset({"redeem"})),
    (frozenset({"AUTOMATIC", "CONSENT"}), frozenset({"redeem"})),
    (frozenset({"CONSENT"}), frozenset({"consent"})),
    (frozenset({"TENANT", "RESTRICTIONS"}), frozenset({"network"})),
    (frozenset({"TRV2"}), frozenset({"network"})),
    (frozenset({"APP"}), frozenset({"apps"})),
    (frozenset({"APPS"}), frozenset({"apps"})),
    (frozenset({"APPLICATION"}), frozenset({"apps"})),
    (frozenset({"APPLICATIONS"}), frozenset({"apps"})),
    (frozenset({"SCOPED"}), frozenset({"users"})),
    (frozenset({"SCOPE"}), frozenset({"users"})),
    (frozenset({"GROUP"}), frozenset({"users"})),
    (frozenset({"GROUPS"}), frozenset({"users"})),
    (frozenset({"LIMITED"}), frozenset({"users", "apps"})),
    (frozenset({"PARTNER"}), frozenset({"partner", "users", "apps"})),
    (frozenset({"ENTRY"}), frozenset({"partner", "users", "apps"})),
    (frozenset({"DEFAULT"}), frozenset({"default", "partner", "users", "apps"})),
    (frozenset({"BLOCKED"}), frozenset({"partner", "users", "apps"})),
)


def finding_topics(code: str) -> frozenset[Topic]:
    """The parts of the checklist a finding code is about; empty when unknown."""
    if code in FINDING_CODE_TOPICS:
        return FINDING_CODE_TOPICS[code]
    words = set(re.split(r"[^A-Z0-9]+", code.upper()))
    for needed, topics in _TOPIC_RULES:
        if needed <= words:
            return topics
    return frozenset()


@dataclass(frozen=True)
class GuideStep:
    number: int  # the guide's own step number
    title: str
    detail: str
    topics: frozenset[Topic]  # findings about these topics make the step "needed"


# Wording follows the guide; {vendor}, {vendor_domain}, {vendor_tenant_id} and
# {client_tenant_id} are filled in per client.
GUIDE_STEPS: tuple[GuideStep, ...] = (
    GuideStep(
        1,
        "Open the cross-tenant access settings",
        "Sign in to the Microsoft Entra admin center (https://entra.microsoft.com) as at "
        "least a Security Administrator of your tenant {client_tenant_id} and go to "
        "Identity → External Identities → Cross-tenant access settings (newer menus call "
        "Identity “Entra ID”).",
        frozenset(),
    ),
    GuideStep(
        2,
        "Check the default outbound access",
        "Look at the Outbound access setting. If its status is “All allowed”, B2B "
        "collaboration with {vendor} is allowed by default. If it is “All blocked” or "
        "“Limited access”, follow the next steps to enable the collaboration with {vendor}.",
        frozenset({"default"}),
    ),
    GuideStep(
        3,
        "Add {vendor} as an organization",
        "Select Organizational settings, then Add organization. (If {vendor} is already "
        "listed, go to step 5.)",
        frozenset({"partner"}),
    ),
    GuideStep(
        4,
        "Enter {vendor_domain}",
        "In the field “Tenant ID or domain name”, enter {vendor_domain} (or {vendor}'s "
        "tenant ID {vendor_tenant_id}) and select Add.",
        frozenset({"partner"}),
    ),
    GuideStep(
        5,
        "Open {vendor}'s outbound access",
        "In the row for {vendor} (Name column), select the link in the Outbound access "
        "column (“Inherited from default” until it is customized).",
        frozenset(),
    ),
    GuideStep(
        6,
        "Allow your users (B2B collaboration → Users and groups)",
        "On the B2B collaboration tab, under Users and groups, select Customize settings "
        "and choose Allow access. Apply it to all your users, or to the groups that use "
        "{vendor}, as your security policy requires.",
        frozenset({"users"}),
    ),
    GuideStep(
        7,
        "Allow the external applications",
        "On the same page, open the External applications tab, select Allow access and "
        "All external applications, then select Save.",
        frozenset({"apps"}),
    ),
    GuideStep(
        8,
        "Keep B2B direct connect blocked and redeem invitations automatically",
        "{vendor} does not use B2B direct connect: on the B2B direct connect tab, make sure "
        "access is blocked (the default). Then open Trust settings, tick “Automatically "
        "redeem invitations with the tenant {vendor}” and select Save.",
        frozenset({"direct_connect", "redeem"}),
    ),
)

PREREQUISITE = (
    "Your network and firewall must allow *.{vendor_site} (that is {vendor_site} and its "
    "subdomains)."
)
# Not in the guide: AADSTS5000211 means the client's tenant restrictions v2 policy (on its
# network or devices) blocks the vendor's tenant, which no cross-tenant access step fixes.
TENANT_RESTRICTIONS_NOTE = (
    "Your tenant restrictions (v2) policy also blocks {vendor}: sign-ins fail with "
    "AADSTS5000211. Allow {vendor}'s tenant ({vendor_tenant_id}) in that policy."
)


@dataclass(frozen=True)
class TailoredStep:
    number: int
    title: str
    detail: str
    status: Literal["needed", "check", "info"]
    because: tuple[int, ...] = ()  # 1-based numbers of the findings that need this step


# What we found, said to the client's administrator ("your tenant"), for the codes the
# posture engine emits. The engine's own messages and fixes are written for the vendor's
# admins (they say "the client" and mention the vendor's registry), so they are not used.
CLIENT_STATEMENTS: dict[str, str] = {
    "CLIENT_OUTBOUND_BLOCKED": "Your tenant's organizational setting for {vendor} blocks "
    "outbound B2B collaboration, so none of your users can sign in to {vendor} (they see "
    "error AADSTS500212).",
    "CLIENT_DEFAULT_OUTBOUND_BLOCKED": "Your tenant's default outbound setting blocks B2B "
    "collaboration and there is no organizational setting for {vendor}, so none of your "
    "users can sign in to {vendor} (error AADSTS500212).",
    "CLIENT_VENDOR_ENTRY_MISSING": "Your tenant has no organizational setting for {vendor}; "
    "the default settings apply, and they do not let your users reach {vendor}.",
    "CLIENT_OUTBOUND_INHERITS_DEFAULT": "Your organizational setting for {vendor} inherits "
    "the outbound default instead of allowing {vendor} explicitly; a later change to the "
    "default would block your users.",
    "CLIENT_OUTBOUND_USERS_SCOPED": "Your outbound setting for {vendor} allows only some of "
    "your users or groups; the others cannot sign in to {vendor} (error AADSTS500212).",
    "CLIENT_VENDOR_APP_NOT_ALLOWED": "Your outbound setting for {vendor} does not allow "
    "{vendor}'s applications, so sign-ins to them fail (error AADSTS500212).",
    "CLIENT_OUTBOUND_APPS_UNVERIFIED": "Your outbound setting for {vendor} allows only a list "
    "of external applications; please make sure {vendor}'s applications are on it, or allow "
    "all external applications.",
    "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN": "Outbound B2B direct connect to {vendor} is "
    "allowed; {vendor} does not use it, so it should stay blocked.",
    "CLIENT_AUTO_REDEMPTION_NOT_TICKED": "\"Automatically redeem invitations\" is not "
    "ticked for {vendor}, so your users see a consent prompt on their first sign-in.",
    "CLIENT_CONSENT_MISSING": "{vendor}'s read-only monitoring app has no consent in your "
    "tenant, so we cannot check these settings for you.",
    "SIGNIN_CLIENT_OUTBOUND_BLOCKED": "Your users' sign-ins to {vendor} fail with "
    "AADSTS500212: your tenant's outbound settings block {vendor}.",
    "CLIENT_SUSPECTED_DRIFT": "Your users' sign-ins to {vendor} fail with AADSTS500212, "
    "which means your tenant's outbound settings most likely block {vendor}.",
    "SIGNIN_TENANT_RESTRICTIONS_BLOCKED": "Your users' sign-ins to {vendor} fail with "
    "AADSTS5000211: your tenant restrictions (v2) policy blocks {vendor}'s tenant.",
}


def client_statement(finding: FindingRef, vendor_name: str) -> str:
    """The finding as the client's administrator should read it."""
    known = CLIENT_STATEMENTS.get(finding.code)
    if known:
        return known.format(vendor=vendor_name)
    text = re.sub(r"\b[Tt]he client's\b", "Your tenant's", finding.message)
    return re.sub(r"\bthe client\b", "your tenant", text)


@dataclass(frozen=True)
class ClientChecklist:
    prerequisite: str
    steps: tuple[TailoredStep, ...]
    findings: tuple[FindingRef, ...]
    statements: tuple[str, ...]  # each finding, worded for the client's administrator
    consent_missing: bool  # a finding says the read-only consent is not (or no longer) there
    tenant_restrictions: str | None  # set when a finding points at tenant restrictions v2
    unplaced: tuple[FindingRef, ...] = field(default=())  # findings we could not place


def vendor_site(vendor_domain: str) -> str:
    """``sso.osttra.com`` → ``osttra.com``: the guide asks to allow ``*.osttra.com``."""
    labels = vendor_domain.strip(".").lower().split(".")
    return ".".join(labels[-2:]) if len(labels) > 2 else ".".join(labels)


def client_checklist(
    *,
    vendor_name: str,
    vendor_domain: str,
    vendor_tenant_id: str,
    client_tenant_id: str,
    findings: Sequence[FindingRef],
    agreed_codes: Collection[str] = (),
) -> ClientChecklist:
    """The guide's steps for one client, marked by the client-side findings.

    ``agreed_codes``: findings that describe what the client agreed with the vendor (a
    scope registered as the client's expected one): not shown and not "action needed".
    """
    values = {
        "vendor": vendor_name,
        "vendor_domain": vendor_domain,
        "vendor_tenant_id": vendor_tenant_id,
        "client_tenant_id": client_tenant_id,
        "vendor_site": vendor_site(vendor_domain),
    }
    findings = [f for f in findings if is_client_side(f.code) and f.code not in agreed_codes]
    placed = [(f, finding_topics(f.code)) for f in findings]
    unplaced = tuple(f for f, topics in placed if not topics)
    steps = []
    for step in GUIDE_STEPS:
        because = tuple(n for n, (_, topics) in enumerate(placed, 1) if topics & step.topics)
        status: Literal["needed", "check", "info"] = "info"
        if because:
            status = "needed"
        elif unplaced and step.topics & {"users", "apps", "direct_connect", "redeem"}:
            status = "check"
        steps.append(
            TailoredStep(
                number=step.number,
                title=step.title.format(**values),
                detail=step.detail.format(**values),
                status=status,
                because=because,
            )
        )
    return ClientChecklist(
        prerequisite=PREREQUISITE.format(**values),
        steps=tuple(steps),
        findings=tuple(findings),
        statements=tuple(client_statement(f, vendor_name) for f in findings),
        consent_missing=any("consent" in topics for _, topics in placed),
        tenant_restrictions=(
            TENANT_RESTRICTIONS_NOTE.format(**values)
            if any("network" in topics for _, topics in placed) else None
        ),
        unplaced=unplaced,
    )
