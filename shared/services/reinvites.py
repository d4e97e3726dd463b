"""Use cases: request a re-invite (API, CLI, recovery) and perform one (reset queue).

``request_reinvite`` finds the user in the vendor tenant, checks it is a registered
client's *external* guest, and claims the user's index row in one atomic write (insert, or
replace under its ETag) that carries the new job: of any number of parallel identical
requests exactly one wins and queues a job, and every other one answers with the winner's
job — read from that same row even before the winner wrote the job row (issue 13.1). A
request for the same user inside :data:`DUPLICATE_WINDOW` returns the existing job, unless
that one failed (asking again after fixing the cause is legitimate), or answers 409 when
its parameters (``sendInvitationMessage``, ``redirectUrl``) differ from the pending job's
(issue 13.10). ``redirectUrl`` may only name the vendor's hosts
(``XTAP_REINVITE_REDIRECT_HOSTS``). The requester's e-mail address (UPN/mail claim) is
kept on the job so the result mail reaches them (issue 13.8).

``perform_reinvite`` resets redemption with ``POST /invitations`` (``resetRedemption:
true``, ``invitedUser.id``). It is idempotent on redelivery: a final ledger row means
"nothing to do"; an insert-claim per job means two workers never both POST, and the claim
records Graph's answer, so a worker that crashed after the POST is finished from the claim
instead of resetting twice. The POST is never replayed blindly (issue 11.6): the SDK's
retry handler is switched off for it (it would replay it on 503/504, and a replay sends
the guest a second invitation e-mail); a 429 — refused before anything happened — is
retried here, honouring ``Retry-After``; a 5xx, a timeout or a lost connection may come
*after* Graph acted, so the claim is left ``uncertain`` and whoever retries first looks at
the guest in the directory: a redemption state changed to ``PendingAcceptance`` since the
unanswered POST means the reset happened, and the job is finished without posting again.
On the last attempt, and for permanent failures, the job is marked failed with Graph's
error explained. Either way a result alert goes to the outbox.

User lookup by e-mail uses ``$filter=mail eq '…'``: a default (not "advanced") directory
query that Graph answers without ``ConsistencyLevel``. ``otherMails/any(...)`` would
need a lambda over a collection that the simulator (and many proxies) do not support;
guests are invited at their ``mail``, which is the address support staff know.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.adapters.graph import GraphClient, GraphError
from shared.adapters.job_ledger import REINVITE, USER_INDEX, ClaimHeld, JobIndex, JobLedger
from shared.adapters.repositories import ClientRegistry
from shared.config import QUEUE_ALERTS, QUEUE_REINVITES
from shared.domain.guests import parse_graph_datetime
from shared.domain.jobs import JobError, JobState, ReinviteJob
from shared.domain.messages import ReinviteJobMessage
from shared.domain.odata import quote
from shared.domain.reinvite import (
    GUEST_SELECT,
    INVITING_ROLE_IDS,
    ReinviteRequest,
    check_eligibility,
    explain_invitation_error,
    redirect_allowed,
    reinvite_result_alert,
)
from shared.services.vendor_inputs import authorization_policy, inviter_role_ids

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.clients import ClientRecord

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=15)
# An index row whose job row never appeared: its creator is writing it (answer with the
# snapshot) or died between the two writes (after this long, a new request may replace it).
PENDING_GRACE = timedelta(seconds=60)
CLAIM_ROUNDS = 8
# Longer than one invocation can run (host.json functionTimeout 10 min): a live worker's
# claim is never taken over, so the only double POST is a crash between Graph's answer
# and the claim update.
CLAIM_LEASE_SECONDS = 600.0
BUSY_RETRY_SECONDS = 60
# 429 means Graph refused before acting: safe to send again, a few times, in-invocation.
THROTTLE_RETRIES = 3
MAX_THROTTLE_WAIT_SECONDS = 30.0
# Statuses after which a POST may or may not have acted (the answer is lost, not a "no").
AMBIGUOUS_STATUSES = frozenset({0, 408, 500, 502, 503, 504})
# Graph's clock and ours: a reset stamped this much before our POST still counts as ours.
CLOCK_SKEW = timedelta(minutes=2)


class ReinviteRefused(Exception):
    """The request cannot be honoured; ``status`` is the HTTP status the API answers."""

    status = 400
    code = "refused"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidRedirect(ReinviteRefused):
    status = 400
    code = "invalid_request"


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


class RequestConflict(ReinviteRefused):
    """A repeat of a pending request, with other parameters: not silently merged."""

    status = 409
    code = "conflicting_request"


@dataclass(frozen=True)
class RequestOutcome:
    job: ReinviteJob
    existing: bool  # True: a duplicate inside the window, this is the earlier job


@dataclass(frozen=True)
class PerformOutcome:
    job: ReinviteJob
    action: Literal["reset", "already_final", "finished_from_claim", "confirmed", "failed", "busy"]


async def find_vendor_user(
    graph: GraphClient, *, user_id: str | None = None, email: str | None = None
) -> dict[str, Any]:
    """The user in the vendor tenant, by object ID or by ``mail``; raise UserNotFound."""
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
    requester_email: str | None = None,
) -> RequestOutcome:
    """Validate against the configuration and the directory, then queue the job (or return
    the duplicate)."""
    if request.redirect_url is not None and not redirect_allowed(
        request.redirect_url, app.settings.reinvite_redirect_hosts
    ):
        hosts = ", ".join(app.settings.reinvite_redirect_hosts) or "none"
        raise InvalidRedirect(
            f"must point at one of the vendor's hosts ({hosts}); set "
            "XTAP_REINVITE_REDIRECT_HOSTS to allow another",
            field="redirectUrl",
        )
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
        requester_email=requester_email,
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
    requester_email: str | None = None,
) -> RequestOutcome:
    """Queue a reset for a user already read from Graph (``GUEST_SELECT`` properties)."""
    if clients is None:
        clients = await ClientRegistry(app.tables).list()
    verdict = check_eligibility(user, clients)
    if not verdict.eligible or verdict.client is None:
        raise NotEligible(verdict.reason)
    user_id = str(user["id"]).lower()
    ledger = JobLedger(app.tables)
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
        requester_email=requester_email,
    )
    for _ in range(CLAIM_ROUNDS):
        index = await ledger.user_index(user_id)
        live = await _live_job(ledger, index, now)
        if live is not None:
            if origin != "recovery" and not live.state.final:
                _same_parameters(live, job, app.settings.reinvite_redirect_url)
            return RequestOutcome(live, existing=True)
        if await ledger.claim_index(USER_INDEX, user_id, job, now, index):
            break
    else:
        raise RequestRace(f"another request for {user_id} is being created; retry")
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


async def _live_job(ledger: JobLedger, index: JobIndex | None, now: datetime) -> ReinviteJob | None:
    """The user's job that a new request must join, if any."""
    job = await ledger.indexed_job(index, ReinviteJob, now, PENDING_GRACE)
    if job is None or job.state is JobState.FAILED:
        return None
    return job if now - job.requested_at < DUPLICATE_WINDOW else None


def _same_parameters(pending: ReinviteJob, asked: ReinviteJob, default_redirect: str) -> None:
    differences = []
    if pending.send_invitation_message != asked.send_invitation_message:
        differences.append(f"sendInvitationMessage {str(pending.send_invitation_message).lower()}")
    if (pending.redirect_url or default_redirect) != (asked.redirect_url or default_redirect):
        differences.append(f"redirectUrl {pending.redirect_url or default_redirect}")
    if differences:
        raise RequestConflict(
            f"a re-invite of this guest is already {pending.state.value} (job "
            f"{pending.job_id}) with {', '.join(differences)}; wait for it to finish or ask "
            "with the same parameters"
        )


async def get_job(app: App, job_id: str) -> ReinviteJob | None:
    return await JobLedger(app.tables).get_reinvite(job_id)


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


async def _post_reset(graph: GraphClient, body: dict[str, Any]) -> Any:
    """One logical POST: never replayed by the SDK; 429 (nothing happened) waited out here."""
    for attempt in range(THROTTLE_RETRIES + 1):
        try:
            return await graph.post_json("/invitations", body, no_retry=True)
        except GraphError as exc:
            if exc.status != 429 or attempt == THROTTLE_RETRIES:
                raise
            wait = exc.retry_after if exc.retry_after is not None else 2.0**attempt
            await asyncio.sleep(min(max(wait, 0.0), MAX_THROTTLE_WAIT_SECONDS))
    raise AssertionError("unreachable")


async def _reset_visible(graph: GraphClient, user_id: str, since: datetime) -> bool:
    """Did a redemption reset land since ``since``? (The answer to it was lost.)"""
    user = await graph.get_json(
        f"/users/{user_id}", {"$select": "id,externalUserState,externalUserStateChangeDateTime"}
    )
    if not isinstance(user, dict) or user.get("externalUserState") != "PendingAcceptance":
        return False
    changed = parse_graph_datetime(user.get("externalUserStateChangeDateTime"))
    return changed is not None and changed >= since - CLOCK_SKEW


async def _finish(
    app: App,
    ledger: JobLedger,
    job: ReinviteJob,
    now: datetime,
    detail: str,
    result: dict[str, str],
    action: Literal["reset", "confirmed"],
) -> PerformOutcome:
    # Record the outcome on the claim first: from here on, a redelivery finishes the job
    # from it and never POSTs again.
    await ledger.finish_claim(REINVITE, job.job_id, now, result)
    done = job.advance(JobState.DONE, now, detail).model_copy(
        update={"invitation_id": result.get("invitationId") or None}
    )
    await ledger.save_reinvite(done)
    await _announce(app, done, now)
    return PerformOutcome(done, action)


async def perform_reinvite(
    app: App, message: ReinviteJobMessage, now: datetime, *, final_attempt: bool = False
) -> PerformOutcome:
    ledger = JobLedger(app.tables)
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
    if claim is not None and claim.status == "finished":
        # Graph already answered a worker that died before updating the ledger.
        done = job.advance(JobState.RUNNING, now, "finishing from the recorded Graph answer")
        done = done.advance(
            JobState.DONE, now, f"invitation {claim.result.get('invitationId', '?')} (recorded)"
        ).model_copy(update={"invitation_id": claim.result.get("invitationId")})
        await ledger.save_reinvite(done)
        await _announce(app, done, now)
        return PerformOutcome(done, "finished_from_claim")
    unanswered_since = claim.attempted_at if claim is not None else None

    graph = app.graph.vendor()
    job = job.advance(JobState.RUNNING, now, f"attempt {job.attempts + 1}: POST /invitations")
    await ledger.save_reinvite(job)
    posted_at: datetime | None = None
    try:
        if job.email is None:
            try:
                user = await find_vendor_user(graph, user_id=job.user_id)
            except UserNotFound as exc:
                await ledger.release_claim(REINVITE, job.job_id)
                return await _fail(
                    app, ledger, job, now, JobError(status=404, explanation=exc.message)
                )
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
        if unanswered_since is not None and await _reset_visible(
            graph, job.user_id, unanswered_since
        ):
            return await _finish(
                app,
                ledger,
                job,
                now,
                "redemption reset confirmed in the directory (Graph's answer to the earlier "
                "POST was lost; not posted again)",
                {"invitationId": "", "status": "PendingAcceptance", "confirmedBy": "directory"},
                "confirmed",
            )
        posted_at = now
        response = await _post_reset(
            graph, invitation_body(job, app.settings.reinvite_redirect_url)
        )
    except GraphError as exc:
        if posted_at is not None and exc.status in AMBIGUOUS_STATUSES:
            return await _unanswered(
                app, ledger, graph, job, now, exc, unanswered_since or posted_at, final_attempt
            )
        if exc.transient and not final_attempt:
            await _hand_back(ledger, job, now, unanswered_since)
            retry = job.advance(
                JobState.QUEUED, now, f"Graph answered {exc.status} {exc.code}; will retry"
            )
            await ledger.save_reinvite(retry)
            raise
        await ledger.release_claim(REINVITE, job.job_id)
        return await _refused(app, ledger, job, now, exc)
    except Exception:
        await _hand_back(ledger, job, now, unanswered_since or posted_at)
        raise
    invitation_id = str((response or {}).get("id") or "")
    status = str((response or {}).get("status") or "")
    return await _finish(
        app,
        ledger,
        job,
        now,
        f"redemption reset: invitation {invitation_id} ({status})",
        {"invitationId": invitation_id, "status": status},
        "reset",
    )


async def _hand_back(
    ledger: JobLedger, job: ReinviteJob, now: datetime, unanswered_since: datetime | None
) -> None:
    """Give the claim back for a retry — still ``uncertain`` if an answer was ever lost, so
    the retry checks the directory before it POSTs (a failed check must not erase that)."""
    if unanswered_since is not None:
        await ledger.mark_uncertain(REINVITE, job.job_id, now, unanswered_since)
    else:
        await ledger.release_claim(REINVITE, job.job_id)


async def _unanswered(
    app: App,
    ledger: JobLedger,
    graph: GraphClient,
    job: ReinviteJob,
    now: datetime,
    exc: GraphError,
    since: datetime,
    final_attempt: bool,
) -> PerformOutcome:
    """The POST went out and its answer was lost: never simply send it again."""
    await ledger.mark_uncertain(REINVITE, job.job_id, now, since)
    if not final_attempt:
        retry = job.advance(
            JobState.QUEUED,
            now,
            f"no usable answer from Graph ({exc.status} {exc.code}); the directory is checked "
            "before any new POST",
        )
        await ledger.save_reinvite(retry)
        raise exc
    try:
        visible = await _reset_visible(graph, job.user_id, since)
    except GraphError:
        visible = False
    if visible:
        return await _finish(
            app,
            ledger,
            job,
            now,
            "redemption reset confirmed in the directory (Graph's answer was lost)",
            {"invitationId": "", "status": "PendingAcceptance", "confirmedBy": "directory"},
            "confirmed",
        )
    await ledger.release_claim(REINVITE, job.job_id)
    return await _refused(app, ledger, job, now, exc)


async def _refused(
    app: App, ledger: JobLedger, job: ReinviteJob, now: datetime, exc: GraphError
) -> PerformOutcome:
    allow = app_can = None
    if exc.status == 403:
        policy = await authorization_policy(app)
        allow = policy.allow_invites_from if policy is not None else None
        roles = await inviter_role_ids(app)
        app_can = None if roles is None else bool(roles & set(INVITING_ROLE_IDS))
    explained = explain_invitation_error(
        exc.status, exc.code, exc.message, allow_invites_from=allow, app_can_invite=app_can
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
        "requesterEmail": job.requester_email,
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
