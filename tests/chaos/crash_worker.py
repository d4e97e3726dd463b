"""A process for the crash tests to SIGKILL: the audit scan or the posture sweep, for real.

    python -m tests.chaos.crash_worker audit        # audit_timer in a loop, until killed
    python -m tests.chaos.crash_worker sweep        # sweep_timer + drain, until killed
    python -m tests.chaos.crash_worker audit-once   # one clean audit scan, then exit 0
    python -m tests.chaos.crash_worker sweep-once   # one clean sweep + drain, then exit 0
    python -m tests.chaos.crash_worker drain-until-empty SECONDS
                                                    # drain check-client until nothing is
                                                    # left (invisible messages included)

Everything goes through ``function_app.py``'s triggers via the local runner, against the
Azurite and simulator named by the inherited app settings. The line ``ready`` is printed
once the process is warm (modules imported, storage reachable), so the parent can time
its kill from the moment real work starts; the looping modes print ``cycle N`` after each
complete round, so the parent can tell a kill that interrupted the first round (work in
flight) from one that came after it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time


async def main(mode: str, arg: str | None) -> int:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app
    from shared.config import QUEUE_CHECK_CLIENT

    app = await get_app()
    runner = LocalRunner()
    print("ready", flush=True)
    cycles = 0
    if mode == "audit":
        while True:
            await runner.fire_timer("audit_timer")
            cycles += 1
            print(f"cycle {cycles}", flush=True)  # the parent tells mid-work kills apart
    if mode == "sweep":
        while True:
            await runner.fire_timer("sweep_timer")
            await runner.drain(["check_client"])
            cycles += 1
            print(f"cycle {cycles}", flush=True)
    if mode == "audit-once":
        await runner.fire_timer("audit_timer")
    elif mode == "sweep-once":
        await runner.fire_timer("sweep_timer")
        await runner.drain(["check_client"])
    elif mode == "drain-until-empty":
        deadline = time.monotonic() + float(arg or "120")
        # Messages a killed worker had received stay invisible until their visibility
        # timeout: keep draining until the queue's count (invisible ones included) is 0.
        while await app.queues.approximate_count(QUEUE_CHECK_CLIENT):
            if time.monotonic() > deadline:
                print("messages still in the queue at the deadline", flush=True)
                return 1
            await runner.drain(["check_client"])
            await asyncio.sleep(1.0)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    await runner.close()
    await app.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    logging.disable(logging.WARNING)
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)))
