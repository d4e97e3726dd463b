"""What each trigger does, as plain async functions of plain values.

``function_app.py`` only unpacks the Functions binding types and calls these, so the same
code runs under the Functions host, the local runner and the tests. Heavy modules are
imported inside the functions: importing this module must stay cheap (cold start).
"""

from __future__ import annotations

import functools
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
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        problem = errors[0]["msg"] if errors else "invalid"
        raise MalformedMessage(f"{where or 'message'}: {problem}") from exc


async def _to_poison(queue: str, body: str, reason: str) -> None:
    """A message that can never succeed goes straight to ``-poison`` (no retry loop)."""
    from shared.adapters.storage import poison_queue_name
    from shared.bootstrap import get_app

    app = await get_app()
    log.error("malformed message on %s moved to poison: %s", queue, reason)
    await app.queues.send(poison_queue_name(queue), body)
    await _alert_poison(queue, reason)


async def _alert_poison(queue: str, reason: str) -> None:
    """One alert per poison queue per hour, however many messages land there."""
    from shared.bootstrap import get_app
    from shared.domain.messages import AlertKind, AlertRecord, Severity

    app = await get_app()
    now = _now()
    alert = AlertRecord(
        dedup_key=f"poison:{queue}:{now:%Y%m%d%H}",
        kind=AlertKind.POISON_MESSAGE,
        severity=Severity.HIGH,
        title=f"Messages on {queue} are being moved to {queue}-poison",
        summary=(
            f"A message on {queue} could not be processed ({reason}). It was kept in "
            f"{queue}-poison; later ones in this hour are not alerted again."
        ),
        remediation_steps=(
            f"Inspect {queue}-poison (Storage browser or `az storage message peek`), fix the "
            "cause, then move the messages back to the queue (docs/operations.md).",
        ),
        facts={"Queue": queue, "Reason": reason[:300]},
        when=now,
        created_at=now,
        source="poison",
    )
    await app.queues.send(QUEUE_ALERTS, alert)


async def _run_queue_handler(
    queue: str, body: str, dequeue_count: int, model: type[BaseModel], work: Any
) -> None:
    """Parse, run, and on the host's last attempt say so before the message is poisoned."""
    try:
        message = parse_message(model, body)
    except MalformedMessage as exc:
        await _to_poison(queue, body, str(exc))
        return
    from shared.telemetry import trigger_span

    inner = getattr(message, "root", message)
    tenant = getattr(inner, "tenant_id", None) or getattr(
        getattr(inner, "client", None), "tenant_id", None
    )
    try:
        with trigger_span(f"queue.{queue}", client_tenant_id=tenant, dequeue_count=dequeue_count):
            await work(message, dequeue_count >= MAX_DEQUEUE_COUNT)
    except Exception as exc:
        if dequeue_count >= MAX_DEQUEUE_COUNT and await _poison_alert_needed(queue, message, exc):
            await _alert_poison(queue, f"failed {dequeue_count} times: {type(exc).__name__}")
        raise


async def _poison_alert_needed(queue: str, message: Any, exc: BaseException) -> bool:
    """On the alerts queue the delivery service decides: an alert about the alert path
    must not travel the route that is failing (no POISON_MESSAGE feedback loop)."""
    if queue != QUEUE_ALERTS:
        return True
    from shared.services.delivery import poison_alert_needed

    needed = poison_alert_needed(message, exc)
    if not needed:
        log.error("alert message failed %s: moved to %s-poison without a further alert",
                  type(exc).__name__, queue)
    return needed


async def sweep_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.posture_sweep import schedule_sweep
    from shared.telemetry import trigger_span

    with trigger_span("timer.sweep"):
        app = await get_app()
        scheduled = await schedule_sweep(app, _now())
    return {"sweep_id": scheduled.sweep_id, "clients": scheduled.clients}


async def check_client(body: str, dequeue_count: int) -> None:
    from shared.bootstrap import get_app
    from shared.config import QUEUE_CHECK_CLIENT
    from shared.services.posture_sweep import check_queued

    async def work(envelope: Any, final_attempt: bool) -> None:
        app = await get_app()
        outcomes = await check_queued(app, envelope.root, _now(), final_attempt=final_attempt)
        for outcome in outcomes:
            log.info(
                "client %s verdict %s alerts %d%s",
                outcome.tenant_id,
                outcome.verdict,
                len(outcome.alerts),
                f" ({outcome.skipped})" if outcome.skipped else "",
            )

    await _run_queue_handler(QUEUE_CHECK_CLIENT, body, dequeue_count, _check_model(), work)


@functools.cache  # one parametrised model per process, not one per message
def _check_model() -> type[BaseModel]:
    from pydantic import RootModel

    from shared.domain.messages import CheckQueueMessage

    return RootModel[CheckQueueMessage]


@functools.cache
def _outbox_model() -> type[BaseModel]:
    from pydantic import RootModel

    from shared.domain.messages import OutboxMessage

    return RootModel[OutboxMessage]


async def deliver_alert(body: str, dequeue_count: int) -> None:
    from shared.bootstrap import get_app
    from shared.services.delivery import deliver_outbox_message

    async def work(envelope: Any, final_attempt: bool) -> None:
        app = await get_app()
        message = envelope.root
        outcome = await deliver_outbox_message(app, message, _now(), final_attempt=final_attempt)
        log.info(
            "outbox %s delivered=%s skipped=%s failed=%s",
            getattr(message, "dedup_key", getattr(message, "batch_id", "?")),
            outcome.delivered,
            outcome.skipped,
            outcome.failed,
        )

    await _run_queue_handler(QUEUE_ALERTS, body, dequeue_count, _outbox_model(), work)


async def audit_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.audit_scan import scan_audit
    from shared.telemetry import trigger_span

    with trigger_span("timer.audit"):
        app = await get_app()
        outcome = await scan_audit(app, _now())
    return {"events": outcome.events, "alerts": len(outcome.alerts)}


async def purge_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.retention import purge_expired
    from shared.telemetry import trigger_span

    with trigger_span("timer.purge"):
        app = await get_app()
        outcome = await purge_expired(app, _now())
    return {
        "deleted": outcome.deleted,
        "tables": {t.table: t.deleted for t in outcome.tables},
    }


async def heartbeat_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.heartbeat import send_heartbeat
    from shared.telemetry import trigger_span

    with trigger_span("timer.heartbeat"):
        app = await get_app()
        outcome = await send_heartbeat(app, _now())
    return {"heartbeat": outcome.alert.dedup_key, "title": outcome.alert.title}


async def watchdog_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.watchdog import run_watchdog
    from shared.telemetry import trigger_span

    with trigger_span("timer.watchdog"):
        app = await get_app()
        outcome = await run_watchdog(app, _now())
    return {"problems": outcome.problems, "alerts": outcome.alerts}
