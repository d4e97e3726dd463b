"""``xtap-watch posture evaluate``: a client's outbound posture from policy JSON files.

Contract (DESIGN §6)::

    xtap-watch posture evaluate --default FILE --partner FILE|none \\
        --vendor-tenant ID [--vendor-app ID ...]

prints one JSON object (``verdict``, ``findings[]`` with ``code``, ``severity``,
``message``, plus ``remediation``, ``explanation``, ``reach`` and ``effective``) — when
piped, or with ``--output json``; a table on a terminal. The exit status is the verdict's:
0 ALLOWED, 3 LIMITED, 4 BLOCKED, 5 UNKNOWN (issue #14.6); bad input exits 2 with one line on
stderr.

``--default`` is the body of ``GET /policies/crossTenantAccessPolicy/default``;
``--partner`` the body of ``GET .../partners/{vendorTenantId}``, or a partner list
(``GET .../partners``, ``{"value": [...]}``) from which the vendor's entry is picked (absent
from the list = not configured), or ``none``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from shared.cli import CliError
from shared.domain.policy import (
    DefaultPolicy,
    PartnerPolicy,
    PolicyParseError,
    is_guid,
    parse_default_policy,
    parse_partner_list,
    parse_partner_policy,
)
from shared.domain.posture import evaluate_outbound_posture
from shared.domain.strict_json import StrictJsonError, loads_strict
from shared.entrypoints.cli_common import (
    EXIT_CODES_HELP,
    Column,
    emit,
    render_table,
    verdict_exit,
)

_POLICY_KEYS = frozenset(
    k.lower()
    for k in (
        "b2bCollaborationOutbound",
        "b2bCollaborationInbound",
        "b2bDirectConnectOutbound",
        "b2bDirectConnectInbound",
        "inboundTrust",
        "automaticUserConsentSettings",
        "isServiceDefault",
        "tenantRestrictions",
    )
)


def register(subparsers: Any) -> None:
    posture = subparsers.add_parser(
        "posture", help="Evaluate a client's cross-tenant posture toward the vendor."
    )
    commands = posture.add_subparsers(dest="posture_command", required=True)
    evaluate = commands.add_parser(
        "evaluate",
        help="Outbound posture from the client's default policy and its entry for the vendor.",
        description="Evaluate a client's outbound posture toward the vendor from two policy\n"
        "files: the client's default cross-tenant access policy and its entry for the vendor\n"
        "(as Microsoft Graph returns them). No settings or network needed.",
        epilog="example:\n"
        "  xtap-watch posture evaluate --default default.json --partner partner.json \\\n"
        "      --vendor-tenant 0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50 \\\n"
        "      --vendor-app 5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14\n\n" + EXIT_CODES_HELP,
    )
    evaluate.add_argument(
        "--default",
        required=True,
        metavar="FILE",
        dest="default_file",
        help="the client's default policy (GET /policies/crossTenantAccessPolicy/default)",
    )
    evaluate.add_argument(
        "--partner",
        required=True,
        metavar="FILE|none",
        dest="partner_file",
        help="the client's partner entry for the vendor tenant, a partner list, or none",
    )
    evaluate.add_argument(
        "--vendor-tenant",
        required=True,
        metavar="ID",
        dest="vendor_tenant",
        help="the vendor's Entra tenant ID",
    )
    evaluate.add_argument(
        "--vendor-app",
        action="append",
        default=[],
        metavar="ID",
        dest="vendor_apps",
        help="application (client) ID of a vendor app guests sign in to; repeatable",
    )
    evaluate.add_argument("--vendor-name", default="the vendor", help="name used in messages")
    evaluate.add_argument("--vendor-domain", default=None, help="vendor sign-in domain")
    evaluate.set_defaults(handler=_evaluate)


def _load_json(path_text: str, what: str) -> Any:
    path = Path(path_text)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path_text}") from None
    except IsADirectoryError:
        raise CliError(f"{what} file is a directory: {path_text}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read {what} file {path_text}: {reason}") from None
    try:
        return loads_strict(text)
    except StrictJsonError as exc:
        raise CliError(f"{what} file {path_text} is not valid JSON: {exc}") from None


def _looks_like_policy(payload: dict[str, Any]) -> bool:
    return any(isinstance(k, str) and k.lower() in _POLICY_KEYS for k in payload)


def _read_default(path_text: str) -> DefaultPolicy:
    payload = _load_json(path_text, "--default")
    if not isinstance(payload, dict):
        raise CliError(
            f"--default file {path_text} must hold a JSON object, not {_json_type(payload)}"
        )
    if not _looks_like_policy(payload):
        raise CliError(
            f"--default file {path_text} is not a crossTenantAccessPolicy default "
            "(no b2bCollaborationOutbound/Inbound, inboundTrust, ... property)"
        )
    try:
        return parse_default_policy(payload)
    except PolicyParseError as exc:
        raise CliError(f"--default file {path_text}: {exc}") from None


def _read_partner(path_text: str, vendor_tenant: str) -> PartnerPolicy | None:
    if path_text.strip().lower() == "none":
        return None
    payload = _load_json(path_text, "--partner")
    try:
        if isinstance(payload, list) or (isinstance(payload, dict) and "value" in payload):
            entries = parse_partner_list(payload)
            return next((e for e in entries if e.tenant_id == vendor_tenant), None)
        if not isinstance(payload, dict):
            raise CliError(
                f"--partner file {path_text} must hold a JSON object, not {_json_type(payload)}"
            )
        partner = parse_partner_policy(payload)
    except PolicyParseError as exc:
        raise CliError(f"--partner file {path_text}: {exc}") from None
    if partner.tenant_id != vendor_tenant:
        raise CliError(
            f"--partner file {path_text} is the entry for tenant {partner.tenant_id}, "
            f"not for the vendor tenant {vendor_tenant}"
        )
    return partner


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


def _guid(value: str, option: str) -> str:
    if not is_guid(value.strip()):
        raise CliError(f"{option}: not a GUID: {value!r}")
    return value.strip().lower()


def _evaluate(args: argparse.Namespace) -> int:
    vendor_tenant = _guid(args.vendor_tenant, "--vendor-tenant")
    vendor_apps = [_guid(app, "--vendor-app") for app in args.vendor_apps]
    default = _read_default(args.default_file)
    partner = _read_partner(args.partner_file, vendor_tenant)
    result = evaluate_outbound_posture(
        default,
        partner,
        vendor_tenant,
        vendor_apps,
        vendor_name=args.vendor_name,
        vendor_domain=args.vendor_domain,
    )
    body = result.to_dict()
    emit(args, body, table=_table)
    return verdict_exit(body["verdict"])


def _table(body: dict[str, Any]) -> str:
    findings = body.get("findings", [])
    lines = [f"Verdict: {body['verdict']}", "", *body.get("explanation", [])]
    if findings:
        columns = (
            Column("Severity", lambda f: f.get("severity")),
            Column("Code", lambda f: f.get("code")),
            Column("What", lambda f: f.get("message"), 90),
        )
        lines += ["", render_table(findings, columns)]
    return "\n".join(lines)
