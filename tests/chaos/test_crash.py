"""Crash safety with real process kills: the audit scan and the posture sweep are each
SIGKILLed 20 times at random moments and restarted, against the same Azurite and Graph
simulator.

The kills must land while the worker is still in its first round, the one that meets
the new changes (the worker prints ``cycle 1`` once that round is complete): a test
whose kills all fell after the work would prove nothing. A kill that comes after the
round is not counted, and the kill window shrinks to the round's observed length, so 20
kills land mid-work whatever the machine's load; more than twice as many attempts fail
the test.

The promise under test (DESIGN §3.6): an alert is enqueued before the cursor or state that
produced it moves, so a crash may repeat an alert — always under the same de-duplication
key, which delivery posts once — but never loses one. After the kills and one clean run:

* audit: the outbox's de-duplication keys are exactly the keys of the changes made
  (``audit:{event id}:{index}``), the cursor has passed the last change, and a further
  scan is quiet;
* sweep: exactly one ``client_drifted`` key per flipped client and no other alert; every
  client has a state row and a posture row; no message is left in the queue (the ones a
  killed worker had received come back after their visibility timeout and are processed)
  and none is poisoned.

The digest threshold is raised for the audit test: a scan that meets more changes than the
threshold sends one digest whose key is derived from its members, so a scan repeated after
a crash *with more events* would send a second digest under another key. That path is
outside what this test pins down (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import random
import select
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import (
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    app_and_runner,
    by_key,
    generated_clients,
    inbound,
    seed,
    take_all,
    tenant_of,
)

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[2]
GENERATED_CLIENTS = 40
KILLS = 20
READY_TIMEOUT_S = 60.0


# ------------------------------------------------------------------ worker processes
class Worker:
    """One ``tests.chaos.crash_worker`` process and what it has printed so far."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.crash_worker", *args],
            cwd=str(ROOT),
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self.output = b""

    def wait_for(self, line: str, timeout: float = READY_TIMEOUT_S) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while f"{line}\n".encode() not in self.output:
            if time.monotonic() > deadline or (
                self.process.poll() is not None and not select.select([stdout], [], [], 0)[0]
            ):
                self.process.kill()
                raise AssertionError(
                    f"worker never said {line!r} (exit {self.process.poll()}): {self.output!r}"
                )
            if select.select([stdout], [], [], 0.1)[0]:
                self.output += os.read(stdout.fileno(), 1024)

    def kill_after(self, delay: float) -> tuple[bool, float | None]:
        """SIGKILL (no handler, no cleanup: the process just stops) after ``delay`` s.

        Returns whether the kill interrupted work in flight - the worker had not finished
        its first round (it prints ``cycle 1`` when it has; all it printed before dying is
        still in the pipe) - and, if it had, how long that round took.
        """
        stdout = self.process.stdout
        assert stdout is not None
        started = time.monotonic()
        first_round: float | None = None
        while (left := started + delay - time.monotonic()) > 0:
            if select.select([stdout], [], [], min(left, 0.05))[0]:
                chunk = os.read(stdout.fileno(), 1024)
                self.output += chunk
                if first_round is None and b"cycle 1\n" in self.output:
                    first_round = time.monotonic() - started
                if not chunk:
                    break
        self.process.kill()
        self.process.wait(timeout=30)
        self.output += stdout.read()
        self.close()
        return b"cycle 1\n" not in self.output, first_round

    def close(self) -> int:
        code = self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def kill_mid_work(
    start: Any, window: float, rng: random.Random, max_attempts: int = 2 * KILLS - 1
) -> tuple[int, int]:
    """SIGKILL ``KILLS`` workers while they are in their first round of work.

    ``start()`` prepares the next round (a new change) and returns a ready worker. The
    kill falls uniformly over ``window`` seconds from "ready"; when a round turns out to
    be shorter than the window (the machine is less loaded than when the span was
    measured), the window shrinks to it, so the kills keep landing inside the work
    whatever the machine's speed. Returns (kills that interrupted work, attempts).
    """
    interrupted = attempts = 0
    while interrupted < KILLS and attempts < max_attempts:
        worker = start()
        landed, first_round = worker.kill_after(rng.uniform(0.0, window))
        attempts += 1
        interrupted += landed
        if first_round is not None:
            window = min(window, 0.9 * first_round)
    return interrupted, attempts


def _run_to_completion(*args: str, timeout: float = 180.0) -> float:
    """Run a worker that finishes on its own; seconds from "ready" to "done"."""
    worker = Worker(*args)
    worker.wait_for("ready")
    started = time.monotonic()
    worker.wait_for("done", timeout)
    span = time.monotonic() - started
    assert worker.close() == 0
    return span


# ------------------------------------------------------------------ audit scan
async def _prepare_audit() -> None:
    from shared.config import QUEUE_ALERTS

    async with app_and_runner() as (app, runner):
        await seed(app, GENERATED_CLIENTS)
        await runner.fire_timer("audit_timer")  # the scenario's own history: not ours
        await take_all(app, QUEUE_ALERTS)


async def _audit_outcome() -> dict[str, Any]:
    from shared.adapters.repositories import cursor_store
    from shared.config import QUEUE_ALERTS, TABLE_SEEN_EVENTS
    from shared.services.audit_scan import CURSOR_KEY

    async with app_and_runner() as (app, _runner):
        cursor, _etag = await cursor_store(app.tables).get(CURSOR_KEY)
        seen = await app.tables.query(TABLE_SEEN_EVENTS, select=["RowKey"])
        return {
            "alerts": await take_all(app, QUEUE_ALERTS),
            "left": await app.queues.approximate_count(QUEUE_ALERTS),
            "cursor": cursor,
            "seen": {r["RowKey"] for r in seen},
        }


def _expected_audit_keys(events: list[dict[str, Any]]) -> set[str]:
    from shared.domain.audit import decode_audit_records
    from shared.domain.audit_severity import dedup_key

    return {dedup_key(item) for item in decode_audit_records(events).items}


def test_audit_scan_killed_20_times_alerts_every_change_exactly_once(
    chaos_env, generated_sim, monkeypatch
):
    monkeypatch.setenv("XTAP_DIGEST_THRESHOLD", "1000")
    control = generated_sim.control
    clients = generated_clients(GENERATED_CLIENTS)[:10]
    asyncio.run(_prepare_audit())
    control.set_latency(25)  # each step of a scan takes a little while: kills land inside
    events: list[dict[str, Any]] = []
    changed = 0

    def change_two() -> None:  # two vendor-side changes per round, to different clients
        nonlocal changed
        for _ in range(2):
            client = clients[changed % len(clients)]
            access = "blocked" if (changed // len(clients)) % 2 == 0 else "allowed"
            events.append(
                control.set_partner_policy(
                    VENDOR_TENANT_ID, client.tenant_id, inbound(access), actor="admin@osttra.com"
                )
            )
            changed += 1

    try:
        # How long a scan that meets two changes takes, ready to done: the kills below
        # fall uniformly over that span, from the first read to past the cursor write.
        change_two()
        span = _run_to_completion("audit-once")
        def start() -> Worker:
            change_two()
            worker = Worker("audit")
            worker.wait_for("ready")
            return worker

        interrupted, attempts = kill_mid_work(start, 1.2 * span, random.Random(20261123))
    finally:
        control.set_latency(0)
    # The test means something only if the kills landed inside scans that had work to do.
    print(f"audit: {interrupted} of {attempts} kills landed mid-scan")
    assert interrupted == KILLS, (interrupted, attempts)
    _run_to_completion("audit-once")
    outcome = asyncio.run(_audit_outcome())
    _run_to_completion("audit-once")
    again = asyncio.run(_audit_outcome())

    expected = _expected_audit_keys(events)
    assert len(expected) >= 2 * (KILLS + 1)  # every change decodes to at least one alert
    groups = by_key(outcome["alerts"])
    assert set(groups) == expected, {
        "missing": sorted(expected - set(groups)),
        "unexpected": sorted(set(groups) - expected),
    }
    for key, copies in groups.items():  # repeats (crash before the cursor) share the key
        assert {c["kind"] for c in copies} == {"vendor_setting_changed"}, key
        assert {c["dedup_key"] for c in copies} == {key}
    assert outcome["left"] == 0
    # The cursor passed the last change, and every change is remembered as seen...
    last_change = max(
        datetime.fromisoformat(e["activityDateTime"].replace("Z", "+00:00")) for e in events
    )
    assert datetime.fromisoformat(outcome["cursor"]["scanned_to"]) >= last_change
    assert {e["id"] for e in events} <= outcome["seen"]
    # ...so the next scan is quiet.
    assert again["alerts"] == []


# ------------------------------------------------------------------ posture sweep
async def _prepare_sweep() -> None:
    from shared.config import QUEUE_ALERTS

    async with app_and_runner() as (app, runner):
        await seed(app, GENERATED_CLIENTS)
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        await take_all(app, QUEUE_ALERTS)  # first-look alerts of the scenario: not ours


async def _sweep_outcome() -> dict[str, Any]:
    from shared.adapters.repositories import PostureStore, alert_state_store
    from shared.adapters.storage import poison_queue_name
    from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT

    async with app_and_runner() as (app, _runner):
        states = alert_state_store(app.tables)
        clients = generated_clients(GENERATED_CLIENTS)
        state_rows = {c.tenant_id: (await states.get(c.tenant_id))[0] for c in clients}
        return {
            "alerts": await take_all(app, QUEUE_ALERTS),
            "postures": {p["tenantId"]: p for p in await PostureStore(app.tables).list()},
            "states": state_rows,
            "left": await app.queues.approximate_count(QUEUE_CHECK_CLIENT),
            "poisoned": await app.queues.approximate_count(poison_queue_name(QUEUE_CHECK_CLIENT)),
        }


def test_posture_sweep_killed_20_times_alerts_every_drift_exactly_once(chaos_env, generated_sim):
    control = generated_sim.control
    clients = generated_clients(GENERATED_CLIENTS)
    asyncio.run(_prepare_sweep())
    allowed = [c for c in clients if c.kind == "allowed"]
    assert len(allowed) > KILLS
    flipped = allowed[:1]
    control.set_latency(20)
    try:
        # How long one sweep round takes (fan-out + drain) with a client drifting: the kills
        # below fall uniformly over that span and a little past it.
        control.set_partner_policy(flipped[0].tenant_id, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
        span = _run_to_completion("sweep-once")
        drifting = iter(allowed[1:])

        def start() -> Worker:
            client = next(drifting)  # one more client drifts before each crash
            flipped.append(client)
            control.set_partner_policy(client.tenant_id, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
            worker = Worker("sweep")
            worker.wait_for("ready")
            return worker

        interrupted, attempts = kill_mid_work(
            start, 1.3 * span, random.Random(1123), max_attempts=len(allowed) - 1
        )
    finally:
        control.set_latency(0)
    print(f"sweep: {interrupted} of {attempts} kills landed mid-sweep")
    assert interrupted == KILLS, (interrupted, attempts)
    # Restarted for good: drains what is left, including the messages the last killed
    # workers had received (invisible until their visibility timeout runs out).
    _run_to_completion("drain-until-empty", "150", timeout=240.0)
    outcome = asyncio.run(_sweep_outcome())

    assert outcome["left"] == 0 and outcome["poisoned"] == 0
    assert all(outcome["states"].values()), [t for t, s in outcome["states"].items() if not s]
    assert set(outcome["postures"]) == {c.tenant_id for c in clients}
    flipped_ids = {c.tenant_id for c in flipped}
    for tenant in flipped_ids:
        assert outcome["postures"][tenant]["verdict"] == "BLOCKED"
        assert outcome["states"][tenant]["client"]["status"] == "drifted"

    groups = by_key(outcome["alerts"])
    kinds = {key: {c["kind"] for c in copies} for key, copies in groups.items()}
    assert all(k == {"client_drifted"} for k in kinds.values()), kinds
    assert sorted(tenant_of(copies[0]) for copies in groups.values()) == sorted(flipped_ids)
    for key, copies in groups.items():
        assert {tenant_of(c) for c in copies} == {tenant_of(copies[0])}, key
