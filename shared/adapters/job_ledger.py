"""The job ledger (``xtapJobs``): job rows, per-user "latest request" rows and side-effect claims.

Partitions:

* ``reinvite`` / ``access-review`` — one row per job (``Record`` holds the JSON model);
* ``reinvite-user`` — the latest re-invite job per user, guarded by ETag, which makes a
  duplicate request inside the window return the existing job even under a race;
* ``reinvite-claim`` / ``access-review-claim`` — an insert-claim per side effect: whoever
  creates the row may call Graph; the row then records the result, so a redelivered
  message finishes the job from it instead of calling Graph again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.adapters.storage import EntityConflict, StorageTables
from shared.config import TABLE_JOBS
from shared.domain.jobs import AccessReviewJob, JobRecord, ReinviteJob

REINVITE = "reinvite"
ACCESS_REVIEW = "access-review"
USER_INDEX = "reinvite-user"


def _claim_partition(kind: str) -> str:
    return f"{kind}-claim"


@dataclass(frozen=True)
class UserIndex:
    job_id: str
    etag: str


@dataclass(frozen=True)
class Claim:
    kind: str
    key: str
    status: str  # working | finished
    claimed_at: datetime
    result: dict[str, str]
    etag: str


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

    # ------------------------------------------------------------ per-user index
    async def user_index(self, user_id: str) -> UserIndex | None:
        row = await self._tables.get(TABLE_JOBS, USER_INDEX, user_id)
        return UserIndex(row["JobId"], row["_etag"]) if row else None

    async def point_user_at(
        self, user_id: str, job_id: str, now: datetime, previous: UserIndex | None
    ) -> bool:
        """Make ``job_id`` the user's latest job; False if someone else moved it first."""
        entity = {"PartitionKey": USER_INDEX, "RowKey": user_id, "JobId": job_id, "At": now}
        if previous is None:
            return await self._tables.insert(TABLE_JOBS, entity)
        try:
            await self._tables.replace_if_match(TABLE_JOBS, entity, previous.etag)
        except EntityConflict:
            return False
        return True

    # -------------------------------------------------------------------- claims
    async def claim(self, kind: str, key: str, now: datetime, lease_seconds: float) -> Claim | None:
        """Claim a side effect. None: claimed by us, go ahead. A finished Claim: already done
        (use its result). Raises :class:`ClaimHeld` while another worker's lease runs."""
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
        if (now - claim.claimed_at).total_seconds() < lease_seconds:
            raise ClaimHeld(f"{kind} {key}: another worker is on it since {claim.claimed_at}")
        try:  # the holder died: take the claim over
            await self._tables.replace_if_match(TABLE_JOBS, entity, claim.etag)
        except EntityConflict:
            raise ClaimHeld(f"{kind} {key}: lost a takeover race") from None
        return None

    async def finish_claim(
        self, kind: str, key: str, now: datetime, result: dict[str, str]
    ) -> None:
        import json

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

    async def release_claim(self, kind: str, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            await self._tables.delete(TABLE_JOBS, _claim_partition(kind), key)
        except ResourceNotFoundError:
            pass

    @staticmethod
    def _claim_from(kind: str, row: dict[str, Any]) -> Claim:
        import json

        return Claim(
            kind=kind,
            key=row["RowKey"],
            status=row.get("Status", "working"),
            claimed_at=row["ClaimedAt"],
            result=json.loads(row.get("Result") or "{}"),
            etag=row["_etag"],
        )
