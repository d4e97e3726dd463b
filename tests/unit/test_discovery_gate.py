"""OpenID discovery waits for a free connection in front of httpx's pool (issue 16.3).

Requests beyond the pool wait on a semaphore of the pool's size instead of in httpcore's
queue (which it rescans on every release); the pool-wait bound stays httpx's (10 s).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.adapters import vendor_directory
from shared.adapters.vendor_directory import DISCOVERY_CONNECTIONS, TenantCloudResolver

TENANT = "11111111-2222-3333-4444-555555555555"


def _resolver(handler: object) -> TenantCloudResolver:
    return TenantCloudResolver(
        "https://login.example", transport=httpx.MockTransport(handler)  # type: ignore[arg-type]
    )


def test_at_most_the_pool_size_in_flight_and_every_answer_read() -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"cloud_instance_name": "microsoftonline.com"})

    async def main() -> list[str | None]:
        resolver = _resolver(handler)
        try:
            return await asyncio.gather(*(resolver.cloud_of(TENANT) for _ in range(40)))
        finally:
            await resolver.close()

    clouds = asyncio.run(main())
    assert clouds == ["microsoftonline.com"] * 40
    assert peak == DISCOVERY_CONNECTIONS


def test_no_free_connection_within_the_bound_is_unreachable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vendor_directory, "DISCOVERY_TIMEOUT_S", 0.05)
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json={"cloud_instance_name": "microsoftonline.us"})

    async def main() -> list[str | None]:
        resolver = _resolver(handler)
        try:
            busy = [
                asyncio.create_task(resolver.cloud_of(TENANT)) for _ in range(DISCOVERY_CONNECTIONS)
            ]
            await asyncio.sleep(0)
            # Waits past the bound: None, as before (never hangs the test).
            late = await asyncio.wait_for(resolver.cloud_of(TENANT), 5)
            release.set()
            return [late, *await asyncio.gather(*busy)]
        finally:
            await resolver.close()

    late, *busy = asyncio.run(main())
    assert late is None
    assert busy == ["microsoftonline.us"] * DISCOVERY_CONNECTIONS
