"""Garbage from Graph behind the HTTP API: a 502 naming it, never a 500 or a false 403.

Issue 13 item 6. A user without ``id`` (or an HTML page where the user belongs) used to
surface as a Python error (500) or as "this is a member account" (a false 403).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, load_demo_scenario, seed_registry
from shared.domain.principal import encode_client_principal

pytestmark = pytest.mark.e2e

SUPPORT = encode_client_principal(
    name="support.lead@osttra.com",
    object_id="7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93",
    roles=("Reinvite.Request",),
    tenant_id=VENDOR_TENANT_ID,
)
USER_ID = "6f0a3c2e-1b4d-4e5f-8a9b-0c1d2e3f4a5b"


async def _post_reinvite(body: dict[str, Any]) -> tuple[int, Any]:
    from devtools.runner import LocalRunner
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    runner = LocalRunner()
    try:
        status, _headers, payload = await runner.handle_http(
            "POST",
            "/api/v1/reinvites",
            headers={"Content-Type": "application/json", "X-MS-CLIENT-PRINCIPAL": SUPPORT},
            body=json.dumps(body).encode(),
        )
    finally:
        await runner.close()
        await app.close()
        set_app(None)
    return status, json.loads(payload) if payload else None


@pytest.mark.parametrize(
    ("fault", "request_body"),
    [
        (
            {"path_regex": r"/v1\.0/users\?", "status": 200, "body": {"value": [{"mail": "x"}]}},
            {"email": "bob.ops@contoso-markets.com", "reason": "lost his session"},
        ),
        (
            {
                "path_regex": f"/v1\\.0/users/{USER_ID}",
                "status": 200,
                "body": "<html><body>Sign in to the proxy</body></html>",
                "content_type": "text/html",
            },
            {"userId": USER_ID, "reason": "lost his session"},
        ),
    ],
    ids=["user-without-id", "html-user"],
)
def test_a_bad_graph_answer_behind_the_api_is_a_502(app_env, demo_sim, fault, request_body):
    invitations = len(demo_sim.control.invitations(VENDOR_TENANT_ID))
    demo_sim.control.add_fault(**fault)
    try:
        status, payload = asyncio.run(_post_reinvite(request_body))
    finally:
        demo_sim.control.clear_faults()
    assert status == 502, payload
    assert payload["error"]["code"] == "graph_bad_answer"
    assert len(demo_sim.control.invitations(VENDOR_TENANT_ID)) == invitations  # nothing sent
