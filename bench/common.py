"""Shared plumbing for the benchmarks: result rows, the table, a local stack, memory.

A result row is a plain dict so every benchmark (and ``bench_audit_decode``, written
separately) speaks the same shape::

    {"figure": str, "value": number|str|None, "unit": str,
     "baseline": number|str|None, "ratio": number|None, "note": str (optional)}

``ratio`` is always ``value / baseline``; the figure's text says whether lower or higher
is better.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Row = dict[str, Any]


def row(
    figure: str,
    value: Any,
    unit: str,
    baseline: Any = None,
    *,
    note: str = "",
    digits: int = 3,
) -> Row:
    """One result row; the ratio is computed when both sides are numbers."""
    ratio = None
    if isinstance(value, int | float) and isinstance(baseline, int | float) and baseline:
        ratio = round(value / baseline, digits)
    out: Row = {
        "figure": figure,
        "value": _round(value),
        "unit": unit,
        "baseline": _round(baseline),
        "ratio": ratio,
    }
    if note:
        out["note"] = note
    return out


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if abs(value) < 100 else round(value, 1)
    return value


def section(title: str) -> Row:
    """A heading row inside the table (a benchmark's name)."""
    return {"figure": title, "section": True}


def format_table(rows: list[Row]) -> str:
    headers = ("figure", "value", "unit", "baseline", "ratio")
    cells = [[_cell(r.get(h)) for h in headers] for r in rows if not r.get("section")]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    widths[0] = min(widths[0], 84)

    def line(values: list[str]) -> str:
        first = values[0] if len(values[0]) <= widths[0] else values[0][: widths[0] - 1] + "…"
        rest = [
            v.rjust(w) if i != 1 else v.ljust(w)
            for i, (v, w) in enumerate(zip(values[1:], widths[1:], strict=True))
        ]
        return "  ".join([first.ljust(widths[0]), *rest])

    out = [line(list(headers)), line(["-" * w for w in widths])]
    for r in rows:
        if r.get("section"):
            out.append(f"-- {r['figure']}")
        else:
            out.append(line([_cell(r.get(h)) for h in headers]))
    notes = [f"  * {r['figure'].strip()}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    return info


def quiet_logs() -> None:
    """Benchmarks print tables; the app's per-attempt warnings would drown them."""
    logging.disable(logging.WARNING)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return peak_rss_mib()


class RssSampler:
    """Peak RSS of this process during a block (a thread samples /proc every 20 ms)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.start_mib = 0.0
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.start_mib = self.peak_mib = current_rss_mib()

        def sample() -> None:
            while not self._stop.wait(self.interval):
                self.peak_mib = max(self.peak_mib, current_rss_mib())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_mib = max(self.peak_mib, current_rss_mib())


@dataclass
class LocalStack:
    """Azurite + the Graph simulator (a test double) on loopback, and the app settings.

    The settings are exported into ``os.environ`` (what the Functions host does with app
    settings) so child processes started by a benchmark inherit them; they are restored
    on exit.
    """

    scenario: str = "demo"
    overrides: dict[str, str] = field(default_factory=dict)
    azurite: Any = None
    sim: Any = None
    env: dict[str, str] = field(default_factory=dict)
    _saved: dict[str, str | None] = field(default_factory=dict)
    _workdir: Any = None

    def __enter__(self) -> LocalStack:
        from devtools.azurite import start_azurite
        from devtools.local_env import WEBHOOK_NAME, settings_env
        from sim.testing import start_simulator

        self._workdir = tempfile.TemporaryDirectory(prefix="xtap-bench-")
        self.azurite = start_azurite()
        try:
            self.sim = start_simulator(self.scenario, Path(self._workdir.name) / "sim")
        except Exception:
            self.azurite.stop()
            raise
        self.env = settings_env(
            graph_base=self.sim.base_url,
            ca_file=self.sim.ca_file,
            storage_connection_string=self.azurite.connection_string,
            webhook_url=self.sim.webhook_url(WEBHOOK_NAME),
            overrides=self.overrides,
        )
        for key in [k for k in os.environ if k.startswith("XTAP_")]:
            self._saved[key] = os.environ.pop(key)
        for key, value in self.env.items():
            self._saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        return self

    def __exit__(self, *exc: object) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.sim is not None:
            self.sim.stop()
        if self.azurite is not None:
            self.azurite.stop()
        if self._workdir is not None:
            self._workdir.cleanup()


async def seed_clients(app: Any, scenario: dict[str, Any], concurrency: int = 32) -> int:
    """Register every client of a scenario (concurrently: 5,000 rows in a few seconds)."""
    from devtools.local_env import scenario_clients
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import ClientRecord

    registry = ClientRegistry(app.tables)
    limiter = asyncio.Semaphore(concurrency)
    clients = scenario_clients(scenario)

    async def register(tenant_id: str, name: str, domains: tuple[str, ...]) -> None:
        async with limiter:
            await registry.upsert(ClientRecord(tenant_id=tenant_id, name=name, domains=domains))

    await asyncio.gather(*(register(c.tenant_id, c.name, c.domains) for c in clients))
    return len(clients)


@contextlib.contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start
