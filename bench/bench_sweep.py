"""Benchmark (issue 3): sweep 5,000 simulated clients at 100 ms injected latency.

The real path, end to end: ``sweep_timer`` (``schedule_sweep`` fans out one message per
client) → Azurite queue ``xtap-check-client`` → ``LocalRunner.drain`` with the host's
concurrency from host.json (``batchSize`` + ``newBatchThreshold``) → the ``check_client``
trigger → msgraph-sdk request adapter → the Graph simulator (a test double) over TLS,
with every simulator request (Graph and the token endpoint) delayed by 100 ms.

Same-run baseline: the same ``check_client`` trigger called for one client after another
(the "loop over every client in one invocation" design that fan-out replaces). At 100 ms
per round trip that would take half an hour for 5,000 clients, so the baseline runs on an
evenly spread sample and is extrapolated linearly — the output says so.

Each phase runs in a fresh child process, so its peak RSS (``ru_maxrss``) and its token
caches are its own; the parent owns Azurite and the simulator and reads the simulator's
request log after each phase.

Figures: wall time, Graph requests per client (from the simulator's request log), peak
memory of the process, throughput, open sockets. Never asserts.

    python -m bench.bench_sweep [--clients 5000] [--latency-ms 100] [--sample 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, LocalStack, Row, format_table, quiet_logs, row, seed_clients

CLIENTS = 5_000
LATENCY_MS = 100.0
SAMPLE = 100
PHASE_TIMEOUT_S = 1_800


# ----------------------------------------------------------------------------- children
async def _warm_up() -> None:
    """Import what a check needs and build the app first, in both phases alike, so "RSS
    before the work" is the same warm process and growth is what the clients cost."""
    import azure.identity.aio  # noqa: F401
    import msgraph_core  # noqa: F401

    import shared.adapters.graph
    import shared.adapters.policy_reader
    import shared.services.posture_sweep  # noqa: F401
    from devtools.runner import load_functions
    from shared.bootstrap import get_app

    load_functions()
    await get_app()


async def _phase_sweep() -> dict[str, Any]:
    """Timer fan-out + drain, exactly as the host would run them (one instance)."""
    import psutil

    from bench.common import RssSampler, peak_rss_mib
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    await _warm_up()
    runner = LocalRunner()
    started_at = datetime.now(UTC)
    with RssSampler() as memory:
        t0 = time.perf_counter()
        await runner.fire_timer("sweep_timer")
        t1 = time.perf_counter()
        stats = await runner.drain(["check_client"])
        t2 = time.perf_counter()
    process = psutil.Process()
    queue_stats = stats.get("check_client")
    sockets = len(process.net_connections(kind="tcp"))
    await runner.close()
    await (await get_app()).close()
    set_app(None)
    semantics = runner.semantics
    return {
        "started_at": started_at.isoformat(),
        "fanout_s": t1 - t0,
        "drain_s": t2 - t1,
        "wall_s": t2 - t0,
        "processed": queue_stats.processed if queue_stats else 0,
        "failed_attempts": queue_stats.failed_attempts if queue_stats else 0,
        "poisoned": queue_stats.poisoned if queue_stats else 0,
        "rss_before_mib": memory.start_mib,
        "peak_rss_mib": peak_rss_mib(),
        "open_tcp_after": sockets,
        "concurrency": semantics.batch_size + semantics.new_batch_threshold,
    }


async def _phase_baseline(tenants: list[str]) -> dict[str, Any]:
    """The same trigger, one client after another, on the sample the parent chose."""
    from azure.functions.queue import QueueMessage

    from bench.common import RssSampler, peak_rss_mib
    from devtools.runner import load_functions
    from shared.bootstrap import get_app, set_app
    from shared.domain.messages import CheckClient

    await _warm_up()
    app = await get_app()
    now = datetime.now(UTC)
    counts = await app.signin_source().failure_counts(now, app.settings.signin_window_hours)
    handler = load_functions()["check_client"].handler
    messages = [
        CheckClient(
            tenant_id=tenant,
            sweep_id=f"baseline-{now:%H%M%S}",
            requested_at=now,
            signin_counts=counts.get(tenant, {}),
            signin_window_hours=app.settings.signin_window_hours,
        ).model_dump_json()
        for tenant in tenants
    ]
    failures = 0
    with RssSampler() as memory:
        t0 = time.perf_counter()
        for body in messages:
            try:
                await handler(msg=QueueMessage(body=body.encode(), dequeue_count=1))
            except Exception:
                failures += 1
        wall = time.perf_counter() - t0
    await app.close()
    set_app(None)
    return {
        "checked": len(messages),
        "failures": failures,
        "wall_s": wall,
        "rss_before_mib": memory.start_mib,
        "peak_rss_mib": peak_rss_mib(),
    }


def _child_main(phase: str, workdir: Path) -> None:
    quiet_logs()
    if phase == "sweep":
        result = asyncio.run(_phase_sweep())
    else:
        tenants = json.loads((workdir / "tenants.json").read_text())
        result = asyncio.run(_phase_baseline(tenants))
    (workdir / "result.json").write_text(json.dumps(result))


def _run_phase(phase: str, tenants: list[str] | None = None) -> dict[str, Any]:
    """Run one phase in a fresh interpreter (its own peak RSS, its own token caches)."""
    with tempfile.TemporaryDirectory(prefix="xtap-bench-phase-") as tmp:
        workdir = Path(tmp)
        (workdir / "tenants.json").write_text(json.dumps(tenants or []))
        command = [sys.executable, "-m", "bench.bench_sweep", "--phase", phase, "--workdir", tmp]
        subprocess.run(command, cwd=str(ROOT), check=True, timeout=PHASE_TIMEOUT_S)
        return dict(json.loads((workdir / "result.json").read_text()))


# ----------------------------------------------------------------------------- parent
def _count_requests(log: list[dict[str, Any]]) -> dict[str, int]:
    """Classify the simulator's request log (``$batch`` items are logged individually)."""
    kinds: Counter[str] = Counter()
    for entry in log:
        path = str(entry.get("path", ""))
        if entry.get("batchItem") is not None:
            kinds["batch_items"] += 1
            continue
        kinds["http"] += 1
        if path.endswith("/oauth2/v2.0/token"):
            kinds["token"] += 1
        elif path.startswith("/v1.0/$batch"):
            kinds["batch"] += 1
        elif path.startswith("/v1.0/"):
            kinds["graph_other"] += 1
        else:
            kinds["other"] += 1
        if entry.get("note"):
            kinds[f"note:{entry['note']}"] += 1
    return dict(kinds)


async def _seed(scenario: dict[str, Any]) -> int:
    from shared.bootstrap import build_app
    from shared.config import load_settings

    app = build_app(load_settings())
    await app.ensure_storage()
    try:
        return await seed_clients(app, scenario)
    finally:
        await app.close()


async def _fresh_rows(since: datetime) -> int:
    """Clients whose posture row was written by this sweep."""
    from shared.bootstrap import build_app
    from shared.config import TABLE_POSTURE, load_settings

    app = build_app(load_settings())
    try:
        rows = await app.tables.query(
            TABLE_POSTURE,
            "CheckedAt ge @t",
            {"t": since - timedelta(seconds=1)},
            select=["PartitionKey"],
        )
        return len(rows)
    finally:
        await app.close()


def _sample(scenario: dict[str, Any], size: int) -> list[str]:
    from devtools.local_env import scenario_clients

    clients = scenario_clients(scenario)
    step = max(1, len(clients) // max(1, size))
    return [c.tenant_id for c in clients[::step][:size]]


async def _forget_alert_state(tenants: list[str]) -> None:
    """Let the sampled clients be observed for the first time again (same work as the sweep)."""
    from shared.bootstrap import build_app
    from shared.config import TABLE_ALERT_STATE, load_settings

    app = build_app(load_settings())
    wanted = {t.lower() for t in tenants}
    try:
        rows = await app.tables.query(TABLE_ALERT_STATE, select=["PartitionKey", "RowKey"])
        for r in rows:
            if r["RowKey"].lower() in wanted:
                await app.tables.delete(TABLE_ALERT_STATE, r["PartitionKey"], r["RowKey"])
    finally:
        await app.close()


def run(clients: int = CLIENTS, latency_ms: float = LATENCY_MS, sample: int = SAMPLE) -> list[Row]:
    from devtools.local_env import VENDOR_TENANT_ID
    from sim.scenarios import VENDOR_TENANT_ID as SIM_VENDOR
    from sim.scenarios import generated_scenario

    if SIM_VENDOR != VENDOR_TENANT_ID:
        raise RuntimeError("devtools.local_env and sim.scenarios disagree on the vendor tenant")
    quiet_logs()
    sample = min(sample, clients)
    with LocalStack(scenario=f"generated:{clients}") as stack:
        control = stack.sim.control
        t = time.perf_counter()
        registered = asyncio.run(_seed(generated_scenario(clients)))
        seed_s = time.perf_counter() - t
        print(
            f"[sweep] {registered} clients registered in {seed_s:.1f} s; sweeping at "
            f"{latency_ms:.0f} ms per simulator request ...",
            file=sys.stderr,
            flush=True,
        )

        control.set_latency(latency_ms)
        control.reset_counters()
        sweep = _run_phase("sweep")
        sweep_log = _count_requests(control.requests())
        sweep_in_flight = control.stats()["maxInFlight"]
        fresh = asyncio.run(_fresh_rows(datetime.fromisoformat(sweep["started_at"])))
        print(
            f"[sweep] fan-out + drain took {sweep['wall_s']:.1f} s; sequential baseline on "
            f"{sample} clients ...",
            file=sys.stderr,
            flush=True,
        )

        # An evenly spread sample (the generated kinds repeat every 50 clients), observed
        # for the first time again so it does the same work the sweep did.
        tenants = _sample(generated_scenario(clients), sample)
        asyncio.run(_forget_alert_state(tenants))
        control.reset_counters()
        baseline = _run_phase("baseline", tenants)
        base_log = _count_requests(control.requests())
        base_in_flight = control.stats()["maxInFlight"]
        control.set_latency(0)

    n = max(1, sweep["processed"])
    m = max(1, baseline["checked"])
    per_check = baseline["wall_s"] / m
    extrapolated = per_check * clients
    http_per_client = sweep_log.get("http", 0) / n
    base_http_per_client = base_log.get("http", 0) / m
    extrapolation = (
        f"sequential baseline measured on {m} of {clients} clients (evenly spread) in "
        f"{baseline['wall_s']:.1f} s = {per_check * 1000:.0f} ms per client, "
        f"EXTRAPOLATED x{clients / m:.0f} to {per_check * clients:.0f} s"
    )
    return [
        row(
            f"sweep {clients} clients @{latency_ms:.0f} ms: wall, timer + drain (lower is better)",
            sweep["wall_s"],
            "s",
            extrapolated,
            note=extrapolation,
        ),
        row(
            "  fan-out: sweep_timer enqueues one message per client",
            sweep["fanout_s"],
            "s",
            note=f"{clients} messages; schedule_sweep sends 32 at a time",
        ),
        row(
            "  drain: check_client through LocalRunner.drain",
            sweep["drain_s"],
            "s",
            note=(
                f"runner concurrency {sweep['concurrency']} (host.json batchSize + "
                f"newBatchThreshold), one instance; processed {sweep['processed']}, failed "
                f"attempts {sweep['failed_attempts']}, poisoned {sweep['poisoned']}; "
                f"{fresh} clients got a fresh posture row"
            ),
        ),
        row(
            "  throughput (higher is better)",
            n / sweep["wall_s"],
            "clients/s",
            1 / per_check,
        ),
        row(
            "Graph HTTP requests per client, token endpoint included",
            http_per_client,
            "req",
            base_http_per_client,
            note=(
                "from the simulator's request log; sweep: "
                + ", ".join(f"{k}={v}" for k, v in sorted(sweep_log.items()))
                + "; baseline: "
                + ", ".join(f"{k}={v}" for k, v in sorted(base_log.items()))
            ),
        ),
        row(
            "  of which token requests per client",
            sweep_log.get("token", 0) / n,
            "req",
            base_log.get("token", 0) / m,
        ),
        row(
            "  $batch sub-requests per client (default + partner in one round trip)",
            sweep_log.get("batch_items", 0) / n,
            "req",
            base_log.get("batch_items", 0) / m,
        ),
        row(
            "  Graph requests in flight at the simulator (max)",
            sweep_in_flight,
            "req",
            base_in_flight,
        ),
        row(
            "peak RSS of the sweeping process (lower is better)",
            sweep["peak_rss_mib"],
            "MiB",
            baseline["peak_rss_mib"],
            note=(
                f"each phase in a fresh process; RSS before the work: sweep "
                f"{sweep['rss_before_mib']:.0f} MiB, baseline {baseline['rss_before_mib']:.0f} "
                f"MiB; baseline peak is for {m} clients only"
            ),
        ),
        row(
            "  RSS growth per client during the sweep",
            (sweep["peak_rss_mib"] - sweep["rss_before_mib"]) * 1024 / n,
            "KiB",
            (baseline["peak_rss_mib"] - baseline["rss_before_mib"]) * 1024 / m,
        ),
        row(
            "  open TCP sockets held by the process after the sweep",
            sweep["open_tcp_after"],
            "sockets",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--sample", type=int, default=SAMPLE)
    parser.add_argument("--phase", choices=("sweep", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        _child_main(args.phase, args.workdir)
        return 0
    print(format_table(run(args.clients, args.latency_ms, args.sample)))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
