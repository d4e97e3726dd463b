"""The caller of the support API, from App Service Authentication's client principal.

App Service Authentication ("Easy Auth", Entra provider) sits in front of the Function
App. It validates the caller's token and passes the claims on in the
``X-MS-CLIENT-PRINCIPAL`` header: base64 of ``{auth_typ, claims: [{typ, val}], name_typ,
role_typ}``. App Service strips that header from incoming requests, so its presence
means Easy Auth vouched for it; what remains for us is to decode it strictly, insist on
an identity, check the app role and know whom to record as the requester (DESIGN §4).

Roles: Entra puts app roles in the token's ``roles`` claim and Easy Auth passes them on
as claims of type ``roles`` (its ``role_typ`` names the WS-Federation role URI). Roles are
read from ``roles`` claims only: the header's own ``role_typ`` is never trusted to say
which claim grants access (defence in depth, issue 13 item 12), and with an expected
tenant a ``tid`` claim is required, single-valued and equal to it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from shared.domain.strict_json import StrictJsonError, loads_strict

MAX_HEADER_CHARS = 16 * 1024  # Entra tokens with many groups still fit well within this

ROLES_CLAIM = "roles"
WSFED_ROLE_CLAIM = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
TID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
# Human-readable names, best first. Apps calling with client credentials have none of
# these; they are identified by their application ID (azp / appid).
NAME_CLAIMS = (
    "preferred_username",
    "upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "email",
    "name",
)
APP_ID_CLAIMS = ("azp", "appid")


class PrincipalError(ValueError):
    """The header is missing or not a usable client principal (→ 401)."""


@dataclass(frozen=True)
class ClientPrincipal:
    auth_type: str
    claims: tuple[tuple[str, str], ...]
    name_type: str
    role_type: str

    def values(self, *types: str) -> list[str]:
        wanted = {t.lower() for t in types}
        return [val for typ, val in self.claims if typ.lower() in wanted]

    def first(self, *types: str) -> str | None:
        for wanted in types:
            for value in self.values(wanted):
                if value.strip():
                    return value.strip()
        return None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.values(ROLES_CLAIM))

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def object_id(self) -> str | None:
        value = self.first(*OID_CLAIMS)
        return value.lower() if value else None

    @property
    def tenant_id(self) -> str | None:
        value = self.first(*TID_CLAIMS)
        return value.lower() if value else None

    @property
    def name(self) -> str | None:
        return self.first(self.name_type, *NAME_CLAIMS)

    @property
    def app_id(self) -> str | None:
        return self.first(*APP_ID_CLAIMS)

    @property
    def caller_id(self) -> str:
        """A stable key for this caller (rate limiting): object ID, else name, else app ID."""
        return self.object_id or (self.name or "").lower() or self.app_id or "unknown"

    @property
    def display(self) -> str:
        """Who asked, as recorded in the job ledger and alerts: name and object ID."""
        name = self.name
        oid = self.object_id
        if name and oid:
            text = f"{name} ({oid})"
        elif name or oid:
            text = name or oid or ""
        else:
            text = f"app {self.app_id}"
        return text[:256]


def _decode(header: str) -> Any:
    text = header.strip()
    if not text:
        raise PrincipalError("client principal header is empty")
    if len(text) > MAX_HEADER_CHARS:
        raise PrincipalError("client principal header is too large")
    # App Service sends standard, padded base64 (RFC 4648 section 4): anything else did not
    # come from it.
    if len(text) % 4:
        raise PrincipalError("client principal header is not padded base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PrincipalError("client principal header is not base64") from exc
    try:
        return loads_strict(raw.decode("utf-8"))
    except (UnicodeDecodeError, StrictJsonError) as exc:
        raise PrincipalError("client principal header is not base64 JSON") from exc


def parse_client_principal(
    header: str | None, *, expected_tenant_id: str | None = None
) -> ClientPrincipal:
    """Decode and check ``X-MS-CLIENT-PRINCIPAL``; raise :class:`PrincipalError` if unusable.

    A principal must name an identity (object ID, a name claim or an app ID): an empty
    claim list is not a caller. With ``expected_tenant_id``, a principal whose ``tid``
    claim names another tenant is refused (Easy Auth should only admit the vendor's
    tenant; this keeps a multi-tenant misconfiguration from widening access).
    """
    if header is None:
        raise PrincipalError("no client principal: App Service Authentication must sign in")
    data = _decode(header)
    if not isinstance(data, dict):
        raise PrincipalError("client principal is not a JSON object")
    auth_type = data.get("auth_typ")
    if not isinstance(auth_type, str) or not auth_type.strip():
        raise PrincipalError("client principal has no auth_typ")
    raw_claims = data.get("claims")
    if not isinstance(raw_claims, list):
        raise PrincipalError("client principal has no claims list")
    claims: list[tuple[str, str]] = []
    for item in raw_claims:
        if not isinstance(item, dict):
            raise PrincipalError("client principal claim is not an object")
        typ, val = item.get("typ"), item.get("val")
        if not isinstance(typ, str) or not isinstance(val, str):
            raise PrincipalError("client principal claim needs string typ and val")
        claims.append((typ, val))
    name_type = data.get("name_typ")
    role_type = data.get("role_typ")
    principal = ClientPrincipal(
        auth_type=auth_type.strip(),
        claims=tuple(claims),
        name_type=name_type if isinstance(name_type, str) and name_type else "name",
        role_type=role_type if isinstance(role_type, str) and role_type else ROLES_CLAIM,
    )
    if not (principal.object_id or principal.name or principal.app_id):
        raise PrincipalError("client principal names no identity")
    tenants = {v.strip().lower() for v in principal.values(*TID_CLAIMS) if v.strip()}
    if len(tenants) > 1:
        raise PrincipalError("client principal names more than one tenant")
    if expected_tenant_id:
        if not tenants:
            raise PrincipalError("client principal names no tenant (tid claim missing)")
        if tenants != {expected_tenant_id.strip().lower()}:
            raise PrincipalError("client principal is from another tenant")
    return principal


def encode_client_principal(
    *,
    name: str | None = None,
    object_id: str | None = None,
    roles: tuple[str, ...] = (),
    tenant_id: str | None = None,
    auth_type: str = "aad",
) -> str:
    """Build the header App Service would send (local runner, tests, demo)."""
    claims: list[dict[str, str]] = []
    if object_id:
        claims.append({"typ": OID_CLAIMS[0], "val": object_id})
    if tenant_id:
        claims.append({"typ": TID_CLAIMS[0], "val": tenant_id})
    if name:
        claims.append({"typ": "preferred_username", "val": name})
        claims.append({"typ": "name", "val": name})
    claims.extend({"typ": ROLES_CLAIM, "val": role} for role in roles)
    document = {
        "auth_typ": auth_type,
        "claims": claims,
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": WSFED_ROLE_CLAIM,
    }
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")
