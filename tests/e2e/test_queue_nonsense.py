"""Schema-valid nonsense on the queues is poisoned at once, not retried (issue 13, item 21).

Each body below is well-formed JSON of the right message type with every field of the
right JSON type, and still cannot mean anything: a negative or astronomically long
sign-in window, a timestamp without a time zone, an identifier that cannot be a table key
(``/``, ``#``, control characters), a count past Int64 (what Azure Tables stores). Through
the local runner (the host's semantics, real Azurite): every one must land in
``<queue>-poison`` on its first attempt - no failed attempt, no retry - while a good
message on the same queue is still served.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devtools.local_env import load_demo_scenario, seed_registry
from shared.config import QUEUE_ACCESS_REVIEWS, QUEUE_ALERTS, QUEUE_CHECK_CLIENT, QUEUE_REINVITES

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # registered in the demo scenario
USER = "7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93"
NOW = "2026-11-23T10:00:00Z"
INT64_OVER = 2**63


def check(**fields: Any) -> str:
    body = {"type": "check_client", "tenant_id": CONTOSO, "sweep_id": "s1", "requested_at": NOW}
    return json.dumps(body | fields)


def alert(**fields: Any) -> str:
    body = {
        "type": "alert",
        "dedup_key": "test:nonsense",
        "kind": "vendor_setting_changed",
        "severity": "medium",
        "title": "t",
        "created_at": NOW,
        "source": "audit",
    }
    return json.dumps(body | fields)


def reinvite(**fields: Any) -> str:
    body = {
        "type": "reinvite",
        "job_id": "j1",
        "user_id": USER,
        "reason": "r",
        "requested_by": "support@osttra.com",
    }
    return json.dumps(body | fields)


def review(**fields: Any) -> str:
    body = {
        "type": "ensure_access_review",
        "tenant_id": CONTOSO,
        "requested_by": "x",
        "job_id": "j1",
    }
    return json.dumps(body | fields)


NONSENSE: dict[str, list[str]] = {
    QUEUE_CHECK_CLIENT: [
        check(signin_window_hours=-24),
        check(signin_window_hours=0),
        check(signin_window_hours=10**12),  # timedelta overflow
        check(requested_at="2026-11-23T10:00:00"),  # naive
        check(sweep_id="sweep/2026"),
        check(sweep_id="sweep\n2026"),
        check(signin_counts={"500212": INT64_OVER}),
        check(signin_counts={"500212": -5}),
        check(signin_counts={"500212\u0000": 3}),
        check(signin_counts={"../500212": 3}),
        # A sweep message of several clients: empty, too many, or one bad check inside.
        json.dumps({"type": "check_client_batch", "checks": []}),
        json.dumps({"type": "check_client_batch", "checks": [json.loads(check())] * 65}),
        json.dumps(
            {"type": "check_client_batch",
             "checks": [json.loads(check()), json.loads(check(sweep_id="sweep/2026"))]}
        ),
        json.dumps({"type": "check_client_batch", "checks": json.loads(check())}),
    ],
    QUEUE_ALERTS: [
        alert(created_at="2026-11-23T10:00:00"),
        alert(when="2026-11-23T10:00:00"),
        alert(dedup_key="k\u0000\u0007"),
        alert(batch_id="batch/1"),
        alert(batch_id="batch#1"),
        json.dumps(
            {"type": "flush_digest", "batch_id": "b1", "generation": INT64_OVER, "created_at": NOW}
        ),
        json.dumps(
            {"type": "flush_digest", "batch_id": "b1", "generation": 1,
             "created_at": "2026-11-23T10:00:00"}
        ),
    ],
    QUEUE_REINVITES: [
        reinvite(job_id="jobs/1"),
        reinvite(job_id="job?1"),
        reinvite(job_id="job\\1"),
        reinvite(job_id="job\u00851"),
    ],
    QUEUE_ACCESS_REVIEWS: [
        review(job_id="x#y"),
        review(job_id="x\ty"),
    ],
}
FUNCTION_FOR = {
    QUEUE_CHECK_CLIENT: "check_client",
    QUEUE_ALERTS: "deliver_alert",
    QUEUE_REINVITES: "reinvite_job",
    QUEUE_ACCESS_REVIEWS: "access_review_job",
}


async def _run(queue: str, bodies: list[str]) -> dict[str, Any]:
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import PostureStore
    from shared.adapters.storage import poison_queue_name
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        for body in bodies:
            await app.queues.send(queue, body)
        good = check() if queue == QUEUE_CHECK_CLIENT else None
        if good:
            await app.queues.send(queue, good)
        stats = await runner.drain([FUNCTION_FOR[queue]])
        poisoned = []
        while batch := await app.queues.receive(poison_queue_name(queue), max_messages=32):
            for message in batch:
                poisoned.append(message.content)
                await app.queues.delete(poison_queue_name(queue), message)
        posture = await PostureStore(app.tables).get(CONTOSO) if good else None
        return {"stats": vars(stats[FUNCTION_FOR[queue]]), "poisoned": poisoned, "good": posture}
    finally:
        await runner.close()
        await app.close()
        set_app(None)


@pytest.mark.parametrize("queue", list(NONSENSE))
def test_schema_valid_nonsense_is_poisoned_on_the_first_attempt(app_env, demo_sim, queue):
    bodies = NONSENSE[queue]
    outcome = asyncio.run(_run(queue, bodies))
    assert sorted(outcome["poisoned"]) == sorted(bodies), outcome
    # The app moved them itself on the first attempt; a body that failed would have been
    # retried to maxDequeueCount and moved by the runner (counted in "poisoned").
    assert outcome["stats"]["poisoned"] == 0, outcome["stats"]
    if queue != QUEUE_ALERTS:
        # On xtap-alerts the POISON_MESSAGE alerts themselves race for one claim and retry
        # (issue 13 item 2, the alerts engineer's); elsewhere nothing may fail at all.
        assert outcome["stats"]["failed_attempts"] == 0, outcome["stats"]
    if queue == QUEUE_CHECK_CLIENT:  # the good message beside them was served
        assert outcome["good"] is not None and outcome["good"]["sweepId"] == "s1"
