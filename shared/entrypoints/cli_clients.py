"""``xtap-watch clients ...``: the client registry (onboarding, consent links, bulk).

    add | list | show | update | remove | consent-link | instructions | import | export
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.entrypoints.cli_app import GRAPH, STORAGE, TENANT, run_with_app
from shared.entrypoints.cli_common import (
    Column,
    Progress,
    emit,
    explicit_json,
    note,
    render_pairs,
    render_table,
    writable_file,
)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)
TENANT_HELP = "the client's Entra tenant ID (GUID)"


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


def _emails(values: list[str] | None, option: str) -> tuple[str, ...]:
    from shared.cli import CliError
    from shared.domain.clients import email_addresses

    try:
        return email_addresses(tuple(values or ()))
    except ValueError as exc:
        raise CliError(f"{option}: {exc}") from None


def _refused(exc: Exception) -> Exception:
    from shared.cli import CliError

    return CliError(str(exc))


# ----------------------------------------------------------------------- table views
LIST_COLUMNS = (
    Column("Name", lambda r: r.get("name"), 28),
    Column("Tenant ID", lambda r: r.get("tenantId")),
    Column("Verdict", lambda r: r.get("verdict")),
    Column("State", lambda r: r.get("state")),
    Column("Consent", lambda r: r.get("consent")),
)


def _record_view(record: Any, posture: dict[str, Any] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = record.model_dump(mode="json", by_alias=True)
    if posture is not None:
        view["posture"] = {
            "verdict": posture.get("verdict"),
            "state": posture.get("state"),
            "checkedAt": posture.get("checkedAt"),
            "findings": [f.get("code") for f in posture.get("findings", [])],
            "vendorFindings": [f.get("code") for f in posture.get("vendorFindings", [])],
        }
    return view


def _show_table(view: dict[str, Any]) -> str:
    posture = view.get("posture") or {}
    scope = view.get("expectedScope") or {}
    routing = view.get("routing") or {}
    return render_pairs(
        [
            ("Name", view.get("name")),
            ("Tenant ID", view.get("tenantId")),
            ("Domains", view.get("domains")),
            ("Contacts", view.get("contacts")),
            ("Consent", view.get("consent")),
            ("Expected groups", scope.get("userGroups") or "everyone"),
            ("Scope note", scope.get("note")),
            ("Alert e-mails", routing.get("emails")),
            ("Teams setting", routing.get("teamsWebhookSetting")),
            ("Added", view.get("addedAt")),
            ("Verdict", posture.get("verdict") or "not checked yet"),
            ("State", posture.get("state")),
            ("Checked", posture.get("checkedAt")),
            ("Findings", posture.get("findings")),
            ("Vendor side", posture.get("vendorFindings")),
            *(
                [("Consent link", view["adminConsentLink"])]
                if view.get("adminConsentLink")
                else []
            ),
        ]
    )


# -------------------------------------------------------------------------- commands
def _add(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import (
        ClientNotFound,
        ClientRefused,
        add_client_by_domain,
        admin_consent_link,
    )

    domain = _domain(args.domain)
    groups = tuple(_guid(g, "--expected-group") for g in args.expected_group or ())
    contacts = _emails(args.contact, "--contact")

    async def use(app: Any) -> dict[str, Any]:
        try:
            record = await add_client_by_domain(
                app,
                domain,
                datetime.now(UTC),
                name=args.name,
                contacts=contacts,
                expected_groups=groups,
            )
        except (ClientNotFound, ClientRefused) as exc:
            raise CliError(str(exc)) from exc
        view = _record_view(record)
        if app.settings.client_reader_app_id:
            view["adminConsentLink"] = admin_consent_link(app.settings, record.tenant_id)
        return view

    view = run_with_app(use, needs=(STORAGE, GRAPH))
    emit(args, view, table=_show_table)
    if "adminConsentLink" not in view:
        note("no consent link: set XTAP_CLIENT_READER_APP_ID (the read-only app) to get one")
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

    rows = run_with_app(use)
    emit(args, rows, table=lambda r: render_table(r, LIST_COLUMNS) if r else "(no clients)")
    return 0


def _show(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import ClientNotFound, admin_consent_link, get_client

    tenant = _guid(args.tenant_id, "tenant_id")

    async def use(app: Any) -> dict[str, Any]:
        try:
            record, posture = await get_client(app, tenant)
        except ClientNotFound as exc:
            raise CliError(str(exc)) from exc
        view = _record_view(record, posture)
        if app.settings.client_reader_app_id and record.consent.value != "granted":
            view["adminConsentLink"] = admin_consent_link(app.settings, record.tenant_id)
        return view

    emit(args, run_with_app(use), table=_show_table)
    return 0


def _update(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import ClientChanges, ClientNotFound, update_client

    tenant = _guid(args.tenant_id, "tenant_id")
    groups: tuple[str, ...] | None = None
    if args.clear_expected_groups:
        groups = ()
    elif args.expected_group:
        groups = tuple(_guid(g, "--expected-group") for g in args.expected_group)
    changes = ClientChanges(
        name=args.name,
        add_contacts=_emails(args.add_contact, "--add-contact"),
        remove_contacts=_emails(args.remove_contact, "--remove-contact"),
        expected_groups=groups,
        scope_note=args.scope_note,
        alert_emails=_emails(args.alert_email, "--alert-email") if args.alert_email else None,
        teams_webhook_setting=args.teams_webhook_setting,
    )
    if changes == ClientChanges():
        raise CliError("clients update: nothing to change (see xtap-watch clients update --help)")

    async def use(app: Any) -> dict[str, Any]:
        from pydantic import ValidationError

        try:
            return _record_view(await update_client(app, tenant, changes))
        except ClientNotFound as exc:
            raise CliError(str(exc)) from exc
        except ValidationError as exc:
            raise CliError(_validation_line("clients update", exc)) from exc

    emit(args, run_with_app(use), table=_show_table)
    return 0


def _remove(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import ClientNotFound, remove_client

    tenant = _guid(args.tenant_id, "tenant_id")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("clients remove: add --yes to remove without a question")
        answer = input(f"Stop watching client {tenant} and delete its record? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            note("nothing removed")
            return 0

    async def use(app: Any) -> dict[str, Any]:
        try:
            record = await remove_client(app, tenant)
        except ClientNotFound as exc:
            raise CliError(str(exc)) from exc
        return {"removed": True, "tenantId": record.tenant_id, "name": record.name}

    emit(args, run_with_app(use), table=lambda v: f"removed {v['name']} ({v['tenantId']})")
    return 0


def _consent_link(args: argparse.Namespace) -> int:
    from shared.entrypoints.cli_app import READER, settings_for
    from shared.services.clients import admin_consent_link

    tenant = _guid(args.tenant_id, "tenant_id")
    link = admin_consent_link(settings_for((READER,)), tenant)
    if explicit_json(args):
        emit(args, {"tenantId": tenant, "adminConsentLink": link})
    else:
        print(link)
    return 0


def _validation_line(where: str, exc: Any) -> str:
    first = exc.errors()[0]
    location = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {location}: {message}"


def _import(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from shared.cli import CliError
    from shared.domain.strict_json import StrictJsonError, loads_strict
    from shared.services.clients import ClientRefused, import_clients

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{args.file}: cannot read: {exc}") from None
    try:
        data = loads_strict(text)
    except StrictJsonError as exc:
        raise CliError(f"{args.file}: not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("clients")
    if not isinstance(data, list):
        raise CliError(f'{args.file}: expected a list of clients or {{"clients": [...]}}')
    progress = Progress("imported", len(data))

    async def use(app: Any) -> int:
        try:
            # import_clients reports (done, total); Progress knows the total already.
            return await import_clients(
                app, data, lambda done, _total: progress.update(done), now=datetime.now(UTC)
            )
        except ValidationError as exc:
            raise CliError(_validation_line(args.file, exc)) from exc
        except ClientRefused as exc:
            raise CliError(f"{args.file}: {exc}") from exc
        finally:
            progress.done()

    imported = run_with_app(use, needs=(STORAGE, TENANT))
    emit(args, {"imported": imported}, table=lambda v: f"imported {v['imported']} clients")
    return 0


def _export(args: argparse.Namespace) -> int:
    from shared.services.clients import export_clients

    target = writable_file(args.file, "export") if args.file else None  # before any work
    data = {"clients": run_with_app(export_clients)}
    if target is not None:
        try:
            target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            from shared.cli import CliError

            raise CliError(f"export: cannot write {target}: {exc.strerror or exc}") from None
        note(f"exported {len(data['clients'])} clients to {target}")
    else:
        json.dump(data, sys.stdout, indent=2)
        print()
    return 0


def _instructions(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.services.clients import ClientNotFound, client_instructions

    tenant = _guid(args.tenant_id, "tenant_id")
    send_to = _emails(args.send_to, "--send-to")

    async def use(app: Any) -> dict[str, Any]:
        try:
            return await client_instructions(app, tenant, send_to)
        except ClientNotFound as exc:
            raise CliError(str(exc)) from exc

    result = run_with_app(use, needs=(STORAGE, GRAPH) if send_to else (STORAGE,))
    if send_to:
        emit(
            args,
            {"subject": result["subject"], "sentTo": result["sentTo"]},
            table=lambda v: f"sent \"{v['subject']}\" to {', '.join(v['sentTo'])}",
        )
    elif explicit_json(args):
        emit(args, {"subject": result["subject"], "text": result["text"]})
    else:
        print(f"Subject: {result['subject']}\n\n{result['text']}")
    return 0


def register(subparsers: Any) -> None:
    clients = subparsers.add_parser(
        "clients",
        help="the client registry: add, list, show, update, remove, import, export",
        description="The registry of client tenants whose posture toward the vendor is watched.",
    )
    sub = clients.add_subparsers(dest="clients_command", required=True, metavar="COMMAND")

    add = sub.add_parser(
        "add",
        help="register a client by one of its domains",
        description="Find the client's tenant by one of its domains and register it; prints\n"
        "the admin-consent link the client's administrator opens.",
        epilog="example:\n"
        "  xtap-watch clients add --domain contoso.com --contact it-admin@contoso.com",
    )
    add.add_argument("--domain", required=True, help="a domain of the client (e.g. contoso.com)")
    add.add_argument("--name", help="display name (default: the tenant's own name)")
    add.add_argument(
        "--contact", action="append", metavar="EMAIL", help="client admin e-mail (repeatable)"
    )
    add.add_argument(
        "--expected-group",
        action="append",
        metavar="GROUP_ID",
        help="group object ID the client deliberately limits access to (repeatable)",
    )
    add.set_defaults(handler=_add)

    lst = sub.add_parser(
        "list",
        help="registered clients with their latest verdict",
        epilog="example:\n  xtap-watch clients list --output table",
    )
    lst.set_defaults(handler=_list)

    show = sub.add_parser(
        "show",
        help="one client: its record and latest posture",
        epilog="example:\n  xtap-watch clients show 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    )
    show.add_argument("tenant_id", metavar="TENANT_ID", help=TENANT_HELP)
    show.set_defaults(handler=_show)

    update = sub.add_parser(
        "update",
        help="change a client's name, contacts, expected scope or alert routing",
        epilog="examples:\n"
        "  xtap-watch clients update 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d \\\n"
        "      --add-contact secops@contoso.com --remove-contact it-admin@contoso.com\n"
        "  xtap-watch clients update 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d --clear-expected-groups",
    )
    update.add_argument("tenant_id", metavar="TENANT_ID", help=TENANT_HELP)
    update.add_argument("--name", help="new display name")
    update.add_argument(
        "--add-contact", action="append", metavar="EMAIL", help="add a client admin (repeatable)"
    )
    update.add_argument(
        "--remove-contact", action="append", metavar="EMAIL", help="remove one (repeatable)"
    )
    groups = update.add_mutually_exclusive_group()
    groups.add_argument(
        "--expected-group",
        action="append",
        metavar="GROUP_ID",
        help="replace the agreed groups (repeatable)",
    )
    groups.add_argument(
        "--clear-expected-groups",
        action="store_true",
        help="the client is expected to admit everyone again",
    )
    update.add_argument("--scope-note", help="why the scope is what it is (free text)")
    update.add_argument(
        "--alert-email",
        action="append",
        metavar="EMAIL",
        help="replace the extra addresses this client's alerts go to (repeatable)",
    )
    update.add_argument(
        "--teams-webhook-setting",
        metavar="SETTING",
        help="app setting holding an extra Teams webhook for this client ('' clears)",
    )
    update.set_defaults(handler=_update)

    remove = sub.add_parser(
        "remove",
        help="stop watching a client (deletes its record, posture and alert state)",
        epilog="example:\n  xtap-watch clients remove 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d --yes",
    )
    remove.add_argument("tenant_id", metavar="TENANT_ID", help=TENANT_HELP)
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=_remove)

    link = sub.add_parser(
        "consent-link",
        help="print the admin-consent link for a client",
        epilog="example:\n  xtap-watch clients consent-link 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    )
    link.add_argument("tenant_id", metavar="TENANT_ID", help=TENANT_HELP)
    link.set_defaults(handler=_consent_link)

    imp = sub.add_parser(
        "import",
        help="register many clients from a JSON file (all or nothing)",
        epilog="example:\n  xtap-watch clients import clients.json   "
        '# {"clients": [{"tenantId": ..., "name": ...}]}, as export writes it',
    )
    imp.add_argument("file", metavar="FILE")
    imp.set_defaults(handler=_import)

    ins = sub.add_parser(
        "instructions",
        help="the client-facing e-mail: the onboarding steps and the consent link",
        epilog="example:\n"
        "  xtap-watch clients instructions 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d \\\n"
        "      --send-to it-admin@contoso.com",
    )
    ins.add_argument("tenant_id", metavar="TENANT_ID", help=TENANT_HELP)
    ins.add_argument(
        "--send-to", action="append", metavar="EMAIL", help="client admin address (repeatable)"
    )
    ins.set_defaults(handler=_instructions)

    exp = sub.add_parser(
        "export",
        help="the registry as JSON (to stdout, or to FILE)",
        epilog="example:\n  xtap-watch clients export clients.json",
    )
    exp.add_argument("file", nargs="?", metavar="FILE")
    exp.set_defaults(handler=_export)

    from shared.entrypoints.cli_ack import register_under_clients

    register_under_clients(sub)
