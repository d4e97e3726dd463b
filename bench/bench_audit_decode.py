"""Benchmark: decode + classify 10,000 cross-tenant access audit events (issue 4).

The audit scan runs every 5 minutes and may meet thousands of events at once (a bulk
partner import, a migration). Events are generated from the sample files in
tests/fixtures/audit/ (every activity, Graph / Log Analytics / Management API shapes,
irrelevant and unknown-shape events mixed in) with unique IDs and 200 partner tenants,
half of them registered clients.

Same-run baseline: plain ``json.loads`` of the same events, i.e. the cost of merely
reading them. Prints a table; ``run()`` returns the figures as rows for a bench runner.
Never asserts.

    python bench/bench_audit_decode.py [--events N]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shared.domain.audit import (  # noqa: E402  (path set up above for standalone runs)
    CrossTenantChange,
    decode_audit_record,
)
from shared.domain.audit_severity import classify, find_client, to_alert_record  # noqa: E402
from shared.domain.messages import ClientRef  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "audit"
SAMPLE_TENANTS = ("3f2a5c7e-8b1d-4e6f-9a0b-1c2d3e4f5a6b", "6babcaad-604b-40ac-a9d7-9fd97c0b779f")
EVENTS = 10_000
REPEATS = 3


def _templates() -> list[dict[str, object]]:
    graph = json.loads((FIXTURES / "directoryAudits.crossTenantAccess.json").read_text())["value"]
    rows = json.loads((FIXTURES / "AuditLogs.logAnalytics.json").read_text())
    o365 = json.loads((FIXTURES / "managementActivity.azureActiveDirectory.json").read_text())
    return [*graph, *rows, *o365]


def generate_events(count: int = EVENTS, seed: int = 7) -> tuple[list[str], list[str]]:
    """``count`` events as JSON text, and the 200 partner tenant IDs they use."""
    rng = random.Random(seed)
    tenants = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200)]
    templates = [json.dumps(t) for t in _templates()]
    events = []
    for i in range(count):
        text = templates[i % len(templates)]
        text = text.replace(SAMPLE_TENANTS[0], tenants[i % 200])
        text = text.replace(SAMPLE_TENANTS[1], tenants[(i * 7 + 3) % 200])
        record = json.loads(text)
        key = "id" if "id" in record else "Id"
        record[key] = f"Directory_{uuid.UUID(int=rng.getrandbits(128), version=4)}_BENCH_{i}"
        events.append(json.dumps(record))
    return events, tenants


def _best_of(repeats: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _peak_mib(work: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        kept = work()  # results stay alive while measured, as in a scan batch
        _, peak = tracemalloc.get_traced_memory()
        del kept
    finally:
        tracemalloc.stop()
    return peak / (1024 * 1024)


def run(count: int = EVENTS) -> list[dict[str, object]]:
    texts, tenants = generate_events(count)
    clients = {t: ClientRef(name=f"Client {n}", tenant_id=t) for n, t in enumerate(tenants[:100])}
    parsed = [json.loads(text) for text in texts]
    now = datetime(2026, 11, 23, tzinfo=UTC)

    def baseline() -> list[object]:
        return [json.loads(text) for text in texts]

    def decode_classify() -> list[object]:
        out: list[object] = []
        for record in parsed:
            decoded = decode_audit_record(record)
            for item in decoded if isinstance(decoded, list) else [decoded]:
                out.append((item, classify(item, clients, None)))
        return out

    def decode_classify_alert() -> list[object]:
        out: list[object] = []
        for record in parsed:
            decoded = decode_audit_record(record)
            for item in decoded if isinstance(decoded, list) else [decoded]:
                severity, reasons = classify(item, clients, None)
                client = find_client(clients, item.partner_tenant_id)
                out.append(to_alert_record(item, severity, reasons, client, now))
        return out

    results = decode_classify()
    changes = sum(1 for item, _ in results if isinstance(item, CrossTenantChange))  # type: ignore[misc]

    base_s = _best_of(REPEATS, baseline)
    decode_s = _best_of(REPEATS, decode_classify)
    alert_s = _best_of(REPEATS, decode_classify_alert)
    base_eps, decode_eps, alert_eps = count / base_s, count / decode_s, count / alert_s
    base_peak, decode_peak = _peak_mib(baseline), _peak_mib(decode_classify)
    return [
        {
            "figure": f"decode + classify ({count} events, {changes} changes, "
            f"{len(results) - changes} to review)",
            "value": round(decode_eps),
            "unit": "events/s",
            "baseline": round(base_eps),
            "ratio": round(decode_eps / base_eps, 3),
        },
        {
            "figure": "decode + classify + alert record",
            "value": round(alert_eps),
            "unit": "events/s",
            "baseline": round(base_eps),
            "ratio": round(alert_eps / base_eps, 3),
        },
        {
            "figure": "decode + classify peak memory (results kept)",
            "value": round(decode_peak, 2),
            "unit": "MiB",
            "baseline": round(base_peak, 2),
            "ratio": round(decode_peak / base_peak, 3) if base_peak else None,
        },
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=EVENTS)
    args = parser.parse_args(argv)
    rows = run(args.events)
    print("baseline: json.loads of the same events, same run")
    print(f"{'figure':<62} {'value':>12} {'baseline':>12} {'ratio':>8}  unit")
    for row in rows:
        print(
            f"{row['figure']!s:<62} {row['value']!s:>12} {row['baseline']!s:>12} "
            f"{row['ratio']!s:>8}  {row['unit']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
