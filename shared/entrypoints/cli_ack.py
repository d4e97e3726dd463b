"""``xtap-watch clients ack TENANT --reason R --for 2h|--until T`` / ``--lift``: acknowledge a
client's drift from the command line, as ``POST``/``DELETE /api/v1/clients/{id}/acknowledgement``
does over HTTP (issue 18.1). Bad input exits 2 with one line naming the option."""

from __future__ import annotations

import argparse
import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.entrypoints.cli_app import run_with_app

_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhd])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def _until(args: argparse.Namespace, now: datetime) -> str:
    from shared.cli import CliError

    if bool(args.until) == bool(args.for_):
        raise CliError("give exactly one of --until (a date-time) or --for (e.g. 2h, 3d)")
    if args.until:
        return str(args.until)
    match = _SPAN.match(args.for_)
    if not match:
        raise CliError(f"--for: not a duration like 90m, 2h or 3d: {args.for_!r}")
    try:
        span = timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})
        return (now + span).isoformat()
    except OverflowError:  # past what a date holds: far beyond the 30 days allowed
        raise CliError(f"--for: must be at most 30 days: {args.for_!r}") from None


def _who(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in a container
        return "cli"


def _ack(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.domain.acknowledgement import AcknowledgementInvalid, NotDrifted, parse_request
    from shared.services.acknowledgements import (
        ClientNotRegistered,
        NoAcknowledgement,
        lift_acknowledgement,
        set_acknowledgement,
    )

    if not _GUID.match(args.tenant_id):
        raise CliError(f"tenant_id: not a GUID: {args.tenant_id!r}")
    tenant = args.tenant_id.lower()
    now = datetime.now(UTC)
    who = _who(args)
    if args.lift:
        if args.reason or args.until or args.for_:
            raise CliError("--lift takes no --reason, --until or --for")

        async def lift(app: Any) -> dict[str, Any]:
            try:
                change = await lift_acknowledgement(app, tenant, who, now)
            except ClientNotRegistered:
                raise CliError(f"{tenant}: not a registered client") from None
            except NoAcknowledgement:
                raise CliError(f"{tenant}: the client's drift is not acknowledged") from None
            return {"tenantId": tenant, "lifted": change.acknowledgement.view(now)}

        print(json.dumps(run_with_app(lift), indent=2))
        return 0
    try:
        request = parse_request({"reason": args.reason or "", "until": _until(args, now)}, now)
    except AcknowledgementInvalid as exc:
        option = "--reason" if exc.field == "reason" else "--until/--for"
        raise CliError(f"{option}: {exc.message}") from None

    async def acknowledge(app: Any) -> dict[str, Any]:
        try:
            change = await set_acknowledgement(app, tenant, request, who, now)
        except ClientNotRegistered:
            raise CliError(f"{tenant}: not a registered client") from None
        except NotDrifted as exc:
            raise CliError(f"{tenant}: {exc}") from None
        return {"tenantId": tenant, "acknowledgement": change.acknowledgement.view(now)}

    print(json.dumps(run_with_app(acknowledge), indent=2))
    return 0


def register_under_clients(sub: Any) -> None:
    ack = sub.add_parser(
        "ack",
        help="acknowledge a client's drift: reminders pause until --until / for --for "
        "(at most 30 days); --lift ends it",
        description="Acknowledge a client's open drift: its reminders pause until the\n"
        "acknowledgement ends (at most 30 days); a worse verdict still alerts, and the\n"
        "expiry reminds once. --lift ends the acknowledgement early.",
        epilog="examples:\n"
        "  xtap-watch clients ack 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d "
        "--reason 'client change window' --for 2d\n"
        "  xtap-watch clients ack 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d --lift",
    )
    ack.add_argument("tenant_id", metavar="TENANT_ID", help="the client's Entra tenant ID (GUID)")
    ack.add_argument("--reason", help="why (shown on every card and in the heartbeat)")
    ack.add_argument("--until", help="ISO 8601 date-time with a time zone")
    ack.add_argument("--for", dest="for_", metavar="DURATION", help="a duration: 90m, 2h, 3d")
    ack.add_argument("--by", help="who acknowledges (default: cli:<login name>)")
    ack.add_argument("--lift", action="store_true", help="lift the acknowledgement instead")
    ack.set_defaults(handler=_ack)
