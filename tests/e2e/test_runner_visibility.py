"""The local runner keeps a message invisible while its function runs, like the host.

The Functions host's queue listener receives a message for a visibility timeout and,
while the function still runs halfway to it, makes it invisible for another whole
timeout (Azure/azure-webjobs-sdk ``QueueListener.CreateUpdateMessageVisibilityTimer``).
Without that, a check running longer than the timeout would be handed out again to
another instance while the first is still running: two runners (two instances) drain one
queue here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

TENANT = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"


async def _drain_one_slow_message(visibility_s: int, runs_s: float) -> tuple[list[int], Any]:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_CHECK_CLIENT
    from shared.domain.messages import CheckClient

    set_app(None)
    app = await get_app()
    instances = [LocalRunner(), LocalRunner()]
    originals = []
    deliveries: list[int] = []

    async def slow(msg: Any) -> None:  # a test-side stand-in for a long check
        deliveries.append(msg.dequeue_count)
        await asyncio.sleep(runs_s)

    # The runner caches the app's functions: both may hold the same FunctionInfo, so the
    # handlers are taken before any is replaced, and put back in reverse.
    for runner in instances:
        runner.receive_visibility_s = visibility_s
        info = runner.functions["check_client"]
        originals.append((info, info.handler))
    for info, _ in originals:
        info.handler = slow
    try:
        await app.queues.send(
            QUEUE_CHECK_CLIENT,
            CheckClient(tenant_id=TENANT, sweep_id="slow", requested_at=datetime.now(UTC)),
        )
        # The second instance keeps polling while the message is on the queue, invisible.
        # Handed out again before it is done, the message would circle between the two
        # for ever (each delete fails on a stale pop receipt): a guard, not a timing.
        drained = await asyncio.wait_for(
            asyncio.gather(*(r.drain(["check_client"]) for r in instances)), timeout=60
        )
        stats = [d.get("check_client") for d in drained]
        left = await app.queues.approximate_count(QUEUE_CHECK_CLIENT)
    finally:
        for info, handler in reversed(originals):
            info.handler = handler
        for runner in instances:
            await runner.close()
        await app.close()
        set_app(None)
    return deliveries, (stats, left)


def test_a_message_whose_function_outlasts_the_visibility_timeout_is_delivered_once(app_env):
    deliveries, (stats, left) = asyncio.run(_drain_one_slow_message(visibility_s=2, runs_s=5.0))
    assert deliveries == [1]  # not handed out again at 2 s or 4 s to the other instance
    counted = [s for s in stats if s is not None]
    assert sum(s.processed for s in counted) == 1
    assert sum(s.failed_attempts + s.poisoned for s in counted) == 0
    assert left == 0  # deleted with the pop receipt of the last renewal
