"""Use cases: schedule "ensure access review" per client, and ensure one (queue).

The timer (and the API/CLI action) only enqueues: one ``EnsureAccessReview`` per client.
The queue function finds the client's definition by display name, or creates it —
never a second one: a per-client insert-claim serialises concurrent ensures, and the
lookup runs inside it. A licence error (no Entra ID P2 / ID Governance) is permanent:
the job fails with a clear explanation and one alert, and the message is consumed — no
retry loop. Transient Graph errors propagate so the host retries.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.config import QUEUE_ACCESS_REVIEWS, QUEUE_ALERTS
from shared.domain.access_reviews import (
    ReviewFailure,
    build_review_definition,
    explain_review_error,
    review_created_alert,
    review_display_name,
    review_failed_alert,
)
from shared.domain.jobs import AccessReviewJob, JobError, JobState
from shared.domain.messages import EnsureAccessReview
from shared.domain.odata import quote

if TYPE_CHECKING:
    from shared.adapters.graph import GraphClient
    from shared.adapters.job_ledger import JobLedger
    from shared.bootstrap import App
    from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

DEFINITIONS = "/identityGovernance/accessReviews/definitions"
CLAIM_LEASE_SECONDS = 600.0
BUSY_RETRY_SECONDS = 60


# On-demand jobs are UUIDs; the timer's are "<yyyymmdd>-<client tenant ID>" (one a day).
REVIEW_JOB_ID_PATTERN = r"^([0-9]{8}-)?[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"
REVIEW_JOB_ID = re.compile(REVIEW_JOB_ID_PATTERN.removesuffix("$") + r"\Z")


def is_review_job_id(value: str) -> bool:
    return bool(REVIEW_JOB_ID.match(value))


class ClientNotRegistered(LookupError):
    pass


class NoReviewers(ValueError):
    pass


@dataclass
class ScheduledReviews:
    jobs: list[dict[str, str]] = field(default_factory=list)  # {tenantId, jobId}
    skipped: str | None = None


@dataclass(frozen=True)
class EnsureOutcome:
    job: AccessReviewJob
    action: Literal["found", "created", "failed", "already_final", "busy"]


def _ledger(app: App) -> JobLedger:
    from shared.adapters.job_ledger import JobLedger

    return JobLedger(app.tables)


async def _enqueue(
    app: App, client: ClientRecord, job_id: str, requested_by: str, now: datetime
) -> bool:
    """Write the queued job and its message; False if that job ID already exists."""
    job = AccessReviewJob.queued(
        job_id=job_id, tenant_id=client.tenant_id, requested_by=requested_by, now=now
    ).model_copy(update={"client_name": client.name, "display_name": review_display_name(client)})
    if not await _ledger(app).create_access_review(job):
        return False
    await app.queues.send(
        QUEUE_ACCESS_REVIEWS,
        EnsureAccessReview(tenant_id=client.tenant_id, requested_by=requested_by, job_id=job_id),
    )
    return True


async def schedule_access_reviews(
    app: App, now: datetime, *, requested_by: str = "xtap-watch (timer)"
) -> ScheduledReviews:
    """The weekly fan-out: one job per registered client (one per client per day)."""
    from shared.adapters.repositories import ClientRegistry

    if not app.settings.access_review_reviewers:
        log.warning("access reviews not scheduled: XTAP_ACCESS_REVIEW_REVIEWERS is empty")
        return ScheduledReviews(skipped="XTAP_ACCESS_REVIEW_REVIEWERS names no reviewer")
    out = ScheduledReviews()
    for client in await ClientRegistry(app.tables).list():
        # Deterministic per day: a timer that fires twice (host restart) enqueues once.
        job_id = f"{now:%Y%m%d}-{client.tenant_id}"
        if await _enqueue(app, client, job_id, requested_by, now):
            out.jobs.append({"tenantId": client.tenant_id, "jobId": job_id})
    return out


async def request_access_review(
    app: App, tenant_id: str, requested_by: str, now: datetime
) -> AccessReviewJob:
    """The on-demand action (API/CLI) for one client."""
    from shared.adapters.repositories import ClientRegistry

    if not app.settings.access_review_reviewers:
        raise NoReviewers("XTAP_ACCESS_REVIEW_REVIEWERS names no reviewer")
    client = await ClientRegistry(app.tables).get(tenant_id)
    if client is None:
        raise ClientNotRegistered(f"{tenant_id} is not a registered client")
    job_id = str(uuid.uuid4())
    await _enqueue(app, client, job_id, requested_by, now)
    job = await _ledger(app).get_access_review(job_id)
    assert job is not None
    return job


async def find_definition(graph: GraphClient, display_name: str) -> dict[str, Any] | None:
    """The existing definition with this display name, if any.

    ``$filter=displayName eq '…'`` first; should Graph refuse that filter (400), list the
    definitions and compare names here instead.
    """
    from shared.adapters.graph import GraphError

    wanted = display_name.casefold()
    try:
        async for page in graph.get_pages(
            DEFINITIONS, {"$filter": f"displayName eq {quote(display_name)}"}
        ):
            for item in page:
                if str(item.get("displayName", "")).casefold() == wanted:
                    return item
        return None
    except GraphError as exc:
        if exc.status != 400:
            raise
        log.info("definitions $filter refused (%s); listing instead", exc.code)
    async for page in graph.get_pages(DEFINITIONS, {"$top": "100"}):
        for item in page:
            if str(item.get("displayName", "")).casefold() == wanted:
                return item
    return None


async def _fail(
    app: App,
    job: AccessReviewJob,
    now: datetime,
    failure: ReviewFailure,
    *,
    status: int = 0,
    code: str = "",
    message: str = "",
    alert: bool = True,
) -> EnsureOutcome:
    failed = job.advance(
        JobState.FAILED,
        now,
        failure.summary,
        error=JobError(
            status=status,
            code=code[:100],
            message=message[:1000],
            explanation=failure.summary[:2000],
            remediation=failure.remediation[:2000],
        ),
    )
    if alert:
        await app.queues.send(
            QUEUE_ALERTS,
            review_failed_alert(
                failed.client_name or failed.tenant_id, failed.tenant_id, failure, now, job.job_id
            ),
        )
    await _ledger(app).save_access_review(failed)
    return EnsureOutcome(failed, "failed")


async def ensure_access_review(
    app: App, message: EnsureAccessReview, now: datetime, *, final_attempt: bool = False
) -> EnsureOutcome:
    from shared.adapters.graph import GraphError
    from shared.adapters.job_ledger import ACCESS_REVIEW, ClaimHeld
    from shared.adapters.repositories import ClientRegistry

    ledger = _ledger(app)
    job = await ledger.get_access_review(message.job_id)
    if job is None:
        job = AccessReviewJob.queued(
            job_id=message.job_id,
            tenant_id=message.tenant_id.lower(),
            requested_by=message.requested_by,
            now=now,
        )
        await ledger.create_access_review(job)
    if job.state.final:
        return EnsureOutcome(job, "already_final")

    client = await ClientRegistry(app.tables).get(message.tenant_id)
    if client is None:
        return await _fail(
            app,
            job,
            now,
            ReviewFailure(True, "The client is no longer registered.", "None."),
            alert=False,
        )
    job = job.model_copy(
        update={"client_name": client.name, "display_name": review_display_name(client)}
    )
    reviewers = app.settings.access_review_reviewers
    if not reviewers:
        return await _fail(
            app,
            job,
            now,
            ReviewFailure(
                True,
                "No reviewers are configured, so no review can be created.",
                "Set XTAP_ACCESS_REVIEW_REVIEWERS to the object IDs of the reviewers.",
            ),
        )
    try:
        claim = await ledger.claim(ACCESS_REVIEW, client.tenant_id, now, CLAIM_LEASE_SECONDS)
    except ClaimHeld as exc:
        log.info("%s; re-queued in %d s", exc, BUSY_RETRY_SECONDS)
        await app.queues.send(QUEUE_ACCESS_REVIEWS, message, visibility_timeout=BUSY_RETRY_SECONDS)
        return EnsureOutcome(job, "busy")
    del claim  # a mutex only: each ensure looks again (an admin may have deleted it)

    graph = app.graph.vendor()
    job = job.advance(JobState.RUNNING, now, f"looking for '{job.display_name}'")
    await ledger.save_access_review(job)
    try:
        name = review_display_name(client)
        existing = await find_definition(graph, name)
        if existing is not None:
            done = job.advance(
                JobState.DONE, now, f"found existing definition {existing.get('id')}"
            ).model_copy(update={"definition_id": existing.get("id"), "created": False})
            await ledger.save_access_review(done)
            return EnsureOutcome(done, "found")
        body = build_review_definition(
            client, reviewers, vendor_name=app.settings.vendor_name, start=now.date()
        )
        created = await graph.post_json(DEFINITIONS, body)
        definition_id = str((created or {}).get("id") or "")
        await app.queues.send(QUEUE_ALERTS, review_created_alert(client, definition_id, name, now))
        done = job.advance(JobState.DONE, now, f"created definition {definition_id}").model_copy(
            update={"definition_id": definition_id, "created": True}
        )
        await ledger.save_access_review(done)
        return EnsureOutcome(done, "created")
    except GraphError as exc:
        failure = explain_review_error(exc.status, exc.code, exc.message)
        if not failure.permanent and not final_attempt:
            await ledger.save_access_review(
                job.advance(JobState.QUEUED, now, f"Graph answered {exc.status}; will retry")
            )
            raise
        if not failure.permanent:
            failure = ReviewFailure(
                True,
                f"Gave up after {job.attempts} attempts: {failure.summary}",
                "Check Microsoft Graph service health; the weekly run tries again.",
            )
        return await _fail(
            app, job, now, failure, status=exc.status, code=exc.code, message=exc.message
        )
    except ValueError as exc:  # a client name or domain that cannot be put in a query
        return await _fail(
            app,
            job,
            now,
            ReviewFailure(
                True,
                f"Cannot build the review for {client.name}: {exc}",
                "Fix the client's registry record (name and domains).",
            ),
        )
    finally:
        await ledger.release_claim(ACCESS_REVIEW, client.tenant_id)


def review_job_view(job: AccessReviewJob) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "state": job.state.value,
        "tenantId": job.tenant_id,
        "client": job.client_name,
        "displayName": job.display_name,
        "definitionId": job.definition_id,
        "created": job.created,
        "requestedBy": job.requested_by,
        "requestedAt": job.requested_at.isoformat(),
        "updatedAt": job.updated_at.isoformat(),
        "steps": [
            {"at": s.at.isoformat(), "state": s.state.value, "detail": s.detail} for s in job.steps
        ],
        "error": job.error.model_dump() if job.error else None,
    }
