"""Held digest alerts survive a crash at every write (issue 13.3).

Eight alerts of one batch with a digest threshold of five: three are held for the digest.
At each crash point — every storage write and queue send of holding an alert and of
flushing the digest — the operation fails once (as if the worker died there), the host
redelivers the same message, and in the end all three held alerts reach Teams in exactly
one digest card. Before the fix, a failed FlushDigest send left the alerts "held" with
nobody to flush them.

Real Azurite and the simulator; only the failure is injected, at the storage adapter.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import WEBHOOK_NAME

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 11, 23, 9, 25, tzinfo=UTC)


class SimulatedCrash(Exception):
    pass


def _is_member(entity: Any) -> bool:
    return entity.get("Kind") == "member" and entity.get("Status") == "held"


CRASH_POINTS = {
    # holding an alert
    "member-row": ("upsert", _is_member),
    "flush-send": ("send", lambda message: getattr(message, "type", "") == "flush_digest"),
    "flush-recorded": ("upsert", lambda e: e.get("Kind") == "flag" and e.get("Sent") is True),
    # flushing the digest (a crash between the digest's post and its ledger write is the
    # documented duplicate window of the delivery ledger, not a loss)
    "members-digested": ("upsert", lambda e: e.get("Status") == "digested"),
    "generation-opened": ("upsert", lambda e: e.get("Kind") == "flag" and e.get("Sent") is False),
}


def _inject(app: Any, point: str) -> dict[str, int]:
    """Make the first matching call at ``point`` fail; returns a counter of crashes."""
    kind, matches = CRASH_POINTS[point]
    crashed = {"count": 0}

    def wrap(target: Any, name: str) -> None:
        original = getattr(target, name)

        async def failing(*args: Any, **kwargs: Any) -> Any:  # (table or queue, subject, …)
            subject = args[1] if len(args) > 1 else None
            if crashed["count"] == 0 and subject is not None and matches(subject):
                crashed["count"] += 1
                raise SimulatedCrash(point)
            return await original(*args, **kwargs)

        setattr(target, name, failing)

    wrap(app.tables if kind == "upsert" else app.queues, kind)
    return crashed


async def _run(point: str) -> tuple[int, list[dict[str, Any]]]:
    from pydantic import RootModel

    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS, TABLE_DELIVERIES
    from shared.domain.messages import (
        AlertKind,
        AlertRecord,
        ClientRef,
        OutboxMessage,
        Severity,
    )
    from shared.services.delivery import deliver_outbox_message

    set_app(None)
    app = await get_app()
    batch = f"crash-{point}"
    alerts = [
        AlertRecord(
            dedup_key=f"{batch}:{i}",
            kind=AlertKind.CLIENT_DRIFTED,
            severity=Severity.HIGH,
            title=f"{batch} client {i}: users can no longer reach OSTTRA",
            client=ClientRef(name=f"Client {i}", tenant_id=f"{i:08d}-0000-4000-8000-000000000000"),
            batch_id=batch,
            created_at=NOW,
            source="posture",
        )
        for i in range(8)
    ]
    crashed = _inject(app, point)

    async def deliver(message: Any) -> None:
        """Like the host: a failed attempt is simply tried again."""
        for _ in range(5):
            try:
                await deliver_outbox_message(app, message, NOW)
                return
            except SimulatedCrash:
                continue
        raise AssertionError(f"{message} never succeeded")

    try:
        for alert in alerts:
            await deliver(alert)
        envelope = RootModel[OutboxMessage]  # type: ignore[valid-type]
        for _ in range(20):  # deliver the delayed flushes until none is left
            await asyncio.sleep(1.1)
            messages = await app.queues.receive(QUEUE_ALERTS, max_messages=32,
                                                visibility_timeout=30)
            if not messages and not await app.queues.approximate_count(QUEUE_ALERTS):
                break
            for received in messages:
                await deliver(envelope.model_validate_json(received.content).root)
                await app.queues.delete(QUEUE_ALERTS, received)
        held = await app.tables.query(
            TABLE_DELIVERIES, "Status eq 'held'", {})
        return crashed["count"], held
    finally:
        await app.close()
        set_app(None)


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_every_held_alert_reaches_the_digest_after_a_crash_at(
    app_env, demo_sim, monkeypatch, point: str
):
    monkeypatch.setenv("XTAP_DIGEST_THRESHOLD", "5")
    monkeypatch.setenv("XTAP_DIGEST_HOLD_SECONDS", "1")
    before = len(demo_sim.control.webhook_messages(WEBHOOK_NAME))
    crashes, still_held = asyncio.run(_run(point))
    assert crashes == 1, f"the crash at {point} was never reached"
    posted = [json.dumps(m["body"]) for m in demo_sim.control.webhook_messages(WEBHOOK_NAME)
              [before:]]
    batch = f"crash-{point}"
    singles = [t for t in posted if "alerts, most severe first" not in t]
    digests = [t for t in posted if "alerts, most severe first" in t]
    assert len(singles) == 5
    assert len(digests) == 1, f"{len(digests)} digest cards"
    for i in (5, 6, 7):
        assert f"{batch} client {i}: users can no longer reach OSTTRA" in digests[0]
    assert still_held == []
