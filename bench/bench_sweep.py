"""Benchmark (issue 16): the posture sweep at 500 and 5,000 clients, 100 ms per request.

The real path, end to end: ``sweep_timer`` (``schedule_sweep`` fans out one message per
client) → Azurite queue ``xtap-check-client`` → ``LocalRunner.drain`` with the host's
per-queue concurrency from host.json (``batchSize`` + ``newBatchThreshold``) → the
``check_client`` trigger → msgraph-sdk request adapter → the Graph simulator (a test
double) over TLS, every simulator request (Graph and the token endpoint) delayed 100 ms.

Same-run baseline: **today's design** — the code of ``BASELINE_REF`` (the commit the issue
measured, exported with ``git archive``) run through the very same phase driver, against a
fresh Azurite and simulator of the same size. Each (design, size) pair runs in a fresh
child process on a fresh stack, so peak RSS, caches and table sizes are its own.

Figures (goals of issue 16 in brackets): wall of fan-out + drain [5,000 ≤ 60 s], failed
attempts [0], fresh posture rows [all], Graph HTTP requests per client from the
simulator's log [≤ 2.05], storage round trips per check (calls of the storage adapter,
counted in the child), peak RSS [5,000 ≤ 1.25 x 500 and ≤ 200 MiB], open TCP sockets after
the sweep, held by the app once the local runner (the host's stand-in) has closed its own
[≤ 64]; OpenID discovery (a tenant's cloud, on the login host) is counted apart from
Graph. Three sweeps per (design, size): the first after registering every client, a repeat
one in the same process, and the first of a new process over the stored states (a
restart, and the cost of the hourly sweep in which the kept tokens expire). Never
asserts: it prints, and says which goals were met.

    python -m bench.bench_sweep [--sizes 500,5000] [--latency-ms 100] [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
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

from bench.common import ROOT, LocalStack, Row, format_table, quiet_logs, row, section, seed_clients

SIZES = (500, 5_000)
LATENCY_MS = 100.0
# The design the issue measured ("today's design"): main before the sweep rework.
BASELINE_REF = "3cdc709"
PHASE_TIMEOUT_S = 1_800

GOAL_WALL_5000_S = 60.0
GOAL_REQUESTS_PER_CLIENT = 2.05
GOAL_RSS_RATIO = 1.25
GOAL_RSS_MIB = 200.0
GOAL_SOCKETS = 64

_TABLE_OPS = (
    "get",
    "rows_between",
    "upsert",
    "insert",
    "replace",
    "replace_if_match",
    "query",
    "delete",
    "write_together",
)
_DISCOVERY_PATH = "/.well-known/openid-configuration"
_QUEUE_OPS = ("send", "receive", "delete", "release", "peek_all", "approximate_count")


# ----------------------------------------------------------------------------- child
# Which part of a sweep a storage call belongs to: the timer's fan-out runs beside the
# drain (as on the host), and the tasks it starts inherit this.
_PHASE: contextvars.ContextVar[str] = contextvars.ContextVar("phase", default="")


def _count_storage_calls(counts: Counter[str]) -> None:
    """Count each call of the storage adapter (one call = one round trip to storage); the
    fan-out's calls are counted apart, under ``fanout.``."""
    from shared.adapters import storage

    def wrap(cls: type, name: str, kind: str) -> None:
        original = getattr(cls, name, None)
        if original is None:
            return

        async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[f"{_PHASE.get()}{kind}.{name}"] += 1
            return await original(self, *args, **kwargs)

        setattr(cls, name, counted)

    for op in _TABLE_OPS:
        wrap(storage.StorageTables, op, "table")
    for op in _QUEUE_OPS:
        wrap(storage.StorageQueues, op, "queue")
    # The host's own receive and delete (the local runner's raw queue clients stand in for
    # the Functions host): one receive per batch of messages, one delete per message.
    from azure.storage.queue.aio import QueueClient

    from devtools.runner import LocalRunner

    wrap(LocalRunner, "_receive", "host")
    original_delete = QueueClient.delete_message

    async def delete(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts[f"{_PHASE.get()}host.delete"] += 1
        return await original_delete(self, *args, **kwargs)

    QueueClient.delete_message = delete  # type: ignore[method-assign]


def _emulator_cpu() -> dict[str, float]:
    """CPU used so far by Azurite and the simulator (their pids come from the parent)."""
    import psutil

    out: dict[str, float] = {}
    for item in filter(None, os.environ.get("XTAP_BENCH_EMULATOR_PIDS", "").split(",")):
        name, pid = item.split(":")
        times = psutil.Process(int(pid)).cpu_times()
        out[name] = times.user + times.system
    return out


async def _fan_out(runner: Any) -> float:
    """The sweep timer, its storage calls counted as the fan-out's; when it finished."""
    _PHASE.set("fanout.")
    await runner.fire_timer("sweep_timer")
    return time.perf_counter()


async def _one_sweep(runner: Any, counts: Counter[str]) -> dict[str, Any]:
    """One timer fan-out with the drain beside it, as the host runs the queue trigger while
    the timer is still enqueueing; its own figures (the runner's stats are cumulative)."""
    counts.clear()
    before = runner.stats.get("check_client")
    done0 = (before.processed, before.failed_attempts, before.poisoned) if before else (0, 0, 0)
    emulators = _emulator_cpu()
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    fanout = asyncio.create_task(_fan_out(runner))
    while not fanout.done():
        await runner.drain(["check_client"])  # until the queue is empty for now
        await asyncio.sleep(0.1)  # the host's polling interval starts at 100 ms
    t1 = await fanout
    stats = await runner.drain(["check_client"])
    t2 = time.perf_counter()
    cpu = time.process_time() - cpu0
    after = _emulator_cpu()
    queue_stats = stats.get("check_client")
    done = (
        (queue_stats.processed, queue_stats.failed_attempts, queue_stats.poisoned)
        if queue_stats
        else (0, 0, 0)
    )
    fanout_ops = {k: v for k, v in counts.items() if k.startswith("fanout.")}
    return {
        "started_at": started_at.isoformat(),
        "started_epoch": started_at.timestamp(),
        "ended_epoch": time.time(),
        "fanout_s": t1 - t0,
        "drain_s": t2 - t0,
        "wall_s": t2 - t0,
        "cpu_s": cpu,
        "emulator_cpu_s": {k: after[k] - emulators.get(k, 0.0) for k in after},
        "processed": done[0] - done0[0],
        "failed_attempts": done[1] - done0[1],
        "poisoned": done[2] - done0[2],
        "storage_ops": {k: v for k, v in counts.items() if k not in fanout_ops},
        "fanout_storage_ops": sum(fanout_ops.values()),
        "fanout_ops_detail": fanout_ops,
    }


async def _phase_sweep(restart: bool = False) -> dict[str, Any]:
    """Two sweeps in one process, as the host would run them on one instance: the first
    after every client was registered (no alert state yet) and a repeat one (the
    15-minute sweeps that follow). With ``restart``, one sweep in a new process over the
    states the first process stored: no token or cloud in its memory."""
    import azure.identity.aio  # noqa: F401  (both designs import it before the work)
    import msgraph_core  # noqa: F401
    import psutil

    from bench.common import RssSampler, peak_rss_mib
    from devtools.runner import LocalRunner, load_functions
    from shared.bootstrap import get_app, set_app

    counts: Counter[str] = Counter()
    _count_storage_calls(counts)
    failures = _record_failures()
    load_functions()
    await get_app()
    runner = LocalRunner()
    with RssSampler() as memory:
        first = await _one_sweep(runner, counts)
        first_failures = dict(failures)
        failures.clear()
        repeat = await _one_sweep(runner, counts) if not restart else None
    with_runner = len(psutil.Process().net_connections(kind="tcp"))
    # The runner stands in for the Functions host, whose queue connections are its own
    # process's in Azure: what stays open once it is closed is the app's.
    await runner.close()
    connections = psutil.Process().net_connections(kind="tcp")
    sockets = len(connections)
    by_peer = _sockets_by_peer(connections)
    await (await get_app()).close()
    set_app(None)
    semantics = runner.semantics
    if repeat is not None:
        repeat["failure_causes"] = dict(failures)
    return first | {
        "failure_causes": first_failures,
        "repeat": repeat,
        "rss_before_mib": memory.start_mib,
        "peak_rss_mib": max(memory.peak_mib, peak_rss_mib()),
        "open_tcp_after": sockets,
        "open_tcp_with_runner": with_runner,
        "sockets_by_peer": by_peer,
        "concurrency": semantics.batch_size + semantics.new_batch_threshold,
    }


def _record_failures() -> Counter[str]:
    """What failed attempts failed with (the runner logs each with its exception)."""
    import logging

    causes: Counter[str] = Counter()

    class Tally(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                causes[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1

    logging.disable(logging.NOTSET)
    logging.getLogger().setLevel(logging.CRITICAL)  # the app stays quiet...
    runner_log = logging.getLogger("xtap.runner")  # ...but failed attempts are tallied
    runner_log.setLevel(logging.WARNING)
    runner_log.propagate = False
    runner_log.addHandler(Tally())
    return causes


def _sockets_by_peer(connections: list[Any]) -> dict[str, int]:
    """Open sockets grouped by what they talk to (the simulator, Azurite's services)."""
    import re
    from urllib.parse import urlsplit

    peers: dict[int, str] = {}
    graph = urlsplit(os.environ.get("XTAP_GRAPH_BASE_URL", "")).port
    if graph:
        peers[graph] = "graph+token"
    for service, url in re.findall(
        r"(\w+)Endpoint=([^;]+)", os.environ.get("AzureWebJobsStorage", "")
    ):
        port = urlsplit(url).port
        if port:
            peers[port] = service.lower()
    counts: Counter[str] = Counter()
    for c in connections:
        port = c.raddr.port if c.raddr else None
        counts[peers.get(port, "other") if port else "listening"] += 1
    return dict(counts)


def _child_main(workdir: Path, tree: Path | None, phase: str) -> None:
    if tree is not None:
        # Today's design: its shared/, devtools/, function_app.py and host.json come first.
        sys.path.insert(0, str(tree))
        os.chdir(tree)
    quiet_logs()
    result = asyncio.run(_phase_sweep(restart=phase == "restart"))
    (workdir / "result.json").write_text(json.dumps(result))


def _run_child(tree: Path | None, emulator_pids: str, phase: str = "sweep") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xtap-bench-phase-") as tmp:
        command = [sys.executable, "-m", "bench.bench_sweep", "--phase", phase, "--workdir", tmp]
        if tree is not None:
            command += ["--tree", str(tree)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "XTAP_BENCH_EMULATOR_PIDS": emulator_pids}
        subprocess.run(command, cwd=str(ROOT), check=True, timeout=PHASE_TIMEOUT_S, env=env)
        return dict(json.loads((Path(tmp) / "result.json").read_text()))


# ----------------------------------------------------------------------------- parent
def _count_requests(log: list[dict[str, Any]]) -> dict[str, int]:
    """Classify the simulator's request log (``$batch`` items are logged individually)."""
    kinds: Counter[str] = Counter()
    for entry in log:
        path = str(entry.get("path", ""))
        if entry.get("batchItem") is not None:
            kinds["batch_items"] += 1
            continue
        if path.endswith(_DISCOVERY_PATH):
            # A tenant's Microsoft cloud (the cross-cloud check): anonymous, on the login
            # host, not Graph; looked up once per tenant and kept for a day.
            kinds["discovery"] += 1
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
    return dict(kinds)


async def _seed(clients: int, through_import: bool) -> dict[str, Any]:
    """Register the scenario's clients. This design registers them as ``clients import``
    does (each client's cloud looked up on the way, timed); today's design is seeded with
    the same records straight into its registry (its import looked nothing up)."""
    from shared.bootstrap import build_app
    from shared.config import load_settings
    from sim.scenarios import generated_scenario

    app = build_app(load_settings())
    await app.ensure_storage()
    scenario = generated_scenario(clients)
    try:
        if not through_import:
            return {"registered": await seed_clients(app, scenario), "import_s": None}
        from devtools.local_env import scenario_clients
        from shared.services.clients import import_clients

        records = [
            {"tenantId": c.tenant_id, "name": c.name, "domains": list(c.domains)}
            for c in scenario_clients(scenario)
        ]
        t0 = time.perf_counter()
        registered = await import_clients(app, records, now=datetime.now(UTC))
        return {"registered": registered, "import_s": time.perf_counter() - t0}
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


def _export(ref: str, into: Path) -> Path | None:
    """``git archive`` of ``ref`` (today's design), or None when the ref is not at hand."""
    archive = subprocess.run(
        ["git", "archive", ref], cwd=str(ROOT), capture_output=True, check=False
    )
    if archive.returncode != 0:
        print(
            f"[sweep] baseline {ref} not available: {archive.stderr.decode()[:200]}",
            file=sys.stderr,
        )
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    # Azurite is started by this process; the export only needs its code and host.json.
    return into


def _measure(tree: Path | None, clients: int, latency_ms: float, label: str) -> dict[str, Any]:
    with LocalStack(scenario=f"generated:{clients}") as stack:
        control = stack.sim.control
        control.set_latency(latency_ms)  # the import's lookups answer at the sweep's latency
        seeded = asyncio.run(_seed(clients, through_import=tree is None))
        registered = seeded["registered"]
        import_lookups = sum(
            1 for e in control.requests() if e["path"].endswith(_DISCOVERY_PATH)
        )
        control.reset_counters()
        print(
            f"[sweep] {label}: {registered} clients, {latency_ms:.0f} ms per request ...",
            file=sys.stderr,
            flush=True,
        )
        pids = f"azurite:{stack.azurite.process.pid},simulator:{stack.sim.pid}"
        result = _run_child(tree, pids)
        result["import_s"] = seeded["import_s"]
        result["import_lookups"] = import_lookups
        # A new process over the stored states (a restart of the host; the same work as
        # the hourly sweep in which every kept token expires).
        restart = result["restart"] = _run_child(tree, pids, "restart")
        log = control.requests()
        result["max_in_flight"] = control.stats()["maxInFlight"]
        control.set_latency(0)
        repeat = result["repeat"]
        for sweep in (result, repeat, restart):
            sweep["requests"] = _count_requests(
                [e for e in log if sweep["started_epoch"] <= e["time"] <= sweep["ended_epoch"]]
            )
            sweep["fresh_rows"] = asyncio.run(
                _fresh_rows(datetime.fromisoformat(sweep["started_at"]))
            )
            sweep["clients"] = registered
        print(
            f"[sweep] {label}: {result['wall_s']:.1f} s (repeat sweep {repeat['wall_s']:.1f} s,"
            f" after a restart {restart['wall_s']:.1f} s), {result['processed']} +"
            f" {repeat['processed']} + {restart['processed']} messages",
            file=sys.stderr,
            flush=True,
        )
        return result


def _clients(result: dict[str, Any]) -> int:
    """Per-client figures divide by the clients checked, not by queue messages (a message
    may carry several clients)."""
    return max(1, int(result.get("clients") or result["processed"]))


def _per_check_storage(result: dict[str, Any]) -> float:
    return sum(result["storage_ops"].values()) / _clients(result)


def _peak_rss(result: dict[str, Any]) -> float:
    """The worse of the two sweeping processes (the first, and the restarted one)."""
    return max(float(result["peak_rss_mib"]), float(result["restart"]["peak_rss_mib"]))


def _held_sockets(result: dict[str, Any]) -> int:
    return max(int(result["open_tcp_after"]), int(result["restart"]["open_tcp_after"]))


def _sweep_rows(title: str, new: dict[str, Any], old: dict[str, Any] | None) -> list[Row]:
    """The figures of one sweep (the first of a process, or the repeat one)."""

    def b(key: str) -> Any:
        return old[key] if old else None

    done = _clients(new)
    done_old = _clients(old) if old else 1
    http = new["requests"].get("http", 0) / done
    old_http = old["requests"].get("http", 0) / done_old if old else None
    ops = new["storage_ops"]
    op_note = ", ".join(f"{k}={v / done:.2f}" for k, v in sorted(ops.items()) if v)
    return [
        section(title),
        row(
            "wall, timer fired to queue drained (lower is better)",
            new["wall_s"],
            "s",
            b("wall_s"),
            note=(
                f"the timer's fan-out took {new['fanout_s']:.1f} s, the queue drained beside it;"
                " today's: " + (f"fan-out {old['fanout_s']:.1f} s" if old else "-")
            ),
        ),
        row(
            "throughput (higher is better)",
            done / new["wall_s"],
            "clients/s",
            done_old / old["wall_s"] if old else None,
        ),
        row(
            "failed attempts / poisoned / fresh posture rows",
            f"{new['failed_attempts']} / {new['poisoned']} / {new['fresh_rows']}",
            "",
            f"{old['failed_attempts']} / {old['poisoned']} / {old['fresh_rows']}" if old else None,
            note="; ".join(f"{n}x {c}" for c, n in new.get("failure_causes", {}).items())
            + (
                " | today's: "
                + "; ".join(f"{n}x {c}" for c, n in old.get("failure_causes", {}).items())
                if old and old.get("failure_causes")
                else ""
            ),
        ),
        row(
            "Graph HTTP requests per client, token endpoint included",
            http,
            "req",
            old_http,
            note="sweep: "
            + ", ".join(f"{k}={v}" for k, v in sorted(new["requests"].items()))
            + (
                "; today's: " + ", ".join(f"{k}={v}" for k, v in sorted(old["requests"].items()))
                if old
                else ""
            ),
        ),
        row(
            "  of which token requests per client",
            new["requests"].get("token", 0) / done,
            "req",
            old["requests"].get("token", 0) / done_old if old else None,
        ),
        row(
            "OpenID discovery per client (login host, not Graph)",
            new["requests"].get("discovery", 0) / done,
            "req",
            old["requests"].get("discovery", 0) / done_old if old else None,
            note="a tenant's cloud: looked up at registration, then remembered with its alert"
            " state for 1-2 days (today's design: 24 h in the memory of each process)",
        ),
        row(
            "storage round trips per client checked (drain, incl. the host's receive/delete)",
            _per_check_storage(new),
            "ops",
            _per_check_storage(old) if old else None,
            note=op_note,
        ),
        row(
            "  storage round trips of the fan-out, per client",
            new["fanout_storage_ops"] / done,
            "ops",
            old["fanout_storage_ops"] / done_old if old else None,
        ),
        row(
            "app CPU per client (timer + drain, incl. the local runner's host work)",
            1000 * new["cpu_s"] / done,
            "ms",
            1000 * old["cpu_s"] / done_old if old else None,
        ),
        row(
            "  Azurite CPU per client (the storage emulator)",
            1000 * new["emulator_cpu_s"]["azurite"] / done,
            "ms",
            1000 * old["emulator_cpu_s"]["azurite"] / done_old if old else None,
        ),
        row(
            "  simulator CPU per client (Graph + token endpoint, TLS)",
            1000 * new["emulator_cpu_s"]["simulator"] / done,
            "ms",
            1000 * old["emulator_cpu_s"]["simulator"] / done_old if old else None,
        ),
        row(
            "queue messages processed (clients per message)",
            new["processed"],
            "msgs",
            b("processed"),
            note=f"{done / max(1, new['processed']):.1f} clients per message"
            + (f"; today's: {done_old / max(1, old['processed']):.1f}" if old else ""),
        ),
    ]


def _size_rows(n: int, new: dict[str, Any], old: dict[str, Any] | None) -> list[Row]:
    def b(key: str) -> Any:
        return old[key] if old else None

    scope = "value: this design; baseline: today's design"
    registration: list[Row] = []
    if new.get("import_s") is not None:
        registration = [
            section(f"{n:,} clients registered with clients import before the sweeps"),
            row(
                "wall, clients import (each client's cloud looked up)",
                new["import_s"],
                "s",
                None,
                note="today's design: seeded straight into its registry (its import looked"
                " nothing up)",
            ),
            row("OpenID lookups of the import, per client", new["import_lookups"] / n, "req", None),
        ]
    return [
        *registration,
        *_sweep_rows(
            f"{n:,} clients @ 100 ms, one instance, the first sweep after registering them"
            f" all (no alert state yet; {scope})",
            new,
            old,
        ),
        *_sweep_rows(
            f"{n:,} clients, the repeat sweep in the same process (every 15 min; {scope})",
            new["repeat"],
            old["repeat"] if old else None,
        ),
        *_sweep_rows(
            f"{n:,} clients, the first sweep of a restarted process (states stored, no token or"
            f" cloud in memory; what the hourly sweep in which the kept tokens expire costs too;"
            f" {scope})",
            new["restart"],
            old["restart"] if old else None,
        ),
        section(f"{n:,} clients, the sweeping processes over their sweeps"),
        row(
            "peak RSS of a sweeping process (the worse of the two)",
            _peak_rss(new),
            "MiB",
            _peak_rss(old) if old else None,
            note=f"first process {new['peak_rss_mib']:.1f} MiB, restarted"
            f" {new['restart']['peak_rss_mib']:.1f} MiB",
        ),
        row(
            "open TCP sockets after the sweep, with the local runner's (the host's) own",
            new.get("open_tcp_with_runner"),
            "sockets",
            old.get("open_tcp_with_runner") if old else None,
        ),
        row(
            "open TCP sockets the app holds after the sweep",
            new["open_tcp_after"],
            "sockets",
            b("open_tcp_after"),
            note=", ".join(f"{k}={v}" for k, v in sorted(new.get("sockets_by_peer", {}).items()))
            + (
                "; today's: "
                + ", ".join(f"{k}={v}" for k, v in sorted(old.get("sockets_by_peer", {}).items()))
                if old
                else ""
            ),
        ),
        row(
            "queue concurrency per instance (host.json batchSize + newBatchThreshold)",
            new["concurrency"],
            "msgs",
            b("concurrency"),
        ),
    ]


def _goal_rows(results: dict[tuple[str, int], dict[str, Any]], sizes: tuple[int, ...]) -> list[Row]:
    small, large = min(sizes), max(sizes)
    new_small, new_large = results[("new", small)], results[("new", large)]
    old_small, old_large = results.get(("old", small)), results.get(("old", large))
    ratio = _peak_rss(new_large) / _peak_rss(new_small)
    old_ratio = _peak_rss(old_large) / _peak_rss(old_small) if old_small and old_large else None
    sweeps = [
        s for key, r in results.items() if key[0] == "new" for s in (r, r["repeat"], r["restart"])
    ]
    worst_http = max(s["requests"].get("http", 0) / _clients(s) for s in sweeps)
    sockets = max(_held_sockets(r) for key, r in results.items() if key[0] == "new")
    failed = sum(s["failed_attempts"] for s in sweeps)
    fresh = all(s["fresh_rows"] == s["clients"] for s in sweeps)

    def goal(figure: str, value: Any, unit: str, baseline: Any, met: bool, target: str) -> Row:
        return row(
            figure, value, unit, baseline, note=f"goal {target}: {'MET' if met else 'NOT MET'}"
        )

    return [
        section("goals of issue 16 (value: this design; baseline: today's design, same run)"),
        goal(
            f"1. peak RSS {large:,} / {small:,} clients",
            ratio,
            "x",
            old_ratio,
            ratio <= GOAL_RSS_RATIO,
            f"<= {GOAL_RSS_RATIO}",
        ),
        goal(
            f"1. peak RSS at {large:,} clients",
            _peak_rss(new_large),
            "MiB",
            _peak_rss(old_large) if old_large else None,
            _peak_rss(new_large) <= GOAL_RSS_MIB,
            f"<= {GOAL_RSS_MIB:.0f} MiB",
        ),
        goal(
            "1. open TCP sockets after a sweep (worst size and process)",
            sockets,
            "sockets",
            (
                max(_held_sockets(r) for k, r in results.items() if k[0] == "old")
                if old_large
                else None
            ),
            sockets <= GOAL_SOCKETS,
            f"<= {GOAL_SOCKETS}",
        ),
        goal(
            "2. Graph HTTP requests per client (worst size and sweep)",
            worst_http,
            "req",
            None,
            worst_http <= GOAL_REQUESTS_PER_CLIENT,
            f"<= {GOAL_REQUESTS_PER_CLIENT}",
        ),
        *(
            goal(
                f"3. wall at {large:,} clients, one instance, {which}",
                sweep["wall_s"],
                "s",
                old_sweep["wall_s"] if old_sweep else None,
                sweep["wall_s"] <= GOAL_WALL_5000_S,
                f"<= {GOAL_WALL_5000_S:.0f} s",
            )
            for which, sweep, old_sweep in (
                (
                    "the repeat sweep",
                    new_large["repeat"],
                    old_large["repeat"] if old_large else None,
                ),
                (
                    "a restarted process's first sweep",
                    new_large["restart"],
                    old_large["restart"] if old_large else None,
                ),
                ("the first sweep after registering every client", new_large, old_large),
            )
        ),
        goal(
            "3. failed attempts (all sizes and sweeps) / every client a fresh posture row",
            f"{failed} / {'yes' if fresh else 'no'}",
            "",
            None,
            failed == 0 and fresh,
            "0 / yes",
        ),
    ]


def run(
    sizes: tuple[int, ...] = SIZES,
    latency_ms: float = LATENCY_MS,
    baseline_ref: str | None = BASELINE_REF,
) -> list[Row]:
    from devtools.local_env import VENDOR_TENANT_ID
    from sim.scenarios import VENDOR_TENANT_ID as SIM_VENDOR

    if SIM_VENDOR != VENDOR_TENANT_ID:
        raise RuntimeError("devtools.local_env and sim.scenarios disagree on the vendor tenant")
    quiet_logs()
    load_start = os.getloadavg()[0]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="xtap-bench-baseline-") as tmp:
        tree = _export(baseline_ref, Path(tmp)) if baseline_ref else None
        for n in sizes:
            results[("new", n)] = _measure(None, n, latency_ms, f"this design, {n}")
            if tree is not None:
                results[("old", n)] = _measure(tree, n, latency_ms, f"today's design, {n}")
    rows: list[Row] = []
    for n in sizes:
        rows += _size_rows(n, results[("new", n)], results.get(("old", n)))
    if len(sizes) > 1:
        rows += _goal_rows(results, sizes)
    rows.append(
        row(
            "machine load average (1 min) at start / end",
            f"{load_start:.1f} / {os.getloadavg()[0]:.1f}",
            "",
            note=f"{os.cpu_count()} CPUs shared with the simulator, Azurite and anything else",
        )
    )
    rows.append(
        row(
            "baseline",
            baseline_ref if tree is not None else "none",
            "",
            note="today's design = this repository at that commit (git archive), same driver",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--latency-ms", type=float, default=LATENCY_MS)
    parser.add_argument("--baseline-ref", default=BASELINE_REF, help="'' for no baseline")
    parser.add_argument("--phase", choices=("sweep", "restart"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        _child_main(args.workdir, args.tree, args.phase)
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    print(format_table(run(sizes, args.latency_ms, args.baseline_ref or None)))
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
