"""A client's Microsoft cloud is remembered in its alert state (issue 16.3).

Each sweep here runs in a new app, as after a restart of the Functions host: what the
first one looked up must come from storage in the second, not from the login host again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID
from tests.e2e.demo_sweep import add_government_client, sweep_demo_registry

pytestmark = pytest.mark.e2e

DISCOVERY = "/v2.0/.well-known/openid-configuration"


async def _sweep(extra_clients: tuple[Any, ...] = ()) -> dict[str, dict[str, Any]]:
    postures, stats = await sweep_demo_registry(extra_clients)
    assert stats.failed_attempts == 0
    return postures


async def _states() -> dict[str, tuple[Any, str | None]]:
    from shared.adapters.repositories import alert_state_store
    from shared.bootstrap import build_app
    from shared.config import load_settings

    app = build_app(load_settings())
    try:
        rows, _ = await alert_state_store(app.tables).between("0", "g", 1000)
        return rows
    finally:
        await app.close()


async def _rewrite(changes: dict[str, Any]) -> None:
    """Replace (or with ``None`` remove) the ``cloud`` entry of these clients' states."""
    from shared.adapters.repositories import alert_state_store
    from shared.bootstrap import build_app
    from shared.config import load_settings

    app = build_app(load_settings())
    store = alert_state_store(app.tables)
    try:
        for tenant, entry in changes.items():
            document, etag = await store.get(tenant)
            document = {k: v for k, v in document.items() if k != "cloud"}
            if entry is not None:
                document["cloud"] = entry
            await store.put(tenant, document, etag)
    finally:
        await app.close()


def _lookups(demo_sim: Any) -> Counter[str]:
    return Counter(
        e["path"].split("/")[1]
        for e in demo_sim.control.requests()
        if e["path"].endswith(DISCOVERY)
    )


def test_a_restarted_process_takes_each_clients_cloud_from_its_alert_state(app_env, demo_sim):
    fourth_coffee = add_government_client(demo_sim)
    gov = fourth_coffee.tenant_id
    demo_sim.control.reset_counters()
    first = asyncio.run(_sweep((fourth_coffee,)))
    first_lookups = _lookups(demo_sim)
    clients = set(first) - {VENDOR_TENANT_ID}
    assert gov in clients and len(clients) >= 3
    # Every client once, the vendor once.
    assert set(first_lookups) == clients | {VENDOR_TENANT_ID}, first_lookups
    assert set(first_lookups.values()) == {1}
    states = asyncio.run(_states())
    assert states[gov][0]["cloud"]["name"] == "microsoftonline.us"
    assert {states[t][0]["cloud"]["name"] for t in clients - {gov}} == {"microsoftonline.com"}

    demo_sim.control.reset_counters()
    second = asyncio.run(_sweep((fourth_coffee,)))
    # The new process looks up only its own (the vendor's) cloud.
    assert _lookups(demo_sim) == Counter({VENDOR_TENANT_ID: 1})
    # The remembered cloud still drives the cross-cloud finding; the states are unchanged.
    assert "VENDOR_CROSS_CLOUD_NOT_ENABLED" in {
        f["code"] for f in second[gov]["vendorFindings"]
    }
    assert {t: s[0]["cloud"] for t, s in asyncio.run(_states()).items()} == {
        t: s[0]["cloud"] for t, s in states.items()
    }


def test_a_stale_unreadable_or_missing_cloud_entry_is_looked_up_again(app_env, demo_sim):
    asyncio.run(_sweep())
    states = asyncio.run(_states())
    stale, unreadable, missing, *kept = sorted(states)
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    asyncio.run(
        _rewrite(
            {
                stale: {"name": "microsoftonline.com", "checked_at": three_days_ago},
                unreadable: {"name": "microsoftonline.com", "checked_at": "yesterday"},
                missing: None,  # a state written before clouds were remembered
            }
        )
    )
    demo_sim.control.reset_counters()
    asyncio.run(_sweep())
    assert set(_lookups(demo_sim)) == {stale, unreadable, missing, VENDOR_TENANT_ID}
    after = asyncio.run(_states())
    for tenant in (stale, unreadable, missing):
        checked_at = datetime.fromisoformat(after[tenant][0]["cloud"]["checked_at"])
        assert datetime.now(UTC) - checked_at < timedelta(minutes=5), tenant
    assert kept and all(after[t][0]["cloud"] == states[t][0]["cloud"] for t in kept)
