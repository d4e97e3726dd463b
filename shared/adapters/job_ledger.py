"""The job ledger (``xtapJobs``): job rows, "latest job" index rows and side-effect claims.

Partitions:

* ``reinvite`` / ``access-review`` — one row per job (``Record`` holds the JSON model);
* ``reinvite-user`` / ``access-review-client`` — the latest job per user (re-invites) or
  per client (on-demand access-review ensures). The index row carries a snapshot of the
  job it points at, so it is the **one atomic claim** of a request: whoever inserts it (or
  replaces it under its ETag) owns the request, and every loser reads the winner's job from
  the same row even before the winner has written the job row itself (issue 13.1);
* ``reinvite-claim`` / ``access-review-claim`` — an insert-claim per side effect: whoever
  creates the row may call Graph; the row then records the result, so a redelivered
  message finishes the job from it instead of calling Graph again. A claim left
  ``uncertain`` records a call whose answer never came (timeout, 5xx after the service may
  have acted): whoever takes it over checks the directory before calling again;
* ``access-review-result`` — the last finished ensure per client, so ensures that queued
  up behind a running one finish from its result instead of calling Graph again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from azure.core.exceptions import ResourceNotFoundError

from shared.adapters.storage import EntityConflict, StorageTables
from shared.config import TABLE_JOBS
from shared.domain.jobs import AccessReviewJob, JobRecord, ReinviteJob

REINVITE = "reinvite"
ACCESS_REVIEW = "access-review"
USER_INDEX = "reinvite-user"
CLIENT_REVIEW_INDEX = "access-review-client"
REVIEW_RESULT = "access-review-result"

J = TypeVar("J", bound=JobRecord)


def _claim_partition(kind: str) -> str:
    return f"{kind}-claim"


@dataclass(frozen=True)
class JobIndex:
    """An index row: the latest job for a key, with the snapshot written atomically."""

    job_id: str
    at: datetime
    snapshot: str  # the job's JSON when the index row was written ("" on old rows)
    etag: str

    def job(self, model: type[J]) -> J | None:
        return model.model_validate_json(self.snapshot) if self.snapshot else None


@dataclass(frozen=True)
class Claim:
    kind: str
    key: str
    status: str  # working | finished | uncertain
    claimed_at: datetime
    result: dict[str, str]
    etag: str
    # uncertain: when the unanswered call was sent (the directory is checked from then on)
    attempted_at: datetime | None = None


@dataclass(frozen=True)
class ReviewResult:
    job_id: str
    definition_id: str
    group_id: str
    finished_at: datetime


class ClaimHeld(Exception):
    """Another worker holds the claim (and its lease has not expired)."""


class JobLedger:
    def __init__(self, tables: StorageTables) -> None:
        self._tables = tables

    # ------------------------------------------------------------------ job rows
    @staticmethod
    def _entity(partition: str, job: JobRecord) -> dict[str, Any]:
        return {
            "PartitionKey": partition,
            "RowKey": job.job_id,
            "State": job.state.value,
            "UpdatedAt": job.updated_at,
            "Record": job.model_dump_json(),
        }

    async def create_reinvite(self, job: ReinviteJob) -> bool:
        return await self._tables.insert(TABLE_JOBS, self._entity(REINVITE, job))

    async def save_reinvite(self, job: ReinviteJob) -> None:
        await self._tables.upsert(TABLE_JOBS, self._entity(REINVITE, job))

    async def get_reinvite(self, job_id: str) -> ReinviteJob | None:
        row = await self._tables.get(TABLE_JOBS, REINVITE, job_id)
        return ReinviteJob.model_validate_json(row["Record"]) if row else None

    async def create_access_review(self, job: AccessReviewJob) -> bool:
        return await self._tables.insert(TABLE_JOBS, self._entity(ACCESS_REVIEW, job))

    async def save_access_review(self, job: AccessReviewJob) -> None:
        await self._tables.upsert(TABLE_JOBS, self._entity(ACCESS_REVIEW, job))

    async def get_access_review(self, job_id: str) -> AccessReviewJob | None:
        row = await self._tables.get(TABLE_JOBS, ACCESS_REVIEW, job_id)
        return AccessReviewJob.model_validate_json(row["Record"]) if row else None

    async def count_by_state(self, kind: str = REINVITE) -> dict[str, int]:
        rows = await self._tables.query(
            TABLE_JOBS, "PartitionKey eq @p", {"p": kind}, select=["State"]
        )
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["State"]] = counts.get(row["State"], 0) + 1
        return counts

    # --------------------------------------------------------------- index rows
    async def index(self, partition: str, key: str) -> JobIndex | None:
        row = await self._tables.get(TABLE_JOBS, partition, key)
        if row is None:
            return None
        return JobIndex(
            job_id=row["JobId"], at=row["At"], snapshot=row.get("Job") or "", etag=row["_etag"]
        )

    async def claim_index(
        self, partition: str, key: str, job: JobRecord, now: datetime, previous: JobIndex | None
    ) -> bool:
        """Point ``key`` at ``job`` in one atomic write; False if someone else moved it first."""
        entity = {
            "PartitionKey": partition,
            "RowKey": key,
            "JobId": job.job_id,
            "At": now,
            "Job": job.model_dump_json(),
        }
        if previous is None:
            return await self._tables.insert(TABLE_JOBS, entity)
        try:
            await self._tables.replace_if_match(TABLE_JOBS, entity, previous.etag)
        except EntityConflict:
            return False
        return True

    async def indexed_job(
        self, index: JobIndex | None, model: type[J], now: datetime, grace: timedelta
    ) -> J | None:
        """The job an index row points at: its job row, or — while the request that won the
        index is still writing that row — the snapshot; after ``grace`` without a row, the
        winner died between its two writes and the index claims nothing."""
        if index is None:
            return None
        partition = REINVITE if model is ReinviteJob else ACCESS_REVIEW
        row = await self._tables.get(TABLE_JOBS, partition, index.job_id)
        if row is not None:
            return model.model_validate_json(row["Record"])
        snapshot = index.job(model)
        return snapshot if snapshot is not None and now - index.at < grace else None

    async def user_index(self, user_id: str) -> JobIndex | None:
        return await self.index(USER_INDEX, user_id)

    # ----------------------------------------------------------- review results
    async def record_review_result(
        self, tenant_id: str, job_id: str, definition_id: str, group_id: str, now: datetime
    ) -> None:
        await self._tables.upsert(
            TABLE_JOBS,
            {
                "PartitionKey": REVIEW_RESULT,
                "RowKey": tenant_id,
                "JobId": job_id,
                "DefinitionId": definition_id,
                "GroupId": group_id,
                "FinishedAt": now,
            },
        )

    async def review_result(self, tenant_id: str) -> ReviewResult | None:
        row = await self._tables.get(TABLE_JOBS, REVIEW_RESULT, tenant_id)
        if row is None:
            return None
        return ReviewResult(
            job_id=row["JobId"],
            definition_id=row.get("DefinitionId") or "",
            group_id=row.get("GroupId") or "",
            finished_at=row["FinishedAt"],
        )

    # -------------------------------------------------------------------- claims
    async def claim(self, kind: str, key: str, now: datetime, lease_seconds: float) -> Claim | None:
        """Claim a side effect. None: claimed by us, go ahead. A finished Claim: already done
        (use its result). An uncertain Claim: now ours, but an earlier call may have acted —
        check before calling again. Raises :class:`ClaimHeld` while another worker's lease
        runs."""
        entity = {
            "PartitionKey": _claim_partition(kind),
            "RowKey": key,
            "Status": "working",
            "ClaimedAt": now,
            "Result": "{}",
        }
        if await self._tables.insert(TABLE_JOBS, entity):
            return None
        row = await self._tables.get(TABLE_JOBS, _claim_partition(kind), key)
        if row is None:  # released between our insert and read: try once more
            if await self._tables.insert(TABLE_JOBS, entity):
                return None
            raise ClaimHeld(f"{kind} {key}: claimed concurrently")
        claim = self._claim_from(kind, row)
        if claim.status == "finished":
            return claim
        if claim.status == "uncertain":
            # Take it over, keeping when the unanswered call went out.
            entity["AttemptedAt"] = claim.attempted_at or claim.claimed_at
            try:
                await self._tables.replace_if_match(TABLE_JOBS, entity, claim.etag)
            except EntityConflict:
                raise ClaimHeld(f"{kind} {key}: taken over concurrently") from None
            return claim
        if (now - claim.claimed_at).total_seconds() < lease_seconds:
            raise ClaimHeld(f"{kind} {key}: another worker is on it since {claim.claimed_at}")
        if row.get("AttemptedAt") is not None:
            # The holder died after taking over an uncertain claim: still uncertain.
            entity["AttemptedAt"] = row["AttemptedAt"]
        try:  # the holder died: take the claim over
            await self._tables.replace_if_match(TABLE_JOBS, entity, claim.etag)
        except EntityConflict:
            raise ClaimHeld(f"{kind} {key}: lost a takeover race") from None
        if row.get("AttemptedAt") is not None:
            return Claim(kind, key, "uncertain", now, {}, "", row["AttemptedAt"])
        return None

    async def finish_claim(
        self, kind: str, key: str, now: datetime, result: dict[str, str]
    ) -> None:
        await self._tables.upsert(
            TABLE_JOBS,
            {
                "PartitionKey": _claim_partition(kind),
                "RowKey": key,
                "Status": "finished",
                "ClaimedAt": now,
                "Result": json.dumps(result),
            },
        )

    async def mark_uncertain(
        self, kind: str, key: str, now: datetime, attempted_at: datetime
    ) -> None:
        """The call went out and no answer came back: the next worker must check first."""
        await self._tables.upsert(
            TABLE_JOBS,
            {
                "PartitionKey": _claim_partition(kind),
                "RowKey": key,
                "Status": "uncertain",
                "ClaimedAt": now,
                "AttemptedAt": attempted_at,
                "Result": "{}",
            },
        )

    async def release_claim(self, kind: str, key: str) -> None:
        try:
            await self._tables.delete(TABLE_JOBS, _claim_partition(kind), key)
        except ResourceNotFoundError:
            pass

    @staticmethod
    def _claim_from(kind: str, row: dict[str, Any]) -> Claim:
        return Claim(
            kind=kind,
            key=row["RowKey"],
            status=row.get("Status", "working"),
            claimed_at=row["ClaimedAt"],
            result=json.loads(row.get("Result") or "{}"),
            etag=row["_etag"],
            attempted_at=row.get("AttemptedAt"),
        )
