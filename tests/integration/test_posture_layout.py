"""The posture table's layout against Azurite: one partition keyed by tenant, and the rows
of the former layout (a partition per tenant, RowKey ``latest``) still read for a client
not checked since the upgrade, shadowed once it is, removed with the client, and purged by
retention once a week old.

The former rows are written the way the previous version wrote them (a plain upsert of its
entity), so the test reads what an upgraded deployment holds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.config import TABLE_POSTURE
from tests.integration.app_helpers import storage_only_settings, with_app_of

pytestmark = pytest.mark.integration

OLD = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # checked only by the former version
BOTH = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"  # checked by both versions
NEW = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"  # registered after the upgrade
EARLIER = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def settings(azurite: Any) -> Any:
    return storage_only_settings(azurite.connection_string)


def _result(tenant: str, verdict: str) -> dict[str, Any]:
    return {"verdict": verdict, "clientTenantId": tenant, "codes": []}


def _former_row(tenant: str, verdict: str) -> dict[str, Any]:
    """The entity the version before this layout wrote."""
    from shared.adapters.storage import dumps

    return {
        "PartitionKey": tenant,
        "RowKey": "latest",
        "Verdict": verdict,
        "CheckedAt": EARLIER,
        "Result": dumps(_result(tenant, verdict)),
    }


async def _upgraded(app: Any) -> Any:
    """Two clients checked by the former version; then one of them and a new one checked by
    this one, a sweep message's postures written together."""
    from shared.adapters.repositories import PostureStore

    for tenant in (OLD, BOTH):
        await app.tables.upsert(TABLE_POSTURE, _former_row(tenant, "BLOCKED"))
    store = PostureStore(app.tables)
    failed = await store.save_many(
        {
            BOTH: store.entity(BOTH, LATER, _result(BOTH, "ALLOWED")),
            NEW: store.entity(NEW, LATER, _result(NEW, "LIMITED")),
        }
    )
    assert failed == {}
    return store


def test_a_former_row_is_read_until_the_client_is_checked_again(settings):
    async def use(app: Any) -> dict[str, Any]:
        store = await _upgraded(app)
        rows = [row async for page in store.rows(["Verdict", "CheckedAt"]) for row in page]
        return {
            "get": {t: await store.get(t) for t in (OLD, BOTH, NEW)},
            "rows": {r["Tenant"]: (r["Verdict"], r["CheckedAt"]) for r in rows},
            "count": len(rows),
            "list": {p["tenantId"]: p["verdict"] for p in await store.list()},
            "keys": {
                (r["PartitionKey"], r["RowKey"])
                for r in await app.tables.query(TABLE_POSTURE, select=["PartitionKey", "RowKey"])
            },
        }

    out = asyncio.run(with_app_of(settings, use))
    # New rows share one partition, keyed by tenant.
    assert ("client", BOTH) in out["keys"] and ("client", NEW) in out["keys"]
    # The former row answers for the client not checked since; the new one shadows it.
    assert out["get"][OLD]["verdict"] == "BLOCKED"
    assert out["get"][OLD]["checkedAt"] == EARLIER.isoformat()
    assert out["get"][BOTH]["verdict"] == "ALLOWED"
    assert out["get"][NEW]["verdict"] == "LIMITED"
    assert out["rows"] == {
        OLD: ("BLOCKED", EARLIER),
        BOTH: ("ALLOWED", LATER),
        NEW: ("LIMITED", LATER),
    }
    assert out["count"] == 3  # BOTH once, not once per layout
    assert out["list"] == {OLD: "BLOCKED", BOTH: "ALLOWED", NEW: "LIMITED"}


def test_removing_a_client_deletes_its_rows_of_both_layouts(settings):
    async def use(app: Any) -> tuple[Any, Any, set[tuple[str, str]]]:
        store = await _upgraded(app)
        await store.delete(BOTH)
        await store.delete(NEW)
        await store.delete("4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a")  # never had a row
        keys = {
            (r["PartitionKey"], r["RowKey"])
            for r in await app.tables.query(TABLE_POSTURE, select=["PartitionKey", "RowKey"])
        }
        return await store.get(BOTH), await store.get(NEW), keys

    both, new, keys = asyncio.run(with_app_of(settings, use))
    assert both is None and new is None
    assert keys == {(OLD, "latest")}


def test_retention_purges_former_rows_a_week_old_and_never_a_new_one(settings):
    from shared.services.retention import LEGACY_POSTURE_KEPT, purge_expired

    async def use(app: Any) -> dict[str, Any]:
        store = await _upgraded(app)
        await asyncio.sleep(1.1)  # every row so far is older than the boundary
        boundary = datetime.now(UTC)
        # Six days on, nothing of the former layout goes; eight days on, all of it.
        soon = await purge_expired(app, boundary + LEGACY_POSTURE_KEPT - timedelta(days=1))
        kept = {p["tenantId"] for p in await store.list()}
        later = await purge_expired(app, boundary + LEGACY_POSTURE_KEPT + timedelta(days=1))
        keys = {
            (r["PartitionKey"], r["RowKey"])
            for r in await app.tables.query(TABLE_POSTURE, select=["PartitionKey", "RowKey"])
        }
        return {
            "soon": soon.by_table()[TABLE_POSTURE].deleted,
            "kept": kept,
            "later": later.by_table()[TABLE_POSTURE].deleted,
            "keys": keys,
        }

    out = asyncio.run(with_app_of(settings, use))
    assert out["soon"] == 0 and out["kept"] == {OLD, BOTH, NEW}
    assert out["later"] == 2
    assert out["keys"] == {("client", BOTH), ("client", NEW)}
