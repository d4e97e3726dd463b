"""The health endpoint's storage check: cached, single-flight, a failure is a failure.

Fakes stand in for our storage adapters (not the SDK); the real stall is in
tests/integration/test_storage_stall.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from shared.services.health import StorageHealth


class FakeTables:
    def __init__(self, fail: list[bool]) -> None:
        self.fail = fail
        self.calls = 0
        self.policies: list[str] = []

    def with_policy(self, policy: Any) -> FakeTables:
        self.policies.append(policy.name)
        return self

    async def get(self, *args: Any) -> None:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.fail[0]:
            raise ConnectionError("stalled")


class FakeQueues(FakeTables):
    async def approximate_count(self, queue: str) -> int:
        await self.get()
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _check(fail: list[bool]) -> tuple[StorageHealth, FakeTables, FakeQueues, Clock]:
    tables, queues, clock = FakeTables(fail), FakeQueues(fail), Clock()
    return StorageHealth(tables, queues, ttl=5.0, clock=clock), tables, queues, clock  # type: ignore[arg-type]


def test_probe_uses_the_probe_policy_and_is_cached_for_the_ttl():
    fail = [False]
    check, tables, queues, clock = _check(fail)
    assert tables.policies == ["probe"] and queues.policies == ["probe"]

    async def scenario() -> list[bool]:
        out = [await check.ok()]
        fail[0] = True
        clock.now += 4.9
        out.append(await check.ok())  # still the cached answer
        clock.now += 0.2
        out.append(await check.ok())  # expired: probed again, storage now fails
        fail[0] = False
        clock.now += 1.0
        out.append(await check.ok())  # a failure is cached too
        clock.now += 5.0
        out.append(await check.ok())
        return out

    assert asyncio.run(scenario()) == [True, True, False, False, True]
    assert tables.calls == 3 and queues.calls == 3


def test_concurrent_health_calls_share_one_probe():
    check, tables, queues, _ = _check([True])

    async def scenario() -> list[bool]:
        return list(await asyncio.gather(*(check.ok() for _ in range(20))))

    assert asyncio.run(scenario()) == [False] * 20
    assert tables.calls == 1 and queues.calls == 1
