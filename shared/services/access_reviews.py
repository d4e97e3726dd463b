"""Use cases: schedule "ensure access review" per client, and ensure one (queue).

The timer (and the API/CLI action) only enqueues: one ``EnsureAccessReview`` per client.
On-demand requests for a client coalesce: while a job for the client is queued or
running, asking again answers with that job (one atomic index row per client, the same
claim pattern as re-invites), so thirty parallel ensures make one job, not thirty
(issue 13.22). The queue function, inside a per-client insert-claim:

1. finds the client's guests group by ``mailNickname`` or creates it (``Group.Create``);
2. brings its members in line with the client's enabled external guests — read with one
   advanced query per client domain (``endswith(mail,'@domain')``, ``$count=true`` and
   ``ConsistencyLevel: eventual``, which xtap-watch can send even though the review
   service cannot) — adding and removing members (``GroupMember.ReadWrite.All``);
3. finds the client's definition by display name, or creates it with the group as its
   documented scope — never a second one.

A job that finds the claim held waits a few seconds and then finishes from the result the
holder recorded, when that result is newer than its own request. A licence error (no
Entra ID P2 / ID Governance) and other permanent refusals fail the job with one alert
*per cause* (six clients failing on one missing permission are one card, issue 14.2), and
the message is consumed — no retry loop. Transient Graph errors propagate so the host
retries.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.adapters.graph import GraphClient, GraphError
from shared.adapters.job_ledger import (
    ACCESS_REVIEW,
    CLIENT_REVIEW_INDEX,
    ClaimHeld,
    JobIndex,
    JobLedger,
)
from shared.adapters.repositories import ClientRegistry
from shared.config import QUEUE_ACCESS_REVIEWS, QUEUE_ALERTS
from shared.domain.access_reviews import (
    ReviewFailure,
    build_review_definition,
    explain_review_error,
    guests_group_body,
    guests_group_nickname,
    plan_membership,
    review_created_alert,
    review_display_name,
    review_failed_alert,
    scope_group_id,
)
from shared.domain.jobs import AccessReviewJob, JobError, JobState
from shared.domain.messages import EnsureAccessReview
from shared.domain.odata import quote
from shared.domain.reinvite import GUEST_SELECT

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

DEFINITIONS = "/identityGovernance/accessReviews/definitions"
CLAIM_LEASE_SECONDS = 600.0
# An ensure takes seconds: one that finds the claim held looks again shortly and usually
# finishes from the holder's result.
BUSY_RETRY_SECONDS = 5
PENDING_GRACE = timedelta(seconds=60)
CLAIM_ROUNDS = 8
ADVANCED_QUERY = {"ConsistencyLevel": "eventual"}


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
    action: Literal["found", "created", "failed", "already_final", "busy", "coalesced"]


def _queued_job(
    client: ClientRecord, job_id: str, requested_by: str, now: datetime
) -> AccessReviewJob:
    return AccessReviewJob.queued(
        job_id=job_id, tenant_id=client.tenant_id, requested_by=requested_by, now=now
    ).model_copy(update={"client_name": client.name, "display_name": review_display_name(client)})


async def _enqueue(app: App, job: AccessReviewJob) -> bool:
    """Write the queued job and its message; False if that job ID already exists."""
    if not await JobLedger(app.tables).create_access_review(job):
        return False
    await app.queues.send(
        QUEUE_ACCESS_REVIEWS,
        EnsureAccessReview(
            tenant_id=job.tenant_id, requested_by=job.requested_by, job_id=job.job_id
        ),
    )
    return True


async def schedule_access_reviews(
    app: App, now: datetime, *, requested_by: str = "xtap-watch (timer)"
) -> ScheduledReviews:
    """The weekly fan-out: one job per registered client (one per client per day)."""
    if not app.settings.access_review_reviewers:
        log.warning("access reviews not scheduled: XTAP_ACCESS_REVIEW_REVIEWERS is empty")
        return ScheduledReviews(skipped="XTAP_ACCESS_REVIEW_REVIEWERS names no reviewer")
    out = ScheduledReviews()
    for client in await ClientRegistry(app.tables).list():
        # Deterministic per day: a timer that fires twice (host restart) enqueues once.
        job_id = f"{now:%Y%m%d}-{client.tenant_id}"
        if await _enqueue(app, _queued_job(client, job_id, requested_by, now)):
            out.jobs.append({"tenantId": client.tenant_id, "jobId": job_id})
    return out


async def _pending_job(
    ledger: JobLedger, index: JobIndex | None, now: datetime
) -> AccessReviewJob | None:
    """The client's on-demand job that is still queued or running, if any."""
    job = await ledger.indexed_job(index, AccessReviewJob, now, PENDING_GRACE)
    return None if job is None or job.state.final else job


async def request_access_review(
    app: App, tenant_id: str, requested_by: str, now: datetime
) -> AccessReviewJob:
    """The on-demand action (API/CLI) for one client; joins the client's pending job."""
    if not app.settings.access_review_reviewers:
        raise NoReviewers("XTAP_ACCESS_REVIEW_REVIEWERS names no reviewer")
    client = await ClientRegistry(app.tables).get(tenant_id)
    if client is None:
        raise ClientNotRegistered(f"{tenant_id} is not a registered client")
    ledger = JobLedger(app.tables)
    job = _queued_job(client, str(uuid.uuid4()), requested_by, now)
    for _ in range(CLAIM_ROUNDS):
        index = await ledger.index(CLIENT_REVIEW_INDEX, client.tenant_id)
        pending = await _pending_job(ledger, index, now)
        if pending is not None:
            return pending
        if await ledger.claim_index(CLIENT_REVIEW_INDEX, client.tenant_id, job, now, index):
            break
    else:
        raise RuntimeError(f"could not claim the access-review index of {client.tenant_id}")
    await _enqueue(app, job)
    return job


async def find_definition(graph: GraphClient, display_name: str) -> dict[str, Any] | None:
    """The existing definition with this display name, if any.

    ``$filter=displayName eq '…'`` first; should Graph refuse that filter (400), list the
    definitions and compare names here instead.
    """
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


class StepFailed(Exception):
    """A Graph refusal at one step of an ensure (which step decides the explanation)."""

    def __init__(self, step: str, error: GraphError) -> None:
        super().__init__(f"{step}: {error}")
        self.step = step
        self.error = error


async def ensure_guests_group(graph: GraphClient, client: ClientRecord, vendor_name: str) -> str:
    """The client's guests group's ID: found by ``mailNickname``, else created."""
    nickname = guests_group_nickname(client)
    try:
        async for page in graph.get_pages(
            "/groups", {"$filter": f"mailNickname eq {quote(nickname)}", "$select": "id"}
        ):
            for group in page:
                if group.get("id"):
                    return str(group["id"])
    except GraphError as exc:
        raise StepFailed("group", exc) from exc
    try:
        created = await graph.post_json("/groups", guests_group_body(client, vendor_name))
    except GraphError as exc:
        raise StepFailed("group", exc) from exc
    return str((created or {}).get("id") or "")


async def client_guests(graph: GraphClient, client: ClientRecord) -> list[dict[str, Any]]:
    """The vendor tenant's guests whose mail is at one of the client's domains."""
    users: dict[str, dict[str, Any]] = {}
    for domain in client.domains:
        params = {
            "$filter": f"endswith(mail,{quote('@' + domain)}) and userType eq {quote('Guest')}",
            "$count": "true",
            "$select": ",".join(GUEST_SELECT),
            "$top": "999",
        }
        try:
            async for page in graph.get_pages("/users", params, headers=ADVANCED_QUERY):
                for user in page:
                    if isinstance(user, dict) and user.get("id"):
                        users[str(user["id"]).lower()] = user
        except GraphError as exc:
            raise StepFailed("guests", exc) from exc
    return list(users.values())


async def sync_guests_group(graph: GraphClient, client: ClientRecord, group_id: str) -> str:
    """Make the group hold exactly the client's enabled external guests; say what changed."""
    candidates = await client_guests(graph, client)
    current: list[str] = []
    try:
        async for page in graph.get_pages(
            f"/groups/{group_id}/members", {"$select": "id", "$top": "999"}
        ):
            current.extend(str(m["id"]) for m in page if isinstance(m, dict) and m.get("id"))
        plan = plan_membership(client, candidates, current)
        root = graph.base_url
        for user_id in plan.add:
            response = await graph.request(
                "POST",
                f"/groups/{group_id}/members/$ref",
                body={"@odata.id": f"{root}/directoryObjects/{user_id}"},
            )
            if response.status == 400 and "already exist" in str(response.body):
                continue  # added concurrently: the goal is met
            response.raise_for_status(f"/groups/{group_id}/members/$ref")
        for user_id in plan.remove:
            response = await graph.request("DELETE", f"/groups/{group_id}/members/{user_id}/$ref")
            if response.status != 404:  # already gone
                response.raise_for_status(f"/groups/{group_id}/members/{user_id}/$ref")
    except GraphError as exc:
        raise StepFailed("members", exc) from exc
    return f"{plan.members} guests (+{len(plan.add)}, -{len(plan.remove)})"


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
    await JobLedger(app.tables).save_access_review(failed)
    return EnsureOutcome(failed, "failed")


async def ensure_access_review(
    app: App, message: EnsureAccessReview, now: datetime, *, final_attempt: bool = False
) -> EnsureOutcome:
    ledger = JobLedger(app.tables)
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
                cause="no-reviewers",
            ),
        )
    try:
        await ledger.claim(ACCESS_REVIEW, client.tenant_id, now, CLAIM_LEASE_SECONDS)
    except ClaimHeld as exc:
        log.info("%s; re-queued in %d s", exc, BUSY_RETRY_SECONDS)
        await app.queues.send(QUEUE_ACCESS_REVIEWS, message, visibility_timeout=BUSY_RETRY_SECONDS)
        return EnsureOutcome(job, "busy")
    # A mutex only: each ensure looks again (an admin may have deleted the definition),
    # unless one that started after this job was requested already finished.
    try:
        result = await ledger.review_result(client.tenant_id)
        if result is not None and result.finished_at >= job.requested_at:
            done = job.advance(JobState.RUNNING, now, "another ensure was running")
            done = done.advance(
                JobState.DONE, now, f"finished together with job {result.job_id}"
            ).model_copy(
                update={"definition_id": result.definition_id, "group_id": result.group_id}
            )
            await ledger.save_access_review(done)
            return EnsureOutcome(done, "coalesced")
        return await _ensure_claimed(app, ledger, job, client, reviewers, now, final_attempt)
    finally:
        await ledger.release_claim(ACCESS_REVIEW, client.tenant_id)


async def _ensure_claimed(
    app: App,
    ledger: JobLedger,
    job: AccessReviewJob,
    client: ClientRecord,
    reviewers: tuple[str, ...],
    now: datetime,
    final_attempt: bool,
) -> EnsureOutcome:
    graph = app.graph.vendor()
    name = review_display_name(client)
    job = job.advance(JobState.RUNNING, now, f"ensuring the guests group and '{name}'")
    await ledger.save_access_review(job)
    step = "definition"
    try:
        group_id = await ensure_guests_group(graph, client, app.settings.vendor_name)
        members = await sync_guests_group(graph, client, group_id)
        existing = await find_definition(graph, name)
        if existing is not None:
            definition_id = str(existing.get("id") or "")
            detail = f"found existing definition {definition_id}; group {group_id}: {members}"
            if scope_group_id(existing) != group_id.lower():
                detail += (
                    ". Its scope is not the guests group; delete it to have it recreated "
                    "on the documented scope"
                )
            done = job.advance(JobState.DONE, now, detail).model_copy(
                update={"definition_id": definition_id, "created": False, "group_id": group_id}
            )
            action: Literal["found", "created"] = "found"
        else:
            body = build_review_definition(
                client,
                reviewers,
                vendor_name=app.settings.vendor_name,
                start=now.date(),
                group_id=group_id,
            )
            created = await graph.post_json(DEFINITIONS, body)
            definition_id = str((created or {}).get("id") or "")
            await app.queues.send(
                QUEUE_ALERTS, review_created_alert(client, definition_id, name, now)
            )
            done = job.advance(
                JobState.DONE, now, f"created definition {definition_id}; group {members}"
            ).model_copy(
                update={"definition_id": definition_id, "created": True, "group_id": group_id}
            )
            action = "created"
        await ledger.save_access_review(done)
        await ledger.record_review_result(
            client.tenant_id, job.job_id, definition_id, group_id, now
        )
        return EnsureOutcome(done, action)
    except (GraphError, StepFailed) as caught:
        exc = caught.error if isinstance(caught, StepFailed) else caught
        step = caught.step if isinstance(caught, StepFailed) else step
        failure = explain_review_error(exc.status, exc.code, exc.message, step=step)
        if not failure.permanent and not final_attempt:
            await ledger.save_access_review(
                job.advance(JobState.QUEUED, now, f"Graph answered {exc.status}; will retry")
            )
            raise exc from None
        if not failure.permanent:
            failure = ReviewFailure(
                True,
                f"Gave up after {job.attempts} attempts: {failure.summary}",
                "Check Microsoft Graph service health; the weekly run tries again.",
                cause=f"{step}:unavailable",
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


def review_job_view(job: AccessReviewJob) -> dict[str, Any]:
    return {
        "jobId": job.job_id,
        "state": job.state.value,
        "tenantId": job.tenant_id,
        "client": job.client_name,
        "displayName": job.display_name,
        "definitionId": job.definition_id,
        "groupId": job.group_id,
        "created": job.created,
        "requestedBy": job.requested_by,
        "requestedAt": job.requested_at.isoformat(),
        "updatedAt": job.updated_at.isoformat(),
        "steps": [
            {"at": s.at.isoformat(), "state": s.state.value, "detail": s.detail} for s in job.steps
        ],
        "error": job.error.model_dump() if job.error else None,
    }
