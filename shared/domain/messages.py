"""Queue message schemas: the contracts between timers, queue functions and the outbox.

Every message on every queue is one of these models serialised as JSON (and base64
encoded on the wire, as the Functions queue trigger expects). A message that does not
parse is malformed: it goes to the poison queue with an alert, never into a retry loop.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

GUID_PATTERN = r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"

# Schema-valid nonsense is refused here, so it goes to the poison queue on its first
# attempt instead of failing five times further in (issue 13, item 21):
# * identifiers that become (or sit beside) Azure Table keys may not hold the characters
#   Tables forbids in PartitionKey/RowKey: / \ # ? and control characters;
# * counts are stored as Edm.Int64, so nothing beyond its range;
# * timestamps must say their time zone (every comparison in the app is UTC-aware).
INT64_MAX = 2**63 - 1
_NO_CONTROLS = r"\x00-\x1f\x7f-\x9f"
KeyText = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=rf"^[^/\\#?{_NO_CONTROLS}]+$")
]
PlainText = Annotated[str, StringConstraints(min_length=1, pattern=rf"^[^{_NO_CONTROLS}]+$")]
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
AadstsCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
MAX_SIGNIN_WINDOW_HOURS = 24 * 366


# Azure Queue messages are at most 64 KiB on the wire; base64 costs a third of that.
QUEUE_MESSAGE_LIMIT_BYTES = 46_000


def _empty(value: object) -> bool:
    """Fields added after the first release are left out of the JSON while unused, so
    their messages stay readable by a consumer that predates them."""
    return not value


def _unset(value: object) -> bool:
    """Like :func:`_empty`, for fields where zero is a value (a latency of 0 s)."""
    return value is None


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
    CLIENT_POSTURE_UNKNOWN = "client_posture_unknown"  # cannot tell (unreachable, unparsable)
    CLIENT_POSTURE_KNOWN = "client_posture_known"  # an alerted UNKNOWN spell is over
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
    # xtap-watch watching itself (issue 18): a stalled audit scan, an unfinished sweep, a
    # channel failing for an hour (and the note when it is back to normal).
    WATCHDOG = "watchdog"
    # The daily summary on every channel; a missing one means the alert path is broken.
    HEARTBEAT = "heartbeat"


class VendorSnapshot(Message):
    """The vendor's own policies as the scheduler read them once for the whole sweep.

    The check needs no Graph request of its own for the vendor side: the vendor's default
    and authorization policy and its partner entry *for this client* travel with the
    message. ``generation`` is the vendor-policy generation when they were read; a check
    that finds a newer one (the audit watcher saw the vendor change its policy) re-reads.
    """

    generation: int = Field(ge=0)
    read_at: AwareDatetime
    default: dict[str, Any]
    authorization: dict[str, Any] | None = None  # None: not readable (403), checks skip it
    partner: dict[str, Any] | None = None  # None with partner_known: the vendor has no entry
    partner_known: bool = True  # False: the partner list was incomplete; the check reads it


class CheckClient(Message):
    """One unit of sweep work: evaluate one registered client."""

    type: Literal["check_client"] = "check_client"
    tenant_id: str = Field(pattern=GUID_PATTERN)
    sweep_id: KeyText
    requested_at: AwareDatetime
    # Sign-in failure counts for this client, gathered once per sweep by the scheduler
    # (one log query for all clients instead of one per client), keyed by AADSTS code.
    signin_counts: dict[AadstsCode, Count] = Field(default_factory=dict)
    signin_window_hours: int = Field(default=24, ge=1, le=MAX_SIGNIN_WINDOW_HOURS)
    # Set when the sign-in evidence source failed for this sweep (the reason, in words).
    signin_unavailable: str | None = Field(default=None, max_length=500)
    # The vendor side, read once per sweep (None: the check reads it itself).
    vendor: VendorSnapshot | None = None


# How many clients one sweep message may carry (the scheduler packs fewer when the JSON
# would pass QUEUE_MESSAGE_LIMIT_BYTES).
MAX_CHECKS_PER_MESSAGE = 64


class CheckClientBatch(Message):
    """Several clients' checks in one queue message (issue 16.3).

    A sweep enqueues one of these per few clients instead of one message per client:
    each client costs a queue send, a receive share and a delete otherwise, and a Flex
    execution. Retry and poison stay per client: a check that fails inside a batch is
    re-enqueued as its own ``CheckClient`` and from then on has the host's retries, and
    ends in the poison queue alone.
    """

    type: Literal["check_client_batch"] = "check_client_batch"
    checks: list[CheckClient] = Field(min_length=1, max_length=MAX_CHECKS_PER_MESSAGE)


# What the check-client queue carries: one client, or a sweep's batch of clients.
CheckQueueMessage = Annotated[CheckClient | CheckClientBatch, Field(discriminator="type")]


class ReinviteJobMessage(Message):
    type: Literal["reinvite"] = "reinvite"
    job_id: KeyText
    user_id: str = Field(pattern=GUID_PATTERN)
    reason: str = Field(min_length=1, max_length=500)
    requested_by: str = Field(min_length=1, max_length=256)
    send_invitation_message: bool = False
    redirect_url: str | None = None


class EnsureAccessReview(Message):
    type: Literal["ensure_access_review"] = "ensure_access_review"
    tenant_id: str = Field(pattern=GUID_PATTERN)
    requested_by: str = Field(min_length=1, max_length=256)
    job_id: KeyText


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


# The two ways an alert reaches the admins (``AlertRecord.only_channels``).
Channel = Literal["teams", "email"]


class AlertRecord(Message):
    """Everything a Teams card or an e-mail needs; routes are resolved at delivery.

    ``dedup_key`` identifies the state change (not the delivery attempt): two records
    with the same key are the same alert, so a repeated producer run is harmless.
    """

    type: Literal["alert"] = "alert"
    dedup_key: PlainText = Field(max_length=256)
    kind: AlertKind
    severity: Severity
    title: str = Field(min_length=1, max_length=300)
    summary: str = ""
    client: ClientRef | None = None
    changes: tuple[SettingChange, ...] = ()
    who: str | None = None
    when: AwareDatetime | None = None
    evidence: dict[str, Count] = Field(default_factory=dict)
    findings: tuple[FindingRef, ...] = ()
    remediation_steps: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()
    facts: dict[str, str] = Field(default_factory=dict)
    items: tuple[AlertRecord, ...] = ()  # only for DIGEST
    # Restrict delivery to these channels (empty: every configured channel). A
    # "delivery failing" alert about Teams goes by e-mail only, and vice versa.
    only_channels: tuple[Channel, ...] = ()
    # Alerts of one run (a posture sweep) share a batch: past the digest threshold, the
    # rest of the batch is held and sent as one digest card instead of a storm.
    batch_id: KeyText | None = None
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

    created_at: AwareDatetime
    source: Literal[
        "posture",
        "audit",
        "reinvite",
        "review",
        "hygiene",
        "delivery",
        "poison",
        "watchdog",
        "heartbeat",
    ]
    # Detection latency (issue 18.4) of an alert about a change: when the change happened
    # and how long after it this alert was created. ``audit_event``: the audit event's
    # activityDateTime, exact. ``previous_check``: the change is not dated (a client's
    # policy carries no modification time), so ``changed_at`` is the previous check that
    # still saw the old posture and the latency is an upper bound.
    # Left out of the JSON when unset, so records without them stay as small as before.
    changed_at: AwareDatetime | None = Field(default=None, exclude_if=_unset)
    detection_latency_seconds: float | None = Field(default=None, ge=0, exclude_if=_unset)
    detection_latency_basis: Literal["audit_event", "previous_check"] | None = Field(
        default=None, exclude_if=_unset
    )


class FlushDigest(Message):
    """Sent (delayed) on the alerts queue: deliver the held alerts of a batch as a digest."""

    type: Literal["flush_digest"] = "flush_digest"
    batch_id: KeyText
    generation: Count
    created_at: AwareDatetime


OutboxMessage = Annotated[AlertRecord | FlushDigest, Field(discriminator="type")]
