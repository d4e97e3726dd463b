"""The local runner fires timers on their (app-setting) schedule and serves queues."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


async def _serve_briefly(seconds: float) -> Any:
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import cursor_store
    from shared.bootstrap import get_app, set_app

    set_app(None)
    runner = LocalRunner()
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(runner.serve_timers(stop)),
        asyncio.create_task(runner.serve_queues(stop)),
    ]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    app = await get_app()
    try:
        state, _ = await cursor_store(app.tables).get("audit-vendor")
        return state
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def test_timer_fires_on_its_ncrontab_schedule_from_the_app_setting(app_env, monkeypatch):
    monkeypatch.setenv("XTAP_AUDIT_SCHEDULE", "* * * * * *")  # every second
    monkeypatch.setenv("XTAP_SWEEP_SCHEDULE", "0 0 0 1 1 *")  # not during the test
    state = asyncio.run(_serve_briefly(2.5))
    assert state is not None and "scanned_to" in state
