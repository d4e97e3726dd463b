"""The job ledger's state machine (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.jobs import (
    MAX_STEPS,
    AccessReviewJob,
    InvalidTransition,
    JobError,
    JobState,
    ReinviteJob,
)

T0 = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


def job() -> ReinviteJob:
    return ReinviteJob.queued(
        job_id="5f0c7a8e-1d2b-4c3a-9e8f-7a6b5c4d3e2f",
        user_id="264e6d50-eaec-461e-b187-873b1bcf855f",
        reason="lost MFA device",
        requested_by="support.lead@osttra.com",
        now=T0,
    )


def test_a_retried_job_records_every_step_and_attempt():
    j = job()
    j = j.advance(JobState.RUNNING, T0 + timedelta(seconds=1), "attempt 1")
    j = j.advance(JobState.QUEUED, T0 + timedelta(seconds=2), "429; will retry")
    j = j.advance(JobState.RUNNING, T0 + timedelta(seconds=12), "attempt 2")
    j = j.advance(JobState.DONE, T0 + timedelta(seconds=13), "reset")
    assert [s.state for s in j.steps] == ["queued", "running", "queued", "running", "done"]
    assert j.attempts == 2 and j.state.final
    assert j.updated_at == T0 + timedelta(seconds=13) and j.requested_at == T0
    assert j.steps[0].detail == "requested by support.lead@osttra.com"


@pytest.mark.parametrize("final", [JobState.DONE, JobState.FAILED])
def test_final_states_are_final(final):
    j = job().advance(JobState.RUNNING, T0).advance(final, T0, error=JobError(code="x"))
    for state in JobState:
        with pytest.raises(InvalidTransition):
            j.advance(state, T0)


def test_a_queued_job_cannot_be_done_without_running():
    with pytest.raises(InvalidTransition):
        job().advance(JobState.DONE, T0)
    assert job().advance(JobState.FAILED, T0, "could not be queued").state == "failed"


def test_step_history_is_bounded_but_keeps_the_request():
    j = job()
    for n in range(MAX_STEPS * 2):
        j = j.advance(JobState.RUNNING, T0 + timedelta(seconds=n), f"attempt {n}")
        j = j.advance(JobState.QUEUED, T0 + timedelta(seconds=n), "retry")
    assert len(j.steps) == MAX_STEPS
    assert j.steps[0].detail.startswith("requested by")
    assert j.steps[-1].detail == "retry"


def test_records_round_trip_through_json():
    j = job().advance(JobState.RUNNING, T0)
    assert ReinviteJob.model_validate_json(j.model_dump_json()) == j
    review = AccessReviewJob.queued(
        job_id="20261103-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        requested_by="xtap-watch (timer)",
        now=T0,
    )
    assert AccessReviewJob.model_validate_json(review.model_dump_json()) == review
