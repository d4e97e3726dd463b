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


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Spy on the storage adapter's writes (ours, not the SDK's): kind and table per call,
    and the entities of each transaction."""
    from shared.adapters.storage import StorageTables

    writes: Counter[str] = Counter()
    originals = {n: getattr(StorageTables, n) for n in ("insert", "upsert", "replace_if_match")}
    together = StorageTables.write_together

    def counted(name: str) -> Any:
        async def call(self: Any, table: str, *args: Any, **kwargs: Any) -> Any:
            writes[f"{name}:{table}"] += 1
            return await originals[name](self, table, *args, **kwargs)

        return call

    async def counted_together(self: Any, table: str, operations: Any) -> Any:
        writes[f"together:{table}"] += 1
        writes[f"together-entities:{table}"] += len(operations)
        return await together(self, table, operations)

    for name in originals:
        monkeypatch.setattr(StorageTables, name, counted(name))
    monkeypatch.setattr(StorageTables, "write_together", counted_together)
    return writes


def _states_and_consents() -> tuple[dict[str, Any], dict[str, str]]:
    from shared.adapters.repositories import ClientRegistry, alert_state_store
    from shared.bootstrap import build_app
    from shared.config import load_settings

    async def read() -> tuple[dict[str, Any], dict[str, str]]:
        app = build_app(load_settings())
        try:
            states, _ = await alert_state_store(app.tables).between("0", "g", 100)
            records = await ClientRegistry(app.tables).list()
            return states, {r.tenant_id: r.consent.value for r in records}
        finally:
            await app.close()

    return asyncio.run(read())


def test_a_sweep_messages_postures_first_alert_states_and_consents_are_written_together(
    app_env, demo_sim, monkeypatch
):
    from shared.config import TABLE_ALERT_STATE, TABLE_CLIENTS, TABLE_POSTURE

    writes = _count_writes(monkeypatch)
    out = asyncio.run(_drain())  # the first sweep: every alert state created, consent found
    assert out["stats"].processed == 1 and out["stats"].failed_attempts == 0
    clients = set(out["postures"])
    assert len(clients) == 5
    # One transaction per table for the message's five clients, no write of its own.
    assert writes[f"together:{TABLE_ALERT_STATE}"] == 1
    assert writes[f"together-entities:{TABLE_ALERT_STATE}"] == 5
    assert writes[f"together:{TABLE_CLIENTS}"] == 1
    assert writes[f"together-entities:{TABLE_CLIENTS}"] == 5  # unknown -> granted / missing
    assert writes[f"insert:{TABLE_ALERT_STATE}"] == 0
    assert writes[f"upsert:{TABLE_CLIENTS}"] == 5, writes  # the test's own registration only
    assert writes[f"together:{TABLE_POSTURE}"] == 1
    assert writes[f"together-entities:{TABLE_POSTURE}"] == 5
    assert writes[f"upsert:{TABLE_POSTURE}"] == 0
    states, consents = _states_and_consents()
    assert set(states) == clients and all("client" in s[0] for s in states.values())
    assert {consents[t] for t in CONSENTED} == {"granted"}
    assert "unknown" not in consents.values(), consents

    writes.clear()
    asyncio.run(_drain())  # a steady sweep: nothing of either changed, nothing written
    # (The helper registers the clients afresh, consent unknown, so consents are found again.)
    assert writes[f"together:{TABLE_ALERT_STATE}"] == 0
    assert writes[f"insert:{TABLE_ALERT_STATE}"] == 0
    assert writes[f"replace_if_match:{TABLE_ALERT_STATE}"] == 0, writes
    # Every sweep writes each client's latest posture: one transaction for the message.
    assert writes[f"together:{TABLE_POSTURE}"] == 1
    assert writes[f"together-entities:{TABLE_POSTURE}"] == 5
    assert writes[f"upsert:{TABLE_POSTURE}"] == 0


def test_a_client_whose_state_moved_before_the_write_is_checked_again_the_rest_kept(
    app_env, demo_sim, monkeypatch
):
    """Another check of Contoso (a repeated message on another instance) writes its
    alert state between this message's reads and its writes: the transaction fails, the
    others' states are written one by one, Contoso's check runs again over the new state."""
    from shared.adapters.repositories import alert_state_store
    from shared.services import posture_sweep

    flush = posture_sweep.MessageWrites.flush
    rechecked: list[str] = []
    check_client = posture_sweep.check_client

    async def concurrent_write_first(self: Any, app: Any) -> Any:
        # What the other check wrote: the same first state, with a mark of its own.
        elsewhere = {**self.states[CONTOSO][0], "written_elsewhere": True}
        await alert_state_store(app.tables).put(CONTOSO, elsewhere, None)
        return await flush(self, app)

    async def spy_check(app: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("deferred") is None:
            rechecked.append(message.tenant_id)
        return await check_client(app, message, *args, **kwargs)

    monkeypatch.setattr(posture_sweep.MessageWrites, "flush", concurrent_write_first)
    monkeypatch.setattr(posture_sweep, "check_client", spy_check)
    out = asyncio.run(_drain(batch_of=CONSENTED))
    assert out["stats"].processed == 1 and out["stats"].failed_attempts == 0
    assert out["stats"].poisoned == 0
    assert rechecked == [CONTOSO]
    states, consents = _states_and_consents()
    assert set(states) == set(CONSENTED)
    assert all("client" in states[t][0] for t in CONSENTED)
    assert {consents[t] for t in CONSENTED} == {"granted"}
    for tenant in CONSENTED:
        assert out["postures"][tenant]["sweepId"] == "hand-made"


def test_a_client_whose_write_fails_otherwise_is_retried_alone(app_env, demo_sim, monkeypatch):
    from shared.adapters.repositories import ClientRegistry

    upsert_many = ClientRegistry.upsert_many

    async def fabrikam_fails(self: Any, records: Any) -> dict[str, Exception]:
        failures = await upsert_many(self, [r for r in records if r.tenant_id != FABRIKAM])
        return {**failures, FABRIKAM: RuntimeError("storage refused the write")}

    monkeypatch.setattr(ClientRegistry, "upsert_many", fabrikam_fails)
    out = asyncio.run(_drain(batch_of=CONSENTED))
    # The message, then Fabrikam's own (whose single check writes its consent itself).
    assert out["stats"].processed == 2 and out["stats"].failed_attempts == 0, out["stats"]
    _, consents = _states_and_consents()
    assert {consents[t] for t in CONSENTED} == {"granted"}
