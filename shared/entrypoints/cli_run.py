"""``xtap-watch sweep`` / ``xtap-watch check``: operator-triggered runs of the main job.

``sweep`` queues a check of every client, as the sweep timer does, then waits for the
results with progress on the terminal; the Functions app (or the local runner) does the
checks. When nothing takes messages off the queue it says so instead of waiting forever.
``check`` checks one client in this process and exits with the verdict's status.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from shared.entrypoints.cli_app import APPS, GRAPH, READER, STORAGE, CommandFailed, run_with_app
from shared.entrypoints.cli_common import (
    EXIT_CODES_HELP,
    Column,
    Progress,
    emit,
    render_pairs,
    render_table,
    verdict_exit,
)

_GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$", re.IGNORECASE)
POLL_SECONDS = 2.0
# No message taken off the queue for this long means nothing is processing it.
IDLE_SECONDS = 20.0

SWEEP_COLUMNS = (
    Column("Name", lambda r: r.get("name"), 28),
    Column("Tenant ID", lambda r: r.get("tenantId")),
    Column("Verdict", lambda r: r.get("verdict")),
    Column("State", lambda r: r.get("state")),
)


async def _wait_for_sweep(
    app: Any, sweep_id: str, clients: dict[str, str], wait_seconds: float
) -> tuple[list[dict[str, Any]], str | None]:
    """Poll the posture rows until every client of this sweep is checked; the rows, and
    why it stopped early (None when complete)."""
    from shared.adapters.repositories import PostureStore
    from shared.config import QUEUE_CHECK_CLIENT

    progress = Progress("checked", len(clients))
    store = PostureStore(app.tables)
    start = last_change = time.monotonic()
    last_queued: int | None = None
    last_done = -1
    done: dict[str, dict[str, Any]] = {}
    try:
        while True:
            for row in await store.list():
                if row.get("sweepId") == sweep_id and row["tenantId"] in clients:
                    done[row["tenantId"]] = row
            queued = await app.queues.approximate_count(QUEUE_CHECK_CLIENT)
            if queued != last_queued or len(done) != last_done:
                last_change = time.monotonic()
            last_queued, last_done = queued, len(done)
            progress.update(len(done), f"{queued} waiting in {QUEUE_CHECK_CLIENT}")
            if len(done) == len(clients):
                return _rows(done, clients), None
            now = time.monotonic()
            idle = min(IDLE_SECONDS, wait_seconds / 2)
            if not done and now - last_change >= idle and queued:
                return _rows(done, clients), (
                    f"nothing is processing the queue {QUEUE_CHECK_CLIENT}: {queued} sweep messages"
                    f" have waited {idle:.0f} s untouched. No Functions app or local"
                    " runner works on this storage: locally, ./scripts/demo --keep runs one;"
                    " or check a client here with xtap-watch check TENANT_ID"
                )
            if now - start >= wait_seconds:
                return _rows(done, clients), (
                    f"{len(done)} of {len(clients)} clients checked after {wait_seconds:.0f} s; the"
                    " rest are still queued (xtap-watch clients list shows them as they land)"
                )
            await asyncio.sleep(POLL_SECONDS)
    finally:
        progress.done()


def _rows(done: dict[str, dict[str, Any]], clients: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "tenantId": tenant,
            "verdict": done.get(tenant, {}).get("verdict"),
            "state": done.get(tenant, {}).get("state"),
            "checked": tenant in done,
        }
        for tenant, name in sorted(clients.items(), key=lambda kv: kv[1].lower())
    ]


def _sweep(args: argparse.Namespace) -> int:
    from shared.adapters.repositories import ClientRegistry
    from shared.services.posture_sweep import schedule_sweep

    async def use(app: Any) -> dict[str, Any]:
        clients = {c.tenant_id: c.name for c in await ClientRegistry(app.tables).list()}
        scheduled = await schedule_sweep(app, datetime.now(UTC))
        result: dict[str, Any] = {
            "sweepId": scheduled.sweep_id,
            "clientsQueued": scheduled.clients,
        }
        if args.no_wait or not clients:
            return result
        rows, stopped = await _wait_for_sweep(app, scheduled.sweep_id, clients, args.timeout)
        result["clients"] = rows
        verdicts = Counter(r["verdict"] for r in rows if r["checked"])
        result["verdicts"] = dict(sorted(verdicts.items()))
        result["complete"] = stopped is None
        result["stopped"] = stopped
        return result

    result = run_with_app(use, needs=(STORAGE, GRAPH))

    def table(value: dict[str, Any]) -> str:
        head = f"sweep {value['sweepId']}: {value['clientsQueued']} clients queued"
        if "clients" not in value:
            return head
        counts = ", ".join(f"{n} {v}" for v, n in value["verdicts"].items()) or "none checked"
        return f"{head}; {counts}\n\n{render_table(value['clients'], SWEEP_COLUMNS)}"

    stopped = result.pop("stopped", None)
    emit(args, result, table=table)
    if stopped:
        raise CommandFailed(stopped)
    return 0


CHECK_FINDINGS = (
    Column("Severity", lambda f: f.get("severity")),
    Column("Code", lambda f: f.get("code")),
    Column("What", lambda f: f.get("message"), 90),
)


def _check_table(posture: dict[str, Any]) -> str:
    head = render_pairs(
        [
            ("Client", posture.get("clientName")),
            ("Tenant ID", posture.get("clientTenantId") or posture.get("tenantId")),
            ("Verdict", posture.get("verdict")),
            ("State", posture.get("state")),
            ("Checked", posture.get("checkedAt")),
        ]
    )
    findings = [*posture.get("findings", []), *posture.get("vendorFindings", [])]
    if not findings:
        return head + "\n\nNo findings."
    return head + "\n\n" + render_table(findings, CHECK_FINDINGS)


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

    posture = run_with_app(use, needs=(STORAGE, GRAPH, APPS, READER), reader_tenant=tenant) or {}
    emit(args, posture, table=_check_table)
    return verdict_exit(posture.get("verdict"))


def register(subparsers: Any) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="check every client now (queued for the Functions app) and wait for the results",
        description="Queue a posture check of every registered client, as the sweep timer\n"
        "(every 15 minutes by default) does, and wait for the results (the Functions app\n"
        "or the local runner does the checks; it says so when nothing processes the queue).",
        epilog="examples:\n  xtap-watch sweep\n  xtap-watch sweep --no-wait --output json",
    )
    sweep.add_argument("--no-wait", action="store_true", help="queue the checks and return")
    sweep.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="longest wait for the results (default 600)",
    )
    sweep.set_defaults(handler=_sweep)
    check = subparsers.add_parser(
        "check",
        help="check one client now (alerts go to the outbox as usual)",
        description="Check one client's posture in this process; alerts at state changes\n"
        "go to the outbox as usual. The exit status is the verdict's (below).",
        epilog="example:\n"
        "  xtap-watch check 1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d || echo not ALLOWED\n\n"
        + EXIT_CODES_HELP,
    )
    check.add_argument("tenant_id", metavar="TENANT_ID", help="the client's Entra tenant ID")
    check.set_defaults(handler=_check)
