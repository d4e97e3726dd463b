"""Benchmark: cold import of ``function_app`` vs ``from msgraph import GraphServiceClient``.

Every Functions cold start pays for importing ``function_app.py`` before the first trigger
runs; the design keeps heavy SDKs out of it (DESIGN §7). Each measurement is a fresh
interpreter (``python -c``), so nothing is shared with this process; the OS file cache is
warm after the first run, which is also true of a warm Functions worker host.

* wall: process start to exit, as the parent sees it (interpreter start-up included);
* import: the ``import`` statement alone, timed inside the child;
* peak RSS: the child's own ``ru_maxrss`` from ``os.wait4`` (not the max over children).

Same-run baseline: ``from msgraph import GraphServiceClient`` measured the same way,
alternating with the app import. Prints a table; ``run()`` returns rows. Never asserts.

    python -m bench.bench_cold_import [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import ROOT, Row, format_table, row

APP_IMPORT = "import function_app"
MSGRAPH_IMPORT = "from msgraph import GraphServiceClient"
EMPTY = "pass"
REPEATS = 7

CHILD = """
import time
_t = time.perf_counter()
{statement}
print(time.perf_counter() - _t)
"""


@dataclass(frozen=True)
class Sample:
    wall_s: float
    import_s: float
    peak_rss_mib: float


def measure(statement: str) -> Sample:
    """Run ``statement`` in a fresh interpreter; wall, in-child import time, peak RSS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XTAP_", "PYTHON"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never (re)write .pyc files while measuring
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(statement=statement)],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    if process.stdout:
        process.stdout.close()
    if process.stderr:
        process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"`{statement}` failed in a fresh interpreter:\n{err[-2000:]}")
    return Sample(wall, float(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024)


def run(repeats: int = REPEATS) -> list[Row]:
    measure(APP_IMPORT)  # prime the OS file cache for both sides alike
    measure(MSGRAPH_IMPORT)
    app: list[Sample] = []
    graph: list[Sample] = []
    empty: list[Sample] = []
    for _ in range(repeats):  # alternate so drift in machine load hits both sides
        app.append(measure(APP_IMPORT))
        graph.append(measure(MSGRAPH_IMPORT))
        empty.append(measure(EMPTY))

    def med(samples: list[Sample], attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in samples)

    floor = med(empty, "wall_s")
    return [
        row(
            "cold import function_app: process wall (median; lower is better)",
            med(app, "wall_s"),
            "s",
            med(graph, "wall_s"),
            note=(
                f"baseline = fresh `python -c '{MSGRAPH_IMPORT}'`; median of {repeats} "
                f"alternating runs, file cache warm; an empty interpreter takes {floor:.3f} s"
            ),
        ),
        row(
            "cold import function_app: import statement only (median)",
            med(app, "import_s"),
            "s",
            med(graph, "import_s"),
        ),
        row(
            "cold import function_app: peak RSS of the process (median)",
            med(app, "peak_rss_mib"),
            "MiB",
            med(graph, "peak_rss_mib"),
            note=f"an empty interpreter peaks at {med(empty, 'peak_rss_mib'):.1f} MiB",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    print(format_table(run(args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
