"""Registering a client looks its Microsoft cloud up, so the first sweep after registering
thousands of clients at once need not (issue 16.3)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, scenario_clients
from tests.e2e.demo_sweep import add_government_client

pytestmark = pytest.mark.e2e

DISCOVERY = "/v2.0/.well-known/openid-configuration"


def _lookups(demo_sim: Any) -> Counter[str]:
    return Counter(
        e["path"].split("/")[1]
        for e in demo_sim.control.requests()
        if e["path"].endswith(DISCOVERY)
    )


def _demo_records(*extra: Any) -> list[dict[str, Any]]:
    records = [
        {"tenantId": c.tenant_id, "name": c.name, "domains": list(c.domains)}
        for c in scenario_clients(load_demo_scenario())
    ]
    return records + [r.model_dump(mode="json", by_alias=True) for r in extra]


async def _import(records: list[dict[str, Any]]) -> dict[str, Any]:
    """``clients import`` in its own app; the registry afterwards."""
    from shared.adapters.repositories import ClientRegistry
    from shared.bootstrap import build_app
    from shared.config import load_settings
    from shared.services.clients import import_clients

    app = build_app(load_settings())
    await app.ensure_storage()
    try:
        assert await import_clients(app, records, now=datetime.now(UTC)) == len(records)
        return {r.tenant_id: r for r in await ClientRegistry(app.tables).list()}
    finally:
        await app.close()


async def _sweep() -> dict[str, dict[str, Any]]:
    """One sweep of the registry as it is, in a new app (a Functions host)."""
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import PostureStore
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    runner = LocalRunner()
    try:
        await runner.fire_timer("sweep_timer")
        stats = await runner.drain(["check_client"])
        assert stats["check_client"].failed_attempts == 0
        return {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def _codes(posture: dict[str, Any]) -> set[str]:
    return {f["code"] for f in posture["vendorFindings"]}


def test_an_import_looks_each_cloud_up_and_the_first_sweep_asks_only_for_the_vendors(
    app_env, demo_sim
):
    fourth_coffee = add_government_client(demo_sim)
    records = _demo_records(fourth_coffee)
    demo_sim.control.reset_counters()
    registry = asyncio.run(_import(records))
    clients = {r["tenantId"] for r in records}
    assert set(registry) == clients and len(clients) >= 4
    assert set(_lookups(demo_sim)) == clients and set(_lookups(demo_sim).values()) == {1}
    clouds = {t: r.cloud.name for t, r in registry.items() if r.cloud is not None}
    assert clouds == {
        t: "microsoftonline.us" if t == fourth_coffee.tenant_id else "microsoftonline.com"
        for t in clients
    }

    demo_sim.control.reset_counters()
    postures = asyncio.run(_sweep())
    # The sweep right after the import looks up only its own (the vendor's) cloud ...
    assert _lookups(demo_sim) == Counter({VENDOR_TENANT_ID: 1})
    # ... and the registered cloud still drives the cross-cloud finding.
    assert "VENDOR_CROSS_CLOUD_NOT_ENABLED" in _codes(postures[fourth_coffee.tenant_id])
    assert not any(
        "VENDOR_CROSS_CLOUD_NOT_ENABLED" in _codes(postures[t])
        for t in clients - {fourth_coffee.tenant_id}
    )


def test_a_fresh_cloud_in_the_file_is_kept_a_stale_one_looked_up_again(app_env, demo_sim):
    records = _demo_records()
    fresh, stale, *_ = records
    now = datetime.now(UTC)
    fresh["cloud"] = {"name": "microsoftonline.com", "checkedAt": now.isoformat()}
    stale["cloud"] = {
        "name": "microsoftonline.com",
        "checkedAt": (now - timedelta(days=3)).isoformat(),
    }
    demo_sim.control.reset_counters()
    registry = asyncio.run(_import(records))
    looked_up = _lookups(demo_sim)
    assert fresh["tenantId"] not in looked_up
    assert set(looked_up) == {r["tenantId"] for r in records} - {fresh["tenantId"]}
    assert registry[stale["tenantId"]].cloud.checked_at > now - timedelta(minutes=5)


def test_with_the_login_host_failing_the_import_completes_and_the_sweep_looks_up(
    app_env, demo_sim
):
    from shared.services.clients import CLOUD_LOOKUP_FAILURES_BEFORE_STOP, IMPORT_CONCURRENCY

    # More clients than the lookups it may still ask once it stops: else it proves nothing.
    government = [add_government_client(demo_sim) for _ in range(20)]
    fourth_coffee = government[0]
    records = _demo_records(*government)
    assert len(records) > CLOUD_LOOKUP_FAILURES_BEFORE_STOP + IMPORT_CONCURRENCY
    demo_sim.control.add_fault(r"/\.well-known/openid-configuration", status=503)
    demo_sim.control.reset_counters()
    registry = asyncio.run(_import(records))
    assert set(registry) == {r["tenantId"] for r in records}
    assert all(r.cloud is None for r in registry.values())
    # It stopped asking after a few failures in a row (those in flight then still answer).
    asked = sum(_lookups(demo_sim).values())
    assert CLOUD_LOOKUP_FAILURES_BEFORE_STOP <= asked
    assert asked <= CLOUD_LOOKUP_FAILURES_BEFORE_STOP + IMPORT_CONCURRENCY - 1

    demo_sim.control.clear_faults()
    demo_sim.control.reset_counters()
    postures = asyncio.run(_sweep())
    assert set(_lookups(demo_sim)) == set(registry) | {VENDOR_TENANT_ID}
    assert "VENDOR_CROSS_CLOUD_NOT_ENABLED" in _codes(postures[fourth_coffee.tenant_id])
