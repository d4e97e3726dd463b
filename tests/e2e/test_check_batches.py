"""Several clients per sweep message (issue 16.3): retry and poison stay per client.

Through the local runner (the host's queue semantics: dequeue count, maxDequeueCount,
the poison queue), Azurite and the Graph simulator. A client whose check fails inside a
sweep message is re-enqueued on its own; the others of that message are checked once
and not again.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import load_demo_scenario, seed_registry

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
CONSENTED = (CONTOSO, FABRIKAM, NORTHWIND)
# Registered with a record this version cannot read: its check fails at every attempt.
BROKEN = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"


async def _drain(batch_of: tuple[str, ...] | None = None, corrupt: bool = False) -> dict[str, Any]:
    """A sweep (or one hand-made sweep message), drained; what landed where."""
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import CLIENT_PARTITION, PostureStore
    from shared.adapters.storage import poison_queue_name
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT, TABLE_CLIENTS
    from shared.domain.messages import CheckClient, CheckClientBatch

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    if corrupt:
        await app.tables.upsert(
            TABLE_CLIENTS,
            {"PartitionKey": CLIENT_PARTITION, "RowKey": BROKEN, "Name": "Broken Ltd",
             "Record": "{this is not a client record"},
        )
    runner = LocalRunner()
    started = datetime.now(UTC)
    try:
        if batch_of is None:
            await runner.fire_timer("sweep_timer")
        else:
            checks = [
                CheckClient(tenant_id=t, sweep_id="hand-made", requested_at=started)
                for t in batch_of
            ]
            await app.queues.send(QUEUE_CHECK_CLIENT, CheckClientBatch(checks=checks))
        stats = await runner.drain(["check_client"])
        poisoned = []
        while got := await app.queues.receive(poison_queue_name(QUEUE_CHECK_CLIENT), 32):
            for message in got:
                poisoned.append(json.loads(message.content))
                await app.queues.delete(poison_queue_name(QUEUE_CHECK_CLIENT), message)
        alerts = []
        while got := await app.queues.receive(QUEUE_ALERTS, 32):
            for message in got:
                alerts.append(json.loads(message.content))
                await app.queues.delete(QUEUE_ALERTS, message)
        postures = {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return {
        "stats": stats["check_client"],
        "poisoned": poisoned,
        "alerts": alerts,
        "postures": postures,
        "started": started,
    }


def _batch_reads(sim: Any) -> Counter[str | None]:
    """``$batch`` requests per client tenant (one per check of that client)."""
    return Counter(
        e.get("tenantId")
        for e in sim.control.requests()
        if e.get("batchItem") is None and e["path"].startswith("/v1.0/$batch")
    )


def test_a_client_failing_inside_a_sweep_message_is_retried_alone(app_env, demo_sim):
    # Fabrikam's Graph answers 500 to every request: transient, so its check is retried.
    demo_sim.control.reset_counters()
    demo_sim.control.add_fault(r"/v1\.0/\$batch", status=500, tenant_id=FABRIKAM)
    try:
        out = asyncio.run(_drain())
        reads = _batch_reads(demo_sim)
    finally:
        demo_sim.control.clear_faults()
    stats = out["stats"]
    # One sweep message for the five demo clients, then Fabrikam's own message: its four
    # failed attempts are the host's retries of that message alone, the fifth concludes.
    assert stats.processed == 2, stats
    assert stats.failed_attempts == 4 and stats.poisoned == 0, stats
    fabrikam = out["postures"][FABRIKAM]
    assert fabrikam["verdict"] == "UNKNOWN" and fabrikam["reason"] == "CLIENT_TENANT_UNREACHABLE"
    # The other consented clients were read once: the retries did not repeat them.
    assert reads[CONTOSO] == 1 and reads[NORTHWIND] == 1, reads
    assert reads[FABRIKAM] == 6, reads  # once in the sweep message, then 5 times alone
    assert out["postures"][CONTOSO]["verdict"] == "ALLOWED"


def test_a_client_that_can_never_be_checked_is_poisoned_alone(app_env, demo_sim):
    out = asyncio.run(_drain(batch_of=(*CONSENTED, BROKEN), corrupt=True))
    stats = out["stats"]
    # The sweep message succeeded; Broken's own message failed maxDequeueCount times.
    assert stats.processed == 1 and stats.failed_attempts == 5 and stats.poisoned == 1, stats
    # Exactly one message in the poison queue, and it is Broken's alone.
    assert [(m["type"], m["tenant_id"]) for m in out["poisoned"]] == [("check_client", BROKEN)]
    for tenant in CONSENTED:
        assert out["postures"][tenant]["sweepId"] == "hand-made", tenant
    assert BROKEN not in out["postures"]
    # The admins are told the check queue is poisoning (one alert for the hour).
    poison_alerts = [a for a in out["alerts"] if a["kind"] == "poison_message"]
    assert len(poison_alerts) == 1, out["alerts"]
    assert poison_alerts[0]["facts"]["Queue"] == "xtap-check-client"


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Spy on the storage adapter's reads (ours, not the SDK's): table name per call."""
    from shared.adapters.storage import StorageTables

    reads: Counter[str] = Counter()
    get, between = StorageTables.get, StorageTables.rows_between

    async def counted_get(self: Any, table: str, *args: Any, **kwargs: Any) -> Any:
        reads[f"get:{table}"] += 1
        return await get(self, table, *args, **kwargs)

    async def counted_between(self: Any, table: str, *args: Any, **kwargs: Any) -> Any:
        reads[f"range:{table}"] += 1
        return await between(self, table, *args, **kwargs)

    monkeypatch.setattr(StorageTables, "get", counted_get)
    monkeypatch.setattr(StorageTables, "rows_between", counted_between)
    return reads


def test_a_sweep_message_reads_its_clients_records_and_states_in_two_range_reads(
    app_env, demo_sim, monkeypatch
):
    from shared.config import TABLE_ALERT_STATE, TABLE_CLIENTS

    reads = _count_reads(monkeypatch)
    asyncio.run(_drain())  # a first sweep: the alert states are created
    reads.clear()
    out = asyncio.run(_drain())  # the next one: one message for the five demo clients
    assert out["stats"].processed == 1 and len(out["postures"]) == 5
    assert reads[f"range:{TABLE_CLIENTS}"] == 1 and reads[f"range:{TABLE_ALERT_STATE}"] == 1
    # No client's record or alert state was read on its own.
    assert reads[f"get:{TABLE_CLIENTS}"] == 0 and reads[f"get:{TABLE_ALERT_STATE}"] == 0, reads


def test_clients_a_cut_short_range_read_does_not_vouch_for_are_read_alone(
    app_env, demo_sim, monkeypatch
):
    """Hand-made: Contoso and Northwind, with twelve other registered clients sorting
    between them, so the message's range holds more rows than its read takes (2 x 2)."""
    from shared.adapters.repositories import ClientRegistry
    from shared.bootstrap import get_app, set_app
    from shared.config import TABLE_CLIENTS
    from shared.domain.clients import ClientRecord

    async def register_between() -> None:
        set_app(None)
        app = await get_app()
        try:
            for i in range(12):  # 1a2b… < 2000…-… < 3c4d…
                await ClientRegistry(app.tables).upsert(ClientRecord(
                    tenant_id=f"2{i:07x}-0000-4000-8000-000000000000",
                    name=f"Between {i}", domains=(f"between{i}.example",)))
        finally:
            await app.close()
            set_app(None)

    asyncio.run(register_between())
    reads = _count_reads(monkeypatch)
    out = asyncio.run(_drain(batch_of=(CONTOSO, NORTHWIND)))
    assert out["stats"].processed == 1 and out["stats"].failed_attempts == 0
    for tenant in (CONTOSO, NORTHWIND):
        assert out["postures"][tenant]["sweepId"] == "hand-made"
    # The range read stopped at 4 rows (Contoso and three between): Northwind's record
    # was read on its own, Contoso's came with the range.
    assert reads[f"range:{TABLE_CLIENTS}"] == 1
    assert reads[f"get:{TABLE_CLIENTS}"] == 1, reads
