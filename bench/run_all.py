"""Run every benchmark and print one table (figure, value, unit, same-run baseline, ratio).

    python -m bench.run_all              # everything, ~6-8 min on 2 cores
    python -m bench.run_all --quick      # smaller sweep, fewer repeats (~2 min)
    python -m bench.run_all --only sweep,e2e_latency,report

Each benchmark runs in its own fresh interpreter (its peak memory, event loop and caches
are its own); a benchmark that fails is reported as such and the others still run.
Results are also written to ``bench/results/latest.json``. Benchmarks never assert.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, format_table, machine, section

RESULTS = ROOT / "bench" / "results" / "latest.json"


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    title: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    quick_kwargs: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 600.0


BENCHMARKS = (
    Benchmark(
        "cold_import",
        "bench.bench_cold_import",
        "Cold import of function_app vs eager msgraph import",
        quick_kwargs={"repeats": 3},
    ),
    Benchmark(
        "sweep",
        "bench.bench_sweep",
        "Posture sweep: 500 and 5,000 clients at 100 ms vs today's design (same run)",
        kwargs={"sizes": (500, 5000), "latency_ms": 100.0},
        quick_kwargs={"sizes": (200, 1000), "latency_ms": 100.0},
        timeout_s=3600.0,  # three sweeps per design and size, today's design is slow
    ),
    Benchmark(
        "audit_decode",
        "bench.bench_audit_decode",
        "Audit decode + classify throughput vs json.loads",
        quick_kwargs={"count": 2000},
    ),
    Benchmark(
        "resets",
        "bench.bench_resets",
        "Re-invite (reset redemption) throughput vs Graph's write limit",
    ),
    Benchmark(
        "report",
        "bench.bench_report",
        "Portfolio report for 10,000 clients vs reading the rows alone",
        kwargs={"clients": 10_000, "repeats": 3},
        quick_kwargs={"clients": 2_000, "repeats": 1},
        timeout_s=1200.0,
    ),
    Benchmark(
        "e2e_latency",
        "bench.bench_e2e_latency",
        "Policy change → Teams card, timers accelerated vs processing floor",
        quick_kwargs={"changes": 3},
    ),
)


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _child(module: str, kwargs: dict[str, Any], out: Path) -> int:
    """Inside the fresh interpreter: call ``module.run(**kwargs)`` and save its rows."""
    try:
        rows = importlib.import_module(module).run(**kwargs)
    except BaseException as exc:
        out.with_suffix(".err").write_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    if isinstance(rows, dict):  # tolerate a single row
        rows = [rows]
    out.write_text(json.dumps(list(rows), default=str))
    return 0


def _run_one(bench: Benchmark, quick: bool) -> dict[str, Any]:
    kwargs = {**bench.kwargs, **(bench.quick_kwargs if quick else {})}
    if not _available(bench.module):
        return {
            "status": "not available",
            "rows": [
                {
                    "figure": bench.title,
                    "value": "not available",
                    "unit": "",
                    "baseline": None,
                    "ratio": None,
                    "note": f"{bench.module} is not in this checkout",
                }
            ],
        }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="xtap-bench-") as tmp:
        out = Path(tmp) / "rows.json"
        command = [
            sys.executable,
            "-m",
            "bench.run_all",
            "--child",
            bench.module,
            "--kwargs",
            json.dumps(kwargs),
            "--out",
            str(out),
        ]
        try:
            completed = subprocess.run(command, cwd=str(ROOT), timeout=bench.timeout_s)
            ok = completed.returncode == 0 and out.exists()
            error = f"exit code {completed.returncode}"
        except subprocess.TimeoutExpired:
            ok = False
            error = f"timed out after {bench.timeout_s:.0f} s"
        wall = time.perf_counter() - started
        if ok:
            return {
                "status": "ok",
                "wall_s": round(wall, 1),
                "kwargs": kwargs,
                "rows": json.loads(out.read_text()),
            }
        if out.with_suffix(".err").exists():
            error = out.with_suffix(".err").read_text()
    return {
        "status": "failed",
        "wall_s": round(wall, 1),
        "kwargs": kwargs,
        "rows": [
            {
                "figure": bench.title,
                "value": "failed",
                "unit": "",
                "baseline": None,
                "ratio": None,
                "note": error[:300],
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweep, fewer repeats")
    parser.add_argument("--only", help="comma-separated: " + ",".join(b.name for b in BENCHMARKS))
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, json.loads(args.kwargs), args.out)

    wanted = set(args.only.split(",")) if args.only else {b.name for b in BENCHMARKS}
    unknown = wanted - {b.name for b in BENCHMARKS}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    results: dict[str, Any] = {}
    all_rows: list[Row] = []
    for bench in BENCHMARKS:
        if bench.name not in wanted:
            continue
        print(f"== {bench.name}: {bench.title}", file=sys.stderr, flush=True)
        result = _run_one(bench, args.quick)
        results[bench.name] = {"title": bench.title, "module": bench.module, **result}
        print(
            f"== {bench.name}: {result['status']} ({result.get('wall_s', 0)} s)",
            file=sys.stderr,
            flush=True,
        )
        if result["status"] == "not available":
            print(f"{bench.title}: not available", flush=True)
        all_rows += [section(f"{bench.name}: {bench.title}"), *result["rows"]]

    total = time.perf_counter() - started
    report = {
        "started_at": started_at.isoformat(),
        "duration_s": round(total, 1),
        "quick": args.quick,
        "machine": machine(),
        "benchmarks": results,
    }
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(report, indent=2, default=str) + "\n")
    info = report["machine"]
    print()
    print(
        f"xtap-watch benchmarks, {started_at:%Y-%m-%d %H:%M} UTC, {total:.0f} s; "
        f"{info.get('cpu', '?')} x{info.get('cpus')}, {info.get('memory_gib', '?')} GiB, "
        f"Python {info['python']}{' (--quick)' if args.quick else ''}"
    )
    print("ratio = value / baseline (same run); each figure says whether lower or higher is better")
    print()
    print(format_table(all_rows))
    print()
    print(f"results written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
