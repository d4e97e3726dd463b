"""Vendor-side checks: the vendor's own tenant, per registered client (DESIGN §3.7).

``evaluate_vendor_side`` reads the vendor's default policy, its partner entry for the
client (or ``None``), the authorization policy and, when known, the B2B invitation
domain allow/deny list (``GET /beta/policies/b2bManagementPolicies`` — beta only, so
optional), the directory roles of xtap-watch's own service principal and the Microsoft
cloud of each side, and returns findings. It never returns a verdict: the verdict is
about the client's outbound posture; these findings say what the vendor must fix on its
own side for that client's guests to get in.

The MFA-registration apps an inbound application allowlist must contain are the four
Microsoft lists in "Configure cross-tenant access settings for B2B collaboration" >
"Considerations for allowing Microsoft applications" (quoted in reference/002):
My Apps, Microsoft App Access Panel, My Profile and My Sign-ins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.finding_catalog import Finding, FindingCode, make_finding
from shared.domain.messages import Severity
from shared.domain.policy import (
    ALL_APPLICATIONS,
    ALL_USERS,
    Access,
    DefaultPolicy,
    EffectiveB2BSetting,
    EffectivePolicy,
    PartnerPolicy,
    PolicyParseError,
    Reach,
    ReachKind,
    Source,
    UnknownValue,
    is_guid,
    reach_for_app,
    resolve_effective,
)
from shared.domain.posture import ADMIN_CENTER_PATH
from shared.domain.reinvite import (
    GUEST_INVITER_FIX,
    INVITING_ROLE_IDS,
    restricts_app_invites,
)

MY_APPS = "2793995e-0a7d-40d7-bd35-6968ba142197"
MICROSOFT_APP_ACCESS_PANEL = "0000000c-0000-0000-c000-000000000000"
MY_PROFILE = "8c59ead7-d703-4a27-9e55-c96a0054c8d2"
MY_SIGNINS = "19db86c3-b2b9-44cc-b339-36da233a3be2"

MFA_REGISTRATION_APPS: Mapping[str, str] = {
    MY_APPS: "My Apps",
    MICROSOFT_APP_ACCESS_PANEL: "Microsoft App Access Panel",
    MY_PROFILE: "My Profile",
    MY_SIGNINS: "My Sign-ins",
}
# Without these two a guest who must register MFA in the vendor tenant (MFA not trusted
# from home) cannot reach Security Info and loops on the registration prompt.
_MFA_LOOP_APPS = frozenset({MY_SIGNINS, MICROSOFT_APP_ACCESS_PANEL})

INVITES_FROM_VALUES = frozenset(
    {"none", "adminsandguestinviters", "adminsguestinvitersandallmembers", "everyone"}
)


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    """The part of ``GET /policies/authorizationPolicy`` these checks read."""

    allow_invites_from: str | None


@dataclass(frozen=True, slots=True)
class InvitationDomainPolicy:
    """The B2B invitation allow/deny list (external collaboration settings).

    Microsoft allows one list or the other, never both: ``allowed_domains`` set means an
    allowlist, ``blocked_domains`` set means a denylist; both empty means no restriction.
    """

    allowed_domains: tuple[str, ...] = ()
    blocked_domains: tuple[str, ...] = ()


PUBLIC_CLOUD = "microsoftonline.com"
CLOUD_NAMES: Mapping[str, str] = {
    PUBLIC_CLOUD: "Microsoft Azure commercial cloud",
    "microsoftonline.us": "Microsoft Azure Government",
    "partner.microsoftonline.cn": "Microsoft Azure operated by 21Vianet",
}


@dataclass(frozen=True, slots=True)
class CloudContext:
    """Which Microsoft cloud each side is in, and the vendor's Microsoft cloud settings.

    ``client_cloud`` is the ``cloud_instance_name`` of the client tenant's OpenID
    configuration (None: not known); ``allowed_cloud_endpoints`` is the vendor's
    ``GET /policies/crossTenantAccessPolicy`` ``allowedCloudEndpoints``.
    """

    vendor_cloud: str
    client_cloud: str | None
    allowed_cloud_endpoints: tuple[str, ...] = ()


def _get(obj: Mapping[str, Any], key: str) -> Any:
    lowered = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def parse_authorization_policy(payload: Any) -> AuthorizationPolicy:
    if not isinstance(payload, Mapping):
        raise PolicyParseError("authorization policy: expected an object")
    value = _get(payload, "allowInvitesFrom")
    if value is not None and not isinstance(value, str):
        raise PolicyParseError("allowInvitesFrom: expected a string")
    return AuthorizationPolicy(allow_invites_from=value)


def _domains(value: Any, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise PolicyParseError(f"{path}: expected a list of domain names")
    return tuple(d.strip().lower() for d in value if d.strip())


def _definition_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        # Microsoft's own example prints the definition with single quotes
        # ("{'B2BManagementPolicy':{'Version':1}}"); accept that spelling, nothing looser.
        if '"' not in text:
            try:
                return json.loads(text.replace("'", '"'))
            except json.JSONDecodeError:
                pass
        raise PolicyParseError(f"definition: not JSON ({first.msg})") from first


def parse_b2b_management_policies(payload: Any) -> InvitationDomainPolicy:
    """``GET /beta/policies/b2bManagementPolicies``: the organisation default's domain lists.

    An empty collection means no policy was ever saved: invitations are not restricted by
    domain. The organisation default (``isOrganizationDefault``, a boolean that Microsoft's
    example prints as the string "true") wins; otherwise the first policy.
    """
    items = _get(payload, "value") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise PolicyParseError("b2bManagementPolicies: expected a collection of policies")
    if not items:
        return InvitationDomainPolicy()
    chosen = next(
        (i for i in items if str(_get(i, "isOrganizationDefault")).lower() == "true"), items[0]
    )
    return parse_invitation_domain_policy(chosen)


def parse_invitation_domain_policy(payload: Any) -> InvitationDomainPolicy:
    """Parse the invitation domain list from any of the shapes Microsoft returns.

    Accepted: the legacy B2B management policy object (``definition`` is a list of JSON
    *strings* holding ``{"B2BManagementPolicy": {"InvitationsAllowedAndBlockedDomainsPolicy":
    {...}}}``), that decoded definition, an object with
    ``invitationsAllowedAndBlockedDomainsPolicy``, or the inner object itself.
    """
    obj: Any = payload
    if isinstance(obj, Mapping) and _get(obj, "definition") is not None:
        definition = _get(obj, "definition")
        if isinstance(definition, list) and definition:
            definition = definition[0]
        if isinstance(definition, str):
            obj = _definition_json(definition)
        else:
            obj = definition
    if not isinstance(obj, Mapping):
        raise PolicyParseError("invitation domain policy: expected an object")
    inner = _get(obj, "B2BManagementPolicy")
    if isinstance(inner, Mapping):
        obj = inner
    lists = _get(obj, "InvitationsAllowedAndBlockedDomainsPolicy")
    if isinstance(lists, Mapping):
        obj = lists
    return InvitationDomainPolicy(
        allowed_domains=_domains(_get(obj, "AllowedDomains"), "allowedDomains"),
        blocked_domains=_domains(_get(obj, "BlockedDomains"), "blockedDomains"),
    )


def _domain_listed(domain: str, listed: Iterable[str]) -> bool:
    domain = domain.strip().lower()
    for entry in listed:
        if entry == domain:
            return True
        # "*.contoso.com" style entries cover subdomains (and are harmless if unused).
        if entry.startswith("*.") and (domain == entry[2:] or domain.endswith(entry[1:])):
            return True
    return False


def _partner_steps(client: str, client_tenant_id: str) -> str:
    return (
        f"In the vendor tenant's {ADMIN_CENTER_PATH} > Organizational settings: if {client} "
        f"is not listed, select Add organization, enter the tenant ID {client_tenant_id} and "
        f"select Add; then select the link in the Inbound access column on the row for {client}"
    )


def _unknown_findings(values: Sequence[UnknownValue], prefixes: tuple[str, ...]) -> list[Finding]:
    return [
        make_finding(
            FindingCode.POLICY_UNKNOWN_VALUE,
            f"The vendor's policy holds {u.value!r} at {u.path}, a value this version of "
            "xtap-watch does not know; it is not counted as admitting anyone.",
            "Check the setting in the admin center and report the value so the rule can be taught.",
            facts={"path": u.path, "value": u.value},
        )
        for u in values
        if u.path.startswith(prefixes)
    ]


def _inconsistent(setting: EffectiveB2BSetting) -> str | None:
    """Blocking all users while admitting apps (or the reverse) contradicts itself."""
    users = setting.users_and_groups.value
    apps = setting.applications.value
    if users is None or apps is None:
        return None
    users_all_blocked = users.access is Access.BLOCKED and ALL_USERS.lower() in users.target_keys
    apps_all_blocked = (
        apps.access is Access.BLOCKED and ALL_APPLICATIONS.lower() in apps.target_keys
    )
    if users_all_blocked and not apps_all_blocked:
        return "all external users are blocked but applications are not all blocked"
    if apps_all_blocked and not users_all_blocked:
        return "all applications are blocked but external users are not all blocked"
    return None


def evaluate_vendor_side(
    vendor_default: DefaultPolicy,
    vendor_partner: PartnerPolicy | None,
    client_tenant_id: str,
    vendor_app_ids: Sequence[str],
    authorization_policy: AuthorizationPolicy | None,
    client_domains: Sequence[str],
    *,
    invitation_domains: InvitationDomainPolicy | None = None,
    client_name: str = "the client",
    inviter_role_ids: frozenset[str] | None = None,
    cloud: CloudContext | None = None,
) -> list[Finding]:
    """What the vendor's own settings do to one client's guests (DESIGN §3.7).

    ``inviter_role_ids``: directory role template IDs held by xtap-watch's own service
    principal (None: not known). ``cloud``: which Microsoft cloud each side is in.
    """
    if not is_guid(client_tenant_id.strip()):
        raise ValueError(f"client tenant ID is not a GUID: {client_tenant_id!r}")
    tenant = client_tenant_id.strip().lower()
    effective = resolve_effective(vendor_default, vendor_partner, tenant)
    inbound = effective.b2b_collaboration_inbound
    apps: tuple[str | None, ...] = tuple(
        dict.fromkeys(a.strip().lower() for a in vendor_app_ids)
    ) or (None,)
    findings: list[Finding] = []
    findings.extend(
        _unknown_findings(
            effective.unknown_values,
            ("b2bCollaborationInbound", "inboundTrust", "automaticUserConsentSettings"),
        )
    )

    reaches = {app: reach_for_app(inbound, app) for app in apps}
    # Checks that only matter for admitted guests are skipped only when nobody is
    # admitted for certain; an undetermined reach (unknown value, unknown app list) may admit.
    admitted_somewhere = any(r.kind is not ReachKind.NOBODY for r in reaches.values())
    findings.extend(_admission_findings(effective, reaches, client_name, tenant))

    reason = _inconsistent(inbound)
    if reason is not None:
        findings.append(
            make_finding(
                FindingCode.VENDOR_INBOUND_TARGETS_INCONSISTENT,
                f"The vendor's inbound B2B collaboration for {client_name} is inconsistent: "
                f"{reason}. Microsoft requires the two tabs to agree; the result is hard to "
                "predict and the admin center may refuse to save further edits.",
                f"{_partner_steps(client_name, tenant)}. On B2B collaboration make External "
                "users and groups and Applications agree: either allow both (all or the "
                "selected ones) or block both for all; Save.",
                facts={"problem": reason},
            )
        )

    if admitted_somewhere and not effective.automatic_redemption_inbound.value:
        findings.append(
            make_finding(
                FindingCode.VENDOR_AUTO_REDEMPTION_NOT_TICKED,
                "Automatically redeem invitations is not ticked on the vendor's inbound trust "
                f"settings for {client_name}"
                + ("" if effective.partner_entry_present else " (it needs an organizational entry)")
                + "; even if the client ticks it outbound, guests keep the consent prompt.",
                f"{_partner_steps(client_name, tenant)}. Select Trust settings, tick "
                f"Automatically redeem invitations with the tenant {client_name}; Save. Graph: "
                f"PATCH /policies/crossTenantAccessPolicy/partners/{tenant} "
                '{"automaticUserConsentSettings": {"inboundAllowed": true}}.',
                facts={"clientTenantId": tenant},
            )
        )

    findings.extend(_mfa_trust_findings(vendor_default, effective, client_name, tenant))
    if admitted_somewhere:
        findings.extend(_mfa_app_findings(effective, client_name, tenant))
    findings.extend(_invitation_findings(authorization_policy, invitation_domains, client_domains))
    findings.extend(_inviter_findings(authorization_policy, inviter_role_ids))
    if cloud is not None:
        findings.extend(_cross_cloud_findings(cloud, effective, client_name, tenant))
    return findings


def _inviter_findings(
    authorization: AuthorizationPolicy | None, role_ids: frozenset[str] | None
) -> list[Finding]:
    """Graph invitation-post: app-only invitations do not work while invitations are
    restricted to administrators — unless the app's principal holds an inviting role."""
    invites_from = None if authorization is None else authorization.allow_invites_from
    if role_ids is None or not restricts_app_invites(invites_from):
        return []
    if role_ids & set(INVITING_ROLE_IDS):
        return []
    return [
        make_finding(
            FindingCode.VENDOR_APP_CANNOT_INVITE,
            "Guest invitations in the vendor tenant are restricted to admins and Guest "
            "Inviters (allowInvitesFrom = adminsAndGuestInviters), and xtap-watch's service "
            "principal holds none of the inviting roles (Guest Inviter, User Administrator, "
            "Global Administrator): every redemption reset it sends is refused with 403.",
            GUEST_INVITER_FIX.removesuffix(" Then request the re-invite again.")
            + " Keep allowInvitesFrom as it is: the restriction is the recommended setting.",
            facts={"allowInvitesFrom": str(invites_from)},
        )
    ]


def _cross_cloud_findings(
    cloud: CloudContext, effective: EffectivePolicy, client: str, tenant: str
) -> list[Finding]:
    """"Enable B2B collaboration across Microsoft clouds": both sides enable the partner's
    cloud in Microsoft cloud settings *and* add the partner as an organization (the default
    settings never apply across clouds)."""
    client_cloud = (cloud.client_cloud or "").strip().lower()
    vendor_cloud = cloud.vendor_cloud.strip().lower()
    if not client_cloud or client_cloud == vendor_cloud:
        return []
    allowed = {c.strip().lower() for c in cloud.allowed_cloud_endpoints}
    missing: list[str] = []
    if client_cloud not in allowed:
        missing.append(f"{client_cloud} is not enabled in the vendor's Microsoft cloud settings")
    if not effective.partner_entry_present:
        missing.append("the vendor has no organizational entry for the client")
    if not missing:
        return []
    name = CLOUD_NAMES.get(client_cloud, client_cloud)
    return [
        make_finding(
            FindingCode.VENDOR_CROSS_CLOUD_NOT_ENABLED,
            f"{client} is in another Microsoft cloud ({name}) and cross-cloud B2B "
            f"collaboration is not set up on the vendor's side: {'; '.join(missing)}. Until "
            "both sides enable each other's cloud and add each other as organizations, every "
            "B2B sign-in and invitation between the tenants fails.",
            f"In the vendor tenant's {ADMIN_CENTER_PATH} > Microsoft cloud settings, tick "
            f"{name}; Save (Graph: PATCH /policies/crossTenantAccessPolicy with "
            f'"allowedCloudEndpoints" including "{client_cloud}"). Then Organizational '
            f"settings > Add organization > enter the tenant ID {tenant} (lookup by domain "
            "does not work across clouds) > Add, and configure its inbound access. The "
            f"client's admin must do the same for {CLOUD_NAMES.get(vendor_cloud, vendor_cloud)}"
            " in their tenant.",
            facts={"clientCloud": client_cloud, "vendorCloud": vendor_cloud},
        )
    ]


def _admission_findings(
    effective: EffectivePolicy,
    reaches: Mapping[str | None, Reach],
    client: str,
    tenant: str,
) -> list[Finding]:
    findings: list[Finding] = []
    nobody = [app for app, r in reaches.items() if r.kind is ReachKind.NOBODY]
    if not effective.partner_entry_present:
        if nobody:
            findings.append(
                make_finding(
                    FindingCode.VENDOR_DEFAULT_INBOUND_BLOCKS_CLIENT,
                    f"The vendor has no organizational entry for {client} and its default "
                    "inbound B2B collaboration does not admit the client's users"
                    + (
                        f" to {', '.join(a for a in nobody if a)}"
                        if any(nobody)
                        else " to the vendor's apps"
                    )
                    + "; they fail with AADSTS500213.",
                    f"{_partner_steps(client, tenant)}. On B2B collaboration choose Customize "
                    "settings; allow External users and groups (all, or the client's groups) "
                    "and Applications (the vendor's sign-in apps plus My Apps, Microsoft App "
                    "Access Panel, My Profile and My Sign-ins); Save.",
                    facts={"clientTenantId": tenant},
                )
            )
        else:
            findings.append(
                make_finding(
                    FindingCode.VENDOR_PARTNER_ENTRY_MISSING,
                    f"The vendor has no organizational entry for {client}: the default inbound "
                    "settings admit the client today, but automatic redemption and per-partner "
                    "MFA trust can only be set on an entry, and a change to the default reaches "
                    "this client unannounced.",
                    f"{_partner_steps(client, tenant)}. Then tick Automatically redeem "
                    "invitations on Trust settings and decide MFA trust for this client. Graph: "
                    'POST /policies/crossTenantAccessPolicy/partners {"tenantId": "'
                    f'{tenant}"}}.',
                    facts={"clientTenantId": tenant},
                )
            )
        return findings
    if nobody:
        listed = ", ".join(a for a in nobody if a) or "the vendor's apps"
        findings.append(
            make_finding(
                FindingCode.VENDOR_INBOUND_BLOCKS_CLIENT,
                f"The vendor's inbound B2B collaboration for {client} does not admit the "
                f"client's users to {listed}; their sign-ins fail with AADSTS500213.",
                f"{_partner_steps(client, tenant)}. On B2B collaboration > External users and "
                "groups choose Allow access (all, or the client's groups); on Applications "
                f"choose Allow access and include {listed}; Save. Graph: GET the partner entry, "
                "add the app IDs to b2bCollaborationInbound.applications.targets (a PATCH "
                "replaces the whole list), PATCH it back.",
                facts={"apps": listed},
            )
        )
    scoped = sorted(
        {
            p
            for r in reaches.values()
            if r.kind in (ReachKind.ONLY, ReachKind.ALL_EXCEPT)
            for p in r.principals
        }
    )
    if scoped:
        findings.append(
            make_finding(
                FindingCode.VENDOR_INBOUND_USERS_SCOPED,
                f"The vendor admits only part of {client}'s users (targets: "
                f"{', '.join(scoped)}); users outside that scope fail with AADSTS500213.",
                "No change needed if this scope is intended. Otherwise: "
                f"{_partner_steps(client, tenant)}; on B2B collaboration > External users and "
                "groups choose All external users and groups; Save.",
                facts={"principals": ", ".join(scoped)},
            )
        )
    return findings


def _mfa_trust_findings(
    default: DefaultPolicy, effective: EffectivePolicy, client: str, tenant: str
) -> list[Finding]:
    findings: list[Finding] = []
    if default.inbound_trust is not None and default.inbound_trust.is_mfa_accepted:
        findings.append(
            make_finding(
                FindingCode.VENDOR_MFA_TRUST_ON_DEFAULT,
                "The vendor's default inbound trust accepts MFA from every external tenant; "
                "MFA trust is a per-partner decision about that partner's MFA strength.",
                f"In the vendor tenant's {ADMIN_CENTER_PATH} > Default settings > Edit inbound "
                "defaults > Trust settings, clear Trust multifactor authentication from "
                "Microsoft Entra tenants; Save. Then tick it on the organizational entries of "
                "the clients whose MFA you trust.",
            )
        )
    if effective.partner_entry_present and effective.is_mfa_accepted.source is not Source.PARTNER:
        findings.append(
            make_finding(
                FindingCode.VENDOR_MFA_TRUST_NOT_SET_FOR_CLIENT,
                f"The vendor's entry for {client} inherits MFA trust from the default (currently "
                f"{'trusted' if effective.is_mfa_accepted.value else 'not trusted'}) instead of "
                "deciding it for this client.",
                f"{_partner_steps(client, tenant)}. Open Trust settings > Customize settings "
                "and deliberately tick or clear 'Trust multifactor authentication from "
                "Microsoft Entra tenants'; Save.",
                facts={"inheritedValue": str(bool(effective.is_mfa_accepted.value)).lower()},
            )
        )
    return findings


def _mfa_app_findings(effective: EffectivePolicy, client: str, tenant: str) -> list[Finding]:
    inbound = effective.b2b_collaboration_inbound
    missing = [
        app_id
        for app_id in MFA_REGISTRATION_APPS
        if reach_for_app(inbound, app_id, microsoft_app=True).kind is ReachKind.NOBODY
    ]
    if not missing:
        return []
    mfa_trusted = bool(effective.is_mfa_accepted.value)
    loops = not mfa_trusted and bool(_MFA_LOOP_APPS & set(missing))
    names = ", ".join(f"{MFA_REGISTRATION_APPS[a]} ({a})" for a in missing)
    return [
        make_finding(
            FindingCode.VENDOR_INBOUND_APPS_MISSING_MFA_APPS,
            f"The vendor's inbound application list for {client} leaves out {names}. "
            + (
                "MFA from the client is not trusted, so guests must register MFA in the vendor "
                "tenant and will loop on the registration prompt."
                if loops
                else "Guests cannot open the pages they land on after redemption or manage "
                "their security info."
            ),
            f"{_partner_steps(client, tenant)}. Some of these apps cannot be picked in the "
            "admin center; use Graph: GET the partner entry, then PATCH "
            f"/policies/crossTenantAccessPolicy/partners/{tenant} with "
            "b2bCollaborationInbound.applications holding the existing targets plus "
            + ", ".join(missing)
            + " (targetType 'application'); a PATCH replaces the whole list.",
            severity=Severity.HIGH if loops else Severity.MEDIUM,
            facts={"missing": ", ".join(missing), "mfaTrusted": str(mfa_trusted).lower()},
        )
    ]


def _invitation_findings(
    authorization: AuthorizationPolicy | None,
    domains_policy: InvitationDomainPolicy | None,
    client_domains: Sequence[str],
) -> list[Finding]:
    findings: list[Finding] = []
    invites_from = None if authorization is None else authorization.allow_invites_from
    if invites_from is not None:
        normalized = invites_from.strip().lower()
        if normalized == "none":
            findings.append(
                make_finding(
                    FindingCode.VENDOR_INVITES_DISABLED,
                    "The vendor's authorization policy has allowInvitesFrom = none: nobody, "
                    "admins included, can invite or re-invite guests, so redemption resets fail.",
                    "In the vendor tenant's Microsoft Entra admin center > Entra ID > External "
                    "Identities > External collaboration settings > Guest invite settings, choose "
                    "'Only users assigned to specific admin roles can invite guest users' (or a "
                    "wider option); Save. Graph: PATCH /policies/authorizationPolicy "
                    '{"allowInvitesFrom": "adminsAndGuestInviters"}.',
                    facts={"allowInvitesFrom": invites_from},
                )
            )
        elif normalized not in INVITES_FROM_VALUES:
            findings.append(
                make_finding(
                    FindingCode.POLICY_UNKNOWN_VALUE,
                    f"The vendor's authorization policy has allowInvitesFrom = {invites_from!r}, "
                    "a value this version of xtap-watch does not know.",
                    "Check External collaboration settings > Guest invite settings in the admin "
                    "center and report the value.",
                    facts={"path": "allowInvitesFrom", "value": invites_from},
                )
            )
    if domains_policy is not None:
        refused: list[tuple[str, str]] = []
        for domain in dict.fromkeys(d.strip().lower() for d in client_domains if d.strip()):
            if domains_policy.allowed_domains and not _domain_listed(
                domain, domains_policy.allowed_domains
            ):
                refused.append((domain, "not on the allowlist"))
            elif domains_policy.blocked_domains and _domain_listed(
                domain, domains_policy.blocked_domains
            ):
                refused.append((domain, "on the denylist"))
        if refused:
            described = ", ".join(f"{d} ({why})" for d, why in refused)
            findings.append(
                make_finding(
                    FindingCode.VENDOR_CLIENT_DOMAIN_NOT_ALLOWED,
                    f"Invitations to the client's domains are refused: {described}. New "
                    "invitations and redemption resets for these users fail.",
                    "In the vendor tenant's Microsoft Entra admin center > Entra ID > External "
                    "Identities > External collaboration settings > Collaboration restrictions: "
                    "add the domains to the allowlist (or remove them from the denylist); Save.",
                    facts={"domains": ", ".join(d for d, _ in refused)},
                )
            )
    return findings
