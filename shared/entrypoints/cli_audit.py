"""``xtap-watch audit explain FILE``: explain cross-tenant access audit events (DESIGN §6).

Reads Graph ``directoryAudit`` JSON (a list, ``{"value": [...]}`` or one record), a Log
Analytics export of ``AuditLogs`` rows (a list of objects, or the query API's
``{"tables": [...]}``) or Office 365 Management Activity records, and prints one JSON
object per line for every relevant change. Events of other categories are skipped;
events it cannot decode are printed with severity ``review`` and their raw record.
Exit status 0, or 2 with one line on stderr when the input cannot be read.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from typing import Any

from shared.cli import CliError
from shared.domain.audit import (
    CrossTenantChange,
    UnknownAuditShape,
    decode_audit_records,
)
from shared.domain.audit_severity import ClientInfo, classify, find_client
from shared.domain.messages import ClientRef
from shared.domain.strict_json import StrictJsonError, loads_strict
from shared.entrypoints.cli_common import Column, output_format, render_table

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ADMITS = {"yes": True, "no": False, "unknown": None}
_COLUMNS = (
    Column("Time", lambda r: (r.get("time") or "")[:19]),
    Column("Severity", lambda r: r.get("severity")),
    Column("Setting", lambda r: r.get("setting")),
    Column("Summary", lambda r: r.get("summary"), 80),
)


def register(subparsers: Any) -> None:
    audit = subparsers.add_parser("audit", help="Explain cross-tenant access audit events.")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    explain = commands.add_parser(
        "explain",
        help="Print one JSON object per relevant change in an audit export.",
        description="Explain the cross-tenant access changes in an audit export: Graph\n"
        "directoryAudits JSON, a Log Analytics AuditLogs export, or Office 365 Management\n"
        "Activity records. One JSON object per change when piped (or --output json); a\n"
        "table on a terminal.",
        epilog="example:\n"
        "  xtap-watch audit explain directoryAudits.json \\\n"
        "      --client 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d=Contoso",
    )
    explain.add_argument(
        "file", help="directoryAudit JSON, Log Analytics AuditLogs export, or - for stdin"
    )
    explain.add_argument(
        "--client",
        action="append",
        default=[],
        metavar="TENANT_ID[=NAME]",
        help="a registered client's tenant ID (optionally =its name); repeatable",
    )
    explain.add_argument(
        "--default-inbound-admits-clients",
        choices=sorted(_ADMITS),
        default="unknown",
        help="whether registered clients get in through the vendor's default inbound policy",
    )
    explain.add_argument(
        "--stats", action="store_true", help="print event counts on stderr at the end"
    )
    explain.set_defaults(handler=run_explain)


def parse_clients(values: list[str]) -> dict[str, ClientInfo]:
    clients: dict[str, ClientInfo] = {}
    for value in values:
        tenant_id, _, name = value.partition("=")
        tenant_id = tenant_id.strip()
        if not _GUID.match(tenant_id):
            raise CliError(f"--client {value!r}: expected a tenant ID (GUID), optionally =NAME")
        key = tenant_id.lower()
        clients[key] = ClientRef(name=name.strip() or key, tenant_id=key)
    return clients


def _read_json(path: str) -> object:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8-sig") as handle:
                text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}") from exc
    try:
        # Strict: NaN/Infinity are not JSON and would be echoed back in "raw".
        return loads_strict(text)
    except StrictJsonError as exc:
        raise CliError(f"{path}: not valid JSON: {exc}") from None


def _rows_from_tables(document: Mapping[str, Any], path: str) -> list[object]:
    """Log Analytics query API: ``{"tables": [{"columns": [{"name"}], "rows": [[...]]}]}``."""
    rows: list[object] = []
    tables = document.get("tables")
    if not isinstance(tables, list):
        raise CliError(f"{path}: 'tables' is not a list")
    for table in tables:
        columns = table.get("columns") if isinstance(table, Mapping) else None
        values = table.get("rows") if isinstance(table, Mapping) else None
        if not isinstance(columns, list) or not isinstance(values, list):
            raise CliError(f"{path}: a table has no 'columns'/'rows' lists")
        names = [str(c.get("name")) if isinstance(c, Mapping) else str(c) for c in columns]
        for row in values:
            if not isinstance(row, list) or len(row) != len(names):
                raise CliError(f"{path}: a row does not match the table's columns")
            rows.append(dict(zip(names, row, strict=True)))
    return rows


_EVENT_KEYS = ("id", "activityDisplayName", "OperationName", "Operation", "Id")


def extract_records(document: object, path: str) -> list[object]:
    """The audit records in a document, or :class:`CliError` if it holds none."""
    if isinstance(document, list):
        records: list[object] = document
    elif isinstance(document, Mapping) and isinstance(document.get("value"), list):
        records = document["value"]
    elif isinstance(document, Mapping) and "tables" in document:
        records = _rows_from_tables(document, path)
    elif isinstance(document, Mapping) and any(key in document for key in _EVENT_KEYS):
        records = [document]
    else:
        raise CliError(
            f'{path}: expected a list of audit events, {{"value": [...]}} or a Log Analytics export'
        )
    for position, record in enumerate(records, start=1):
        if not isinstance(record, Mapping):
            raise CliError(f"{path}: item {position} is not a JSON object")
    return records


def explain_line(
    item: CrossTenantChange | UnknownAuditShape,
    clients: Mapping[str, ClientInfo],
    default_admits: bool | None,
) -> dict[str, object]:
    severity, reasons = classify(item, clients, default_admits)
    if isinstance(item, UnknownAuditShape):
        client = find_client(clients, item.partner_tenant_id)
        return {
            "id": item.event_id,
            "index": 0,
            "activity": item.activity,
            "category": item.category,
            "time": item.time.isoformat() if item.time else None,
            "who": item.who.display(),
            "scope": None,
            "partnerTenantId": item.partner_tenant_id,
            "client": client.name if client else None,
            "setting": None,
            "before": None,
            "after": None,
            "severity": severity.value,
            "summary": item.summary,
            "reasons": reasons,
            "problems": list(item.problems),
            "raw": item.raw,
        }
    event = item.event
    client = find_client(clients, event.partner_tenant_id)
    return {
        "id": event.event_id,
        "index": item.index,
        "activity": event.activity,
        "category": event.category,
        "time": event.time.isoformat() if event.time else None,
        "who": event.who.display(),
        "scope": event.scope.value,
        "partnerTenantId": event.partner_tenant_id,
        "client": client.name if client else None,
        "setting": item.setting,
        "before": item.before_text,
        "after": item.after_text,
        "beforeValue": item.before,
        "afterValue": item.after,
        "severity": severity.value,
        "summary": item.summary,
        "reasons": reasons,
    }


def run_explain(args: argparse.Namespace) -> int:
    clients = parse_clients(args.client)
    default_admits = _ADMITS[args.default_inbound_admits_clients]
    records = extract_records(_read_json(args.file), args.file)
    batch = decode_audit_records(records)
    out = sys.stdout
    lines = [explain_line(item, clients, default_admits) for item in batch.items]
    if output_format(args, out) == "table":
        out.write((render_table(lines, _COLUMNS) if lines else "(no relevant changes)") + "\n")
    else:
        for line in lines:
            out.write(json.dumps(line, default=str, allow_nan=False) + "\n")
    out.flush()
    if args.stats:
        print(
            f"{batch.events} events: {len(batch.items)} changes explained "
            f"({len(batch.unknown)} to review), {batch.not_relevant} not relevant",
            file=sys.stderr,
        )
    return 0
