"""The local runner routes HTTP methods like the Functions host: a trigger without a
``methods`` list answers every method (the app's own code then says 405 where it must)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

TENANT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def _call(method: str) -> tuple[int, dict[str, str], Any]:
    from devtools.runner import LocalRunner

    async def call() -> tuple[int, dict[str, str], Any]:
        runner = LocalRunner()
        try:
            status, headers, body = await runner.handle_http(
                method, f"/api/v1/clients/{TENANT}/acknowledgement"
            )
        finally:
            await runner.close()
        return status, headers, json.loads(body)

    return asyncio.run(call())


def test_delete_reaches_the_handler():
    status, _, body = _call("DELETE")
    # the app's handler answered (no principal: 401), not the runner's own 405
    assert status == 401, body
    assert body["error"]["code"] == "unauthenticated"


def test_a_method_the_route_does_not_serve_is_refused_by_the_app_with_allow():
    status, headers, body = _call("PUT")
    assert status == 405
    assert body["error"]["code"] == "method_not_allowed"
    assert headers.get("Allow") == "POST, DELETE"
