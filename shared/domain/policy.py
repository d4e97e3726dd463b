"""Typed, frozen views of Graph ``crossTenantAccessPolicy`` JSON (default and partner).

Parsing is strict about shape (an object where an object belongs, a list where a list
belongs) and lenient about values: an enum value this version does not know (Graph's
``unknownFutureValue``, a new keyword) is kept verbatim and listed in
``unknown_values`` so the posture engine can say "a person must look at this" instead of
crashing or guessing. ``null`` is preserved as ``None``: on a partner entry it means
"inherit from the default" (DESIGN §3.1), which :func:`resolve_effective` applies.

Keys are matched case-insensitively, because the same objects reach us re-serialised by
other tools (audit ``modifiedProperties``, exports) with different casing; a property
spelt twice (in two casings) is refused as ambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

ALL_USERS = "AllUsers"
ALL_APPLICATIONS = "AllApplications"
ALL_MICROSOFT_APPS = "AllMicrosoftApps"
OFFICE365 = "Office365"
# Reserved application keywords that name Microsoft's own apps: they never cover a
# vendor's (third-party) application registration.
MICROSOFT_APP_KEYWORDS = frozenset({ALL_MICROSOFT_APPS.lower(), OFFICE365.lower()})
_USER_KEYWORDS = frozenset({ALL_USERS.lower()})
_APP_KEYWORDS = frozenset({ALL_APPLICATIONS.lower()}) | MICROSOFT_APP_KEYWORDS

KNOWN_TARGET_TYPES = frozenset({"user", "group", "application"})


class PolicyParseError(ValueError):
    """The JSON is not a cross-tenant access policy (wrong type where a shape is fixed)."""


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


class Access(StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"  # a value we do not know; the raw value is kept beside it


# Graph returns strings; audit-log before/after values encode the same field as
# 1 (allowed) / 2 (blocked) (DESIGN §3.4), so both spellings are understood.
_ACCESS_BY_RAW: Mapping[str, Access] = {
    "allowed": Access.ALLOWED,
    "blocked": Access.BLOCKED,
    "1": Access.ALLOWED,
    "2": Access.BLOCKED,
}


@dataclass(frozen=True, slots=True)
class UnknownValue:
    """A value kept verbatim because this version does not know it."""

    path: str
    value: str


@dataclass(frozen=True, slots=True)
class Target:
    target: str
    target_type: str | None  # raw; see KNOWN_TARGET_TYPES

    @property
    def key(self) -> str:
        """Comparison form: keywords and GUIDs are case-insensitive in Entra."""
        return self.target.strip().lower()

    @property
    def is_all_users(self) -> bool:
        return self.key in _USER_KEYWORDS

    @property
    def is_all_applications(self) -> bool:
        return self.key == ALL_APPLICATIONS.lower()

    @property
    def is_microsoft_app_keyword(self) -> bool:
        return self.key in MICROSOFT_APP_KEYWORDS

    @property
    def is_keyword(self) -> bool:
        return self.key in _USER_KEYWORDS or self.key in _APP_KEYWORDS

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "targetType": self.target_type}


@dataclass(frozen=True, slots=True)
class TargetConfiguration:
    """``crossTenantAccessPolicyTargetConfiguration``: an access type over a target list."""

    access_type: str | None  # raw, as received (None when absent)
    targets: tuple[Target, ...]

    @property
    def access(self) -> Access:
        if self.access_type is None:
            return Access.UNKNOWN
        return _ACCESS_BY_RAW.get(self.access_type.strip().lower(), Access.UNKNOWN)

    @property
    def target_keys(self) -> frozenset[str]:
        return frozenset(t.key for t in self.targets)

    def to_json(self) -> dict[str, Any]:
        return {"accessType": self.access_type, "targets": [t.to_json() for t in self.targets]}


@dataclass(frozen=True, slots=True)
class B2BSetting:
    """``crossTenantAccessPolicyB2BSetting``: users-and-groups plus applications."""

    users_and_groups: TargetConfiguration | None
    applications: TargetConfiguration | None

    def to_json(self) -> dict[str, Any]:
        return {
            "usersAndGroups": (
                None if self.users_and_groups is None else self.users_and_groups.to_json()
            ),
            "applications": None if self.applications is None else self.applications.to_json(),
        }


@dataclass(frozen=True, slots=True)
class InboundTrust:
    is_mfa_accepted: bool | None
    is_compliant_device_accepted: bool | None
    is_hybrid_azure_ad_joined_device_accepted: bool | None


@dataclass(frozen=True, slots=True)
class AutomaticUserConsentSettings:
    inbound_allowed: bool | None
    outbound_allowed: bool | None


@dataclass(frozen=True, slots=True)
class PolicyConfiguration:
    """Fields shared by the default policy and a partner entry."""

    b2b_collaboration_inbound: B2BSetting | None
    b2b_collaboration_outbound: B2BSetting | None
    b2b_direct_connect_inbound: B2BSetting | None
    b2b_direct_connect_outbound: B2BSetting | None
    inbound_trust: InboundTrust | None
    automatic_user_consent_settings: AutomaticUserConsentSettings | None
    unknown_values: tuple[UnknownValue, ...]


@dataclass(frozen=True, slots=True)
class DefaultPolicy(PolicyConfiguration):
    """``GET /policies/crossTenantAccessPolicy/default``."""

    is_service_default: bool | None = None


@dataclass(frozen=True, slots=True)
class PartnerPolicy(PolicyConfiguration):
    """``GET /policies/crossTenantAccessPolicy/partners/{tenantId}``."""

    tenant_id: str = ""
    is_service_provider: bool | None = None
    is_in_multi_tenant_organization: bool | None = None


# ---------------------------------------------------------------------------- parsing


class _Fields:
    """One JSON object's properties, found in any casing; the same property spelt twice
    is refused, not guessed. Indexed once per object: its properties are looked up one by
    one, and scanning every key for each of them took a fifth of a partner entry's parse."""

    __slots__ = ("_obj", "_path", "_spellings")

    def __init__(self, obj: Mapping[str, Any], path: str = "") -> None:
        self._obj = obj
        self._path = path
        spellings: dict[str, list[str]] = {}
        for k in obj:
            if isinstance(k, str):
                spellings.setdefault(k.lower(), []).append(k)
        self._spellings = spellings

    def get(self, key: str) -> Any:
        found = self._spellings.get(key.lower())
        if not found:
            return None
        if len(found) > 1:
            where = f"{self._path}: " if self._path else ""
            raise PolicyParseError(
                f"{where}property {key} appears in two spellings ({', '.join(found)}); "
                "which one applies is ambiguous"
            )
        return self._obj[found[0]]


def _fields(value: Any, path: str) -> _Fields | None:
    obj = _object(value, path)
    return None if obj is None else _Fields(obj, path)


def _object(value: Any, path: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PolicyParseError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _bool(value: Any, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise PolicyParseError(f"{path}: expected true, false or null, got {value!r}")


def _string(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    # Numbers appear in audit-log encodings (accessType 1/2); keep them as text.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PolicyParseError(f"{path}: expected a string, got {type(value).__name__}")


def _target_configuration(
    value: Any, path: str, unknown: list[UnknownValue], keywords: frozenset[str]
) -> TargetConfiguration | None:
    obj = _fields(value, path)
    if obj is None:
        return None
    access_type = _string(obj.get("accessType"), f"{path}.accessType")
    raw_targets = obj.get("targets")
    if raw_targets is None:
        raw_targets = []
    if not isinstance(raw_targets, list):
        raise PolicyParseError(f"{path}.targets: expected a list")
    targets: list[Target] = []
    for i, raw in enumerate(raw_targets):
        item_path = f"{path}.targets[{i}]"
        item = _fields(raw, item_path)
        if item is None:
            raise PolicyParseError(f"{item_path}: expected an object, got null")
        target = _string(item.get("target"), f"{item_path}.target")
        if target is None or not target.strip():
            raise PolicyParseError(f"{item_path}.target: missing")
        target_type = _string(item.get("targetType"), f"{item_path}.targetType")
        parsed = Target(target=target, target_type=target_type)
        if target_type is not None and target_type.strip().lower() not in KNOWN_TARGET_TYPES:
            unknown.append(UnknownValue(f"{item_path}.targetType", target_type))
        # A target that is neither a GUID nor a keyword we know is a new keyword (or a
        # typo): it is kept, it matches nothing, and a person is asked to look.
        if not is_guid(parsed.target.strip()) and parsed.key not in keywords:
            unknown.append(UnknownValue(f"{item_path}.target", target))
        targets.append(parsed)
    config = TargetConfiguration(access_type=access_type, targets=tuple(targets))
    if config.access is Access.UNKNOWN:
        # A missing accessType is as undecidable as an unknown one.
        unknown.append(UnknownValue(f"{path}.accessType", access_type or "null"))
    return config


def _b2b_setting(value: Any, path: str, unknown: list[UnknownValue]) -> B2BSetting | None:
    obj = _fields(value, path)
    if obj is None:
        return None
    return B2BSetting(
        users_and_groups=_target_configuration(
            obj.get("usersAndGroups"), f"{path}.usersAndGroups", unknown, _USER_KEYWORDS
        ),
        applications=_target_configuration(
            obj.get("applications"), f"{path}.applications", unknown, _APP_KEYWORDS
        ),
    )


def parse_b2b_setting(
    value: Any, path: str = "b2bSetting"
) -> tuple[B2BSetting | None, tuple[UnknownValue, ...]]:
    """Parse one B2B setting object on its own (e.g. an audit before/after value)."""
    unknown: list[UnknownValue] = []
    return _b2b_setting(value, path, unknown), tuple(unknown)


def _inbound_trust(value: Any, path: str) -> InboundTrust | None:
    obj = _fields(value, path)
    if obj is None:
        return None
    return InboundTrust(
        is_mfa_accepted=_bool(obj.get("isMfaAccepted"), f"{path}.isMfaAccepted"),
        is_compliant_device_accepted=_bool(
            obj.get("isCompliantDeviceAccepted"), f"{path}.isCompliantDeviceAccepted"
        ),
        is_hybrid_azure_ad_joined_device_accepted=_bool(
            obj.get("isHybridAzureADJoinedDeviceAccepted"),
            f"{path}.isHybridAzureADJoinedDeviceAccepted",
        ),
    )


def _consent(value: Any, path: str) -> AutomaticUserConsentSettings | None:
    obj = _fields(value, path)
    if obj is None:
        return None
    return AutomaticUserConsentSettings(
        inbound_allowed=_bool(obj.get("inboundAllowed"), f"{path}.inboundAllowed"),
        outbound_allowed=_bool(obj.get("outboundAllowed"), f"{path}.outboundAllowed"),
    )


def _common(obj: _Fields, unknown: list[UnknownValue]) -> dict[str, Any]:
    return {
        "b2b_collaboration_inbound": _b2b_setting(
            obj.get("b2bCollaborationInbound"), "b2bCollaborationInbound", unknown
        ),
        "b2b_collaboration_outbound": _b2b_setting(
            obj.get("b2bCollaborationOutbound"), "b2bCollaborationOutbound", unknown
        ),
        "b2b_direct_connect_inbound": _b2b_setting(
            obj.get("b2bDirectConnectInbound"), "b2bDirectConnectInbound", unknown
        ),
        "b2b_direct_connect_outbound": _b2b_setting(
            obj.get("b2bDirectConnectOutbound"), "b2bDirectConnectOutbound", unknown
        ),
        "inbound_trust": _inbound_trust(obj.get("inboundTrust"), "inboundTrust"),
        "automatic_user_consent_settings": _consent(
            obj.get("automaticUserConsentSettings"), "automaticUserConsentSettings"
        ),
    }


def parse_default_policy(payload: Any) -> DefaultPolicy:
    """Parse the body of ``GET /policies/crossTenantAccessPolicy/default``."""
    raw = _object(payload, "default policy")
    if raw is None:
        raise PolicyParseError("default policy: expected an object, got null")
    obj = _Fields(raw)
    unknown: list[UnknownValue] = []
    common = _common(obj, unknown)
    return DefaultPolicy(
        **common,
        unknown_values=tuple(unknown),
        is_service_default=_bool(obj.get("isServiceDefault"), "isServiceDefault"),
    )


def parse_partner_policy(payload: Any) -> PartnerPolicy:
    """Parse the body of ``GET /policies/crossTenantAccessPolicy/partners/{tenantId}``."""
    raw = _object(payload, "partner policy")
    if raw is None:
        raise PolicyParseError("partner policy: expected an object, got null")
    obj = _Fields(raw)
    tenant_id = _string(obj.get("tenantId"), "tenantId")
    if tenant_id is None or not is_guid(tenant_id.strip()):
        raise PolicyParseError(f"tenantId: expected a GUID, got {tenant_id!r}")
    unknown: list[UnknownValue] = []
    common = _common(obj, unknown)
    return PartnerPolicy(
        **common,
        unknown_values=tuple(unknown),
        tenant_id=tenant_id.strip().lower(),
        is_service_provider=_bool(obj.get("isServiceProvider"), "isServiceProvider"),
        is_in_multi_tenant_organization=_bool(
            obj.get("isInMultiTenantOrganization"), "isInMultiTenantOrganization"
        ),
    )


def parse_partner_list(payload: Any) -> tuple[PartnerPolicy, ...]:
    """Parse ``GET /policies/crossTenantAccessPolicy/partners`` (``{"value": [...]}`` or a list)."""
    items: Any = payload
    if isinstance(payload, Mapping):
        items = _Fields(payload).get("value")
    if not isinstance(items, list):
        raise PolicyParseError("partner list: expected a list or an object with a 'value' list")
    partners = tuple(parse_partner_policy(item) for item in items)
    seen: set[str] = set()
    for partner in partners:
        # Graph keys partners by tenant ID; two entries for one tenant cannot both apply.
        if partner.tenant_id in seen:
            raise PolicyParseError(
                f"partner list: tenant {partner.tenant_id} is listed twice; which entry "
                "applies is ambiguous"
            )
        seen.add(partner.tenant_id)
    return partners


# -------------------------------------------------------------------- effective policy


class Source(StrEnum):
    PARTNER = "partner"  # set on the partner entry
    DEFAULT = "default"  # null/absent on the partner entry (or no entry): inherited
    NOT_SET = "not_set"  # neither the partner entry nor the default has it


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Sourced(Generic[T]):
    """A value of the effective policy and where it came from."""

    value: T | None
    source: Source


@dataclass(frozen=True, slots=True)
class EffectiveB2BSetting:
    users_and_groups: Sourced[TargetConfiguration]
    applications: Sourced[TargetConfiguration]

    @property
    def complete(self) -> bool:
        return self.users_and_groups.value is not None and self.applications.value is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "usersAndGroups": _sourced_config_json(self.users_and_groups),
            "applications": _sourced_config_json(self.applications),
        }


def _sourced_config_json(sourced: Sourced[TargetConfiguration]) -> dict[str, Any]:
    body: dict[str, Any] = {"source": sourced.source.value}
    if sourced.value is not None:
        body.update(sourced.value.to_json())
    return body


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """The policy that applies toward one partner tenant, field by field with its source."""

    partner_tenant_id: str
    partner_entry_present: bool
    b2b_collaboration_inbound: EffectiveB2BSetting
    b2b_collaboration_outbound: EffectiveB2BSetting
    b2b_direct_connect_inbound: EffectiveB2BSetting
    b2b_direct_connect_outbound: EffectiveB2BSetting
    is_mfa_accepted: Sourced[bool]
    automatic_redemption_inbound: Sourced[bool]
    automatic_redemption_outbound: Sourced[bool]
    unknown_values: tuple[UnknownValue, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "partnerTenantId": self.partner_tenant_id,
            "partnerEntry": "present" if self.partner_entry_present else "missing",
            "b2bCollaborationOutbound": self.b2b_collaboration_outbound.to_json(),
            "b2bCollaborationInbound": self.b2b_collaboration_inbound.to_json(),
            "b2bDirectConnectOutbound": self.b2b_direct_connect_outbound.to_json(),
            "b2bDirectConnectInbound": self.b2b_direct_connect_inbound.to_json(),
            "inboundTrust": {
                "isMfaAccepted": self.is_mfa_accepted.value,
                "source": self.is_mfa_accepted.source.value,
            },
            "automaticUserConsentSettings": {
                "inboundAllowed": self.automatic_redemption_inbound.value,
                "inboundSource": self.automatic_redemption_inbound.source.value,
                "outboundAllowed": self.automatic_redemption_outbound.value,
                "outboundSource": self.automatic_redemption_outbound.source.value,
            },
        }


def _pick(partner_value: T | None, default_value: T | None) -> Sourced[T]:
    if partner_value is not None:
        return Sourced(partner_value, Source.PARTNER)
    if default_value is not None:
        return Sourced(default_value, Source.DEFAULT)
    return Sourced(None, Source.NOT_SET)


def _effective_setting(
    partner: B2BSetting | None, default: B2BSetting | None
) -> EffectiveB2BSetting:
    # Null inherits field by field: a partner setting with only ``usersAndGroups`` set
    # still takes ``applications`` from the default.
    return EffectiveB2BSetting(
        users_and_groups=_pick(
            None if partner is None else partner.users_and_groups,
            None if default is None else default.users_and_groups,
        ),
        applications=_pick(
            None if partner is None else partner.applications,
            None if default is None else default.applications,
        ),
    )


def _automatic_redemption(partner: PartnerPolicy | None, inbound: bool) -> Sourced[bool]:
    # Automatic redemption exists only on partner entries: on the default policy the
    # setting is always false and read-only (DESIGN §3.1), so "not ticked on the entry"
    # means false, whatever the default says.
    settings = None if partner is None else partner.automatic_user_consent_settings
    value = None
    if settings is not None:
        value = settings.inbound_allowed if inbound else settings.outbound_allowed
    if value is not None:
        return Sourced(value, Source.PARTNER)
    return Sourced(False, Source.DEFAULT)


def resolve_effective(
    default: DefaultPolicy, partner: PartnerPolicy | None, partner_tenant_id: str
) -> EffectivePolicy:
    """Apply DESIGN §3.1: every ``null`` on the partner entry inherits from the default."""
    tenant = partner_tenant_id.strip().lower()
    if partner is not None and partner.tenant_id != tenant:
        raise ValueError(f"partner entry is for tenant {partner.tenant_id}, not for {tenant}")
    p_trust = None if partner is None else partner.inbound_trust
    d_trust = default.inbound_trust
    unknown = default.unknown_values + (() if partner is None else partner.unknown_values)
    return EffectivePolicy(
        partner_tenant_id=tenant,
        partner_entry_present=partner is not None,
        b2b_collaboration_inbound=_effective_setting(
            None if partner is None else partner.b2b_collaboration_inbound,
            default.b2b_collaboration_inbound,
        ),
        b2b_collaboration_outbound=_effective_setting(
            None if partner is None else partner.b2b_collaboration_outbound,
            default.b2b_collaboration_outbound,
        ),
        b2b_direct_connect_inbound=_effective_setting(
            None if partner is None else partner.b2b_direct_connect_inbound,
            default.b2b_direct_connect_inbound,
        ),
        b2b_direct_connect_outbound=_effective_setting(
            None if partner is None else partner.b2b_direct_connect_outbound,
            default.b2b_direct_connect_outbound,
        ),
        is_mfa_accepted=_pick(
            None if p_trust is None else p_trust.is_mfa_accepted,
            None if d_trust is None else d_trust.is_mfa_accepted,
        ),
        automatic_redemption_inbound=_automatic_redemption(partner, inbound=True),
        automatic_redemption_outbound=_automatic_redemption(partner, inbound=False),
        unknown_values=unknown,
    )


# ------------------------------------------------------- Microsoft's interpretation table
#
# Graph "Cross-tenant access settings API overview", section "Interpreting the API
# response" (DESIGN §3.1). With U = "the user is among the usersAndGroups targets" and
# A = "the application is among the applications targets":
#
#   users allowed + apps allowed  -> permitted iff U and A
#   users allowed + apps blocked  -> permitted iff U and not A
#   users blocked + apps allowed  -> permitted iff not U and A
#   users blocked + apps blocked  -> permitted iff not (U and A)   (only the pair is blocked)
#
# which reproduces every row of the documented table (see tests/unit/test_posture.py).


class ReachKind(StrEnum):
    """Who among the partner's users a setting lets through to one application."""

    ALL = "all"  # every user
    ONLY = "only"  # only the listed users/groups
    ALL_EXCEPT = "all_except"  # everyone but the listed users/groups
    NOBODY = "nobody"
    UNDETERMINED = "undetermined"  # unknown value, missing setting, or unknowable app list


@dataclass(frozen=True, slots=True)
class Reach:
    kind: ReachKind
    principals: tuple[str, ...] = ()  # the listed user/group IDs for ONLY / ALL_EXCEPT

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"reach": self.kind.value}
        if self.principals:
            body["principals"] = list(self.principals)
        return body


_ALL = Reach(ReachKind.ALL)
_NOBODY = Reach(ReachKind.NOBODY)
_UNDETERMINED = Reach(ReachKind.UNDETERMINED)


def _has_unknown_targets(config: TargetConfiguration, keywords: frozenset[str]) -> bool:
    """Does the list hold a target that is neither an object ID nor a keyword we know?"""
    return any(not is_guid(t.key) and t.key not in keywords for t in config.targets)


def _user_targets(users: TargetConfiguration, unknown_covers_all: bool = False) -> Reach:
    """The set U itself, as a Reach: ALL (AllUsers), ONLY (listed) or NOBODY (empty).

    ``unknown_covers_all`` reads an unknown user keyword as covering every user; read the
    other way it covers nobody beyond the listed object IDs.
    """
    if unknown_covers_all or any(t.is_all_users for t in users.targets):
        return _ALL
    principals = tuple(sorted({t.key for t in users.targets if is_guid(t.key)}))
    return Reach(ReachKind.ONLY, principals) if principals else _NOBODY


def _complement(users_in: Reach) -> Reach:
    if users_in.kind is ReachKind.ALL:
        return _NOBODY
    if users_in.kind is ReachKind.NOBODY:
        return _ALL
    return Reach(ReachKind.ALL_EXCEPT, users_in.principals)


def app_targeted(
    apps: TargetConfiguration, app_id: str | None, *, microsoft_app: bool = False
) -> bool | None:
    """Is the application among ``apps.targets``, counting only the targets we know?

    ``app_id=None`` stands for "a vendor (non-Microsoft) app whose ID we were not told":
    the answer is then known only when the list holds AllApplications or nothing but
    Microsoft keywords; a list of explicit IDs makes it unknowable (``None``).
    ``microsoft_app=True`` marks a first-party Microsoft app, which AllMicrosoftApps covers
    (Office365 is not assumed to: its membership is not documented for portal apps).
    Unknown keywords are left out here; :func:`reach_options` reads them both ways.
    """
    keys = apps.target_keys
    if ALL_APPLICATIONS.lower() in keys:
        return True
    if microsoft_app and ALL_MICROSOFT_APPS.lower() in keys:
        return True
    if app_id is not None:
        return app_id.strip().lower() in keys
    explicit = [k for k in keys if is_guid(k)]
    return None if explicit else False


def _app_in_readings(
    apps: TargetConfiguration, app_id: str | None, microsoft_app: bool
) -> tuple[bool, ...]:
    known = app_targeted(apps, app_id, microsoft_app=microsoft_app)
    if known is True:
        return (True,)  # a known target already covers it; nothing unknown can undo that
    if known is None or _has_unknown_targets(apps, _APP_KEYWORDS):
        return (False, True)
    return (False,)


def _reach_given(
    users: TargetConfiguration, apps: TargetConfiguration, app_in: bool, users_in: Reach
) -> Reach:
    users_allowed = users.access is Access.ALLOWED
    apps_allowed = apps.access is Access.ALLOWED
    if users_allowed and apps_allowed:
        return users_in if app_in else _NOBODY
    if users_allowed:  # apps blocked
        return _NOBODY if app_in else users_in
    if apps_allowed:  # users blocked
        return _complement(users_in) if app_in else _NOBODY
    # both blocked: only the (U, A) pairs are blocked
    return _complement(users_in) if app_in else _ALL


def _decidable(
    setting: EffectiveB2BSetting,
) -> tuple[TargetConfiguration, TargetConfiguration] | None:
    users = setting.users_and_groups.value
    apps = setting.applications.value
    if users is None or apps is None:
        return None
    if users.access is Access.UNKNOWN or apps.access is Access.UNKNOWN:
        return None
    return users, apps


def has_unknown_targets(setting: EffectiveB2BSetting) -> bool:
    """Does either target list of the setting hold a keyword this version does not know?"""
    users = setting.users_and_groups.value
    apps = setting.applications.value
    return (users is not None and _has_unknown_targets(users, _USER_KEYWORDS)) or (
        apps is not None and _has_unknown_targets(apps, _APP_KEYWORDS)
    )


def users_readings(setting: EffectiveB2BSetting) -> tuple[bool, ...]:
    """The readings of the users list to try: ``(False,)``, or ``(False, True)`` when an
    unknown user keyword may cover nobody more (False) or everyone (True).

    The two extremes are enough: every rule of Microsoft's table is monotone in the set of
    users, so a reading in between never gives an answer both extremes rule out.
    """
    users = setting.users_and_groups.value
    if users is None or any(t.is_all_users for t in users.targets):
        return (False,)
    return (False, True) if _has_unknown_targets(users, _USER_KEYWORDS) else (False,)


def reach_options(
    setting: EffectiveB2BSetting,
    app_id: str | None,
    *,
    microsoft_app: bool = False,
    users_cover_all: bool | None = None,
) -> frozenset[Reach]:
    """Every reach the setting can mean for ``app_id``, over the readings of unknown keywords.

    ``users_cover_all`` fixes the reading of unknown user keywords (one of
    :func:`users_readings`); ``None`` tries them all. An application keyword we do not
    know may or may not cover the app, so both are tried. ``{UNDETERMINED}`` when the
    setting is missing or its access type unknown.
    """
    decidable = _decidable(setting)
    if decidable is None:
        return frozenset({_UNDETERMINED})
    users, apps = decidable
    readings = users_readings(setting)
    if users_cover_all is not None:
        readings = tuple(r for r in readings if r == users_cover_all) or (False,)
    return frozenset(
        _reach_given(users, apps, app_in, _user_targets(users, cover))
        for cover in readings
        for app_in in _app_in_readings(apps, app_id, microsoft_app)
    )


def reach_for_app(
    setting: EffectiveB2BSetting, app_id: str | None, *, microsoft_app: bool = False
) -> Reach:
    """Who the effective B2B setting lets through to ``app_id`` (see :func:`app_targeted`).

    UNDETERMINED unless every reading of the setting (unknown keywords, an app list that
    cannot be checked without the app's ID) gives the same answer.
    """
    options = reach_options(setting, app_id, microsoft_app=microsoft_app)
    return next(iter(options)) if len(options) == 1 else _UNDETERMINED


class _Extent(StrEnum):
    ALL = "all"
    SOME = "some"
    NONE = "none"


def _extents(
    config: TargetConfiguration, all_keyword: str, keywords: frozenset[str]
) -> set[_Extent]:
    """How much of its kind the list covers, under every reading of unknown keywords."""
    keys = config.target_keys
    if all_keyword.lower() in keys:
        return {_Extent.ALL}
    known = {k for k in keys if is_guid(k) or k in keywords}
    base = _Extent.SOME if known else _Extent.NONE
    if not _has_unknown_targets(config, keywords):
        return {base}
    return {base, _Extent.SOME, _Extent.ALL}


def _permits(u: _Extent, a: _Extent, users_allowed: bool, apps_allowed: bool) -> bool:
    if users_allowed and apps_allowed:
        return u is not _Extent.NONE and a is not _Extent.NONE
    if users_allowed:
        return u is not _Extent.NONE and a is not _Extent.ALL
    if apps_allowed:
        return u is not _Extent.ALL and a is not _Extent.NONE
    return not (u is _Extent.ALL and a is _Extent.ALL)


def permits_anything(setting: EffectiveB2BSetting) -> bool | None:
    """Does the setting let at least one user reach at least one application?

    ``None`` when it cannot be told (missing setting, an unknown access type, or an unknown
    keyword whose meaning decides it). Used for B2B direct connect, which the vendor wants
    fully blocked whatever the application.
    """
    decidable = _decidable(setting)
    if decidable is None:
        return None
    users, apps = decidable
    answers = {
        _permits(u, a, users.access is Access.ALLOWED, apps.access is Access.ALLOWED)
        for u in _extents(users, ALL_USERS, _USER_KEYWORDS)
        for a in _extents(apps, ALL_APPLICATIONS, _APP_KEYWORDS)
    }
    return answers.pop() if len(answers) == 1 else None
