"""Scenarios of the Graph simulator (a TEST DOUBLE): the demo, generated ones, files.

``load_scenario(spec)`` accepts a dict, a path to a JSON file, ``"demo"`` (``demo.json``
beside this file) or ``"generated:N"`` (the demo's vendor + N deterministic clients, see
:func:`generated_client`). Keys starting with ``_`` are comments and are dropped.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sim.state import ScenarioError, stable_id

DEMO_PATH = Path(__file__).with_name("demo.json")

VENDOR_TENANT_ID = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
VENDOR_APP_ID = "3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74"
VENDOR_APP_SECRET = "sim-vendor-secret"
READER_APP_ID = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"
READER_APP_SECRET = "sim-reader-secret"
VENDOR_PORTAL_APP_ID = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
VENDOR_ANALYTICS_APP_ID = "9c2e4b7a-1d35-4f86-b0a9-6e3c8d1f2a57"
MANAGED_IDENTITY_CLIENT_ID = "e2d7b4a9-3c16-4a8f-b5e0-7f9c2d1a6b38"
MANAGED_IDENTITY_PRINCIPAL_ID = "a9f3c6e1-4d28-4b7a-8e53-2c1b9d7f0a64"
MANAGED_IDENTITY_HEADER = "sim-identity-header"
VENDOR_WORKSPACE_ID = "4e1b7c9a-2d5f-4a83-b6c0-9d2e8f1a3c75"
# Demo clients (see demo.json's _comment).
CONTOSO_TENANT_ID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM_TENANT_ID = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NORTHWIND_TENANT_ID = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
TAILSPIN_TENANT_ID = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"
WOODGROVE_TENANT_ID = "5e6f7a8b-9c0d-4e1f-8a3b-4c5d6e7f8091"
LIMITED_GROUP_ID = "8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13"


def strip_comments(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: strip_comments(v) for k, v in node.items() if not str(k).startswith("_")}
    if isinstance(node, list):
        return [strip_comments(v) for v in node]
    return node


def demo_scenario() -> dict[str, Any]:
    return cast(dict[str, Any], strip_comments(json.loads(DEMO_PATH.read_text(encoding="utf-8"))))


@dataclass(frozen=True)
class GeneratedClient:
    index: int
    tenant_id: str
    domain: str
    display_name: str
    kind: str  # allowed | limited | blocked | unconsented


def generated_client(index: int) -> GeneratedClient:
    """The i-th generated client (deterministic: same IDs and kinds in every run).

    Kinds: every 20th (i % 20 == 7) is ``blocked`` (default outbound blocked, no vendor
    exception, consented); every 10th (i % 10 == 3) ``limited`` (vendor entry allows one
    group); every 50th (i % 50 == 11) ``unconsented`` (blocked, no consent, 500212 sign-ins
    in the vendor's log); the rest ``allowed``.
    """
    if index % 50 == 11:
        kind = "unconsented"
    elif index % 20 == 7:
        kind = "blocked"
    elif index % 10 == 3:
        kind = "limited"
    else:
        kind = "allowed"
    return GeneratedClient(
        index=index,
        tenant_id=stable_id("generated-client", index),
        domain=f"client{index:05d}.example.com",
        display_name=f"Generated Client {index:05d}",
        kind=kind,
    )


def b2b_everyone(access: str) -> dict[str, Any]:
    """A B2B setting for all users and all applications, ``allowed`` or ``blocked``."""
    return {
        "usersAndGroups": {
            "accessType": access,
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": access,
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }


_ALL = b2b_everyone("allowed")
_BLOCKED = b2b_everyone("blocked")


def generated_scenario(count: int) -> dict[str, Any]:
    """The demo's vendor (apps, identity, members) + ``count`` generated clients."""
    if count < 0 or count > 100_000:
        raise ScenarioError("generated:N needs 0 <= N <= 100000")
    demo = demo_scenario()
    vendor = copy.deepcopy(next(t for t in demo["tenants"] if t["id"] == VENDOR_TENANT_ID))
    vendor["users"] = [u for u in vendor["users"] if u.get("userType", "Member") == "Member"]
    vendor["groups"] = []  # the demo's guests group holds demo guests, dropped above
    vendor["crossTenantAccessPolicy"]["partners"] = []
    vendor["signIns"] = []
    tenants: list[dict[str, Any]] = [vendor]
    auto_out = {"inboundAllowed": False, "outboundAllowed": True}
    limited_group = stable_id("generated-group", "LIMITED")
    for index in range(count):
        client = generated_client(index)
        default: dict[str, Any] = {}
        partners: list[dict[str, Any]] = []
        if client.kind in {"blocked", "unconsented"}:
            default = {"b2bCollaborationOutbound": _BLOCKED}
        elif client.kind == "limited":
            partners.append(
                {
                    "tenantId": VENDOR_TENANT_ID,
                    "b2bCollaborationOutbound": {
                        "usersAndGroups": {
                            "accessType": "allowed",
                            "targets": [{"target": limited_group, "targetType": "group"}],
                        },
                        "applications": _ALL["applications"],
                    },
                    "automaticUserConsentSettings": auto_out,
                }
            )
        else:
            partners.append(
                {"tenantId": VENDOR_TENANT_ID, "automaticUserConsentSettings": auto_out}
            )
        tenants.append(
            {
                "id": client.tenant_id,
                "displayName": client.display_name,
                "defaultDomainName": client.domain,
                "domains": [client.domain],
                "crossTenantAccessPolicy": {"default": default, "partners": partners},
                "consents": {READER_APP_ID: "none" if client.kind == "unconsented" else "granted"},
            }
        )
        vendor["crossTenantAccessPolicy"]["partners"].append(
            {
                "tenantId": client.tenant_id,
                "automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": False},
            }
        )
        vendor["users"].append(
            {
                "mail": f"user{index:05d}@{client.domain}",
                "userType": "Guest",
                "externalUserState": "PendingAcceptance" if index % 7 == 0 else "Accepted",
                "externalUserStateChangeDateTime": "now-30d",
                "createdDateTime": "now-120d",
            }
        )
        if client.kind == "unconsented":
            for hours in (1, 2, 4):
                vendor["signIns"].append(
                    {
                        "createdDateTime": f"now-{hours}h",
                        "userPrincipalName": f"user{index:05d}@{client.domain}",
                        "homeTenantId": client.tenant_id,
                        "appId": VENDOR_PORTAL_APP_ID,
                        "appDisplayName": "OSTTRA SSO Portal",
                        "errorCode": 500212,
                    }
                )
    return {
        "description": f"OSTTRA vendor with {count} generated clients",
        "seed": demo.get("seed", 1),
        "applications": demo["applications"],
        "managedIdentities": demo["managedIdentities"],
        "tenants": tenants,
    }


def load_scenario(spec: dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(spec, dict):
        return cast(dict[str, Any], strip_comments(copy.deepcopy(spec)))
    text = str(spec)
    if text == "demo":
        return demo_scenario()
    if text.startswith("generated:"):
        try:
            count = int(text.split(":", 1)[1])
        except ValueError as exc:
            raise ScenarioError(f"bad scenario {text!r}: expected generated:N") from exc
        return generated_scenario(count)
    path = Path(text)
    if not path.is_file():
        raise ScenarioError(f"scenario file not found: {path}")
    try:
        return cast(dict[str, Any], strip_comments(json.loads(path.read_text(encoding="utf-8"))))
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"scenario {path} is not valid JSON: {exc}") from exc
