"""The job ledger's records: one row per re-invite or access-review job, with its history.

A job moves ``queued → running → done | failed``; a transient failure sends a running job
back to ``queued`` (the queue retries it). ``done`` and ``failed`` are final: a redelivered
message finds them and does nothing. Every move appends a step, so the ledger answers
"what happened, when, and why" for support staff (``GET /api/v1/reinvites/{jobId}``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

MAX_STEPS = 40  # keeps one ledger row far below the 64 KiB table property limit


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED)


_ALLOWED: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.FAILED}),
    JobState.RUNNING: frozenset(
        {JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED}
    ),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
}


class InvalidTransition(ValueError):
    pass


class JobStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: datetime
    state: JobState
    detail: str = Field(default="", max_length=1000)


class JobError(BaseModel):
    """Why a job failed, in Graph's words and in ours."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    status: int = 0
    code: str = ""
    message: str = Field(default="", max_length=1000)
    explanation: str = Field(default="", max_length=2000)
    remediation: str = Field(default="", max_length=2000)


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["reinvite", "access_review"]
    job_id: str = Field(min_length=1, max_length=64)
    state: JobState = JobState.QUEUED
    requested_by: str = Field(min_length=1, max_length=256)
    requested_at: datetime
    updated_at: datetime
    attempts: int = 0
    steps: tuple[JobStep, ...] = ()
    error: JobError | None = None

    def advance(
        self, state: JobState, now: datetime, detail: str = "", *, error: JobError | None = None
    ) -> Self:
        """The job after moving to ``state``; raises :class:`InvalidTransition` if not allowed."""
        if state not in _ALLOWED[self.state]:
            raise InvalidTransition(f"job {self.job_id}: {self.state} → {state} is not allowed")
        steps = (*self.steps, JobStep(at=now, state=state, detail=detail[:1000]))
        if len(steps) > MAX_STEPS:
            steps = (steps[0], *steps[-(MAX_STEPS - 1) :])
        update: dict[str, object] = {"state": state, "updated_at": now, "steps": steps}
        if state is JobState.RUNNING:
            update["attempts"] = self.attempts + 1
        if error is not None:
            update["error"] = error
        return self.model_copy(update=update)


class ReinviteJob(JobRecord):
    kind: Literal["reinvite"] = "reinvite"
    user_id: str
    email: str | None = None  # the guest's address: where the invitation goes
    display_name: str | None = None
    client_tenant_id: str | None = None
    client_name: str | None = None
    reason: str = Field(min_length=1, max_length=500)
    send_invitation_message: bool = False
    redirect_url: str | None = None
    invitation_id: str | None = None
    origin: Literal["api", "cli", "recovery"] = "api"
    # The requester's address (UPN/mail claim), told the result by mail; ``requested_by``
    # stays the display form "name (object ID)".
    requester_email: str | None = Field(default=None, max_length=254)

    @classmethod
    def queued(
        cls,
        *,
        job_id: str,
        user_id: str,
        reason: str,
        requested_by: str,
        now: datetime,
        email: str | None = None,
        display_name: str | None = None,
        client_tenant_id: str | None = None,
        client_name: str | None = None,
        send_invitation_message: bool = False,
        redirect_url: str | None = None,
        origin: Literal["api", "cli", "recovery"] = "api",
        requester_email: str | None = None,
    ) -> ReinviteJob:
        return cls(
            job_id=job_id,
            user_id=user_id,
            email=email,
            display_name=display_name,
            client_tenant_id=client_tenant_id,
            client_name=client_name,
            reason=reason,
            requested_by=requested_by,
            requested_at=now,
            updated_at=now,
            send_invitation_message=send_invitation_message,
            redirect_url=redirect_url,
            origin=origin,
            requester_email=requester_email,
            steps=(JobStep(at=now, state=JobState.QUEUED, detail=f"requested by {requested_by}"),),
        )


class AccessReviewJob(JobRecord):
    kind: Literal["access_review"] = "access_review"
    tenant_id: str
    client_name: str | None = None
    display_name: str | None = None
    definition_id: str | None = None
    created: bool = False  # True if this job created the definition, False if it found one
    group_id: str | None = None  # the client's guests group the review covers

    @classmethod
    def queued(
        cls, *, job_id: str, tenant_id: str, requested_by: str, now: datetime
    ) -> AccessReviewJob:
        return cls(
            job_id=job_id,
            tenant_id=tenant_id,
            requested_by=requested_by,
            requested_at=now,
            updated_at=now,
            steps=(JobStep(at=now, state=JobState.QUEUED, detail=f"requested by {requested_by}"),),
        )
