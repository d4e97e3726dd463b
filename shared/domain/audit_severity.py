"""How much a cross-tenant access change matters, why, and the alert it becomes.

DESIGN §3.4 / §3.7, issue 4 item 2. Severity rules, most specific first:

* **review** — an event the decoder did not understand (kept raw for a person);
* **info** — a failed attempt (nothing changed) and Microsoft's migration to the
  scalable storage model;
* **high** — the change can stop a registered client's users from signing in: the
  client's partner entry deleted, inbound B2B collaboration for the client blocked or
  scoped (or cleared back to a default that may not admit it), the default inbound
  blocked or scoped while clients rely on it; MFA trust turned on in the *default*
  policy (trust is decided per partner); B2B direct connect opened, inbound or
  outbound, on a partner or the default (the vendor does not use it);
* **medium** — every other change to a partner entry or the default.

Partner-level cross-tenant synchronization (category ``CrossTenantIdentitySyncSettings``):
allowing a partner to sync users *into* the vendor tenant is **high** (that tenant's
admins can then create and update users here, outside the vendor's invitation process);
turning it off, creating it without allowing sync, or deleting it is **medium**.

Whether clients rely on the vendor's *default* inbound is judged with the same reach
rules the posture evaluation uses (:func:`default_inbound_admits_clients`).

Reasons are plain sentences that name the client. Pure: no I/O, no clock (``now`` is
passed to :func:`to_alert_record`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, Protocol

from shared.domain.audit import (
    APPLICATIONS_ALL,
    SYNC_KINDS,
    USERS_ALL,
    B2BSetting,
    ChangeKind,
    CrossTenantChange,
    Scope,
    TargetSet,
    UnknownAuditShape,
    setting_label,
)
from shared.domain.messages import (
    AlertKind,
    AlertRecord,
    ClientRef,
    Link,
    SettingChange,
    Severity,
)
from shared.domain.policy import (
    PolicyParseError,
    ReachKind,
    parse_default_policy,
    reach_for_app,
    resolve_effective,
)


class ClientInfo(Protocol):
    """What the classifier needs to know about a registered client (``ClientRef`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def tenant_id(self) -> str: ...


ENTRA_XTAP_PATH: Final = (
    "Microsoft Entra admin center (entra.microsoft.com) > Entra ID > External Identities > "
    "Cross-tenant access settings"
)
AUDIT_LOG_PATH: Final = "Entra ID > Monitoring & health > Audit logs"
DEFAULT_AUDIT_CATEGORY: Final = "CrossTenantAccessSettings"


def audit_log_path(category: str | None) -> str:
    """Where to find the event: the audit log filtered by the event's own category."""
    return f"{AUDIT_LOG_PATH} (Category: {category or DEFAULT_AUDIT_CATEGORY})"


XTAP_DOCS: Final = Link(
    title="Manage cross-tenant access settings for B2B collaboration",
    url="https://learn.microsoft.com/entra/external-id/cross-tenant-access-settings-b2b-collaboration",
)
# Apps a guest needs to register MFA and land after redemption (DESIGN §3.7).
GUEST_LANDING_APPS: Final = "My Apps, Microsoft App Access Panel, My Sign-ins and My Profile"
_MAX_NAMED_CLIENTS: Final = 5


def find_client(
    registered_clients: Mapping[str, ClientInfo], tenant_id: str | None
) -> ClientInfo | None:
    """The registered client with this tenant ID (keys are tenant IDs, any case)."""
    if not tenant_id:
        return None
    return registered_clients.get(tenant_id) or registered_clients.get(tenant_id.lower())


def _client_words(client: ClientInfo) -> str:
    return f"registered client {client.name} ({client.tenant_id})"


def _clients_list(registered_clients: Mapping[str, ClientInfo]) -> str:
    names = sorted(client.name for client in registered_clients.values())
    shown = ", ".join(names[:_MAX_NAMED_CLIENTS])
    if len(names) > _MAX_NAMED_CLIENTS:
        shown += f" and {len(names) - _MAX_NAMED_CLIENTS} more"
    return shown


# ------------------------------------------------------------ the default inbound

# Any partner tenant: resolving the default alone needs a tenant ID, not a real one.
_ANY_PARTNER: Final = "00000000-0000-0000-0000-000000000000"


def default_inbound_admits_clients(
    default_policy: object, vendor_app_ids: Sequence[str]
) -> bool | None:
    """Do clients without a partner entry reach the vendor's apps through the default?

    ``True``: every user reaches every vendor app; ``False``: nobody reaches at least one
    of them; ``None``: only some users do, or it cannot be told (no policy, unknown
    values) — which the classifier treats as "clients may rely on it and be cut off".
    The reach rules are the posture evaluation's own (users x applications table).
    """
    if not default_policy:
        return None
    try:
        parsed = parse_default_policy(default_policy)
    except PolicyParseError:
        return None
    inbound = resolve_effective(parsed, None, _ANY_PARTNER).b2b_collaboration_inbound
    apps: tuple[str | None, ...] = tuple(a.strip().lower() for a in vendor_app_ids) or (None,)
    kinds = {reach_for_app(inbound, app).kind for app in apps}
    if ReachKind.NOBODY in kinds:
        return False
    if kinds == {ReachKind.ALL}:
        return True
    return None


# ------------------------------------------------------------ B2B state comparisons


def _part_restricts(was: TargetSet | None, now: TargetSet | None, all_keyword: str) -> bool:
    """Does ``now`` let fewer users/apps through than ``was``? Unsure counts as yes."""
    if now is None or now.is_open(all_keyword):
        return False
    if was is None or was.is_open(all_keyword):
        return True
    if was.access_type == now.access_type:
        before, after = set(was.targets), set(now.targets)
        if now.access_type == "allowed":
            return bool(before - after)  # someone left the allowlist
        if now.access_type == "blocked":
            return bool(after - before)  # someone joined the blocklist
        return was != now
    if now.blocks_all(all_keyword):
        return True
    if was.blocks_all(all_keyword):
        return False
    return True  # allowlist <-> blocklist: cannot prove it is looser


def restricts(before: B2BSetting | None, after: B2BSetting | None) -> bool:
    """Whether a B2B setting change blocks or scopes someone who was let through."""
    if after is None:
        return False
    return _part_restricts(
        None if before is None else before.users, after.users, USERS_ALL
    ) or _part_restricts(
        None if before is None else before.applications, after.applications, APPLICATIONS_ALL
    )


def _opens_direct_connect(before: B2BSetting | None, after: B2BSetting | None) -> bool:
    if after is None or after.admits_anyone() is False:
        return False
    return before is None or before.admits_anyone() is not True


def _flag_turned_on(before: object, after: object, key: str) -> bool:
    was = before.get(key) if isinstance(before, dict) else None
    now = after.get(key) if isinstance(after, dict) else None
    return now is True and was is not True


def _flag_turned_off(before: object, after: object, key: str) -> bool:
    was = before.get(key) if isinstance(before, dict) else None
    now = after.get(key) if isinstance(after, dict) else None
    return was is True and now is not True


# ---------------------------------------------------------------------- classify


def classify(
    change: CrossTenantChange | UnknownAuditShape,
    registered_clients: Mapping[str, ClientInfo],
    vendor_default_inbound_admits_clients: bool | None,
) -> tuple[Severity, list[str]]:
    """Severity and plain-language reasons for one decoded change.

    ``vendor_default_inbound_admits_clients``: whether registered clients get in through
    the vendor's *default* inbound policy (True), only through their own partner entries
    (False), or not known (None) — unknown is treated as "they may rely on it".
    """
    if isinstance(change, UnknownAuditShape):
        return _classify_unknown(change, registered_clients)

    event = change.event
    client = find_client(registered_clients, event.partner_tenant_id)
    whom = _client_words(client) if client else None
    label = change.label

    if not event.succeeded:
        return Severity.INFO, [
            f"The change was attempted but failed (result: {event.result}); "
            f"{label} was not modified."
        ]
    if event.kind is ChangeKind.MIGRATED:
        return Severity.INFO, [
            "Microsoft moved the cross-tenant access settings to its scalable storage model; "
            "the settings themselves did not change."
        ]
    if event.kind is ChangeKind.DEFAULT_RESET:
        reasons = [
            "The default cross-tenant access settings were reset to Microsoft's service "
            "defaults: any custom default (blocked outbound, trust settings, direct connect "
            "rules) is gone."
        ]
        if registered_clients:
            reasons.append(
                "Inbound B2B collaboration is allowed for everyone again by default, so "
                "registered clients without their own partner entry are admitted."
            )
        return Severity.MEDIUM, reasons

    setting = change.setting
    if event.kind in SYNC_KINDS:
        return _classify_identity_sync(change, whom)
    if setting == "tenantId":
        return _classify_entry(change, client, whom, vendor_default_inbound_admits_clients)
    if event.kind is ChangeKind.PARTNER_DELETED:
        return Severity.MEDIUM, [
            f"{label} was removed together with the partner entry"
            + (f" for {whom}." if whom else f" for tenant {event.partner_tenant_id}.")
        ]
    if setting in ("b2bDirectConnectInbound", "b2bDirectConnectOutbound"):
        return _classify_direct_connect(change, whom)
    if setting == "b2bCollaborationInbound":
        return _classify_inbound(
            change, whom, registered_clients, vendor_default_inbound_admits_clients
        )
    if setting == "inboundTrust":
        return _classify_trust(change, whom)
    if setting == "automaticUserConsentSettings":
        return _classify_auto_redemption(change, whom)
    if setting == "b2bCollaborationOutbound":
        target = whom or (
            f"tenant {event.partner_tenant_id}" if event.scope is Scope.PARTNER else None
        )
        where = f"toward {target}" if target else "by default"
        return Severity.MEDIUM, [
            f"The vendor's outbound B2B collaboration {where} changed. It governs the "
            "vendor's own users signing in elsewhere, not clients' users signing in to the "
            "vendor."
        ]
    where = f"for {whom}" if whom else _scope_words(change)
    return Severity.MEDIUM, [f"{label} changed {where}."]


def _scope_words(change: CrossTenantChange) -> str:
    if change.scope is Scope.DEFAULT:
        return "in the default cross-tenant access settings"
    if change.partner_tenant_id:
        return f"for partner tenant {change.partner_tenant_id}, which is not a registered client"
    return "in the cross-tenant access settings"


def _classify_unknown(
    change: UnknownAuditShape, registered_clients: Mapping[str, ClientInfo]
) -> tuple[Severity, list[str]]:
    reasons = [
        "This cross-tenant access audit event could not be fully decoded ("
        + "; ".join(change.problems)
        + "). It is kept unchanged for a person to review."
    ]
    client = find_client(registered_clients, change.partner_tenant_id)
    if client is not None:
        reasons.append(f"It concerns {_client_words(client)}.")
    return Severity.REVIEW, reasons


def _classify_entry(
    change: CrossTenantChange,
    client: ClientInfo | None,
    whom: str | None,
    default_admits: bool | None,
) -> tuple[Severity, list[str]]:
    tenant = change.partner_tenant_id
    if change.kind is ChangeKind.PARTNER_DELETED:
        if whom is None:
            return Severity.MEDIUM, [
                f"The partner entry for tenant {tenant} was deleted; that tenant is not a "
                "registered client."
            ]
        reasons = [
            f"The vendor's partner entry for {whom} was deleted: its inbound B2B "
            "collaboration, automatic redemption and trust settings are gone and the "
            "default settings apply to its users."
        ]
        if default_admits is False:
            reasons.append(
                f"The default inbound policy does not admit registered clients, so users "
                f"from {client.name if client else tenant} can no longer sign in."
            )
        elif default_admits is None:
            reasons.append(
                f"Whether the default inbound policy admits {client.name if client else tenant}"
                " is not known; if it does not, its users can no longer sign in."
            )
        else:
            reasons.append(
                "The default inbound policy admits clients, but automatic redemption is no "
                "longer ticked for them, so users see a consent prompt again."
            )
        return Severity.HIGH, reasons
    if change.kind is ChangeKind.PARTNER_ADDED:
        if whom:
            return Severity.MEDIUM, [
                f"A partner entry was added for {whom}; until its settings are configured "
                "it inherits the default settings."
            ]
        return Severity.MEDIUM, [
            f"A partner entry was added for tenant {tenant}, which is not a registered client."
        ]
    return Severity.MEDIUM, [f"The partner tenant ID of an entry changed ({change.summary})."]


def _classify_direct_connect(
    change: CrossTenantChange, whom: str | None
) -> tuple[Severity, list[str]]:
    direction = "inbound" if change.setting.endswith("Inbound") else "outbound"
    where = (
        f"for {whom}"
        if whom
        else (
            "in the default settings, for every external tenant,"
            if change.scope is Scope.DEFAULT
            else f"for tenant {change.partner_tenant_id}"
        )
    )
    before, after = change.before_b2b, change.after_b2b
    if _opens_direct_connect(before, after):
        return Severity.HIGH, [
            f"B2B direct connect {direction} was opened {where} ({change.after_text}). The "
            "vendor does not use B2B direct connect; it should stay blocked."
        ]
    if after is not None and after.admits_anyone() is not False:
        return Severity.MEDIUM, [
            f"B2B direct connect {direction} {where} changed and still lets some users "
            f"through ({change.after_text}); it should be blocked."
        ]
    return Severity.MEDIUM, [f"B2B direct connect {direction} changed {where}."]


def _classify_inbound(
    change: CrossTenantChange,
    whom: str | None,
    registered_clients: Mapping[str, ClientInfo],
    default_admits: bool | None,
) -> tuple[Severity, list[str]]:
    before, after = change.before_b2b, change.after_b2b
    if change.scope is Scope.DEFAULT:
        if not restricts(before, after):
            return Severity.MEDIUM, [
                "The default inbound B2B collaboration changed without blocking anyone who "
                f"was admitted before ({change.summary})."
            ]
        what = "blocked" if after is not None and after.admits_anyone() is False else "scoped"
        if registered_clients and default_admits is not False:
            rely = (
                "rely on it"
                if default_admits
                else "may rely on it (not known whether they have their own partner entries)"
            )
            return Severity.HIGH, [
                f"The default inbound B2B collaboration was {what} ({change.after_text}).",
                f"Registered clients {rely}: {_clients_list(registered_clients)}. Their users "
                "may no longer be able to sign in unless each has its own partner entry "
                "allowing them.",
            ]
        return Severity.MEDIUM, [
            f"The default inbound B2B collaboration was {what} ({change.after_text}); "
            "registered clients are admitted through their own partner entries."
        ]

    if whom is None:
        return Severity.MEDIUM, [
            f"Inbound B2B collaboration changed {_scope_words(change)} ({change.summary})."
        ]
    if after is None:
        if default_admits is True:
            return Severity.MEDIUM, [
                f"Inbound B2B collaboration for {whom} now inherits the default inbound "
                "settings, which admit clients."
            ]
        return Severity.HIGH, [
            f"Inbound B2B collaboration for {whom} was cleared and now inherits the default "
            "inbound settings, which "
            + ("do not admit clients" if default_admits is False else "may not admit clients")
            + "; its users may no longer be able to sign in."
        ]
    if restricts(before, after):
        what = "blocked" if after.admits_anyone() is False else "scoped"
        was = change.before_text or "inherited from the default"
        return Severity.HIGH, [
            f"Inbound B2B collaboration for {whom} was {what}: now {change.after_text} "
            f"(before: {was}).",
            "Users or applications that are no longer admitted cannot sign in to the "
            f"vendor; guests also need {GUEST_LANDING_APPS} admitted to register MFA.",
        ]
    return Severity.MEDIUM, [
        f"Inbound B2B collaboration for {whom} changed without blocking anyone who was "
        f"admitted before ({change.summary})."
    ]


def _classify_trust(change: CrossTenantChange, whom: str | None) -> tuple[Severity, list[str]]:
    if change.scope is Scope.DEFAULT:
        if _flag_turned_on(change.before, change.after, "isMfaAccepted"):
            return Severity.HIGH, [
                "MFA trust was turned on in the default policy: MFA performed in any "
                "external Microsoft Entra tenant is now accepted. Trust MFA per partner, "
                "never by default."
            ]
        return Severity.MEDIUM, [f"The default inbound trust settings changed ({change.summary})."]
    target = whom or f"tenant {change.partner_tenant_id}"
    reasons = [f"Inbound trust settings for {target} changed ({change.summary})."]
    if whom and _flag_turned_off(change.before, change.after, "isMfaAccepted"):
        reasons.append(
            "The client's MFA is no longer trusted: its guests must register MFA in the "
            "vendor tenant at their next sign-in."
        )
    return Severity.MEDIUM, reasons


def _sync_allowed(value: object) -> bool | None:
    """``isSyncAllowed`` from a ``userSyncInbound`` value or a whole sync setting."""
    if not isinstance(value, dict):
        return None
    inbound = value.get("userSyncInbound", value)
    flag = inbound.get("isSyncAllowed") if isinstance(inbound, dict) else None
    return flag if isinstance(flag, bool) else None


def _classify_identity_sync(
    change: CrossTenantChange, whom: str | None
) -> tuple[Severity, list[str]]:
    target = whom or f"tenant {change.partner_tenant_id}"
    was, now = _sync_allowed(change.before), _sync_allowed(change.after)
    if change.kind is ChangeKind.PARTNER_SYNC_DELETED:
        return Severity.MEDIUM, [
            f"The cross-tenant synchronization setting for {target} was deleted: that tenant "
            "can no longer synchronize users into the vendor tenant; users it synchronized "
            "before stay until someone removes them."
        ]
    if now is True and was is not True:
        return Severity.HIGH, [
            f"Cross-tenant synchronization inbound was allowed for {target}: its admins can "
            "now create and update users in the vendor tenant through cross-tenant "
            "synchronization, outside the vendor's invitation process.",
            "Confirm the vendor agreed to this with the client; otherwise turn it off again.",
        ]
    if was is True and now is not True:
        return Severity.MEDIUM, [
            f"Cross-tenant synchronization inbound is no longer allowed for {target}: users "
            "it synchronized stop being updated (they are not deleted)."
        ]
    return Severity.MEDIUM, [
        f"The cross-tenant synchronization setting for {target} changed ({change.summary})."
    ]


def _classify_auto_redemption(
    change: CrossTenantChange, whom: str | None
) -> tuple[Severity, list[str]]:
    if change.scope is Scope.DEFAULT:
        return Severity.MEDIUM, [
            "Automatic redemption changed in the default policy, where it is documented as "
            f"always off and read-only ({change.summary})."
        ]
    target = whom or f"tenant {change.partner_tenant_id}"
    reasons = [f"Automatic redemption for {target} changed ({change.summary})."]
    if whom and _flag_turned_off(change.before, change.after, "inboundAllowed"):
        reasons.append(
            "Inbound automatic redemption is no longer ticked, so the client's users see a "
            "consent prompt on first access even where the client ticked it outbound."
        )
    return Severity.MEDIUM, reasons


# ------------------------------------------------------------------ alert record


def _location(change: CrossTenantChange, client: ClientInfo | None) -> str:
    if change.scope is Scope.DEFAULT:
        return f"{ENTRA_XTAP_PATH} > Default settings"
    name = f"{client.name} ({client.tenant_id})" if client else change.partner_tenant_id
    return f"{ENTRA_XTAP_PATH} > Organizational settings > {name}"


_SETTING_PAGES: Final[dict[str, str]] = {
    "b2bCollaborationInbound": "Inbound access > B2B collaboration",
    "b2bCollaborationOutbound": "Outbound access > B2B collaboration",
    "b2bDirectConnectInbound": "Inbound access > B2B direct connect",
    "b2bDirectConnectOutbound": "Outbound access > B2B direct connect",
    "inboundTrust": "Inbound access > Trust settings",
    "automaticUserConsentSettings": "Inbound access > Trust settings (and Outbound access > "
    "Trust settings), 'Automatically redeem invitations'",
    "tenantRestrictions": "Outbound access > Tenant restrictions",
    "userSyncInbound": "Inbound access > Cross-tenant sync ('Allow users sync into this "
    "tenant')",
    "identitySynchronization": "Inbound access > Cross-tenant sync",
}


def remediation_steps(
    change: CrossTenantChange | UnknownAuditShape,
    severity: Severity,
    client: ClientInfo | None,
) -> tuple[str, ...]:
    """What an admin should check, and how to revert, in the Entra admin center."""
    if isinstance(change, UnknownAuditShape):
        return (
            f"Open audit event {change.event_id or '(no id)'} in "
            f"{audit_log_path(change.category)} and read its modified properties.",
            "Decide whether it changes what a registered client's users can reach; if so, "
            f"check {ENTRA_XTAP_PATH} for that tenant.",
            "Report the event shape to the xtap-watch maintainers so the decoder learns it.",
        )
    event = change.event
    confirm = (
        f"Confirm with {event.who.display()} that the change in audit event {event.event_id}"
        + (f" at {event.time.isoformat()}" if event.time else "")
        + f" was intended ({audit_log_path(event.category)})."
    )
    if event.kind is ChangeKind.MIGRATED:
        return (
            "No action needed. While Microsoft migrates the settings, changes may fail for "
            "a few minutes; retry them afterwards.",
        )
    if not event.succeeded:
        return (confirm, "Nothing changed; repeat the change if it is still wanted.")
    steps = [confirm]
    where = _location(change, client)
    if change.setting == "tenantId" and event.kind is ChangeKind.PARTNER_DELETED:
        steps.append(
            f"If unintended, re-create it: {ENTRA_XTAP_PATH} > Organizational settings > "
            f"Add organization, tenant ID {event.partner_tenant_id}; then under Inbound access "
            "> B2B collaboration allow the client's users and the vendor's sign-in "
            f"application(s) (plus {GUEST_LANDING_APPS}), and under Inbound access > Trust "
            "settings tick 'Automatically redeem invitations'."
        )
        return tuple(steps)
    if change.setting == "tenantId" and event.kind is ChangeKind.PARTNER_ADDED:
        steps.append(
            f"Configure the new entry at {where}: Inbound access > B2B collaboration and "
            "Trust settings; until then it inherits the default settings."
        )
        return tuple(steps)
    if event.kind is ChangeKind.DEFAULT_RESET:
        steps.append(
            f"Review {ENTRA_XTAP_PATH} > Default settings and re-apply the organisation's "
            "intended defaults (inbound, outbound and trust)."
        )
        return tuple(steps)
    page = _SETTING_PAGES.get(change.setting)
    at = f"{where} > {page}" if page else where
    if change.setting in ("b2bDirectConnectInbound", "b2bDirectConnectOutbound") and (
        severity is Severity.HIGH
    ):
        steps.append(
            f"At {at}, set both 'External users and groups' and 'Applications' to 'Block "
            "access'; the vendor does not use B2B direct connect."
        )
    elif change.setting == "inboundTrust" and change.scope is Scope.DEFAULT:
        steps.append(
            f"At {at}, untick 'Trust multifactor authentication from Microsoft Entra "
            "tenants' and trust MFA per partner under Organizational settings instead."
        )
    elif change.setting == "b2bCollaborationInbound" and severity is Severity.HIGH:
        steps.append(
            f"At {at}, make sure 'External users and groups' admits the client's users "
            "(all users, or the client's groups) and 'Applications' admits the vendor's "
            f"sign-in application(s) plus {GUEST_LANDING_APPS}."
        )
    else:
        steps.append(f"Check the setting at {at}.")
    if change.before_text is not None:
        steps.append(f"To revert, set it back to: {change.before_text}.")
    elif change.scope is Scope.PARTNER:
        steps.append("To revert, clear it so the partner entry inherits the default again.")
    return tuple(steps)


def dedup_key(change: CrossTenantChange | UnknownAuditShape) -> str:
    """``audit:{event id}:{index}`` — stable across re-scans of the same event."""
    if isinstance(change, UnknownAuditShape):
        if change.event_id:
            event_id, index = change.event_id, 0
        else:
            raw = json.dumps(change.raw, sort_keys=True, default=str)
            event_id, index = "sha256-" + hashlib.sha256(raw.encode()).hexdigest()[:32], 0
    else:
        event_id, index = change.event_id, change.index
    if len(event_id) > 200:  # AlertRecord.dedup_key is at most 256 characters
        event_id = "sha256-" + hashlib.sha256(event_id.encode()).hexdigest()[:32]
    return f"audit:{event_id}:{index}"


def _client_ref(client: ClientInfo | None) -> ClientRef | None:
    if client is None:
        return None
    if isinstance(client, ClientRef):
        return client
    domains = getattr(client, "domains", ())
    return ClientRef(
        name=client.name,
        tenant_id=client.tenant_id,
        domains=tuple(str(d) for d in domains) if isinstance(domains, Sequence) else (),
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_alert_record(
    change: CrossTenantChange | UnknownAuditShape,
    severity: Severity,
    reasons: Sequence[str],
    client: ClientInfo | None,
    now: datetime,
) -> AlertRecord:
    """The ``VENDOR_SETTING_CHANGED`` alert for one change (or one unknown event)."""
    facts: dict[str, str] = {}
    if isinstance(change, UnknownAuditShape):
        title = "Cross-tenant access audit event needs review"
        changes: tuple[SettingChange, ...] = ()
        who = change.who.display()
        when = change.time
        summary = change.summary
        for key, value in (
            ("Event ID", change.event_id),
            ("Activity", change.activity),
            ("Category", change.category),
            ("Partner tenant", change.partner_tenant_id),
        ):
            if value:
                facts[key] = value
    else:
        event = change.event
        if change.scope is Scope.DEFAULT:
            title = f"Default cross-tenant access changed: {change.label}"
        elif client is not None:
            title = f"Cross-tenant access for {client.name} changed: {change.label}"
        elif change.scope is Scope.PARTNER:
            title = f"Cross-tenant access for tenant {event.partner_tenant_id} changed: " + (
                change.label
            )
        else:
            title = f"Cross-tenant access settings: {change.label}"
        if change.setting == "tenantId" and event.kind is ChangeKind.PARTNER_DELETED:
            title = "Partner entry deleted for " + (
                client.name if client else f"tenant {event.partner_tenant_id}"
            )
        changes = (
            SettingChange(
                setting=setting_label(change.setting),
                before=change.before_text,
                after=change.after_text,
            ),
        )
        who = event.who.display()
        when = event.time
        summary = change.summary
        for key, value in (
            ("Event ID", event.event_id),
            ("Activity", event.activity),
            ("Category", event.category),
            ("Scope", event.scope.value),
            ("Partner tenant", event.partner_tenant_id),
            ("Correlation ID", event.correlation_id),
            ("Result", event.result),
        ):
            if value:
                facts[key] = value
    if reasons:
        summary = f"{summary}. " + " ".join(reasons)
    return AlertRecord(
        dedup_key=dedup_key(change),
        kind=AlertKind.VENDOR_SETTING_CHANGED,
        severity=severity,
        title=_clip(title, 300),
        summary=summary,
        client=_client_ref(client),
        changes=changes,
        who=who,
        when=when,
        remediation_steps=remediation_steps(change, severity, client),
        links=(XTAP_DOCS,),
        facts=facts,
        created_at=now,
        source="audit",
    )
