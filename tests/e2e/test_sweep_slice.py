"""First end-to-end slice: sweep timer → check-client queue → posture table, via the runner."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devtools.local_env import load_demo_scenario, seed_registry

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
TAILSPIN = "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"
WOODGROVE = "5e6f7a8b-9c0d-4e1f-8a3b-4c5d6e7f8091"


async def _sweep_once() -> dict[str, Any]:
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import PostureStore
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_CHECK_CLIENT

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        await runner.fire_timer("sweep_timer")
        stats = await runner.drain(["check_client"])
        postures = {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
        remaining = await app.queues.approximate_count(QUEUE_CHECK_CLIENT)
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return {"postures": postures, "stats": stats, "remaining": remaining}


def test_sweep_reads_each_client_policy_through_graph_and_stores_verdicts(app_env, demo_sim):
    demo_sim.control.reset_counters()
    result = asyncio.run(_sweep_once())
    postures = result["postures"]
    assert result["remaining"] == 0
    # The five clients travel in one sweep message (XTAP_CHECKS_PER_MESSAGE, 16 by default).
    assert result["stats"]["check_client"].processed == 1
    assert set(postures) == {CONTOSO, FABRIKAM, NORTHWIND, TAILSPIN, WOODGROVE}
    assert postures[CONTOSO]["verdict"] == "ALLOWED"
    assert postures[FABRIKAM]["verdict"] == "LIMITED"
    assert postures[NORTHWIND]["verdict"] == "ALLOWED"
    # Tailspin never consented, Woodgrove revoked: unknown, never a false "blocked".
    assert postures[TAILSPIN]["verdict"] == "UNKNOWN"
    assert postures[WOODGROVE]["verdict"] == "UNKNOWN"
    assert postures[TAILSPIN]["reason"] == "CLIENT_CONSENT_MISSING"
    # The policy really came over HTTP from each consented client tenant.
    reads = demo_sim.control.requests(path_contains="crossTenantAccessPolicy")
    tenants = {r.get("tenantId") for r in reads}
    assert {CONTOSO, FABRIKAM, NORTHWIND} <= tenants
