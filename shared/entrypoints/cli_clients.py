"""``xtap-watch clients ...``: the client registry (onboarding, consent links, bulk)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.entrypoints.cli_app import GRAPH, STORAGE, run_with_app

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def _domain(value: str) -> str:
    from shared.cli import CliError

    if not _DOMAIN.match(value):
        raise CliError(f"--domain: not a domain name: {value!r}")
    return value.lower()


def _guid(value: str, what: str) -> str:
    from shared.cli import CliError

    if not _GUID.match(value):
        raise CliError(f"{what}: not a GUID: {value!r}")
    return value.lower()


def _add(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import ClientNotFound, add_client_by_domain, admin_consent_link

    domain = _domain(args.domain)
    groups = tuple(_guid(g, "--expected-group") for g in args.expected_group or ())

    async def use(app: Any) -> dict[str, Any]:
        try:
            record = await add_client_by_domain(
                app,
                domain,
                datetime.now(UTC),
                name=args.name,
                contacts=tuple(args.contact or ()),
                expected_groups=groups,
            )
        except ClientNotFound as exc:
            raise CliError(str(exc)) from exc
        return record.model_dump(mode="json") | {
            "adminConsentLink": admin_consent_link(app.settings, record.tenant_id)
        }

    _print(run_with_app(use, needs=(STORAGE, GRAPH)))
    return 0


def _list(args: argparse.Namespace) -> int:
    from shared.adapters.repositories import ClientRegistry, PostureStore

    async def use(app: Any) -> list[dict[str, Any]]:
        postures = {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
        rows = []
        for record in await ClientRegistry(app.tables).list():
            posture = postures.get(record.tenant_id, {})
            rows.append(
                {
                    "name": record.name,
                    "tenantId": record.tenant_id,
                    "consent": record.consent.value,
                    "verdict": posture.get("verdict"),
                    "state": posture.get("state"),
                }
            )
        return rows

    _print(run_with_app(use))
    return 0


def _consent_link(args: argparse.Namespace) -> int:
    from shared.config import load_settings
    from shared.services.clients import admin_consent_link

    print(admin_consent_link(load_settings(), _guid(args.tenant_id, "tenant_id")))
    return 0


def _import(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from shared.cli import CliError
    from shared.services.clients import import_clients

    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"{args.file}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("clients")
    if not isinstance(data, list):
        raise CliError(f'{args.file}: expected a list of clients or {{"clients": [...]}}')

    async def use(app: Any) -> int:
        try:
            return await import_clients(app, data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise CliError(f"{args.file}: {where}: {first['msg']}") from exc

    _print({"imported": run_with_app(use)})
    return 0


def _export(args: argparse.Namespace) -> int:
    from shared.entrypoints.cli_common import writable_file
    from shared.services.clients import export_clients

    target = writable_file(args.file, "export") if args.file else None  # before any work
    data = {"clients": run_with_app(export_clients)}
    if target is not None:
        target.write_text(json.dumps(data, indent=2), encoding="utf-8")
    else:
        json.dump(data, sys.stdout, indent=2)
        print()
    return 0


def _instructions(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import ClientNotFound, client_instructions

    tenant = _guid(args.tenant_id, "tenant_id")
    for address in args.send_to or ():
        if "@" not in address or " " in address:
            raise CliError(f"--send-to: not an e-mail address: {address!r}")

    async def use(app: Any) -> dict[str, Any]:
        try:
            return await client_instructions(app, tenant, tuple(args.send_to or ()))
        except ClientNotFound as exc:
            raise CliError(str(exc)) from exc

    result = run_with_app(use)
    if args.send_to:
        _print({"subject": result["subject"], "sentTo": result["sentTo"]})
    else:
        print(f"Subject: {result['subject']}\n\n{result['text']}")
    return 0


def register(subparsers: Any) -> None:
    clients = subparsers.add_parser("clients", help="the client registry")
    sub = clients.add_subparsers(dest="clients_command", required=True)

    add = sub.add_parser("add", help="register a client by one of its domains")
    add.add_argument("--domain", required=True)
    add.add_argument("--name")
    add.add_argument("--contact", action="append", help="client admin e-mail (repeatable)")
    add.add_argument(
        "--expected-group",
        action="append",
        help="group object ID the client deliberately limits access to (repeatable)",
    )
    add.set_defaults(handler=_add)

    sub.add_parser("list", help="registered clients with their latest verdict").set_defaults(
        handler=_list
    )

    link = sub.add_parser("consent-link", help="print the admin-consent link for a client")
    link.add_argument("tenant_id")
    link.set_defaults(handler=_consent_link)

    imp = sub.add_parser("import", help="bulk onboarding from JSON")
    imp.add_argument("file")
    imp.set_defaults(handler=_import)

    ins = sub.add_parser(
        "instructions", help="the client-facing e-mail: onboarding steps + consent link"
    )
    ins.add_argument("tenant_id")
    ins.add_argument("--send-to", action="append", help="client admin address (repeatable)")
    ins.set_defaults(handler=_instructions)

    exp = sub.add_parser("export", help="the registry as JSON")
    exp.add_argument("file", nargs="?")
    exp.set_defaults(handler=_export)
