"""``xtap-watch dev ...``: helpers for the local stack (``./scripts/demo --keep``).

``dev principal`` prints the ``X-MS-CLIENT-PRINCIPAL`` header a local call to the HTTP API
needs: in Azure, App Service Authentication validates the caller's token and sets that
header itself (stripping any copy a caller sends); the local runner has no App Service in
front, so a local caller brings it. It is useless against a deployment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

HEADER = "X-MS-CLIENT-PRINCIPAL"
LOCAL_OPERATOR = "local.operator@example.com"
LOCAL_OPERATOR_OID = "5f0c2b7e-3a91-4d68-8e2f-7b4c1d9a6e30"


def _principal(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.domain.principal import encode_client_principal
    from shared.domain.reinvite import is_guid

    tenant = args.tenant or os.environ.get("XTAP_VENDOR_TENANT_ID", "").strip()
    if not tenant:
        raise CliError(
            "dev principal: give --tenant, or set XTAP_VENDOR_TENANT_ID (the API admits only "
            "callers from the vendor tenant)"
        )
    if not is_guid(tenant):
        raise CliError(f"--tenant: not a tenant ID (GUID): {tenant!r}")
    roles = tuple(dict.fromkeys(args.role or ()))
    value = encode_client_principal(
        name=args.name, object_id=args.object_id, roles=roles, tenant_id=tenant.lower()
    )
    if getattr(args, "output", None) == "json":
        print(json.dumps({"header": HEADER, "value": value, "roles": list(roles)}, indent=2))
    else:
        # The header line itself, whatever the terminal: curl -H "$(xtap-watch dev ...)"
        sys.stdout.write(f"{HEADER}: {value}\n")
    return 0


def register(subparsers: Any) -> None:
    dev = subparsers.add_parser(
        "dev",
        help="helpers for the local stack (./scripts/demo --keep)",
        description="Helpers for running xtap-watch locally.",
    )
    sub = dev.add_subparsers(dest="dev_command", required=True, metavar="COMMAND")
    principal = sub.add_parser(
        "principal",
        help="print the sign-in header a local HTTP API call needs",
        description=(
            "Print the X-MS-CLIENT-PRINCIPAL header that App Service Authentication would\n"
            "set for a signed-in caller, for calls to the local runner's HTTP API. A\n"
            "deployment ignores it: there App Service sets the header itself."
        ),
        epilog=(
            "example:\n"
            '  curl -H "$(xtap-watch dev principal --role Reinvite.Request)" \\\n'
            '      "$XTAP_LOCAL_API/api/v1/clients/<tenant ID>/posture"'
        ),
    )
    principal.add_argument(
        "--role",
        action="append",
        metavar="ROLE",
        help="app role the caller holds, e.g. Reinvite.Request (repeatable)",
    )
    principal.add_argument("--name", default=LOCAL_OPERATOR, help="the caller's user name")
    principal.add_argument(
        "--object-id", default=LOCAL_OPERATOR_OID, help="the caller's object ID"
    )
    principal.add_argument(
        "--tenant", help="the caller's tenant (default: XTAP_VENDOR_TENANT_ID)"
    )
    principal.set_defaults(handler=_principal)
