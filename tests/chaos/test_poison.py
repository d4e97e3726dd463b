"""Poison messages: 100 malformed messages on each queue the app binds end in
``<queue>-poison`` with ONE alert card, while good messages interleaved with them are
still served.

For each queue trigger in ``function_app.py`` (and the guests blueprint it registers):
100 malformed bodies (not JSON, JSON of the wrong shape, wrong types, a message meant for
another queue, an oversized field, ...) are enqueued with one good message after every
ten; the runner drains the queue with the host's semantics, then the alerts queue. Then:

* ``<queue>-poison`` holds exactly the 100 malformed bodies, untouched;
* the Teams webhook got exactly one POISON_MESSAGE card for the queue (one per hour
  bucket: the de-duplication key carries the hour, so a run that straddles an hour may
  legitimately post a second);
* every good message did its work (a posture row, a card, a finished job).

A queue whose trigger is not bound (yet) is skipped, saying so.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID, WEBHOOK_NAME
from shared.config import (
    QUEUE_ACCESS_REVIEWS,
    QUEUE_ALERTS,
    QUEUE_CHECK_CLIENT,
    QUEUE_REINVITES,
)
from tests.chaos.harness import app_and_runner, generated_clients, seed

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(240)]

GENERATED_CLIENTS = 20
MALFORMED = 100
GOOD_EVERY = 10  # one good message after every ten bad ones
REVIEWERS = "6f2a9c1e-3b5d-4e7f-8a9b-0c1d2e3f4a5b,7a3b0d2f-4c6e-4f8a-9b0c-1d2e3f4a5b6c"


def malformed_bodies(queue: str, count: int = MALFORMED) -> list[str]:
    """``count`` distinct bodies no handler can ever process (each is unique)."""
    guid = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    now = "2026-11-23T10:00:00Z"
    shapes = [
        lambda i: f"not json at all #{i}",
        lambda i: "{" + f'"truncated": {i}',
        lambda i: f"<xml>{i}</xml>",
        lambda i: json.dumps([i, "a list, not an object"]),
        lambda i: json.dumps(i),
        lambda i: json.dumps(f"just a string {i}"),
        lambda i: json.dumps({"n": i}),  # unknown field, nothing required
        lambda i: json.dumps(
            {
                "type": "check_client",
                "tenant_id": f"not-a-guid-{i}",
                "sweep_id": "s",
                "requested_at": now,
            }
        ),
        lambda i: json.dumps(
            {
                "type": "reinvite",
                "job_id": "",
                "user_id": guid,
                "reason": f"r{i}",
                "requested_by": "x",
            }
        ),
        lambda i: json.dumps(
            {
                "type": "alert",
                "dedup_key": f"k{i}",
                "kind": "no_such_kind",
                "severity": "high",
                "title": "t",
                "created_at": now,
                "source": "audit",
            }
        ),
        lambda i: json.dumps(
            {
                "type": "ensure_access_review",
                "tenant_id": guid,
                "requested_by": "x" * 300,
                "job_id": f"j{i}",
            }
        ),
        lambda i: json.dumps(
            {"type": "flush_digest", "batch_id": f"b{i}", "generation": -1, "created_at": now}
        ),
        lambda i: json.dumps(
            {
                "type": "check_client",
                "tenant_id": guid,
                "sweep_id": f"s{i}",
                "requested_at": "yesterday",
            }
        ),
        lambda i: json.dumps(
            {
                "tenant_id": guid,
                "sweep_id": f"s{i}",
                "requested_at": now,
                "signin_counts": {"AADSTS500212": "many"},
            }
        ),
        lambda i: "\u0000\u0001 control characters \u0007" + str(i),
        lambda i: json.dumps({"type": "alert", "dedup_key": f"k{i}"}),
        lambda i: json.dumps(
            {
                "type": "reinvite",
                "job_id": f"j{i}",
                "user_id": guid,
                "reason": "r",
                "requested_by": "x",
                "surprise": True,
            }
        ),
    ]
    bodies = [shapes[i % len(shapes)](i) for i in range(count)]
    assert len(set(bodies)) == count
    return bodies


def _card_texts(control: Any) -> list[str]:
    return [json.dumps(m["body"]) for m in control.webhook_messages(WEBHOOK_NAME)]


def _poison_cards(texts: list[str], queue: str) -> list[str]:
    marker = f"Messages on {queue} are being moved to {queue}-poison"
    return [t for t in texts if marker in t]


# ------------------------------------------------------------------ good messages
class GoodMessages:
    """Valid work for one queue: how to enqueue it, and how to see it was done."""

    def __init__(self, queue: str, sim: Any) -> None:
        self.queue = queue
        self.sim = sim
        self.run = uuid.uuid4().hex[:8]
        self.sent: list[Any] = []
        self.principal = ""
        clients = [c for c in generated_clients(GENERATED_CLIENTS) if c.kind == "allowed"]
        self.clients = clients

    async def send(self, app: Any, runner: Any, i: int) -> None:
        from shared.domain.messages import AlertKind, AlertRecord, CheckClient, Severity

        now = datetime.now(UTC)
        if self.queue == QUEUE_CHECK_CLIENT:
            client = self.clients[i]
            sweep_id = f"good-{self.run}-{i}"
            await app.queues.send(
                QUEUE_CHECK_CLIENT,
                CheckClient(tenant_id=client.tenant_id, sweep_id=sweep_id, requested_at=now),
            )
            self.sent.append((client.tenant_id, sweep_id))
        elif self.queue == QUEUE_ALERTS:
            title = f"Good alert {self.run} number {i}"
            await app.queues.send(
                QUEUE_ALERTS,
                AlertRecord(
                    dedup_key=f"good:{self.run}:{i}",
                    kind=AlertKind.VENDOR_SETTING_CHANGED,
                    severity=Severity.MEDIUM,
                    title=title,
                    summary="A partner's inbound setting changed (poison test, good message).",
                    created_at=now,
                    when=now,
                    source="audit",
                ),
            )
            self.sent.append(title)
        elif self.queue == QUEUE_REINVITES:
            client = self.clients[i]
            status, body = await self._call(
                runner,
                "POST",
                "/api/v1/reinvites",
                {"email": f"user{client.index:05d}@{client.domain}", "reason": "lost session"},
            )
            assert status == 202, body
            self.sent.append(body["statusUrl"])
        elif self.queue == QUEUE_ACCESS_REVIEWS:
            client = self.clients[i]
            status, body = await self._call(
                runner, "POST", f"/api/v1/clients/{client.tenant_id}/access-review"
            )
            assert status == 202, body
            self.sent.append(body["statusUrl"])

    async def _call(self, runner: Any, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        from shared.domain.principal import encode_client_principal

        if not self.principal:  # one caller per queue: the API's per-caller limit is fine
            self.principal = encode_client_principal(
                name=f"support.{self.run}@osttra.com",
                object_id=str(uuid.uuid4()),
                roles=("Reinvite.Request",),
                tenant_id=VENDOR_TENANT_ID,
            )
        headers = {"X-MS-CLIENT-PRINCIPAL": self.principal}
        raw = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            raw = json.dumps(body).encode()
        status, _headers, payload = await runner.handle_http(
            method, path, headers=headers, body=raw
        )
        return status, json.loads(payload) if payload else None

    async def served(self, app: Any, runner: Any, cards: list[str]) -> list[str]:
        """What was not done (empty when every good message was served)."""
        from shared.adapters.repositories import PostureStore

        problems = []
        if self.queue == QUEUE_CHECK_CLIENT:
            postures = {p["tenantId"]: p for p in await PostureStore(app.tables).list()}
            for tenant, sweep_id in self.sent:
                if postures.get(tenant, {}).get("sweepId") != sweep_id:
                    problems.append(f"{tenant}: no posture row from {sweep_id}")
        elif self.queue == QUEUE_ALERTS:
            for title in self.sent:
                found = sum(1 for c in cards if title in c)
                if found != 1:
                    problems.append(f"{title!r} posted {found} times")
        else:
            for url in self.sent:
                status, job = await self._call(runner, "GET", url)
                if status != 200 or job.get("state") != "done":
                    problems.append(f"{url}: {status} {job}")
        return problems


# ------------------------------------------------------------------ the test
async def _flood(queue: str, function: str, sim: Any) -> dict[str, Any]:
    from shared.adapters.storage import poison_queue_name

    good = GoodMessages(queue, sim)
    async with app_and_runner() as (app, runner):
        await seed(app, GENERATED_CLIENTS)
        bad = malformed_bodies(queue)
        started = datetime.now(UTC)
        for i, body in enumerate(bad):
            await app.queues.send(queue, body)
            if i % GOOD_EVERY == GOOD_EVERY - 1:
                await good.send(app, runner, i // GOOD_EVERY)
        stats = await runner.drain([function])
        await runner.drain(["deliver_alert"])  # the poison alerts and the good work's cards
        finished = datetime.now(UTC)
        poisoned = []
        while batch := await app.queues.receive(poison_queue_name(queue), max_messages=32):
            poisoned += [m.content for m in batch]
        cards = _card_texts(sim.control)
        return {
            "bad": bad,
            "poisoned": poisoned,
            "stats": stats[function],
            "left": await app.queues.approximate_count(queue),
            "cards": cards,
            "hours": len({f"{started:%Y%m%d%H}", f"{finished:%Y%m%d%H}"}),
            "not_served": await good.served(app, runner, cards),
            "good": len(good.sent),
        }


@pytest.mark.parametrize(
    "queue", [QUEUE_CHECK_CLIENT, QUEUE_ALERTS, QUEUE_REINVITES, QUEUE_ACCESS_REVIEWS]
)
def test_malformed_messages_go_to_poison_with_one_alert_while_good_ones_are_served(
    queue, chaos_env, generated_sim, monkeypatch
):
    from devtools.runner import load_functions

    bound = [f for f in load_functions().values() if f.kind == "queue" and f.queue_name == queue]
    if not bound:
        pytest.skip(f"no queue trigger binds {queue} in function_app.py yet")
    monkeypatch.setenv("XTAP_ACCESS_REVIEW_REVIEWERS", REVIEWERS)
    before = len(_poison_cards(_card_texts(generated_sim.control), queue))

    result = asyncio.run(_flood(queue, bound[0].name, generated_sim))

    assert sorted(result["poisoned"]) == sorted(result["bad"])  # all 100, bodies intact
    assert result["left"] == 0
    poison_cards = _poison_cards(result["cards"], queue)[before:]
    assert 1 <= len(poison_cards) <= result["hours"], len(poison_cards)
    assert result["good"] == MALFORMED // GOOD_EVERY
    assert result["not_served"] == []


def test_queue_messages_are_base64_on_the_wire_as_the_functions_host_expects(chaos_env):
    """host.json says ``messageEncoding: base64``: the host base64-decodes every message,
    so a producer that wrote plain text would see all its messages fail in Azure (and a
    body with control characters breaks the storage service's XML even locally)."""
    import base64

    from azure.storage.queue.aio import QueueClient

    from shared.domain.messages import CheckClient

    message = CheckClient(
        tenant_id=generated_clients(1)[0].tenant_id,
        sweep_id="wire-format",
        requested_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
    )

    async def send_and_peek() -> list[str]:
        async with app_and_runner() as (app, _runner):
            await app.queues.send(QUEUE_CHECK_CLIENT, message)
        raw = QueueClient.from_connection_string(
            chaos_env["AzureWebJobsStorage"], QUEUE_CHECK_CLIENT
        )
        async with raw:
            return [m.content for m in await raw.peek_messages(max_messages=32)]

    on_the_wire = asyncio.run(send_and_peek())
    assert len(on_the_wire) == 1
    decoded = base64.b64decode(on_the_wire[0], validate=True).decode("utf-8")
    assert CheckClient.model_validate_json(decoded) == message
