"""The local runner fires timers on their (app-setting) schedule and serves queues.

Both halves are checked: the timer whose schedule comes up fires (several times), and the
timers whose schedules do not come up during the test never fire at all.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

NEVER_DURING_THE_TEST = "0 0 0 1 1 *"  # midnight on 1 January


async def _serve_briefly(seconds: float) -> tuple[Any, Counter[str]]:
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import cursor_store
    from shared.bootstrap import get_app, set_app

    set_app(None)
    runner = LocalRunner()
    fired: Counter[str] = Counter()
    originals = {info.name: info.handler for info in runner.by_kind("timer")}
    for info in runner.by_kind("timer"):
        # Count each firing (a test-side wrapper; the trigger itself still runs).
        @functools.wraps(info.handler)
        def counted(*args: Any, _name: str = info.name, **kwargs: Any) -> Any:
            fired[_name] += 1
            return originals[_name](*args, **kwargs)

        info.handler = counted
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(runner.serve_timers(stop)),
        asyncio.create_task(runner.serve_queues(stop)),
    ]
    try:
        await asyncio.sleep(seconds)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for info in runner.by_kind("timer"):
            info.handler = originals[info.name]  # the runner caches the app's functions
    app = await get_app()
    try:
        state, _ = await cursor_store(app.tables).get("audit-vendor")
        return state, fired
    finally:
        await runner.close()
        await app.close()
        set_app(None)


def test_timer_fires_on_its_ncrontab_schedule_from_the_app_setting(app_env, monkeypatch):
    from devtools.runner import LocalRunner

    monkeypatch.setenv("XTAP_AUDIT_SCHEDULE", "* * * * * *")  # every second
    others = (
        "XTAP_SWEEP_SCHEDULE",
        "XTAP_HYGIENE_SCHEDULE",
        "XTAP_REVIEW_SCHEDULE",
        "XTAP_PURGE_SCHEDULE",
        "XTAP_HEARTBEAT_SCHEDULE",
        "XTAP_WATCHDOG_SCHEDULE",
    )
    for setting in others:
        monkeypatch.setenv(setting, NEVER_DURING_THE_TEST)
    timers = {info.name for info in LocalRunner().by_kind("timer")}
    assert timers == {
        "audit_timer",
        "sweep_timer",
        "guest_hygiene_timer",
        "access_review_timer",
        "purge_timer",
        "heartbeat_timer",
        "watchdog_timer",
    }

    state, fired = asyncio.run(_serve_briefly(3.5))

    assert state is not None and "scanned_to" in state
    assert fired["audit_timer"] >= 2, fired  # on schedule, more than once
    for name in timers - {"audit_timer"}:
        assert fired[name] == 0, (name, fired)  # their schedules did not come up
