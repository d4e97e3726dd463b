"""``xtap-watch sweep`` waits for the checks the Functions app (here the local runner) does,
and says in one line when nothing processes the queue (issue #14.6)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from tests.e2e.test_cli_failures import one_line, xtap

pytestmark = pytest.mark.e2e


def test_sweep_says_when_nothing_processes_the_queue(seeded):
    done = xtap(seeded, "sweep", "--timeout", "8", "--output", "json")
    assert done.returncode == 1
    line = one_line(done)
    assert "nothing is processing the queue xtap-check-client" in line
    assert "./scripts/demo --keep" in line and "xtap-watch check" in line
    result = json.loads(done.stdout)
    assert result["clientsQueued"] == 5 and result["complete"] is False


def test_sweep_waits_for_the_runner_and_reports_every_verdict(seeded):
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    stop = threading.Event()

    def serve() -> None:
        async def main() -> None:
            runner = LocalRunner()
            halt = asyncio.Event()
            task = asyncio.create_task(runner.serve_queues(halt))
            while not stop.is_set():
                await asyncio.sleep(0.2)
            halt.set()
            await task
            await runner.close()
            # The checks ran on the app this thread's loop built: close its HTTP sessions
            # here, on their own loop, not at interpreter exit.
            app = await get_app()
            await app.close()
            set_app(None)

        asyncio.run(main())

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    try:
        done = xtap(seeded, "sweep", "--timeout", "120", "--output", "json")
    finally:
        stop.set()
        worker.join(timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["complete"] is True
    assert result["clients"][0]["name"] == "Contoso Markets"
    assert all(c["checked"] for c in result["clients"])
    assert sum(result["verdicts"].values()) == 5
