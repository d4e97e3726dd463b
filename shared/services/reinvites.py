"""Use cases: request a re-invite (API, CLI, recovery) and perform one (reset queue).

``request_reinvite`` finds the user in the vendor tenant, checks it is a registered
client's guest, and writes a ``queued`` ledger row before enqueueing the job, so the
status URL works from the moment the 202 is returned. A duplicate request for the same
user inside :data:`DUPLICATE_WINDOW` returns the existing job (unless that one failed:
asking again after fixing the cause is legitimate).

``perform_reinvite`` resets redemption with ``POST /invitations`` (``resetRedemption:
true``, ``invitedUser.id``). It is idempotent on redelivery: a final ledger row means
"nothing to do"; an insert-claim per job means two workers never both POST, and the claim
records Graph's answer, so a worker that crashed after the POST is finished from the claim
instead of resetting twice. Transient Graph failures (429/5xx; the SDK's retry handler
already honoured ``Retry-After``) propagate so the host retries the message; on the last
attempt, and for permanent failures, the job is marked failed with Graph's error
explained. Either way a result alert goes to the outbox.

User lookup by e-mail uses ``$filter=mail eq '…'``: a default (not "advanced") directory
query that Graph answers without ``ConsistencyLevel``. ``otherMails/any(...)`` would
need a lambda over a collection that the simulator (and many proxies) do not support;
guests are invited at their ``mail``, which is the address support staff know.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.config import QUEUE_ALERTS, QUEUE_REINVITES
from shared.domain.jobs import JobError, JobState, ReinviteJob
from shared.domain.messages import ReinviteJobMessage
from shared.domain.odata import quote
from shared.domain.reinvite import (
    GUEST_SELECT,
    ReinviteRequest,
    check_eligibility,
    explain_invitation_error,
    reinvite_result_alert,
)

if TYPE_CHECKING:
    from shared.adapters.graph import GraphClient
    from shared.adapters.job_ledger import JobLedger
    from shared.bootstrap import App
    from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=15)
# Longer than one invocation can run (host.json functionTimeout 10 min): a live worker's
# claim is never taken over, so the only double POST is a crash between Graph's answer
# and the claim update.
CLAIM_LEASE_SECONDS = 600.0
BUSY_RETRY_SECONDS = 60


class ReinviteRefused(Exception):
    """The request cannot be honoured; ``status`` is the HTTP status the API answers."""

    status = 400
    code = "refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UserNotFound(ReinviteRefused):
    status = 404
    code = "user_not_found"


class NotEligible(ReinviteRefused):
    status = 403
    code = "not_eligible"


class AmbiguousUser(ReinviteRefused):
    status = 409
    code = "ambiguous_user"


class RequestRace(ReinviteRefused):
    status = 409
    code = "concurrent_request"


@dataclass(frozen=True)
class RequestOutcome:
    job: ReinviteJob
    existing: bool  # True: a duplicate inside the window, this is the earlier job


@dataclass(frozen=True)
class PerformOutcome:
    job: ReinviteJob
    action: Literal["reset", "already_final", "finished_from_claim", "failed", "busy"]


def _ledger(app: App) -> JobLedger:
    from shared.adapters.job_ledger import JobLedger

    return JobLedger(app.tables)


async def find_vendor_user(
    graph: GraphClient, *, user_id: str | None = None, email: str | None = None
) -> dict[str, Any]:
    """The user in the vendor tenant, by object ID or by ``mail``; raise UserNotFound."""
    from shared.adapters.graph import GraphError

    select = {"$select": ",".join(GUEST_SELECT)}
    if user_id is not None:
        try:
            return dict(await graph.get_json(f"/users/{user_id}", select))
        except GraphError as exc:
            if exc.status in (400, 404):
                raise UserNotFound(f"no user {user_id} in the vendor tenant") from exc
            raise
    if email is None:
        raise ValueError("user_id or email is required")
    body = await graph.get_json("/users", {"$filter": f"mail eq {quote(email)}", **select})
    users = [u for u in body.get("value", []) if isinstance(u, dict)]
    if not users:
        raise UserNotFound(f"no user with mail {email} in the vendor tenant")
    if len(users) > 1:
        raise AmbiguousUser(f"{len(users)} accounts have mail {email}; re-invite by userId")
    return dict(users[0])


async def request_reinvite(
    app: App,
    request: ReinviteRequest,
    requested_by: str,
    now: datetime,
    *,
    origin: Literal["api", "cli", "recovery"] = "api",
    clients: list[ClientRecord] | None = None,
) -> RequestOutcome:
    """Validate against the directory, then queue the job (or return the duplicate)."""
    user = await find_vendor_user(app.graph.vendor(), user_id=request.user_id, email=request.email)
    return await queue_reinvite_for_user(
        app,
        user,
        reason=request.reason,
        requested_by=requested_by,
        now=now,
        send_invitation_message=request.send_invitation_message,
        redirect_url=request.redirect_url,
        origin=origin,
        clients=clients,
    )


async def queue_reinvite_for_user(
    app: App,
    user: dict[str, Any],
    *,
    reason: str,
    requested_by: str,
    now: datetime,
    send_invitation_message: bool = False,
    redirect_url: str | None = None,
    origin: Literal["api", "cli", "recovery"] = "api",
    clients: list[ClientRecord] | None = None,
) -> RequestOutcome:
    """Queue a reset for a user already read from Graph (``GUEST_SELECT`` properties)."""
    from shared.adapters.repositories import ClientRegistry

    if clients is None:
        clients = await ClientRegistry(app.tables).list()
    verdict = check_eligibility(user, clients)
    if not verdict.eligible or verdict.client is None:
        raise NotEligible(verdict.reason)
    user_id = str(user["id"]).lower()
    ledger = _ledger(app)

    existing = await _recent_job(ledger, user_id, now)
    if existing is not None:
        return RequestOutcome(existing, existing=True)

    job = ReinviteJob.queued(
        job_id=str(uuid.uuid4()),
        user_id=user_id,
        reason=reason,
        requested_by=requested_by[:256],
        now=now,
        email=verdict.address.address if verdict.address else user.get("mail"),
        display_name=user.get("displayName"),
        client_tenant_id=verdict.client.tenant_id,
        client_name=verdict.client.name,
        send_invitation_message=send_invitation_message,
        redirect_url=redirect_url,
        origin=origin,
    )
    index = await ledger.user_index(user_id)
    if not await ledger.point_user_at(user_id, job.job_id, now, index):
        # A concurrent request for the same user won the race: answer with its job.
        winner = await _recent_job(ledger, user_id, now)
        if winner is None:
            raise RequestRace(f"another request for {user_id} is being created; retry")
        return RequestOutcome(winner, existing=True)
    await ledger.create_reinvite(job)
    message = ReinviteJobMessage(
        job_id=job.job_id,
        user_id=user_id,
        reason=job.reason,
        requested_by=job.requested_by,
        send_invitation_message=job.send_invitation_message,
        redirect_url=job.redirect_url,
    )
    try:
        await app.queues.send(QUEUE_REINVITES, message)
    except Exception:
        failed = job.advance(
            JobState.FAILED,
            now,
            "could not be queued",
            error=JobError(explanation="The reset queue was unreachable; nothing was done."),
        )
        await ledger.save_reinvite(failed)
        raise
    log.info("reinvite %s queued for %s by %s", job.job_id, user_id, requested_by)
    return RequestOutcome(job, existing=False)


async def _recent_job(ledger: JobLedger, user_id: str, now: datetime) -> ReinviteJob | None:
    index = await ledger.user_index(user_id)
    if index is None:
        return None
    job = await ledger.get_reinvite(index.job_id)
    if job is None or job.state is JobState.FAILED:
        return None
    return job if now - job.requested_at < DUPLICATE_WINDOW else None


async def get_job(app: App, job_id: str) -> ReinviteJob | None:
    return await _ledger(app).get_reinvite(job_id)


def invitation_body(job: ReinviteJob, default_redirect: str) -> dict[str, Any]:
    """``POST /invitations`` for a redemption reset (Graph's documented shape)."""
    return {
        "invitedUserEmailAddress": job.email,
        "inviteRedirectUrl": job.redirect_url or default_redirect,
        "sendInvitationMessage": job.send_invitation_message,
        "resetRedemption": True,
        "invitedUser": {"id": job.user_id},
    }


async def _announce(app: App, job: ReinviteJob, now: datetime) -> None:
    await app.queues.send(QUEUE_ALERTS, reinvite_result_alert(job, now))


async def _allow_invites_from(app: App) -> str | None:
    from shared.adapters.graph import GraphError
    from shared.adapters.policy_reader import read_authorization_policy

    try:
        policy = await read_authorization_policy(app.graph.vendor())
    except GraphError:
        return None
    value = (policy or {}).get("allowInvitesFrom")
    return value if isinstance(value, str) else None


async def _fail(
    app: App,
    ledger: JobLedger,
    job: ReinviteJob,
    now: datetime,
    error: JobError,
) -> PerformOutcome:
    failed = job.advance(JobState.FAILED, now, error.explanation or error.message, error=error)
    await ledger.save_reinvite(failed)
    await _announce(app, failed, now)
    return PerformOutcome(failed, "failed")


async def perform_reinvite(
    app: App, message: ReinviteJobMessage, now: datetime, *, final_attempt: bool = False
) -> PerformOutcome:
    from shared.adapters.graph import GraphError
    from shared.adapters.job_ledger import REINVITE, ClaimHeld

    ledger = _ledger(app)
    job = await ledger.get_reinvite(message.job_id)
    if job is None:
        # The request crashed between enqueue and ledger write (or the row was purged):
        # rebuild the job from the message; the guest's address is read below.
        job = ReinviteJob.queued(
            job_id=message.job_id,
            user_id=message.user_id,
            reason=message.reason,
            requested_by=message.requested_by,
            now=now,
            send_invitation_message=message.send_invitation_message,
            redirect_url=message.redirect_url,
        )
        if not await ledger.create_reinvite(job):
            job = await ledger.get_reinvite(message.job_id) or job
    if job.state.final:
        # Redelivered: nothing to do. Re-announce (same dedup key) in case the worker that
        # finished it died before its alert was enqueued.
        await _announce(app, job, job.updated_at)
        return PerformOutcome(job, "already_final")

    try:
        claim = await ledger.claim(REINVITE, job.job_id, now, CLAIM_LEASE_SECONDS)
    except ClaimHeld as exc:
        # Another worker is resetting this very job: look again later, without burning
        # one of the host's dequeue attempts (which would end in the poison queue).
        log.info("%s; re-queued in %d s", exc, BUSY_RETRY_SECONDS)
        await app.queues.send(QUEUE_REINVITES, message, visibility_timeout=BUSY_RETRY_SECONDS)
        return PerformOutcome(job, "busy")
    if claim is not None:
        # Graph already answered a worker that died before updating the ledger.
        done = job.advance(JobState.RUNNING, now, "finishing from the recorded Graph answer")
        done = done.advance(
            JobState.DONE, now, f"invitation {claim.result.get('invitationId', '?')} (recorded)"
        ).model_copy(update={"invitation_id": claim.result.get("invitationId")})
        await ledger.save_reinvite(done)
        await _announce(app, done, now)
        return PerformOutcome(done, "finished_from_claim")

    graph = app.graph.vendor()
    job = job.advance(JobState.RUNNING, now, f"attempt {job.attempts + 1}: POST /invitations")
    await ledger.save_reinvite(job)
    try:
        if job.email is None:
            try:
                user = await find_vendor_user(graph, user_id=job.user_id)
            except UserNotFound as exc:
                await ledger.release_claim(REINVITE, job.job_id)
                return await _fail(
                    app, ledger, job, now, JobError(status=404, explanation=exc.message)
                )
            from shared.adapters.repositories import ClientRegistry

            verdict = check_eligibility(user, await ClientRegistry(app.tables).list())
            if not verdict.eligible or verdict.address is None or verdict.client is None:
                await ledger.release_claim(REINVITE, job.job_id)
                return await _fail(app, ledger, job, now, JobError(explanation=verdict.reason))
            job = job.model_copy(
                update={
                    "email": verdict.address.address,
                    "display_name": user.get("displayName"),
                    "client_tenant_id": verdict.client.tenant_id,
                    "client_name": verdict.client.name,
                }
            )
        body = invitation_body(job, app.settings.reinvite_redirect_url)
        response = await graph.post_json("/invitations", body)
    except GraphError as exc:
        await ledger.release_claim(REINVITE, job.job_id)
        if exc.transient and not final_attempt:
            retry = job.advance(
                JobState.QUEUED, now, f"Graph answered {exc.status} {exc.code}; will retry"
            )
            await ledger.save_reinvite(retry)
            raise
        allow = await _allow_invites_from(app) if exc.status == 403 else None
        explained = explain_invitation_error(
            exc.status, exc.code, exc.message, allow_invites_from=allow
        )
        summary = explained.summary
        if exc.transient:
            summary = f"Gave up after {job.attempts} attempts. {summary}"
        return await _fail(
            app,
            ledger,
            job,
            now,
            JobError(
                status=exc.status,
                code=exc.code[:100],
                message=exc.message[:1000],
                explanation=summary[:2000],
                remediation=explained.remediation[:2000],
            ),
        )
    except Exception:
        await ledger.release_claim(REINVITE, job.job_id)
        raise
    invitation_id = str((response or {}).get("id") or "")
    status = str((response or {}).get("status") or "")
    # Record Graph's answer on the claim first: from here on, a redelivery finishes the
    # job from it and never POSTs again.
    await ledger.finish_claim(
        REINVITE, job.job_id, now, {"invitationId": invitation_id, "status": status}
    )
    done = job.advance(
        JobState.DONE, now, f"redemption reset: invitation {invitation_id} ({status})"
    ).model_copy(update={"invitation_id": invitation_id or None})
    await ledger.save_reinvite(done)
    await _announce(app, done, now)
    return PerformOutcome(done, "reset")


def job_view(job: ReinviteJob, status_url: str | None = None) -> dict[str, Any]:
    """The public JSON of a job (API and CLI)."""
    view: dict[str, Any] = {
        "jobId": job.job_id,
        "state": job.state.value,
        "userId": job.user_id,
        "email": job.email,
        "displayName": job.display_name,
        "client": (
            {"tenantId": job.client_tenant_id, "name": job.client_name}
            if job.client_tenant_id
            else None
        ),
        "reason": job.reason,
        "sendInvitationMessage": job.send_invitation_message,
        "redirectUrl": job.redirect_url,
        "requestedBy": job.requested_by,
        "requestedAt": job.requested_at.isoformat(),
        "updatedAt": job.updated_at.isoformat(),
        "attempts": job.attempts,
        "invitationId": job.invitation_id,
        "steps": [
            {"at": s.at.isoformat(), "state": s.state.value, "detail": s.detail} for s in job.steps
        ],
        "error": (
            {
                "status": job.error.status,
                "code": job.error.code,
                "message": job.error.message,
                "explanation": job.error.explanation,
                "remediation": job.error.remediation,
            }
            if job.error
            else None
        ),
    }
    if status_url:
        view["statusUrl"] = status_url
    return view
