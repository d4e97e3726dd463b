"""``xtap-watch doctor``: one table, every dependency, ok / warn / fail / skip with the fix.

Two ways to run it, both in the deployed app's identity:

* ``xtap-watch doctor`` runs the checks in this process with this process's settings and
  identity: where the app runs (its managed identity), or locally against Azurite and the
  simulator. It posts one test card and sends one test mail unless ``--no-send``.
* ``xtap-watch doctor --remote [URL]`` asks the deployed app (``GET /api/v1/doctor``, App
  Service Authentication in front) to run them there and prints its table. The token comes
  from ``XTAP_DOCTOR_TOKEN`` or ``az account get-access-token --resource $API_IDENTIFIER_URI``
  (the caller needs the support role). The deployed app never sends test messages from a
  GET; run ``xtap-watch doctor`` there (or trigger an alert) to see the mail and Teams lines.

Exit status: 0 when no check failed, 1 when one did, 2 for bad input (DESIGN §6).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
from typing import Any

_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)


def _local(args: argparse.Namespace) -> Any:
    from shared.services.doctor import DoctorOptions, run_doctor

    options = DoctorOptions(send_probes=not args.no_send, client_tenant_id=args.client)
    return asyncio.run(run_doctor(dict(os.environ), options))


def _token(resource: str) -> str:
    from shared.cli import CliError

    token = os.environ.get("XTAP_DOCTOR_TOKEN", "").strip()
    if token:
        return token
    az = shutil.which("az")
    if az is None:
        raise CliError("--remote needs a token: install the Azure CLI or set XTAP_DOCTOR_TOKEN")
    done = subprocess.run(  # noqa: S603 - fixed arguments, our own resource URI
        [
            az,
            "account",
            "get-access-token",
            "--resource",
            resource,
            "--query",
            "accessToken",
            "--output",
            "tsv",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise CliError(f"az account get-access-token failed (run az login): {first}")
    return done.stdout.strip()


def _remote(args: argparse.Namespace) -> Any:
    import httpx

    from shared.cli import CliError
    from shared.domain.doctor import DoctorReport

    base = (
        args.remote
        if isinstance(args.remote, str)
        else os.environ.get("XTAP_PUBLIC_API_URL") or os.environ.get("AZURE_FUNCTION_APP_URL")
    )
    if not base or not base.startswith(("https://", "http://")):
        raise CliError("--remote: give the app's URL, or set XTAP_PUBLIC_API_URL (azd env)")
    resource = os.environ.get("API_IDENTIFIER_URI", "").strip()
    if not resource and not os.environ.get("XTAP_DOCTOR_TOKEN"):
        raise CliError('--remote: API_IDENTIFIER_URI is not set (eval "$(azd env get-values)")')
    token = _token(resource)
    url = base.rstrip("/") + "/api/v1/doctor"
    params = {"client": args.client} if args.client else None
    try:
        response = httpx.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
    except httpx.HTTPError as exc:
        raise CliError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if response.status_code in (401, 403):
        raise CliError(
            f"{url} answered {response.status_code}: sign in as a user with the"
            " Reinvite.Request role of the xtap-watch support API (docs/api.md)"
        )
    try:
        return DoctorReport.from_dict(response.json())
    except (ValueError, KeyError) as exc:
        raise CliError(f"{url} answered {response.status_code} without a report") from exc


def _doctor(args: argparse.Namespace) -> int:
    from shared.cli import CliError
    from shared.domain.doctor import render_table

    if args.client and not _GUID.match(args.client):
        raise CliError(f"--client: not a tenant ID (GUID): {args.client!r}")
    report = _remote(args) if args.remote is not None else _local(args)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render_table(report))
    return 0 if report.healthy else 1


def register(subparsers: Any) -> None:
    doctor = subparsers.add_parser(
        "doctor",
        help="check every dependency of the deployment and print one table",
        description="Check storage, Graph (vendor and, with --client, a client tenant), Log\n"
        "Analytics, the alert channels and App Service Authentication, in the app's own\n"
        "identity, and print one line per check with the fix for each failure.",
        epilog="examples:\n"
        "  xtap-watch doctor --no-send\n"
        "  xtap-watch doctor --remote --client 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    )
    doctor.add_argument(
        "--no-send", action="store_true", help="do not post a test card or send a test mail"
    )
    doctor.add_argument("--client", metavar="TENANT_ID", help="the consenting client to sign in to")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument(
        "--remote",
        nargs="?",
        const=True,
        metavar="URL",
        help="ask the deployed app (GET /api/v1/doctor); URL defaults to XTAP_PUBLIC_API_URL",
    )
    doctor.set_defaults(handler=_doctor)
