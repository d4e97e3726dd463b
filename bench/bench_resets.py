"""Benchmark: 1,000 queued invitation redemption resets against the Graph simulator (issue 6).

Starts its own Azurite and Graph simulator (demo scenario), seeds 1,000 guests of the
registered clients in the vendor tenant through the simulator's control API, puts Graph's
invitation write limit on ``POST /invitations`` (3,000 per 150 s per app, 429 +
Retry-After beyond it), queues one re-invite job per guest (ledger row + queue message,
as the API does) and drains the reset queue with the local runner — the Functions host's
batch concurrency, dequeue counting and poison handling.

Prints resets/s, the 429s the simulator answered, and failed jobs (goal: 0). Same-run
baseline: the same reset use case called sequentially (no queue, no concurrency) on a
separate batch of guests. 1,000 resets stay under 3,000 per 150 s, so the main run should
see no 429; a second, "stress" run puts a tight limit (100 per 5 s) on 300 resets, so
bursts meet 429 + Retry-After, to show that throttling costs time, not jobs. Never
asserts.

    python bench/bench_resets.py [--resets N] [--baseline N] [--no-stress]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESETS = 1_000
BASELINE_RESETS = 100
STRESS_RESETS = 300
WRITE_LIMIT = (3_000, 150.0)  # Graph's documented invitation write limit per app
STRESS_LIMIT = (100, 5.0)  # 20/s, a short window: bursts of a whole batch meet 429s
CLIENT_DOMAINS = (
    "contoso-markets.com",
    "fabrikam-clearing.com",
    "northwind-securities.com",
    "tailspin-capital.com",
    "woodgrove-bank.com",
)


def _guests(count: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "mail": f"bench.{tag}.{n:05d}@{CLIENT_DOMAINS[n % len(CLIENT_DOMAINS)]}",
            "userType": "Guest",
            "externalUserState": "Accepted",
            "displayName": f"Bench guest {tag} {n}",
            "externalUserStateChangeDateTime": "now-30d",
        }
        for n in range(count)
    ]


async def _queue_jobs(app: Any, users: list[dict[str, Any]], clients: list[Any]) -> list[str]:
    from datetime import UTC, datetime

    from shared.services.reinvites import queue_reinvite_for_user

    limiter = asyncio.Semaphore(32)

    async def one(user: dict[str, Any]) -> str:
        async with limiter:
            outcome = await queue_reinvite_for_user(
                app,
                user,
                reason="benchmark reset",
                requested_by="bench@osttra.com",
                now=datetime.now(UTC),
                clients=clients,
            )
            return outcome.job.job_id

    return list(await asyncio.gather(*(one(u) for u in users)))


async def _count_states(app: Any, job_ids: list[str]) -> dict[str, int]:
    from shared.adapters.job_ledger import JobLedger

    ledger = JobLedger(app.tables)
    states: dict[str, int] = {}
    for job_id in job_ids:
        job = await ledger.get_reinvite(job_id)
        state = job.state.value if job else "missing"
        states[state] = states.get(state, 0) + 1
    return states


async def _queued_phase(
    sim: Any, app: Any, clients: list[Any], count: int, limit: tuple[int, float], tag: str
) -> dict[str, Any]:
    from devtools.local_env import VENDOR_TENANT_ID
    from devtools.runner import LocalRunner

    users = sim.control.add_users(VENDOR_TENANT_ID, _guests(count, tag))
    sim.control.clear_throttles()
    sim.control.set_throttle(r"/invitations", limit[0], limit[1], method="POST")
    start = time.perf_counter()
    job_ids = await _queue_jobs(app, users, clients)
    queued_s = time.perf_counter() - start
    sim.control.reset_counters()
    runner = LocalRunner()
    try:
        start = time.perf_counter()
        stats = await runner.drain(["reinvite_job"])
        drain_s = time.perf_counter() - start
    finally:
        await runner.close()
    sim_stats = sim.control.stats()
    states = await _count_states(app, job_ids)
    return {
        "resets_per_s": count / drain_s,
        "queue_per_s": count / queued_s,
        "seconds": drain_s,
        "throttled": int(sim_stats.get("byStatus", {}).get("429", 0)),
        "failed": states.get("failed", 0) + states.get("missing", 0),
        "done": states.get("done", 0),
        "retried_messages": stats["reinvite_job"].failed_attempts,
        "poisoned": stats["reinvite_job"].poisoned,
    }


async def _sequential_baseline(sim: Any, app: Any, clients: list[Any], count: int) -> float:
    from datetime import UTC, datetime

    from devtools.local_env import VENDOR_TENANT_ID
    from shared.domain.messages import ReinviteJobMessage
    from shared.services.reinvites import get_job, perform_reinvite

    users = sim.control.add_users(VENDOR_TENANT_ID, _guests(count, "seq"))
    sim.control.clear_throttles()
    sim.control.set_throttle(r"/invitations", *WRITE_LIMIT, method="POST")
    job_ids = await _queue_jobs(app, users, clients)
    await app.queues.clear("xtap-reinvites")  # performed directly below, not via the queue
    start = time.perf_counter()
    for job_id in job_ids:
        job = await get_job(app, job_id)
        assert job is not None
        message = ReinviteJobMessage(
            job_id=job.job_id,
            user_id=job.user_id,
            reason=job.reason,
            requested_by=job.requested_by,
        )
        await perform_reinvite(app, message, datetime.now(UTC))
    return count / (time.perf_counter() - start)


async def _bench(sim: Any, resets: int, baseline: int, stress: bool) -> list[dict[str, Any]]:
    from devtools.local_env import load_demo_scenario, seed_registry
    from shared.adapters.repositories import ClientRegistry
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    try:
        await seed_registry(app, load_demo_scenario())
        clients = await ClientRegistry(app.tables).list()
        base_rate = await _sequential_baseline(sim, app, clients, baseline)
        main = await _queued_phase(sim, app, clients, resets, WRITE_LIMIT, "q")
        rows = [
            {
                "figure": f"queued resets drained ({resets}, limit {WRITE_LIMIT[0]}/"
                f"{WRITE_LIMIT[1]:.0f}s; baseline: sequential, no queue)",
                "value": round(main["resets_per_s"], 1),
                "unit": "resets/s",
                "baseline": round(base_rate, 1),
                "ratio": round(main["resets_per_s"] / base_rate, 2),
            },
            {
                "figure": "429s answered by Graph (simulator) during the drain",
                "value": main["throttled"],
                "unit": "responses",
                "baseline": None,
                "ratio": None,
            },
            {
                "figure": f"failed jobs (goal 0); done {main['done']}, "
                f"host retries {main['retried_messages']}, poisoned {main['poisoned']}",
                "value": main["failed"],
                "unit": "jobs",
                "baseline": None,
                "ratio": None,
            },
            {
                "figure": "jobs queued (ledger row + message, 32 concurrent)",
                "value": round(main["queue_per_s"], 1),
                "unit": "jobs/s",
                "baseline": None,
                "ratio": None,
            },
        ]
        if stress:
            hot = await _queued_phase(sim, app, clients, STRESS_RESETS, STRESS_LIMIT, "s")
            rows += [
                {
                    "figure": f"stress: {STRESS_RESETS} resets, limit {STRESS_LIMIT[0]}/"
                    f"{STRESS_LIMIT[1]:.0f}s ({hot['throttled']} x 429, "
                    f"{hot['retried_messages']} host retries)",
                    "value": round(hot["resets_per_s"], 1),
                    "unit": "resets/s",
                    "baseline": round(base_rate, 1),
                    "ratio": round(hot["resets_per_s"] / base_rate, 2),
                },
                {
                    "figure": "stress: failed jobs (goal 0)",
                    "value": hot["failed"],
                    "unit": "jobs",
                    "baseline": None,
                    "ratio": None,
                },
            ]
        return rows
    finally:
        await app.close()
        set_app(None)


def run(
    resets: int = RESETS, baseline: int = BASELINE_RESETS, stress: bool = True
) -> list[dict[str, Any]]:
    """Start Azurite and the simulator, benchmark, stop them; the figures as rows."""
    from devtools.azurite import start_azurite
    from devtools.local_env import WEBHOOK_NAME, settings_env
    from sim.testing import start_simulator

    saved = dict(os.environ)
    azurite = start_azurite()
    try:
        with tempfile.TemporaryDirectory(prefix="xtap-bench-resets-") as workdir:
            sim = start_simulator("demo", Path(workdir))
            try:
                for key in [k for k in os.environ if k.startswith("XTAP_")]:
                    del os.environ[key]
                os.environ.update(
                    settings_env(
                        graph_base=sim.base_url,
                        ca_file=sim.ca_file,
                        storage_connection_string=azurite.connection_string,
                        webhook_url=sim.webhook_url(WEBHOOK_NAME),
                    )
                )
                return asyncio.run(_bench(sim, resets, baseline, stress))
            finally:
                sim.stop()
    finally:
        azurite.stop()
        os.environ.clear()
        os.environ.update(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--resets", type=int, default=RESETS)
    parser.add_argument("--baseline", type=int, default=BASELINE_RESETS)
    parser.add_argument("--no-stress", action="store_true")
    args = parser.parse_args(argv)
    rows = run(args.resets, args.baseline, not args.no_stress)
    print("baseline: the same reset use case called sequentially (no queue), same run")
    print(f"{'figure':<86} {'value':>9} {'baseline':>9} {'ratio':>6}  unit")
    for row in rows:
        print(
            f"{row['figure']!s:<86} {row['value']!s:>9} {row['baseline']!s:>9} "
            f"{row['ratio']!s:>6}  {row['unit']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
