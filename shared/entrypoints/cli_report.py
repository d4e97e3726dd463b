"""``xtap-watch report`` and ``xtap-watch whatif``: the portfolio and the what-if, for operators.

    xtap-watch report                      # totals and one line per client
    xtap-watch report --html report.html   # the same page GET /api/v1/report serves
    xtap-watch report --json               # the JSON form

    xtap-watch whatif --default proposed-default.json
    xtap-watch whatif --partner TENANT proposed-partner.json [--partner TENANT2 none]
                      [--json] [--fail-on-break]

A what-if FILE is Graph JSON as an admin exports it (``GET .../default`` or
``GET .../partners/{id}``), or only the properties a PATCH would send: each top-level
property in FILE replaces the current one whole. ``none`` instead of a partner FILE means
"delete that partner entry". The current policy is read from Graph. Exit 0 (1 with
``--fail-on-break`` when a client would newly break); bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.cli import CliError
from shared.entrypoints.cli_app import GRAPH, STORAGE, run_with_app
from shared.entrypoints.cli_common import explicit_json
from shared.entrypoints.cli_posture import _load_json


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report",
        help="the portfolio report of every client",
        epilog="examples:\n  xtap-watch report\n  xtap-watch report --html report.html",
    )
    form = report.add_mutually_exclusive_group()
    form.add_argument(
        "--html", metavar="FILE", help="write the HTML page to FILE ('-' for stdout)"
    )
    form.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(handler=_report)

    whatif = subparsers.add_parser(
        "whatif",
        help="which clients a proposed vendor policy would break or recover",
        epilog="example:\n  xtap-watch whatif --default proposed-default.json --fail-on-break",
    )
    whatif.add_argument(
        "--default", metavar="FILE", dest="default_file", help="proposed vendor default policy"
    )
    whatif.add_argument(
        "--partner",
        nargs=2,
        action="append",
        default=[],
        metavar=("TENANT", "FILE"),
        help="proposed vendor partner entry for a client tenant (FILE or 'none'); repeatable",
    )
    whatif.add_argument("--json", action="store_true", help="print the result as JSON")
    whatif.add_argument(
        "--fail-on-break", action="store_true", help="exit 1 if any client would newly break"
    )
    whatif.set_defaults(handler=_whatif)


# -------------------------------------------------------------------------- report
def _report(args: argparse.Namespace) -> int:
    from shared.rendering.report import iter_report_html, report_json
    from shared.services.delivery import render_settings
    from shared.services.portfolio import portfolio_report

    target = None
    if args.html and args.html != "-":
        target = Path(args.html)
        if target.is_dir():
            raise CliError(f"--html: {args.html} is a directory")
        if not target.parent.exists():
            raise CliError(f"--html: no such directory: {target.parent}")

    async def use(app: Any) -> tuple[Any, Any]:
        return await portfolio_report(app, datetime.now(UTC)), render_settings(app)

    report, settings = run_with_app(use)
    if args.json or explicit_json(args):
        print(json.dumps(report_json(report, settings), indent=2))
    elif args.html == "-":
        sys.stdout.writelines(iter_report_html(report, settings))
    elif target is not None:
        partial = target.with_name(target.name + ".partial")
        with partial.open("w", encoding="utf-8") as out:
            out.writelines(iter_report_html(report, settings))
        partial.replace(target)  # never leave half a report where the old one was
        print(f"wrote {target} ({len(report.rows)} clients)")
    else:
        _print_summary(report)
    return 0


def _print_summary(report: Any) -> None:
    from shared.rendering.presentation import format_when

    totals = ", ".join(f"{n} {v}" for v, n in report.totals.items() if n) or "no clients"
    print(f"{len(report.rows)} clients: {totals}  ({format_when(report.generated_at)})")
    for row in report.rows:
        codes = ", ".join(row.all_codes) or "-"
        since = format_when(row.since) if row.since else "-"
        print(f"{row.name[:28]:<28} {row.verdict:<11} {row.state:<15} {since:<23} {codes}")


# -------------------------------------------------------------------------- whatif
def _proposal(args: argparse.Namespace) -> Any:
    from shared.domain.policy import is_guid
    from shared.domain.whatif import PartnerProposal, Proposal, ProposedPolicy

    default = None
    if args.default_file:
        label = f"--default {args.default_file}"
        default = ProposedPolicy(_load_json(args.default_file, "--default"), label)
    partners = []
    for tenant, file in args.partner:
        if not is_guid(tenant.strip()):
            raise CliError(f"--partner: TENANT is not a GUID: {tenant!r}")
        label = f"--partner {tenant} {file}"
        policy = None
        if file.strip().lower() != "none":
            policy = ProposedPolicy(_load_json(file, "--partner"), label)
        partners.append(PartnerProposal(tenant.strip().lower(), policy, label))
    proposal = Proposal(default, tuple(partners))
    if proposal.empty:
        raise CliError("whatif: give --default FILE and/or --partner TENANT FILE")
    return proposal


def _whatif(args: argparse.Namespace) -> int:
    from shared.domain.whatif import ProposalError
    from shared.services.delivery import render_settings
    from shared.services.whatif import CurrentPolicyUnreadable, check_proposal, run_whatif

    proposal = _proposal(args)
    try:
        check_proposal(proposal)  # before any storage or Graph call
    except ProposalError as exc:
        raise CliError(str(exc)) from None

    async def use(app: Any) -> tuple[Any, Any]:
        return await run_whatif(app, proposal), render_settings(app)

    try:
        result, settings = run_with_app(use, needs=(STORAGE, GRAPH))
    except (ProposalError, CurrentPolicyUnreadable) as exc:
        raise CliError(str(exc)) from None
    if args.json or explicit_json(args):
        print(json.dumps(result.to_json(), indent=2))
    else:
        _print_whatif(result, settings)
    return 1 if args.fail_on_break and result.newly_broken else 0


def _print_whatif(result: Any, settings: Any) -> None:
    print(
        f"What-if against the vendor's current policy (read from Graph), "
        f"{result.clients} registered clients:"
    )
    for title, outcomes in (
        ("Newly broken", result.newly_broken),
        ("Newly recovered", result.newly_recovered),
        ("Changed (still working, or still broken)", result.changed),
    ):
        print(f"\n{title}: {len(outcomes) or 'none'}")
        for o in outcomes:
            print(f"  {o.name}  ({o.tenant_id})")
            for f in o.added:
                print(f"    + [{f.severity.value.upper()}] {f.code.value}: {f.message}")
                print(f"      runbook: {settings.runbook_url(f.code.value)}")
            for f in o.removed:
                print(f"    - {f.code.value}")
    print(f"\nUnchanged: {result.clients - len(result.outcomes)}")
