"""Queue message schemas: the contracts between timers, queue functions and the outbox.

Every message on every queue is one of these models serialised as JSON (and base64
encoded on the wire, as the Functions queue trigger expects). A message that does not
parse is malformed: it goes to the poison queue with an alert, never into a retry loop.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

GUID_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"


# Azure Queue messages are at most 64 KiB on the wire; base64 costs a third of that.
QUEUE_MESSAGE_LIMIT_BYTES = 46_000


def _empty(value: object) -> bool:
    """Fields added after the first release are left out of the JSON while unused, so
    their messages stay readable by a consumer that predates them."""
    return not value


def _size(record: BaseModel) -> int:
    return len(record.model_dump_json().encode("utf-8"))


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    REVIEW = "review"  # unknown shape: a person must look at it


class AlertKind(StrEnum):
    CLIENT_DRIFTED = "client_drifted"
    CLIENT_REMINDER = "client_reminder"
    CLIENT_RECOVERED = "client_recovered"
    CLIENT_CONSENT_MISSING = "client_consent_missing"
    CLIENT_CONSENT_RESTORED = "client_consent_restored"
    SIGNIN_EVIDENCE = "signin_evidence"
    VENDOR_SETTING_CHANGED = "vendor_setting_changed"
    VENDOR_POSTURE = "vendor_posture"
    REINVITE_DONE = "reinvite_done"
    REINVITE_FAILED = "reinvite_failed"
    ACCESS_REVIEW_CREATED = "access_review_created"
    ACCESS_REVIEW_FAILED = "access_review_failed"
    PENDING_GUESTS = "pending_guests"
    DELIVERY_FAILING = "delivery_failing"
    POISON_MESSAGE = "poison_message"
    DIGEST = "digest"
    # A log source xtap-watch reads (sign-in evidence, the audit log) is failing.
    SOURCE_UNAVAILABLE = "source_unavailable"


class CheckClient(Message):
    """One unit of sweep work: evaluate one registered client."""

    type: Literal["check_client"] = "check_client"
    tenant_id: str = Field(pattern=GUID_PATTERN)
    sweep_id: str = Field(min_length=1, max_length=64)
    requested_at: datetime
    # Sign-in failure counts for this client, gathered once per sweep by the scheduler
    # (one log query for all clients instead of one per client), keyed by AADSTS code.
    signin_counts: dict[str, int] = Field(default_factory=dict)
    signin_window_hours: int = 24
    # Set when the sign-in evidence source failed for this sweep (the reason, in words).
    signin_unavailable: str | None = Field(default=None, max_length=500)


class ReinviteJobMessage(Message):
    type: Literal["reinvite"] = "reinvite"
    job_id: str = Field(min_length=1, max_length=64)
    user_id: str = Field(pattern=GUID_PATTERN)
    reason: str = Field(min_length=1, max_length=500)
    requested_by: str = Field(min_length=1, max_length=256)
    send_invitation_message: bool = False
    redirect_url: str | None = None


class EnsureAccessReview(Message):
    type: Literal["ensure_access_review"] = "ensure_access_review"
    tenant_id: str = Field(pattern=GUID_PATTERN)
    requested_by: str = Field(min_length=1, max_length=256)
    job_id: str = Field(min_length=1, max_length=64)


class SettingChange(Message):
    setting: str
    before: str | None = None
    after: str | None = None


class FindingRef(Message):
    code: str
    severity: Severity
    message: str
    remediation: str = ""


class Link(Message):
    title: str
    url: str


class ClientRef(Message):
    name: str
    tenant_id: str
    domains: tuple[str, ...] = ()
    # The client's administrators (registry ``contacts``): who to send instructions to.
    contacts: tuple[str, ...] = Field(default=(), exclude_if=_empty)


class AlertRecord(Message):
    """Everything a Teams card or an e-mail needs; routes are resolved at delivery.

    ``dedup_key`` identifies the state change (not the delivery attempt): two records
    with the same key are the same alert, so a repeated producer run is harmless.
    """

    type: Literal["alert"] = "alert"
    dedup_key: str = Field(min_length=1, max_length=256)
    kind: AlertKind
    severity: Severity
    title: str = Field(min_length=1, max_length=300)
    summary: str = ""
    client: ClientRef | None = None
    changes: tuple[SettingChange, ...] = ()
    who: str | None = None
    when: datetime | None = None
    evidence: dict[str, int] = Field(default_factory=dict)
    findings: tuple[FindingRef, ...] = ()
    remediation_steps: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    facts: dict[str, str] = Field(default_factory=dict)
    items: tuple[AlertRecord, ...] = ()  # only for DIGEST
    # Restrict delivery to these channels (empty: every configured channel). A
    # "delivery failing" alert about Teams goes by e-mail only, and vice versa.
    only_channels: tuple[Literal["teams", "email"], ...] = ()
    # Alerts of one run (a posture sweep) share a batch: past the digest threshold, the
    # rest of the batch is held and sent as one digest card instead of a storm.
    batch_id: str | None = Field(default=None, max_length=64)
    # People to tell besides the admins (e.g. the support engineer who asked for a
    # re-invite); delivered by e-mail when mail is configured.
    notify: tuple[str, ...] = ()
    # Supporting lines an admin may want but need not read first (the effective policy
    # line by line, raw values): behind "Show details" on the card, last in the e-mail.
    details: tuple[str, ...] = Field(default=(), exclude_if=_empty)
    # A digest that could not carry all its members in one message: how many are not in
    # ``items``, and their event IDs (or keys) as far as they fit.
    omitted: int = Field(default=0, ge=0, exclude_if=_empty)
    omitted_refs: tuple[str, ...] = Field(default=(), exclude_if=_empty)

    def fitted(self, limit_bytes: int = QUEUE_MESSAGE_LIMIT_BYTES) -> AlertRecord:
        """This record, trimmed until its JSON fits one queue message.

        A digest sheds its members' details first (their titles and keys stay), then long
        texts are cut; what was cut is said in ``facts`` so nobody mistakes it for all.
        """
        record = self
        if _size(record) <= limit_bytes:
            return record
        if record.items:
            slim = tuple(
                item.model_copy(
                    update={"findings": (), "remediation_steps": (), "changes": (), "links": ()}
                )
                for item in record.items
            )
            record = record.model_copy(update={"items": slim})
        cut = 2000
        while _size(record) > limit_bytes and cut >= 100:
            record = record.model_copy(
                update={
                    "summary": record.summary[:cut],
                    "findings": tuple(
                        f.model_copy(
                            update={"message": f.message[:cut], "remediation": f.remediation[:cut]}
                        )
                        for f in record.findings
                    ),
                    "remediation_steps": tuple(s[:cut] for s in record.remediation_steps),
                    "facts": {**record.facts, "Trimmed": "details shortened to fit the queue"},
                }
            )
            cut //= 2
        while _size(record) > limit_bytes and record.items:
            record = record.model_copy(update={"items": record.items[:-1]})
        return record

    created_at: datetime
    source: Literal["posture", "audit", "reinvite", "review", "hygiene", "delivery", "poison"]


class FlushDigest(Message):
    """Sent (delayed) on the alerts queue: deliver the held alerts of a batch as a digest."""

    type: Literal["flush_digest"] = "flush_digest"
    batch_id: str = Field(min_length=1, max_length=64)
    generation: int = Field(ge=0)
    created_at: datetime


OutboxMessage = Annotated[AlertRecord | FlushDigest, Field(discriminator="type")]
