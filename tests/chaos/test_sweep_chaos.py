"""A posture sweep through throttling, server errors and dropped connections.

150 generated clients; 15 healthy ones are flipped to "outbound blocked" first. During the
sweep the simulator answers the client-tenant policy reads (the ``$batch`` of default +
partner, and the single GETs the app falls back to) with 20 % 429 + ``Retry-After: 1``,
5 % 5xx (500 and 503) and 2 % dropped connections. The sweep must still evaluate every
client (a fresh posture row each, nothing poisoned, no false UNKNOWN) and put exactly one
``client_drifted`` alert per flipped client in the outbox, and nothing else.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from tests.chaos.harness import (
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    app_and_runner,
    by_key,
    generated_clients,
    seed,
    take_all,
    tenant_of,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

GENERATED_CLIENTS = 150
FLIPPED = 15
# What the app reads from a client tenant: the $batch, and the default / the partner entry
# for the vendor when it re-reads one on its own. The vendor's own partner reads
# (partners/{client}) do not match.
CLIENT_POLICY_READS = (
    r"^/v1\.0/(\$batch|policies/crossTenantAccessPolicy/"
    rf"(default|partners/{VENDOR_TENANT_ID}))"
)
SHARE_429, SHARE_500, SHARE_503, SHARE_DROP = 0.20, 0.025, 0.025, 0.02


def _add_faults(control: Any) -> None:
    """Rules are tried in order and the first that fires answers, so each probability is
    conditional on the earlier rules not firing; these give 20 / 2.5 / 2.5 / 2 % overall.
    One of each fires first of all, so every kind of failure certainly happens."""
    control.set_seed(20261123)
    control.add_fault(CLIENT_POLICY_READS, status=500, count=1)
    control.add_fault(CLIENT_POLICY_READS, drop=True, count=1)
    control.add_fault(CLIENT_POLICY_READS, status=503, retry_after=1, count=1)
    remaining = 1.0
    for share, spec in (
        (SHARE_429, {"status": 429, "retry_after": 1}),
        (SHARE_500, {"status": 500}),
        (SHARE_503, {"status": 503, "retry_after": 1}),
        (SHARE_DROP, {"drop": True}),
    ):
        control.add_fault(CLIENT_POLICY_READS, probability=share / remaining, **spec)
        remaining -= share


async def _sweep(count: int, *, seed_first: bool) -> dict[str, Any]:
    from shared.adapters.repositories import PostureStore
    from shared.adapters.storage import poison_queue_name
    from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT

    async with app_and_runner() as (app, runner):
        if seed_first:
            await seed(app, count)
        await runner.fire_timer("sweep_timer")
        stats = await runner.drain(["check_client"])
        return {
            "stats": stats["check_client"],
            "postures": {p["tenantId"]: p for p in await PostureStore(app.tables).list()},
            "alerts": await take_all(app, QUEUE_ALERTS),
            "left": await app.queues.approximate_count(QUEUE_CHECK_CLIENT),
            "poisoned": await app.queues.approximate_count(poison_queue_name(QUEUE_CHECK_CLIENT)),
        }


def test_sweep_under_429_5xx_and_drops_evaluates_everyone_and_alerts_each_drift_once(
    chaos_env, generated_sim
):
    control = generated_sim.control
    clients = generated_clients(GENERATED_CLIENTS)
    first = asyncio.run(_sweep(GENERATED_CLIENTS, seed_first=True))
    assert len(first["postures"]) == GENERATED_CLIENTS  # the baseline states are in place
    first_sweep_ids = {p["sweepId"] for p in first["postures"].values()}

    flipped = [c for c in clients if c.kind == "allowed"][:FLIPPED]
    for client in flipped:
        control.set_partner_policy(client.tenant_id, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
    control.reset_counters()
    _add_faults(control)
    try:
        chaos = asyncio.run(_sweep(GENERATED_CLIENTS, seed_first=False))
        fired = control.stats()
    finally:
        control.clear_faults()

    # The failures really happened, each kind of them.
    notes = Counter((r.get("note"), r.get("status")) for r in control.requests())
    assert notes[("injected", 429)] >= 10, notes
    assert notes[("injected", 500)] >= 1 and notes[("injected", 503)] >= 1, notes
    assert fired["dropped"] >= 1, fired

    # 100 % evaluated: every client has a posture row from this sweep, nothing poisoned.
    postures = chaos["postures"]
    assert len(postures) == GENERATED_CLIENTS
    sweep_ids = {p["sweepId"] for p in postures.values()}
    assert len(sweep_ids) == 1 and sweep_ids.isdisjoint(first_sweep_ids), sweep_ids
    assert chaos["stats"].poisoned == 0 and chaos["poisoned"] == 0 and chaos["left"] == 0
    # 16 clients to a sweep message, plus a message of its own for each client whose check
    # failed inside one (retried alone): at least the sweep's 10 messages were done.
    assert -(-GENERATED_CLIENTS // 16) <= chaos["stats"].processed <= 10 + GENERATED_CLIENTS

    # ...and evaluated right: no transient failure turned into a false UNKNOWN.
    flipped_ids = {c.tenant_id for c in flipped}
    expected = {"allowed": "ALLOWED", "limited": "LIMITED", "blocked": "BLOCKED"}
    for client in clients:
        verdict = postures[client.tenant_id]["verdict"]
        if client.tenant_id in flipped_ids:
            assert verdict == "BLOCKED", client
        elif client.kind == "unconsented":
            assert verdict == "UNKNOWN", client
            assert postures[client.tenant_id]["reason"] == "CLIENT_CONSENT_MISSING"
        else:
            assert verdict == expected[client.kind], (client, postures[client.tenant_id])

    # Exactly one drift alert per flipped client, after de-duplication; nothing else.
    groups = by_key(chaos["alerts"])
    drifted = {
        key: alerts for key, alerts in groups.items() if alerts[0]["kind"] == "client_drifted"
    }
    assert sorted(tenant_of(a[0]) for a in drifted.values()) == sorted(flipped_ids)
    assert set(groups) == set(drifted), {k: g[0]["kind"] for k, g in groups.items()}
    for key, copies in groups.items():  # a repeat is only ever the same alert again
        assert {c["dedup_key"] for c in copies} == {key}
        assert len({tenant_of(c) for c in copies}) == 1
