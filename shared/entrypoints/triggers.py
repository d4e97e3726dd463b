"""What each trigger does, as plain async functions of plain values.

``function_app.py`` only unpacks the Functions binding types and calls these, so the same
code runs under the Functions host, the local runner and the tests. Heavy modules are
imported inside the functions: importing this module must stay cheap (cold start).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.config import QUEUE_ALERTS

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("xtap")

MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount


def _now() -> datetime:
    return datetime.now(UTC)


class MalformedMessage(Exception):
    pass


def parse_message(model: type[BaseModel], body: str) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "message"
        raise MalformedMessage(f"{where}: {first.get('msg', 'invalid')}") from exc


async def _to_poison(queue: str, body: str, reason: str) -> None:
    """A message that can never succeed goes straight to ``-poison`` (no retry loop)."""
    from shared.adapters.storage import poison_queue_name
    from shared.bootstrap import get_app

    app = await get_app()
    log.error("malformed message on %s moved to poison: %s", queue, reason)
    await app.queues.send(poison_queue_name(queue), body)


async def sweep_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.posture_sweep import schedule_sweep

    app = await get_app()
    scheduled = await schedule_sweep(app, _now())
    return {"sweep_id": scheduled.sweep_id, "clients": scheduled.clients}


async def check_client(body: str, dequeue_count: int) -> None:
    from shared.bootstrap import get_app
    from shared.config import QUEUE_CHECK_CLIENT
    from shared.domain.messages import CheckClient
    from shared.services.posture_sweep import check_client as run_check

    try:
        message = parse_message(CheckClient, body)
    except MalformedMessage as exc:
        await _to_poison(QUEUE_CHECK_CLIENT, body, str(exc))
        return
    app = await get_app()
    outcome = await run_check(
        app, message, _now(), final_attempt=dequeue_count >= MAX_DEQUEUE_COUNT
    )
    log.info(
        "client %s verdict %s alerts %d", outcome.tenant_id, outcome.verdict, len(outcome.alerts)
    )


__all__ = ["QUEUE_ALERTS", "check_client", "parse_message", "sweep_timer"]
