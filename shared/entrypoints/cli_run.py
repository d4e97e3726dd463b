"""``xtap-watch sweep`` / ``xtap-watch check``: operator-triggered runs of the main job."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from typing import Any

from shared.entrypoints.cli_app import APPS, GRAPH, READER, STORAGE, run_with_app

_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)


def _sweep(args: argparse.Namespace) -> int:
    from shared.services.posture_sweep import schedule_sweep

    async def use(app: Any) -> dict[str, Any]:
        s = await schedule_sweep(app, datetime.now(UTC))
        return {"sweepId": s.sweep_id, "clientsQueued": s.clients}

    print(json.dumps(run_with_app(use, needs=(STORAGE, GRAPH)), indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    from shared.adapters.repositories import PostureStore
    from shared.cli import CliError
    from shared.domain.messages import CheckClient
    from shared.services.posture_sweep import check_client

    if not _GUID.match(args.tenant_id):
        raise CliError(f"tenant_id: not a GUID: {args.tenant_id!r}")
    tenant = args.tenant_id.lower()

    async def use(app: Any) -> dict[str, Any] | None:
        now = datetime.now(UTC)
        # Evidence is a signal: a failing source is said on the record, never an error here.
        evidence = await app.signin_source().read(now, app.settings.signin_window_hours)
        message = CheckClient(
            tenant_id=tenant,
            sweep_id="cli",
            requested_at=now,
            signin_counts=evidence.counts.get(tenant, {}),
            signin_window_hours=app.settings.signin_window_hours,
            signin_unavailable=evidence.unavailable,
        )
        outcome = await check_client(app, message, now, final_attempt=True)
        if outcome.skipped:
            raise CliError(f"{tenant}: {outcome.skipped}")
        return await PostureStore(app.tables).get(tenant)

    print(
        json.dumps(
            run_with_app(use, needs=(STORAGE, GRAPH, APPS, READER), reader_tenant=tenant),
            indent=2,
            default=str,
        )
    )
    return 0


def register(subparsers: Any) -> None:
    sweep = subparsers.add_parser("sweep", help="queue a posture check for every client")
    sweep.set_defaults(handler=_sweep)
    check = subparsers.add_parser(
        "check", help="check one client now (alerts go to the outbox as usual)"
    )
    check.add_argument("tenant_id")
    check.set_defaults(handler=_check)
