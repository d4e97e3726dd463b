"""No alert storm: past the threshold, a sweep's alerts arrive as one digest card."""

from __future__ import annotations

import asyncio
import json

import pytest

from devtools.local_env import WEBHOOK_NAME, load_demo_scenario, seed_registry

pytestmark = pytest.mark.e2e


async def _sweep_and_deliver() -> int:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app
    from shared.config import QUEUE_ALERTS

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
        produced = len(await app.queues.peek_all(QUEUE_ALERTS))
        await runner.drain(["deliver_alert"])
        await asyncio.sleep(1.5)  # the delayed flush becomes visible
        await runner.drain(["deliver_alert"])
        await asyncio.sleep(0.5)
        await runner.drain(["deliver_alert"])
        return produced
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def test_alerts_past_the_threshold_collapse_into_one_digest(app_env, demo_sim, monkeypatch):
    monkeypatch.setenv("XTAP_DIGEST_THRESHOLD", "1")
    monkeypatch.setenv("XTAP_DIGEST_HOLD_SECONDS", "1")
    before = len(demo_sim.control.webhook_messages(WEBHOOK_NAME))
    produced = asyncio.run(_sweep_and_deliver())
    assert produced >= 3, "the demo's first sweep raises several alerts"
    posted = demo_sim.control.webhook_messages(WEBHOOK_NAME)[before:]
    texts = [json.dumps(m["body"]) for m in posted]
    digests = [t for t in texts if "DIGEST" in t.upper()]
    assert len(posted) == 2, texts  # the first at once, then one digest of the rest
    assert len(digests) == 1
