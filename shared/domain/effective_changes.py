"""What changed in a client's effective outbound policy, in words an admin reads at 3 a.m.

A posture alert used to say only "ALLOWED → BLOCKED". When the previous check stored its
effective policy (``PostureResult.effective.to_json()`` in the posture record), the alert
can say which setting changed and from what to what, including where the value comes from
(the vendor's organizational entry or the default it inherits):

    Outbound B2B collaboration: users and groups
    allowed: all users (inherited from the default)  →  blocked: all users (set on the
    OSTTRA entry)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.domain.messages import SettingChange

_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("b2bCollaborationOutbound", "usersAndGroups", "Outbound B2B collaboration: users and groups"),
    ("b2bCollaborationOutbound", "applications",
     "Outbound B2B collaboration: external applications"),
    ("b2bDirectConnectOutbound", "usersAndGroups", "Outbound B2B direct connect: users and groups"),
    ("b2bDirectConnectOutbound", "applications",
     "Outbound B2B direct connect: external applications"),
)

_KEYWORDS = {
    "allusers": "all users",
    "allapplications": "all external applications",
    "allmicrosoftapps": "all Microsoft apps",
    "office365": "Office 365",
}


def _targets(targets: Any) -> str:
    if not isinstance(targets, list) or not targets:
        return "nobody listed"
    named: list[str] = []
    listed: list[str] = []  # targetType of each object ID (user, group, application)
    for target in targets:
        entry = target if isinstance(target, Mapping) else {"target": target}
        key = str(entry.get("target", ""))
        if key.lower() in _KEYWORDS:
            named.append(_KEYWORDS[key.lower()])
        else:
            listed.append(str(entry.get("targetType", "")).lower())
    if listed:
        apps = all(t == "application" for t in listed)
        one = len(listed) == 1
        kind = ("application" if one else "applications") if apps else (
            "user or group" if one else "users or groups")
        named.append(f"{len(listed)} listed {kind}")
    return ", ".join(named)


def _where(source: Any, vendor: str) -> str:
    return {
        "partner": f"set on the {vendor} entry",
        "default": "inherited from the default",
        "not_set": "not set anywhere",
    }.get(str(source), str(source))


def describe_target_config(config: Any, vendor: str) -> str:
    """``{"source", "accessType", "targets"}`` (EffectivePolicy JSON) → one phrase."""
    if not isinstance(config, Mapping):
        return "unknown"
    where = _where(config.get("source"), vendor)
    access = config.get("accessType")
    if access is None:
        return f"not set ({where})"
    return f"{access}: {_targets(config.get('targets'))} ({where})"


def _redemption(consent: Any) -> str:
    if not isinstance(consent, Mapping) or consent.get("outboundAllowed") is None:
        return "unknown"
    return "ticked" if consent.get("outboundAllowed") else "not ticked"


def effective_changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, vendor: str
) -> tuple[SettingChange, ...]:
    """The outbound settings whose effective value differs between two checks.

    Empty when either side is unknown (no previous check stored, or the policy could not
    be read now): then nothing is claimed about what changed.
    """
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ()
    changes: list[SettingChange] = []
    entry_before, entry_after = before.get("partnerEntry"), after.get("partnerEntry")
    if entry_before != entry_after and entry_before and entry_after:
        changes.append(SettingChange(setting=f"Organizational entry for {vendor}",
                                     before=str(entry_before), after=str(entry_after)))
    for setting, field, label in _FIELDS:
        old = describe_target_config((before.get(setting) or {}).get(field), vendor)
        new = describe_target_config((after.get(setting) or {}).get(field), vendor)
        if old != new:
            changes.append(SettingChange(setting=label, before=old, after=new))
    old_redeem = _redemption(before.get("automaticUserConsentSettings"))
    new_redeem = _redemption(after.get("automaticUserConsentSettings"))
    if old_redeem != new_redeem:
        changes.append(SettingChange(setting="Automatically redeem invitations (outbound)",
                                     before=old_redeem, after=new_redeem))
    return tuple(changes)
