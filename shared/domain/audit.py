"""Decode Entra audit events about cross-tenant access settings into explained changes.

DESIGN §3.4. Three shapes of the same event feed one decoder:

* Graph ``GET /auditLogs/directoryAudits`` records (camelCase; ``targetResources`` — or
  ``targetResource`` in one documented example — with ``modifiedProperties``);
* Log Analytics ``AuditLogs`` rows (``OperationName``, ``Category``, ``TargetResources``
  as a JSON string or a list, ``InitiatedBy``, ``ActivityDateTime``, ``Id`` ...);
* Office 365 Management Activity API records (``Operation`` with a trailing period,
  top-level ``ModifiedProperties`` with ``Name``/``OldValue``/``NewValue``).

Modified property values are **JSON-encoded strings** (``"\\"<guid>\\""`` or a bare
``<guid>``, ``"{\\"usersAndGroups\\": ...}"``), sometimes wrapped in a one-element JSON
array, with access types as numbers (1 = allowed, 2 = blocked) or words and keys in
camelCase or PascalCase. Everything is normalised to one canonical JSON form (camelCase
keys, ``accessType`` as ``"allowed"``/``"blocked"``).

Rules that matter downstream:

* an event of another category (and not a known cross-tenant activity) is *not relevant*:
  the decoders return an empty list, and only then;
* a relevant event whose shape is not understood is returned as an
  :class:`UnknownAuditShape` holding the raw record — it is never dropped;
* decoding never raises, whatever JSON it is given (property-tested).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, TypeAlias

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Deeper than any real policy value; the cap keeps hostile input from hitting the
# interpreter's recursion limit (decoding must never raise).
_MAX_DEPTH: Final = 32
_MISSING: Final = object()
# Small memo tables for strings that repeat in every event (activity names, JSON keys).
_CACHE_LIMIT: Final = 2048
_ACTIVITY_KEYS: dict[str, str] = {}
_CAMEL_KEYS: dict[str, str] = {}


class ChangeKind(StrEnum):
    PARTNER_ADDED = "partner_added"
    PARTNER_UPDATED = "partner_updated"
    PARTNER_DELETED = "partner_deleted"
    DEFAULT_RESET = "default_reset"
    DEFAULT_UPDATED = "default_updated"
    MIGRATED = "migrated_to_scalable_model"
    # Partner-level cross-tenant synchronization (partners/{id}/identitySynchronization)
    PARTNER_SYNC_CREATED = "partner_sync_created"
    PARTNER_SYNC_UPDATED = "partner_sync_updated"
    PARTNER_SYNC_DELETED = "partner_sync_deleted"
    UNKNOWN = "unknown"


SYNC_KINDS: Final = frozenset(
    {
        ChangeKind.PARTNER_SYNC_CREATED,
        ChangeKind.PARTNER_SYNC_UPDATED,
        ChangeKind.PARTNER_SYNC_DELETED,
    }
)


class Scope(StrEnum):
    DEFAULT = "default"
    PARTNER = "partner"
    ALL_PARTNERS = "all_partners"  # a migration touches every partner entry at once
    UNKNOWN = "unknown"


RELEVANT_CATEGORIES: Final = frozenset(
    {"crosstenantaccesssettings", "crosstenantidentitysyncsettings"}
)


def normalise_activity(name: str) -> str:
    """Loose activity key: case, surrounding space, trailing periods, hyphens vs spaces.

    The Office 365 Management API spells the same activities with a trailing period
    ("Add a partner to cross-tenant access setting.").
    """
    cached = _ACTIVITY_KEYS.get(name)
    if cached is not None:
        return cached
    text = name.strip().rstrip(".").lower().replace("-", " ")
    key = " ".join(text.split())
    if len(_ACTIVITY_KEYS) < _CACHE_LIMIT:  # bounded: names come from outside
        _ACTIVITY_KEYS[name] = key
    return key


_ACTIVITIES: Final[tuple[tuple[str, ChangeKind, Scope], ...]] = (
    ("Add a partner to cross-tenant access setting", ChangeKind.PARTNER_ADDED, Scope.PARTNER),
    ("Update a partner cross-tenant access setting", ChangeKind.PARTNER_UPDATED, Scope.PARTNER),
    (
        "Delete partner specific cross-tenant access setting",
        ChangeKind.PARTNER_DELETED,
        Scope.PARTNER,
    ),
    (
        "Reset the cross-tenant access default setting",
        ChangeKind.DEFAULT_RESET,
        Scope.DEFAULT,
    ),
    (
        "Update the company default cross-tenant access setting",
        ChangeKind.DEFAULT_UPDATED,
        Scope.DEFAULT,
    ),
    (
        "Migrated partner cross-tenant access settings to the scalable model",
        ChangeKind.MIGRATED,
        Scope.ALL_PARTNERS,
    ),
    # Category CrossTenantIdentitySyncSettings (Entra docs, "Audit activities").
    (
        "Create a partner cross-tenant identity sync setting",
        ChangeKind.PARTNER_SYNC_CREATED,
        Scope.PARTNER,
    ),
    (
        "Update a partner cross-tenant identity sync setting",
        ChangeKind.PARTNER_SYNC_UPDATED,
        Scope.PARTNER,
    ),
    (
        "Delete a partner cross-tenant identity sync setting",
        ChangeKind.PARTNER_SYNC_DELETED,
        Scope.PARTNER,
    ),
)
ACTIVITY_KINDS: Final[dict[str, tuple[ChangeKind, Scope]]] = {
    normalise_activity(name): (kind, scope) for name, kind, scope in _ACTIVITIES
}

# Canonical setting names (Graph property names) and how people call them.
SETTING_LABELS: Final[dict[str, str]] = {
    "tenantId": "Partner entry",
    "b2bCollaborationInbound": "B2B collaboration inbound",
    "b2bCollaborationOutbound": "B2B collaboration outbound",
    "b2bDirectConnectInbound": "B2B direct connect inbound",
    "b2bDirectConnectOutbound": "B2B direct connect outbound",
    "inboundTrust": "Inbound trust settings",
    "automaticUserConsentSettings": "Automatic redemption",
    "tenantRestrictions": "Tenant restrictions",
    "identitySynchronization": "Cross-tenant synchronization",
    "userSyncInbound": "Cross-tenant synchronization inbound",
    "isServiceProvider": "Service provider flag",
    "isInMultiTenantOrganization": "Multitenant organization membership",
    "invitationRedemptionIdentityProviderConfiguration": "Redemption identity providers",
    "crossCloudMeetingConfiguration": "Cross-cloud meetings",
    "protectedContentSharing": "Protected content sharing",
    "allowedCloudEndpoints": "Microsoft cloud settings",
}
B2B_SETTINGS: Final = frozenset(
    {
        "b2bCollaborationInbound",
        "b2bCollaborationOutbound",
        "b2bDirectConnectInbound",
        "b2bDirectConnectOutbound",
    }
)
# Settings whose value is a JSON object (or null); anything else there is a shape we
# do not understand.
_OBJECT_SETTINGS: Final = B2B_SETTINGS | frozenset(
    {
        "inboundTrust",
        "automaticUserConsentSettings",
        "tenantRestrictions",
        "identitySynchronization",
        "userSyncInbound",
        "invitationRedemptionIdentityProviderConfiguration",
        "crossCloudMeetingConfiguration",
        "protectedContentSharing",
    }
)
_SETTING_BY_LOWER: Final = {name.lower(): name for name in SETTING_LABELS}
# Bookkeeping properties Entra adds to many audit events; they are not settings.
_METADATA_PROPERTIES: Final = frozenset({"included updated properties", "action client name"})

_FLAG_LABELS: Final[dict[str, str]] = {
    "isMfaAccepted": "trust MFA",
    "isCompliantDeviceAccepted": "trust compliant devices",
    "isHybridAzureADJoinedDeviceAccepted": "trust hybrid joined devices",
    "inboundAllowed": "inbound",
    "outboundAllowed": "outbound",
    "isSyncAllowed": "sync allowed",
}
USERS_ALL: Final = "allusers"
APPLICATIONS_ALL: Final = "allapplications"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made the change: a user (UPN) or an application / service principal."""

    kind: str  # "user" | "app" | "unknown"
    name: str | None = None
    object_id: str | None = None
    app_id: str | None = None
    ip_address: str | None = None

    def display(self) -> str:
        if self.kind == "user":
            return self.name or self.object_id or "unknown user"
        if self.kind == "app":
            label = self.name or self.app_id or self.object_id or "unknown application"
            return f"app {label}"
        return "unknown"


UNKNOWN_ACTOR: Final = Actor(kind="unknown")


@dataclass(frozen=True, slots=True)
class AuditEventInfo:
    """What every change decoded from one audit event shares."""

    event_id: str
    time: datetime | None
    activity: str  # as logged
    kind: ChangeKind
    category: str
    who: Actor
    partner_tenant_id: str | None
    scope: Scope
    result: str | None
    correlation_id: str | None
    source: str  # "graph" | "log_analytics" | "o365_management"

    @property
    def succeeded(self) -> bool:
        return (self.result or "success").strip().lower() not in {"failure", "failed", "timeout"}


@dataclass(frozen=True, slots=True)
class CrossTenantChange:
    """One setting changed by one audit event (an event yields one change per setting).

    ``before``/``after`` are the canonical decoded values; ``before_text``/``after_text``
    the same in words ("users allowed AllUsers; applications blocked a1b2..."), ``None``
    when there is no value (not configured / inherited / removed).
    """

    event: AuditEventInfo
    index: int
    setting: str
    before: JsonValue
    after: JsonValue
    before_text: str | None
    after_text: str | None
    summary: str
    # Typed views of before/after for B2B-shaped settings (None otherwise), decoded once.
    before_b2b: B2BSetting | None = None
    after_b2b: B2BSetting | None = None

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def partner_tenant_id(self) -> str | None:
        return self.event.partner_tenant_id

    @property
    def scope(self) -> Scope:
        return self.event.scope

    @property
    def kind(self) -> ChangeKind:
        return self.event.kind

    @property
    def label(self) -> str:
        return setting_label(self.setting)


@dataclass(frozen=True, slots=True)
class UnknownAuditShape:
    """A relevant event the decoder does not fully understand, kept raw for review."""

    raw: object
    problems: tuple[str, ...]
    event_id: str | None = None
    activity: str | None = None
    category: str | None = None
    time: datetime | None = None
    who: Actor = UNKNOWN_ACTOR
    partner_tenant_id: str | None = None
    partial: tuple[CrossTenantChange, ...] = ()  # what could be decoded, for context
    source: str = "graph"

    @property
    def summary(self) -> str:
        what = self.activity or "cross-tenant access audit event"
        return f"Unrecognised {what}: " + "; ".join(self.problems)


DecodedEvent: TypeAlias = list[CrossTenantChange] | UnknownAuditShape


@dataclass(slots=True)
class DecodedBatch:
    """A batch of audit records decoded in order, with the irrelevant ones counted."""

    items: list[CrossTenantChange | UnknownAuditShape] = field(default_factory=list)
    not_relevant: int = 0
    events: int = 0

    @property
    def changes(self) -> list[CrossTenantChange]:
        return [item for item in self.items if isinstance(item, CrossTenantChange)]

    @property
    def unknown(self) -> list[UnknownAuditShape]:
        return [item for item in self.items if isinstance(item, UnknownAuditShape)]


# --------------------------------------------------------------- canonical settings


@dataclass(frozen=True, slots=True)
class TargetSet:
    """``usersAndGroups`` or ``applications``: an access type and its targets."""

    access_type: str | None  # "allowed" | "blocked" | an unrecognised raw value | None
    targets: tuple[str, ...]

    def _has(self, keyword: str) -> bool:
        return any(target.lower() == keyword for target in self.targets)

    def is_open(self, all_keyword: str) -> bool:
        """Allowed for everyone/everything (``allowed`` + ``AllUsers``/``AllApplications``)."""
        return self.access_type == "allowed" and self._has(all_keyword)

    def blocks_all(self, all_keyword: str) -> bool:
        return self.access_type == "blocked" and self._has(all_keyword)

    def admits_any(self, all_keyword: str) -> bool | None:
        """Does anyone/anything get through? ``None`` for an unrecognised access type."""
        if self.access_type == "allowed":
            return bool(self.targets)
        if self.access_type == "blocked":
            return not self._has(all_keyword)
        return None

    def describe(self) -> str:
        access = self.access_type or "unset"
        if not self.targets:
            return f"{access} (no targets)"
        shown = ", ".join(self.targets[:5])
        more = f" +{len(self.targets) - 5} more" if len(self.targets) > 5 else ""
        return f"{access} {shown}{more}"


@dataclass(frozen=True, slots=True)
class B2BSetting:
    """A B2B collaboration / direct connect setting (DESIGN §3.1); a missing part is None."""

    users: TargetSet | None
    applications: TargetSet | None

    def is_open(self) -> bool:
        return (
            self.users is not None
            and self.applications is not None
            and self.users.is_open(USERS_ALL)
            and self.applications.is_open(APPLICATIONS_ALL)
        )

    def admits_anyone(self) -> bool | None:
        """Whether some user can reach some app; ``None`` when it cannot be told."""
        users = None if self.users is None else self.users.admits_any(USERS_ALL)
        apps = None if self.applications is None else self.applications.admits_any(APPLICATIONS_ALL)
        if users is False or apps is False:
            return False
        if users is True and apps is True:
            return True
        if users is True and self.applications is None:
            return True  # applications unset: nothing restricts them here
        if apps is True and self.users is None:
            return True
        return None

    def describe(self) -> str:
        parts = []
        if self.users is not None:
            parts.append(f"users {self.users.describe()}")
        if self.applications is not None:
            parts.append(f"applications {self.applications.describe()}")
        return "; ".join(parts) if parts else "no users or applications"


def _target_set(value: JsonValue) -> TargetSet | None:
    if not isinstance(value, dict):
        return None
    access = value.get("accessType")
    raw_targets = value.get("targets")
    targets: list[str] = []
    if isinstance(raw_targets, list):
        for item in raw_targets:
            if isinstance(item, dict):
                target = item.get("target")
                if target is not None:
                    targets.append(str(target))
            elif isinstance(item, str):
                targets.append(item)
    return TargetSet(access_type=None if access is None else str(access), targets=tuple(targets))


def b2b_setting(value: JsonValue) -> B2BSetting | None:
    """The typed view of a canonical B2B setting value (``None`` when not an object)."""
    if not isinstance(value, dict):
        return None
    return B2BSetting(
        users=_target_set(value.get("usersAndGroups")),
        applications=_target_set(value.get("applications")),
    )


def setting_label(setting: str) -> str:
    return SETTING_LABELS.get(setting, setting)


def canonical_setting_name(name: str) -> str:
    return _SETTING_BY_LOWER.get(name.strip().lower(), name.strip())


# ------------------------------------------------------------------ value decoding


def _camel(key: str) -> str:
    cached = _CAMEL_KEYS.get(key)
    if cached is not None:
        return cached
    name = key.lower() if key.isupper() else key[:1].lower() + key[1:]
    if len(_CAMEL_KEYS) < _CACHE_LIMIT:
        _CAMEL_KEYS[key] = name
    return name


def _access_type(value: object, problems: list[str]) -> JsonValue:
    if isinstance(value, bool):  # bool is an int: True would read as "allowed"
        problems.append(f"unrecognised access type {value}")
        return str(value).lower()
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == 1:
            return "allowed"
        if value == 2:
            return "blocked"
    elif isinstance(value, str):
        word = value.strip().lower()
        if word in ("allowed", "blocked"):
            return word
        if word == "1":
            return "allowed"
        if word == "2":
            return "blocked"
    elif value is None:
        return None
    shown = _safe_str(value)[:100]
    problems.append(f"unrecognised access type {shown}")
    return shown


def _canonical(value: object, problems: list[str], depth: int = 0) -> JsonValue:
    """camelCase keys, ``accessType`` as words, everything else kept."""
    if depth > _MAX_DEPTH:
        problems.append("value nested too deeply")
        return None
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            name = _camel(str(key))
            if name == "accessType":
                out[name] = _access_type(item, problems)
            elif name == "targetType" and isinstance(item, str):
                out[name] = item.lower()
            else:
                out[name] = _canonical(item, problems, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_canonical(item, problems, depth + 1) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return _safe_str(value)  # e.g. a datetime from a Log Analytics client


def _loads(text: str) -> object:
    """``json.loads`` that reports failure as the ``_MISSING`` sentinel instead of raising."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _MISSING


def decode_value(raw: object, problems: list[str], setting: str = "") -> JsonValue:
    """Decode one ``oldValue``/``newValue`` into canonical JSON.

    Accepts a JSON-encoded string (once or twice encoded), a bare string (``<guid>``),
    an already-decoded value (Log Analytics may hand objects over), or null / "" /
    "null" / "[]" for no value. A one-element array is unwrapped: Entra often logs
    ``["value"]``. Appends to ``problems`` when a value looks like JSON but is not.
    """
    value: object = raw
    if isinstance(raw, str):
        text = raw.strip()
        if text in ("", "null", '""', "[]"):
            return None
        decoded = _loads(text)
        if decoded is _MISSING:
            if text[0] in "{[":
                # The raw record is kept on the UnknownAuditShape this problem produces.
                problems.append(f"{setting or 'a value'} is not valid JSON")
                return None
            return text  # a bare value such as a GUID
        value = decoded
        if isinstance(value, str):
            inner = value.strip()
            if inner[:1] in ("{", "[", '"'):  # encoded twice
                again = _loads(inner)
                if again is _MISSING:
                    problems.append(f"{setting or 'a value'} is not valid JSON")
                    return None
                value = again
    if isinstance(value, list | tuple):
        if not value:
            return None
        if len(value) == 1:
            value = value[0]
            if isinstance(value, str) and value.strip()[:1] in ("{", "["):
                again = _loads(value.strip())
                if again is not _MISSING:
                    value = again
    return _canonical(value, problems)


# ------------------------------------------------------------------ describing values


def _flag(value: JsonValue) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    if value is None:
        return "unset"
    return _compact(value)


def _safe_str(value: object) -> str:
    """``str()`` that cannot fail (huge ints exceed Python's int-to-text digit limit)."""
    try:
        return str(value)
    except ValueError:
        return f"<{type(value).__name__}>"


def _compact(value: JsonValue) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, separators=(",", ":"))
        except ValueError:
            text = _safe_str(value)
    return text if len(text) <= 300 else text[:297] + "..."


def _is_b2b_shaped(setting: str) -> bool:
    return setting in B2B_SETTINGS or setting == "tenantRestrictions"


def describe_value(setting: str, value: JsonValue, typed: B2BSetting | None = None) -> str | None:
    """A canonical value in words; ``None`` for no value."""
    if value is None:
        return None
    if _is_b2b_shaped(setting):
        typed = typed or b2b_setting(value)
        if typed is not None:
            return typed.describe()
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if isinstance(item, bool) or (key in _FLAG_LABELS and item is None):
                parts.append(f"{_FLAG_LABELS.get(key, key)} {_flag(item)}")
            else:
                parts.append(f"{key} {_compact(item)}")
        return ", ".join(parts) if parts else "empty"
    if isinstance(value, bool):
        return _flag(value)
    return _compact(value)


def _absent_text(scope: Scope, kind: ChangeKind, side: str) -> str:
    if kind is ChangeKind.PARTNER_DELETED and side == "after":
        return "removed with the partner entry"
    if kind is ChangeKind.PARTNER_SYNC_DELETED and side == "after":
        return "removed (no synchronization setting)"
    if kind is ChangeKind.PARTNER_SYNC_CREATED and side == "before":
        return "not configured"
    if scope is Scope.PARTNER:
        return "inherited from default"
    return "not set"


def _summarise(
    setting: str,
    before: JsonValue,
    after: JsonValue,
    event: AuditEventInfo,
    old: B2BSetting | None = None,
    new: B2BSetting | None = None,
) -> str:
    label = setting_label(setting)
    if setting == "identitySynchronization" and event.kind is ChangeKind.PARTNER_SYNC_DELETED:
        return (
            f"{label} setting for tenant {event.partner_tenant_id} deleted: that tenant can no "
            "longer synchronize users into this one"
        )
    if setting == "tenantId":
        tenant = event.partner_tenant_id or _compact(after if after is not None else before)
        if event.kind is ChangeKind.PARTNER_DELETED:
            return f"{label} for tenant {tenant} deleted: the default settings now apply to it"
        if event.kind is ChangeKind.PARTNER_ADDED:
            return (
                f"{label} added for tenant {tenant}: it inherits the default settings "
                "until its own are set"
            )
    before_none = _absent_text(event.scope, event.kind, "before")
    after_none = _absent_text(event.scope, event.kind, "after")
    if _is_b2b_shaped(setting):
        if old is not None and new is not None:
            diffs = []
            for part, was, now in (
                ("users", old.users, new.users),
                ("applications", old.applications, new.applications),
            ):
                if was != now:
                    was_text = was.describe() if was is not None else before_none
                    now_text = now.describe() if now is not None else after_none
                    diffs.append(f"{part} {was_text} → {now_text}")
            if not diffs:
                return f"{label}: unchanged ({new.describe()})"
            return f"{label}: " + "; ".join(diffs)
    if isinstance(before, dict) and isinstance(after, dict):
        diffs = []
        for key in list(before) + [k for k in after if k not in before]:
            old_item, new_item = before.get(key), after.get(key)
            if old_item != new_item:
                name = _FLAG_LABELS.get(key, key)
                diffs.append(f"{name} {_flag(old_item)} → {_flag(new_item)}")
        if not diffs:
            return f"{label}: unchanged"
        return f"{label}: " + "; ".join(diffs)
    was_text = describe_value(setting, before) or before_none
    now_text = describe_value(setting, after) or after_none
    return f"{label}: {was_text} → {now_text}"


# -------------------------------------------------------------------- raw access


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` matching camelCase, PascalCase or any case; ``None`` when absent."""
    value = obj.get(name, _MISSING)
    if value is not _MISSING:
        return value
    value = obj.get(name[:1].upper() + name[1:], _MISSING)
    if value is not _MISSING:
        return value
    lowered = name.lower()
    for key, item in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return item
    return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    if isinstance(value, bool | int | float):
        return _safe_str(value)
    return None


def _maybe_json(value: object, what: str, problems: list[str]) -> object:
    """Log Analytics hands dynamic columns over as JSON text; decode them."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        decoded = _loads(text)
        if decoded is _MISSING:
            problems.append(f"{what} is not valid JSON")
            return None
        return decoded
    return value


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _text(value)
    if text is None or len(text) > 64:
        return None
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(candidate)
    except (ValueError, OverflowError):
        # More than 6 fractional digits on older parsers: trim them.
        match = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", candidate)
        if match is None:
            return None
        try:
            parsed = datetime.fromisoformat(f"{match[1]}.{match[2][:6]}{match[3]}")
        except (ValueError, OverflowError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _actor(initiated_by: object) -> Actor:
    if not isinstance(initiated_by, Mapping):
        return UNKNOWN_ACTOR
    user = _get(initiated_by, "user")
    if isinstance(user, Mapping):
        name = _text(_get(user, "userPrincipalName")) or _text(_get(user, "displayName"))
        object_id = _text(_get(user, "id"))
        if name or object_id:
            return Actor(
                kind="user",
                name=name,
                object_id=object_id,
                ip_address=_text(_get(user, "ipAddress")),
            )
    app = _get(initiated_by, "app")
    if isinstance(app, Mapping):
        name = _text(_get(app, "displayName")) or _text(_get(app, "servicePrincipalName"))
        app_id = _text(_get(app, "appId"))
        object_id = _text(_get(app, "servicePrincipalId"))
        if name or app_id or object_id:
            return Actor(kind="app", name=name, object_id=object_id, app_id=app_id)
    return UNKNOWN_ACTOR


# ------------------------------------------------------------------- the decoder


@dataclass(slots=True)
class _RawEvent:
    """The three source shapes reduced to the same parts (values still raw)."""

    source: str
    raw: object
    event_id: object
    activity: object
    category: object
    time: object
    result: object
    correlation_id: object
    who: Actor
    targets: object  # list of target resources, each with modifiedProperties
    problems: list[str]


def _is_relevant(category: str | None, activity_key: str) -> bool:
    if activity_key in ACTIVITY_KINDS:
        return True
    return category is not None and category.lower() in RELEVANT_CATEGORIES


def _guid_in(value: JsonValue) -> str | None:
    return value.strip() if isinstance(value, str) and _GUID.match(value.strip()) else None


def _decode(ev: _RawEvent) -> DecodedEvent:
    activity = _text(ev.activity)
    category = _text(ev.category)
    activity_key = normalise_activity(activity) if activity else ""
    if not _is_relevant(category, activity_key):
        return []

    problems = ev.problems
    event_id = _text(ev.event_id)
    if event_id is None:
        problems.append("event id missing")
    time = _parse_time(ev.time)
    if time is None:
        problems.append("activity time missing or unreadable")
    known = ACTIVITY_KINDS.get(activity_key)
    if known is None:
        problems.append(f"unknown activity {activity!r} in category {category!r}"[:300])
        kind, scope = ChangeKind.UNKNOWN, Scope.UNKNOWN
    else:
        kind, scope = known

    # Gather (name, old, new) from every target resource.
    properties: list[tuple[str, JsonValue, JsonValue]] = []
    other_target_ids: list[str] = []
    targets = ev.targets
    if targets is None:
        targets = []
    if not isinstance(targets, list):
        problems.append("targetResources is not a list")
        targets = []
    for target in targets:
        if not isinstance(target, Mapping):
            problems.append("a target resource is not an object")
            continue
        target_type = _text(_get(target, "type")) or ""
        target_id = _text(_get(target, "id"))
        # "CrossTenantAccessPolicy for <tenant>" of type Policy names the vendor's own
        # policy object, never the partner: only other target types can name one.
        if target_id and target_type.lower() not in ("policy", "") and _GUID.match(target_id):
            other_target_ids.append(target_id)
        modified = _get(target, "modifiedProperties")
        if modified is None:
            continue
        if not isinstance(modified, list):
            problems.append("modifiedProperties is not a list")
            continue
        for prop in modified:
            if not isinstance(prop, Mapping):
                problems.append("a modified property is not an object")
                continue
            raw_name = _text(_get(prop, "displayName")) or _text(_get(prop, "name"))
            if raw_name is None:
                problems.append("a modified property has no name")
                continue
            if raw_name.lower() in _METADATA_PROPERTIES:
                continue
            name = canonical_setting_name(raw_name)
            old = decode_value(_get(prop, "oldValue"), problems, name)
            new = decode_value(_get(prop, "newValue"), problems, name)
            if name in _OBJECT_SETTINGS:
                for side in (old, new):
                    if side is not None and not isinstance(side, dict):
                        problems.append(f"{name} value is not a JSON object")
            if name in B2B_SETTINGS:
                for side in (old, new):
                    if isinstance(side, dict) and not (
                        "usersAndGroups" in side or "applications" in side
                    ):
                        problems.append(f"{name} value has neither usersAndGroups nor applications")
            properties.append((name, old, new))

    # The partner: the tenantId property (newValue on add, oldValue on delete), else a
    # non-policy target resource.
    partner: str | None = None
    for name, old, new in properties:
        if name == "tenantId":
            deleting = kind in (ChangeKind.PARTNER_DELETED, ChangeKind.PARTNER_SYNC_DELETED)
            first, second = (old, new) if deleting else (new, old)
            chosen = first if first is not None else second
            partner = _guid_in(chosen)
            if chosen is not None and partner is None:
                problems.append("tenantId is not a tenant ID (GUID)")
            break
    if partner is None and other_target_ids and scope is Scope.PARTNER:
        partner = other_target_ids[0]
    if scope is Scope.PARTNER and partner is None:
        problems.append("partner tenant ID not found")
    if partner is not None:
        partner = partner.lower()

    info = AuditEventInfo(
        event_id=event_id or "",
        time=time,
        activity=activity or "",
        kind=kind,
        category=category or "",
        who=ev.who,
        partner_tenant_id=partner,
        scope=scope,
        result=_text(ev.result),
        correlation_id=_text(ev.correlation_id),
        source=ev.source,
    )

    changes: list[CrossTenantChange] = []

    def add(setting: str, before: JsonValue, after: JsonValue, summary: str = "") -> None:
        old = new = None
        if _is_b2b_shaped(setting):
            old, new = b2b_setting(before), b2b_setting(after)
        changes.append(
            CrossTenantChange(
                event=info,
                index=len(changes),
                setting=setting,
                before=before,
                after=after,
                before_text=describe_value(setting, before, old),
                after_text=describe_value(setting, after, new),
                summary=summary or _summarise(setting, before, after, info, old, new),
                before_b2b=old,
                after_b2b=new,
            )
        )

    for name, old, new in properties:
        if name == "tenantId":
            # On an update the tenantId only identifies the partner; on add and delete
            # it is the change itself.
            if kind in (ChangeKind.PARTNER_ADDED, ChangeKind.PARTNER_DELETED) or (
                old is not None and new is not None and old != new
            ):
                add(name, old, new)
            continue
        add(name, old, new)

    if not changes and not problems:
        if kind is ChangeKind.MIGRATED:
            add(
                "storageModel",
                None,
                "scalable",
                "Microsoft migrated the partner cross-tenant access settings to the "
                "scalable storage model; no setting values changed",
            )
        elif kind is ChangeKind.DEFAULT_RESET:
            add(
                "default",
                None,
                "service default",
                "Default cross-tenant access settings reset to Microsoft's service "
                "defaults: B2B collaboration allowed inbound and outbound for everyone, "
                "B2B direct connect blocked, no inbound trust",
            )
        elif kind in (ChangeKind.PARTNER_ADDED, ChangeKind.PARTNER_DELETED) and partner:
            add(
                "tenantId",
                None if kind is ChangeKind.PARTNER_ADDED else partner,
                partner if kind is ChangeKind.PARTNER_ADDED else None,
            )
        elif kind is ChangeKind.PARTNER_SYNC_DELETED and partner:
            # Logged with only the partner's tenantId: the whole sync setting went away.
            add("identitySynchronization", {"tenantId": partner}, None)
        else:
            problems.append("no modified settings in the event")

    if problems:
        return UnknownAuditShape(
            raw=ev.raw,
            problems=tuple(dict.fromkeys(problems)),  # de-duplicated, order kept
            event_id=event_id,
            activity=activity,
            category=category,
            time=time,
            who=ev.who,
            partner_tenant_id=partner,
            partial=tuple(changes),
            source=ev.source,
        )
    return changes


def _not_an_object(record: object, source: str) -> UnknownAuditShape:
    return UnknownAuditShape(raw=record, problems=("record is not a JSON object",), source=source)


def decode_directory_audit(record: Mapping[str, Any]) -> DecodedEvent:
    """Decode one Graph ``directoryAudit`` record.

    Returns the changes it made (one per setting), an :class:`UnknownAuditShape` for a
    relevant event that is not understood, or ``[]`` when the event is not about
    cross-tenant access at all.
    """
    if not isinstance(record, Mapping):
        return _not_an_object(record, "graph")
    problems: list[str] = []
    targets = _get(record, "targetResources")
    if targets is None:
        targets = _get(record, "targetResource")  # as printed in one Graph doc example
    return _decode(
        _RawEvent(
            source="graph",
            raw=record,
            event_id=_get(record, "id"),
            activity=_get(record, "activityDisplayName"),
            category=_get(record, "category"),
            time=_get(record, "activityDateTime"),
            result=_get(record, "result"),
            correlation_id=_get(record, "correlationId"),
            who=_actor(_get(record, "initiatedBy")),
            targets=targets,
            problems=problems,
        )
    )


def decode_audit_logs_row(row: Mapping[str, Any]) -> DecodedEvent:
    """Decode one Log Analytics ``AuditLogs`` row (same result as the Graph decoder).

    ``TargetResources`` and ``InitiatedBy`` may be JSON text or already-decoded values;
    ``ActivityDateTime`` text or a ``datetime``; inner keys camelCase or PascalCase.
    """
    if not isinstance(row, Mapping):
        return _not_an_object(row, "log_analytics")
    problems: list[str] = []
    targets = _maybe_json(_get(row, "TargetResources"), "TargetResources", problems)
    initiated_by = _maybe_json(_get(row, "InitiatedBy"), "InitiatedBy", problems)
    time = _get(row, "ActivityDateTime")
    if time is None or time == "":
        time = _get(row, "TimeGenerated")
    return _decode(
        _RawEvent(
            source="log_analytics",
            raw=row,
            event_id=_get(row, "Id"),
            activity=_get(row, "OperationName"),
            category=_get(row, "Category"),
            time=time,
            result=_get(row, "Result"),
            correlation_id=_get(row, "CorrelationId"),
            who=_actor(initiated_by),
            targets=targets,
            problems=problems,
        )
    )


def decode_management_activity_record(record: Mapping[str, Any]) -> DecodedEvent:
    """Decode one Office 365 Management Activity API record (``Workload`` AzureActiveDirectory).

    Its ``ModifiedProperties`` sit at the top level (``Name``/``OldValue``/``NewValue``)
    and the actor is ``UserId``; there is no category, so relevance comes from the
    activity name (which ends with a period there).
    """
    if not isinstance(record, Mapping):
        return _not_an_object(record, "o365_management")
    modified = _get(record, "ModifiedProperties")
    user_id = _text(_get(record, "UserId"))
    who = Actor(kind="user", name=user_id) if user_id else UNKNOWN_ACTOR
    targets: list[object] = [{"type": "", "modifiedProperties": modified}]
    return _decode(
        _RawEvent(
            source="o365_management",
            raw=record,
            event_id=_get(record, "Id"),
            activity=_get(record, "Operation"),
            category=_get(record, "Category"),
            time=_get(record, "CreationTime"),
            result=_get(record, "ResultStatus"),
            correlation_id=None,
            who=who,
            targets=targets,
            problems=[],
        )
    )


def decode_audit_record(record: object) -> DecodedEvent:
    """Decode a record of any supported shape, recognised by its keys."""
    if not isinstance(record, Mapping):
        return _not_an_object(record, "unknown")
    if "OperationName" in record or "operationName" in record:
        return decode_audit_logs_row(record)
    if "Operation" in record and "activityDisplayName" not in record:
        return decode_management_activity_record(record)
    return decode_directory_audit(record)


def decode_audit_records(records: Iterable[object]) -> DecodedBatch:
    """Decode many records, keeping their order and counting the irrelevant ones."""
    batch = DecodedBatch()
    for record in records:
        batch.events += 1
        decoded = decode_audit_record(record)
        if isinstance(decoded, UnknownAuditShape):
            batch.items.append(decoded)
        elif decoded:
            batch.items.extend(decoded)
        else:
            batch.not_relevant += 1
    return batch
