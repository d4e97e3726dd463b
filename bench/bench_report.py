"""Benchmark (issue 17): the portfolio report for 10,000 clients vs reading the rows alone.

Azurite is seeded with 10,000 clients the way production holds them: a registry row, a
``latest`` posture row (the record ``check_client`` stores, built by the real domain
code — Microsoft's documented default policy, blocked/limited/allowed/no-consent variants,
sign-in evidence, vendor-side findings) and an alert state from the real state machine.

Times: every phase runs in one fresh interpreter, interleaved and rotated each round (a
neighbour's load on a shared machine then falls on all of them alike), best of N. Memory:
each phase once more in a fresh interpreter of its own, peak RSS over the warmed-up start.
The phases:

* **baseline — read the rows alone**: page through the three tables (1,000 a page, the
  Table service's maximum) and decode every row's JSON, keeping nothing;
* **read everything into lists**: what a naive report would hold (``PostureStore.list``
  and ``ClientRegistry.list``: every row decoded and kept);
* **report model**: ``portfolio_report`` (the same reads, reduced to report rows);
* **report HTML** and **report JSON**: the model plus rendering/serialisation;
* **GET /api/v1/report**: the HTTP trigger through the local runner (auth included).

Ratios are against the baseline of the same run. Never asserts.

    python -m bench.bench_report [--clients 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import ROOT, Row, format_table, quiet_logs, row
from devtools.handbook import GRAPH_FIXTURES

CLIENTS = 10_000
REPEATS = 3
PHASES = ("read", "model", "html", "json", "http", "lists")
PHASE_TIMEOUT_S = 900
VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
VENDOR_APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
FIXTURES = GRAPH_FIXTURES


# ------------------------------------------------------------------------------ seeding
def _tenant(i: int) -> str:
    return f"{i:08x}-5e6f-4a7b-8c9d-{i:012x}"


def _variants() -> list[dict[str, Any]]:
    """Stored posture records of five realistic kinds (the real evaluation, serialised)."""
    from shared.domain.finding_catalog import FindingCode
    from shared.domain.policy import parse_partner_policy
    from shared.domain.posture import evaluate_outbound_posture, unknown_posture
    from shared.domain.signin_evidence import (
        EvidenceThreshold,
        build_evidence,
        combine,
        counts_from_summary,
    )
    from shared.domain.vendor_checks import evaluate_vendor_side
    from sim.scenarios import b2b_everyone

    default = _default_policy()
    group = "8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13"
    scoped = {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": group, "targetType": "group"}],
        },
        "applications": b2b_everyone("allowed")["applications"],
    }
    partners: list[dict[str, Any] | None] = [
        None,
        {"tenantId": VENDOR, "b2bCollaborationOutbound": b2b_everyone("blocked")},
        {"tenantId": VENDOR, "b2bCollaborationOutbound": scoped},
        {
            "tenantId": VENDOR,
            "b2bCollaborationOutbound": b2b_everyone("allowed"),
            "automaticUserConsentSettings": {"inboundAllowed": None, "outboundAllowed": True},
        },
    ]
    now = datetime.now(UTC)
    results = [
        evaluate_outbound_posture(
            default, parse_partner_policy(p) if p else None, VENDOR, [VENDOR_APP]
        )
        for p in partners
    ]
    unknown = unknown_posture(
        FindingCode.CLIENT_CONSENT_MISSING, "Graph answered 401", vendor_tenant_id=VENDOR
    )
    probe = _tenant(1)
    counts = counts_from_summary(
        {probe: {"500212": 17}}, window_start=now - timedelta(hours=24), window_end=now
    )
    results.append(combine(unknown, build_evidence(counts, probe, EvidenceThreshold())))
    vendor = [
        f.to_dict() for f in evaluate_vendor_side(default, None, probe, [VENDOR_APP], None, ())
    ]
    return [r.to_dict() | {"vendorFindings": vendor, "state": "ok"} for r in results]


def _default_policy() -> Any:
    from shared.domain.policy import parse_default_policy

    path = FIXTURES / "policies.crossTenantAccessPolicy.default.get.response.json"
    return parse_default_policy(json.loads(path.read_text()))


async def _seed(clients: int, connection_string: str) -> dict[str, Any]:
    from azure.data.tables.aio import TableServiceClient

    from shared.adapters.repositories import PostureStore
    from shared.adapters.storage import dumps
    from shared.config import TABLE_ALERT_STATE, TABLE_CLIENTS, TABLE_POSTURE
    from shared.domain.client_state import next_state, observe
    from shared.domain.clients import ClientRecord, ConsentStatus
    from shared.domain.policy import parse_partner_policy
    from shared.domain.posture import evaluate_outbound_posture
    from sim.scenarios import b2b_everyone

    variants = _variants()
    now = datetime.now(UTC)
    default = _default_policy()
    ok = evaluate_outbound_posture(default, None, VENDOR, [VENDOR_APP])
    blocked_entry = {"tenantId": VENDOR, "b2bCollaborationOutbound": b2b_everyone("blocked")}
    blocked = evaluate_outbound_posture(
        default, parse_partner_policy(blocked_entry), VENDOR, [VENDOR_APP]
    )
    day = timedelta(hours=24)

    def registry_entity(i: int) -> dict[str, Any]:
        record = ClientRecord(
            tenant_id=_tenant(i),
            name=f"Client {i:05d} Holdings",
            domains=(f"client{i:05d}.example",),
            consent=ConsentStatus.MISSING if i % 5 == 4 else ConsentStatus.GRANTED,
        )
        return {
            "PartitionKey": "client",
            "RowKey": record.tenant_id,
            "Name": record.name,
            "Record": record.model_dump_json(),
        }

    def state_entity(i: int) -> dict[str, Any]:
        """The real state machine: first seen OK a week ago; every 5th drifted since."""
        tenant = _tenant(i)
        state, _ = next_state(None, observe(ok, tenant), now - timedelta(days=7), day)
        if i % 5 == 1:
            state, _ = next_state(state, observe(blocked, tenant), now - 2 * day, day)
        document = {"client": state.to_dict(), "vendor_signature": ""}
        return {"PartitionKey": "client", "RowKey": tenant, "State": dumps(document)}

    service = TableServiceClient.from_connection_string(connection_string)
    for name in (TABLE_CLIENTS, TABLE_POSTURE, TABLE_ALERT_STATE):
        await service.create_table_if_not_exists(name)
    clients_table = service.get_table_client(TABLE_CLIENTS)
    posture_table = service.get_table_client(TABLE_POSTURE)
    state_table = service.get_table_client(TABLE_ALERT_STATE)
    for start in range(0, clients, 100):  # a transaction holds 100 rows of one partition
        batch = range(start, min(start + 100, clients))
        await clients_table.submit_transaction([("upsert", registry_entity(i)) for i in batch])
        await state_table.submit_transaction([("upsert", state_entity(i)) for i in batch])

    sizes = []
    for start in range(0, clients, 100):
        postures = []
        for i in range(start, min(start + 100, clients)):
            record = variants[i % len(variants)] | {
                "clientName": f"Client {i:05d} Holdings",
                "clientTenantId": _tenant(i),
            }
            sizes.append(len(dumps(record)))
            postures.append(("upsert", PostureStore.entity(_tenant(i), now, record)))
        await posture_table.submit_transaction(postures)
    for client in (clients_table, posture_table, state_table):
        await client.close()
    await service.close()
    return {"posture_bytes": sum(sizes)}


# ------------------------------------------------------------------------------- phases
class _Work:
    """The measured operations, sharing one warmed-up app (and runner for ``http``)."""

    def __init__(self) -> None:
        self.app: Any = None
        self.runner: Any = None
        self.settings: Any = None
        self.principal = ""

    async def __aenter__(self) -> _Work:
        from devtools.runner import LocalRunner
        from shared.adapters.portfolio_source import PortfolioSource
        from shared.bootstrap import get_app
        from shared.domain.principal import encode_client_principal
        from shared.domain.report import build_report
        from shared.entrypoints import http_api
        from shared.rendering.report import render_report_html
        from shared.services.delivery import render_settings

        self.app = await get_app()
        self.settings = render_settings(self.app)
        http_api.set_rate_limit(1_000_000, 60.0)
        self.runner = LocalRunner()
        self.principal = encode_client_principal(
            name="bench@osttra.com",
            object_id="5b8c2e1d-4f3a-4b6c-9d8e-7f1a2b3c4d5e",
            roles=("Report.Read",),
            tenant_id=VENDOR,
        )
        # Warm the code paths (imports, template compiled) on one small page.
        async for _ in PortfolioSource(self.app.tables, page_size=10).postures():
            break
        empty = build_report([], datetime.now(UTC), "OSTTRA")
        render_report_html(empty, self.settings)
        return self

    async def __aexit__(self, *exc: object) -> None:
        from shared.bootstrap import set_app

        await self.runner.close()
        await self.app.close()
        set_app(None)

    async def __call__(self, phase: str) -> dict[str, Any]:
        from shared.adapters.portfolio_source import PortfolioSource
        from shared.adapters.repositories import ClientRegistry, PostureStore
        from shared.rendering.report import render_report_bytes, report_json
        from shared.services.portfolio import portfolio_report

        if phase == "read":
            source, rows = PortfolioSource(self.app.tables), 0
            async for page in source.clients():
                rows += len(page)
            async for states in source.alert_states():
                rows += len(states)
            async for postures in source.postures():
                rows += len(postures)
            return {"rows": rows}
        if phase == "lists":
            kept = [
                await ClientRegistry(self.app.tables).list(),
                await PostureStore(self.app.tables).list(),
            ]
            return {"rows": sum(len(k) for k in kept)}
        if phase == "http":
            headers = {"X-MS-CLIENT-PRINCIPAL": self.principal, "Accept-Encoding": "gzip"}
            status, _, body = await self.runner.handle_http(
                "GET", "/api/v1/report", headers=headers
            )
            if status != 200:
                raise RuntimeError(f"GET /api/v1/report answered {status}")
            return {"bytes": len(body)}
        report = await portfolio_report(self.app, datetime.now(UTC))
        if phase == "html":
            return {"bytes": len(render_report_bytes(report, self.settings))}
        if phase == "json":
            body = json.dumps(report_json(report, self.settings), separators=(",", ":"))
            return {"bytes": len(body)}
        return {"rows": len(report.rows)}


async def _timings(repeats: int) -> dict[str, Any]:
    """Every phase in one process, interleaved (rotated each round), so a neighbour's
    load on a shared machine falls on all of them alike; best and median per phase."""
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    sizes: dict[str, Any] = {}
    async with _Work() as work:
        await work("read")  # untimed: the first full scan also warms Azurite's side
        for round_ in range(repeats):
            order = PHASES[round_ % len(PHASES) :] + PHASES[: round_ % len(PHASES)]
            for phase in order:
                t = time.perf_counter()
                sizes[phase] = await work(phase)
                times[phase].append(time.perf_counter() - t)
    return {
        p: sizes[p] | {"best_s": min(ts), "median_s": statistics.median(ts), "times_s": ts}
        for p, ts in times.items()
    }


async def _memory(phase: str) -> dict[str, Any]:
    """One run of one phase in a fresh process: growth of RSS over the warmed-up process."""
    from bench.common import RssSampler

    async with _Work() as work:
        with RssSampler() as memory:
            await work(phase)
    return {"start_mib": memory.start_mib, "growth_mib": memory.peak_mib - memory.start_mib}


def _child_main(phase: str, repeats: int, out: Path) -> None:
    quiet_logs()
    result = asyncio.run(_timings(repeats) if phase == "timing" else _memory(phase))
    out.write_text(json.dumps(result))


def _run_child(phase: str, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="xtap-bench-report-") as tmp:
        out = Path(tmp) / "result.json"
        command = [
            sys.executable,
            "-m",
            "bench.bench_report",
            "--phase",
            phase,
            "--repeats",
            str(repeats),
            "--out",
            str(out),
        ]
        subprocess.run(command, cwd=str(ROOT), check=True, timeout=PHASE_TIMEOUT_S)
        return dict(json.loads(out.read_text()))


# ------------------------------------------------------------------------------- parent
def run(clients: int = CLIENTS, repeats: int = REPEATS) -> list[Row]:
    from devtools.azurite import start_azurite

    quiet_logs()
    saved = {
        k: os.environ.get(k)
        for k in ("AzureWebJobsStorage", "XTAP_VENDOR_TENANT_ID", "XTAP_VENDOR_APP_IDS")
    }
    saved |= {k: os.environ.pop(k) for k in [k for k in os.environ if k.startswith("XTAP_")]}
    azurite = start_azurite()
    try:
        os.environ.update(
            {
                "AzureWebJobsStorage": azurite.connection_string,
                "XTAP_VENDOR_TENANT_ID": VENDOR,
                "XTAP_VENDOR_APP_IDS": VENDOR_APP,
            }
        )
        t = time.perf_counter()
        seeded = asyncio.run(_seed(clients, azurite.connection_string))
        print(
            f"[report] {clients} clients seeded in {time.perf_counter() - t:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        timing = _run_child("timing", repeats)
        best = ", ".join(f"{p} {timing[p]['best_s']:.2f} s" for p in PHASES)
        print(f"[report] best times: {best}", file=sys.stderr, flush=True)
        memory = {phase: _run_child(phase, 1) for phase in PHASES}
    finally:
        azurite.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    base = timing["read"]
    mb = 1024 * 1024
    posture_mib = seeded["posture_bytes"] / mb

    def timed(figure: str, phase: str, note: str = "") -> Row:
        return row(figure, timing[phase]["best_s"], "s", base["best_s"], note=note)

    def grown(figure: str, phase: str, note: str = "") -> Row:
        return row(
            figure, memory[phase]["growth_mib"], "MiB", memory["read"]["growth_mib"], note=note
        )

    return [
        row(
            f"read the rows alone: {clients:,} clients x 3 tables, paged, decoded (baseline)",
            base["best_s"],
            "s",
            note=f"{base['rows']:,} rows; stored posture JSON {posture_mib:.1f} MiB; best of "
            f"{repeats}, phases interleaved in one process",
        ),
        timed("report model: portfolio_report (lower is better)", "model"),
        timed(
            "report HTML: model + render (lower is better)",
            "html",
            note=f"page {timing['html']['bytes'] / mb:.1f} MiB (gzip on the wire)",
        ),
        timed(
            "report JSON: model + serialise (lower is better)",
            "json",
            note=f"body {timing['json']['bytes'] / mb:.1f} MiB",
        ),
        timed(
            "GET /api/v1/report through the HTTP trigger, HTML gzip (lower is better)",
            "http",
            note=f"{timing['http']['bytes'] / mb:.1f} MiB on the wire",
        ),
        timed("every row read into lists, no paging (for comparison)", "lists"),
        row(
            "memory growth reading the rows alone (baseline)",
            memory["read"]["growth_mib"],
            "MiB",
            note="each memory figure: one run in a fresh process, peak RSS over the warm start",
        ),
        grown("memory growth, report HTML (lower is better)", "html"),
        grown("memory growth, GET /api/v1/report (lower is better)", "http"),
        grown("memory growth, every row read into lists (what paging avoids)", "lists"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--phase", choices=(*PHASES, "timing"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        _child_main(args.phase, args.repeats, args.out)
        return 0
    print(format_table(run(args.clients, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
