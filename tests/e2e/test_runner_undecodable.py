"""The local runner meets a message that is not base64 the way the Functions host does
(issue 13, item 24).

With ``messageEncoding: base64`` (host.json) the Storage Queues extension cannot decode
such a message; since extension 5.0 it moves it to ``<queue>-poison`` at once, copied
unchanged through a client that does not encode (azure-sdk-for-net PR #18326,
``QueueServiceClientProvider``'s MessageDecodingFailed handler), and the function is never
invoked. The queue's consumer keeps serving the other messages.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest

from devtools.local_env import load_demo_scenario, seed_registry
from shared.config import QUEUE_CHECK_CLIENT

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"  # two clients of the demo scenario: one
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"  # good message each, before and after
RAW = ['{"type": "check_client", "plain": "json, not base64"}', "not base64 at all!", "QUJD=x"]


def _good(sweep: str, tenant: str) -> str:
    return json.dumps(
        {
            "type": "check_client",
            "tenant_id": tenant,
            "sweep_id": sweep,
            "requested_at": "2026-11-23T10:00:00Z",
        }
    )


async def _raw_client(queue: str) -> Any:
    from azure.storage.queue.aio import QueueClient

    # No message encode/decode policy: what another producer (Event Grid, a script using
    # the v12 SDK defaults) puts on the queue.
    return QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], queue)


async def _scenario(serve: bool) -> dict[str, Any]:
    from devtools.runner import LocalRunner
    from shared.adapters.repositories import PostureStore
    from shared.adapters.storage import poison_queue_name
    from shared.bootstrap import get_app, set_app

    set_app(None)
    app = await get_app()
    await seed_registry(app, load_demo_scenario())
    raw = await _raw_client(QUEUE_CHECK_CLIENT)
    poison = await _raw_client(poison_queue_name(QUEUE_CHECK_CLIENT))
    runner = LocalRunner()
    try:
        await app.queues.send(QUEUE_CHECK_CLIENT, _good("before", CONTOSO))
        for text in RAW:
            await raw.send_message(text)
        await app.queues.send(QUEUE_CHECK_CLIENT, _good("after", FABRIKAM))
        if serve:
            stop = asyncio.Event()
            task = asyncio.create_task(runner.serve_queues(stop))
            for _ in range(120):
                await asyncio.sleep(0.25)
                posture = await PostureStore(app.tables).get(FABRIKAM)
                if (posture and posture.get("sweepId") == "after") or task.done():
                    break
            stop.set()
            await task  # a consumer that died would raise here
        else:
            await runner.drain(["check_client"])
        moved = [m.content async for m in poison.receive_messages(max_messages=32)]
        left = (await raw.get_queue_properties()).approximate_message_count
        before = await PostureStore(app.tables).get(CONTOSO)
        after = await PostureStore(app.tables).get(FABRIKAM)
        return {
            "stats": vars(runner.stats["check_client"]),
            "poison": moved,
            "left": left,
            "sweeps": [(before or {}).get("sweepId"), (after or {}).get("sweepId")],
        }
    finally:
        await raw.close()
        await poison.close()
        await runner.close()
        await app.close()
        set_app(None)


@pytest.mark.parametrize("serve", [False, True], ids=["drain", "serve"])
def test_a_message_that_is_not_base64_is_poisoned_unchanged_and_the_queue_keeps_flowing(
    app_env, demo_sim, serve
):
    outcome = asyncio.run(_scenario(serve))
    assert sorted(outcome["poison"]) == sorted(RAW)  # verbatim, not re-encoded
    assert outcome["left"] == 0
    assert outcome["sweeps"] == ["before", "after"]  # the messages around them were served
    assert outcome["stats"]["failed_attempts"] == 0  # the function never saw them
    assert outcome["stats"]["undecodable"] == len(RAW)
    assert outcome["stats"]["processed"] == 2


def test_the_runner_still_decodes_what_the_app_sends():
    # The app's producers send base64 (TextBase64EncodePolicy), as the host expects.
    from devtools.runner import encode_for_host

    assert base64.b64decode(encode_for_host("é{}")).decode() == "é{}"
