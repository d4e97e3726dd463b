"""A real storage stall: Azurite behind a loopback TCP proxy that the test freezes.

Issue 13 item 9: during a stall the API hung for more than a minute and health said "ok".
Nothing in the SDK is patched: the product's own clients talk to the proxy over the real
storage protocol, and a frozen proxy keeps connections open without moving a byte, as a
stalled storage front end does. The ``asyncio.wait_for`` limits below are hang detectors
derived from the configured bounds (twice the worst case), not performance assertions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from devtools.azurite import DEV_ACCOUNT, DEV_KEY
from devtools.stall_proxy import StallProxy, proxied_connection_string
from shared.domain.principal import encode_client_principal

pytestmark = pytest.mark.integration

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
CLIENT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
SUPPORT = encode_client_principal(
    name="support.lead@osttra.com",
    object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
    roles=("Reinvite.Request",),
    tenant_id=VENDOR,
)


@pytest.fixture
def proxies(azurite: Any) -> Iterator[dict[str, StallProxy]]:
    from devtools.azurite import reset_storage

    reset_storage(azurite.connection_string)
    made = {}
    for service in ("Queue", "Table"):
        host, port = azurite.endpoints[service].removeprefix("http://").split(":")
        made[service] = StallProxy(host, int(port))
    yield made
    for proxy in made.values():
        proxy.close()


def _settings(azurite: Any, proxies: dict[str, StallProxy]) -> Any:
    from shared.config import load_settings

    return load_settings(
        {
            "XTAP_VENDOR_TENANT_ID": VENDOR,
            "XTAP_VENDOR_APP_IDS": "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14",
            "AzureWebJobsStorage": proxied_connection_string(
                azurite.endpoints, DEV_ACCOUNT, DEV_KEY, proxies
            ),
        }
    )


async def _eventually(
    probe: Callable[[], Awaitable[Any]], wanted: Callable[[Any], bool], within: float
) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = await probe()
        if wanted(got) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.5)


def test_api_answers_503_fast_and_health_reflects_a_storage_stall(azurite, proxies, monkeypatch):
    from shared.adapters.storage import INTERACTIVE, PROBE
    from shared.bootstrap import build_app, set_app
    from shared.entrypoints import http_api
    from shared.services.health import STORAGE_CHECK_TTL

    monkeypatch.delenv("WEBSITE_SITE_NAME", raising=False)
    settings = _settings(azurite, proxies)
    posture_route = {"tenantId": CLIENT}
    principal = {"X-MS-CLIENT-PRINCIPAL": SUPPORT}

    async def posture() -> tuple[int, dict[str, str], Any]:
        return await http_api.handle(
            "get_posture", "GET", route_params=posture_route, headers=principal
        )

    async def health() -> int:
        return (await http_api.handle("health", "GET"))[0]

    async def scenario() -> dict[str, Any]:
        app = build_app(settings)
        set_app(app)
        out: dict[str, Any] = {}
        try:
            await app.ensure_storage()
            out["health_before"] = await health()
            out["posture_before"] = (await posture())[0]
            for proxy in proxies.values():
                proxy.freeze()
            out["posture_stalled"] = await asyncio.wait_for(
                posture(), timeout=2 * INTERACTIVE.worst_case_seconds()
            )
            health_bound = STORAGE_CHECK_TTL + 2 * PROBE.worst_case_seconds()
            out["health_stalled"] = await asyncio.wait_for(
                _eventually(health, lambda s: s == 503, within=health_bound),
                timeout=2 * health_bound,
            )
            for proxy in proxies.values():
                proxy.thaw()
            out["health_after"] = await _eventually(
                health, lambda s: s == 200, within=health_bound
            )
            out["posture_after"] = (await posture())[0]
        finally:
            for proxy in proxies.values():
                proxy.thaw()
            set_app(None)
            await app.close()
        return out

    out = asyncio.run(scenario())
    assert out["health_before"] == 200
    assert out["posture_before"] == 404  # storage answered: the client is not registered
    status, headers, body = out["posture_stalled"]
    assert status == 503
    assert body["error"]["code"] == "storage_unavailable"
    assert "did not answer in time" in body["error"]["message"]
    assert headers["Retry-After"] == "5"
    assert out["health_stalled"] == 503
    assert out["health_after"] == 200
    assert out["posture_after"] == 404


def test_background_clients_give_up_within_their_policy(azurite, proxies):
    """Queue and table clients built with a policy stop at its bounds in a stall (the
    background policy's own numbers are too long for a test; the wiring is the same)."""
    from azure.core.exceptions import AzureError

    from shared.adapters.storage import StoragePolicy, StorageQueues, StorageTables
    from shared.config import QUEUE_ALERTS, TABLE_CURSORS

    settings = _settings(azurite, proxies)
    policy = StoragePolicy("test", connection_timeout=1, read_timeout=1, retries=1)

    async def scenario() -> list[str]:
        queues = StorageQueues(settings.storage, None, policy)
        tables = StorageTables(settings.storage, None, policy)
        failures = []
        try:
            await queues.ensure_queues((QUEUE_ALERTS,))
            await tables.ensure_tables((TABLE_CURSORS,))
            await queues.send(QUEUE_ALERTS, "before")
            for proxy in proxies.values():
                proxy.freeze()
            calls = {
                "send": lambda: queues.send(QUEUE_ALERTS, "during"),
                "receive": lambda: queues.receive(QUEUE_ALERTS),
                "get": lambda: tables.get(TABLE_CURSORS, "p", "r"),
                "upsert": lambda: tables.upsert(
                    TABLE_CURSORS, {"PartitionKey": "p", "RowKey": "r"}
                ),
                "query": lambda: tables.query(TABLE_CURSORS, "PartitionKey eq 'p'"),
            }

            async def attempt(name: str, call: Callable[[], Awaitable[Any]]) -> None:
                try:
                    await asyncio.wait_for(call(), timeout=2 * policy.worst_case_seconds())
                except AzureError:
                    failures.append(name)

            await asyncio.gather(*(attempt(name, call) for name, call in calls.items()))
        finally:
            for proxy in proxies.values():
                proxy.thaw()
            await queues.close()
            await tables.close()
        return failures

    assert sorted(asyncio.run(scenario())) == ["get", "query", "receive", "send", "upsert"]
