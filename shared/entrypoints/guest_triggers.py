"""What the guest-work triggers do, as plain async functions of plain values.

``bp_guests`` only unpacks the Functions binding types and calls these, so the same code
runs under the Functions host, the local runner and the tests. Queue handlers go through
``triggers._run_queue_handler``: a malformed message goes to ``-poison`` with an alert,
a failing one is retried by the host, and the last attempt is told it is the last.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.config import QUEUE_ACCESS_REVIEWS, QUEUE_REINVITES

if TYPE_CHECKING:
    from shared.domain.messages import EnsureAccessReview, ReinviteJobMessage

log = logging.getLogger("xtap")


def _now() -> datetime:
    return datetime.now(UTC)


async def reinvite_job(body: str, dequeue_count: int) -> None:
    from shared.bootstrap import get_app
    from shared.domain.messages import ReinviteJobMessage
    from shared.entrypoints.triggers import _run_queue_handler
    from shared.services.reinvites import perform_reinvite

    async def work(message: ReinviteJobMessage, final_attempt: bool) -> None:
        app = await get_app()
        outcome = await perform_reinvite(app, message, _now(), final_attempt=final_attempt)
        log.info("reinvite %s: %s (%s)", message.job_id, outcome.action, outcome.job.state)

    await _run_queue_handler(QUEUE_REINVITES, body, dequeue_count, ReinviteJobMessage, work)


async def access_review_job(body: str, dequeue_count: int) -> None:
    from shared.bootstrap import get_app
    from shared.domain.messages import EnsureAccessReview
    from shared.entrypoints.triggers import _run_queue_handler
    from shared.services.access_reviews import ensure_access_review

    async def work(message: EnsureAccessReview, final_attempt: bool) -> None:
        app = await get_app()
        outcome = await ensure_access_review(app, message, _now(), final_attempt=final_attempt)
        log.info("access review for %s: %s", message.tenant_id, outcome.action)

    await _run_queue_handler(QUEUE_ACCESS_REVIEWS, body, dequeue_count, EnsureAccessReview, work)


async def access_review_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.access_reviews import schedule_access_reviews

    scheduled = await schedule_access_reviews(await get_app(), _now())
    return {"jobs": len(scheduled.jobs), "skipped": scheduled.skipped}


async def guest_hygiene_timer() -> dict[str, Any]:
    from shared.bootstrap import get_app
    from shared.services.guest_hygiene import report_pending_guests

    outcome = await report_pending_guests(await get_app(), _now())
    return {"clients": outcome.clients_reported, "stuck": outcome.stuck_guests}
