"""Acknowledging a client's drift (issue 18.1): reminders pause, nothing else does.

Support or an admin says "we know, the client fixes it by Friday": who, why and until when
(at most :data:`MAX_DURATION`) is stored with the client's alert state. While it holds:

* the drift's **reminders** stop — and only they;
* a **new transition** still alerts: a worse or different drift (``drift_changed``), a
  recovery, a new episode, and a **new finding** — one the acknowledged drift did not
  have (e.g. sign-in failures of another cause), which the state machine does not count
  as a change of the drift: one alert says so, and the acknowledgement stays. The
  acknowledgement covers the drift it was given for, so a change inside the episode keeps
  it (the card says "still acknowledged by …"); the end of the episode ends it, and the
  card that ends it says so — nothing is lifted silently;
* when it **expires** and the drift is still open, one reminder says "acknowledgement
  expired, still drifted"; then reminders resume their normal cadence.

Pure: no I/O, no clock. The state machine (:mod:`shared.domain.client_state`) is not
changed: :func:`fold` filters and adds transitions after it ran, knowing transitions and
states only by their kind and status values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from shared.domain.moments import aware, parse_time, utc_minutes

MAX_DURATION: Final = timedelta(days=30)
MAX_REASON_LENGTH: Final = 500
MAX_BY_LENGTH: Final = 256

_REMINDER = "reminder"
_EPISODE_ENDS = frozenset({"recovered"})


class AcknowledgementInvalid(ValueError):
    """A request that cannot be accepted; ``field`` names the culprit (400 naming it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotDrifted(ValueError):
    """Only an open drift can be acknowledged (409)."""

    def __init__(self, status: str | None) -> None:
        shown = status or "not checked yet"
        super().__init__(f"the client is not drifted (its alert state is {shown})")
        self.status = status


@dataclass(frozen=True, slots=True)
class AckRequest:
    reason: str
    until: datetime


def parse_request(raw: Any, now: datetime) -> AckRequest:
    """``{"reason": "...", "until": "2026-11-25T17:00:00Z"}``, strictly."""
    if not isinstance(raw, Mapping):
        raise AcknowledgementInvalid("body", "must be a JSON object with reason and until")
    for key in raw:
        if key not in ("reason", "until"):
            raise AcknowledgementInvalid(str(key)[:64], "is not a field of an acknowledgement")
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise AcknowledgementInvalid("reason", "is required: why the drift is acknowledged")
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON_LENGTH:
        raise AcknowledgementInvalid("reason", f"must be at most {MAX_REASON_LENGTH} characters")
    until_raw = raw.get("until")
    if not isinstance(until_raw, str) or not until_raw.strip():
        raise AcknowledgementInvalid(
            "until", "is required: an ISO 8601 date-time with a time zone, at most 30 days ahead"
        )
    try:
        until = datetime.fromisoformat(until_raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AcknowledgementInvalid(
            "until", "must be an ISO 8601 date-time such as 2026-11-25T17:00:00Z"
        ) from None
    if until.tzinfo is None:
        raise AcknowledgementInvalid("until", "must carry a time zone (Z or +hh:mm)")
    return AckRequest(reason, checked_until(until, now))


def checked_until(until: datetime, now: datetime) -> datetime:
    until = aware(until).astimezone(UTC)
    if until <= now:
        raise AcknowledgementInvalid("until", "must be in the future")
    if until - now > MAX_DURATION:
        raise AcknowledgementInvalid(
            "until",
            f"must be at most {MAX_DURATION.days} days ahead ({utc_minutes(now + MAX_DURATION)})",
        )
    return until


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Stored with the client's alert state (key ``acknowledgement``)."""

    by: str
    reason: str
    until: datetime
    at: datetime
    episode: int  # the drift episode it covers
    number: int = 1  # acknowledgements given in this episode (keys the expiry reminder)
    expired_notified_at: datetime | None = None
    # The finding codes the acknowledged drift has shown (None: not known yet, learnt from
    # the next conclusive check); a code outside them is a new finding, alerted once.
    codes: tuple[str, ...] | None = None
    new_finding_alerts: int = 0  # keys the new-finding alerts

    def active(self, now: datetime) -> bool:
        return aware(self.until) > aware(now)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "reason": self.reason,
            "until": self.until.isoformat(),
            "at": self.at.isoformat(),
            "episode": self.episode,
            "number": self.number,
            "expiredNotifiedAt": (
                self.expired_notified_at.isoformat() if self.expired_notified_at else None
            ),
            "codes": list(self.codes) if self.codes is not None else None,
            "newFindingAlerts": self.new_finding_alerts,
        }

    @classmethod
    def from_dict(cls, raw: Any) -> Acknowledgement | None:
        if not isinstance(raw, Mapping):
            return None
        until, at = parse_time(raw.get("until")), parse_time(raw.get("at"))
        if until is None or at is None:
            return None
        try:
            episode, number = int(raw.get("episode") or 0), int(raw.get("number") or 1)
            new_finding_alerts = int(raw.get("newFindingAlerts") or 0)
        except (TypeError, ValueError):
            return None
        codes = raw.get("codes")
        return cls(
            by=str(raw.get("by") or "unknown"),
            reason=str(raw.get("reason") or ""),
            until=until,
            at=at,
            episode=episode,
            number=number,
            expired_notified_at=parse_time(raw.get("expiredNotifiedAt")),
            codes=tuple(str(c) for c in codes) if isinstance(codes, list) else None,
            new_finding_alerts=new_finding_alerts,
        )

    def view(self, now: datetime) -> dict[str, Any]:
        """What the API, the report and the heartbeat show."""
        return {
            "by": self.by,
            "reason": self.reason,
            "until": self.until.isoformat(),
            "at": self.at.isoformat(),
            "active": self.active(now),
        }

    def line(self) -> str:
        """One line for a card: ``by alice@… until 2026-11-25 17:00 UTC: client fixing``."""
        return f"by {self.by} until {utc_minutes(self.until)}: {self.reason}"[:200]


def acknowledge(
    status: str | None,
    episode: int,
    existing: Acknowledgement | None,
    request: AckRequest,
    by: str,
    now: datetime,
    codes: Iterable[str] | None = None,
) -> Acknowledgement:
    """A new acknowledgement of the open drift (replacing one given before); ``codes``
    are the finding codes of the drift's latest conclusive check, if known."""
    if status != "drifted":
        raise NotDrifted(status)
    number = existing.number + 1 if existing is not None and existing.episode == episode else 1
    return Acknowledgement(
        by=" ".join(by.split())[:MAX_BY_LENGTH] or "unknown",
        reason=request.reason,
        until=request.until,
        at=now,
        episode=episode,
        number=number,
        codes=tuple(sorted(set(codes))) if codes is not None else None,
    )


@dataclass(frozen=True, slots=True)
class AckFold:
    """What an acknowledgement does to one check's outcome."""

    transitions: tuple[Any, ...]  # the state machine's transitions, reminders dropped if due
    stored: Acknowledgement | None  # what to store back (None: nothing, or it ended)
    expired: Acknowledgement | None = None  # send the one "expired, still drifted" reminder
    ended: Acknowledgement | None = None  # ended by this check (recovery, new episode)
    suppressed: int = 0  # reminders not sent because of it
    new_findings: tuple[str, ...] = ()  # send one "new finding while acknowledged" alert

    @property
    def current(self) -> Acknowledgement | None:
        """The acknowledgement the alerts of this check should show."""
        return self.stored


def fold(
    ack: Acknowledgement | None,
    status: str,
    episode: int,
    transitions: Sequence[Any],
    now: datetime,
    codes: Iterable[str] | None = None,
) -> AckFold:
    """Apply ``ack`` to one check: ``status``/``episode`` are the state *after* the check;
    ``codes`` its finding codes (None for an inconclusive check: nothing is compared)."""
    if ack is None:
        return AckFold(tuple(transitions), None)
    kinds = {t.kind.value for t in transitions}
    if ack.episode != episode or status != "drifted" or kinds & _EPISODE_ENDS:
        # The drift it covered is over (recovered, or another episode began): it ends, and
        # the transition that ended it carries it on its card.
        return AckFold(tuple(transitions), None, ended=ack)
    if ack.active(now):
        kept = tuple(t for t in transitions if t.kind.value != _REMINDER)
        stored, new = _learn(ack, codes)
        # A change of the drift says it on its own card; otherwise a new finding is told.
        new = () if kept else new
        return AckFold(kept, stored, suppressed=len(transitions) - len(kept), new_findings=new)
    if ack.expired_notified_at is None:
        # Expired, drift still open: one reminder says so (instead of a regular one now).
        kept = tuple(t for t in transitions if t.kind.value != _REMINDER)
        return AckFold(kept, replace(ack, expired_notified_at=now), expired=ack)
    return AckFold(tuple(transitions), ack)  # expired and said: reminders as usual


def _learn(
    ack: Acknowledgement, codes: Iterable[str] | None
) -> tuple[Acknowledgement, tuple[str, ...]]:
    """The acknowledgement knowing this check's findings, and which of them are new."""
    if codes is None:
        return ack, ()
    seen = set(codes)
    if ack.codes is None:
        return replace(ack, codes=tuple(sorted(seen))), ()
    new = tuple(sorted(seen - set(ack.codes)))
    if not new:
        return ack, ()
    known = tuple(sorted(seen | set(ack.codes)))
    return replace(ack, codes=known, new_finding_alerts=ack.new_finding_alerts + 1), new


def new_finding_title(client_name: str, codes: Sequence[str]) -> str:
    return f"New finding while acknowledged: {client_name} ({', '.join(codes)})"


def new_finding_summary(ack: Acknowledgement, codes: Sequence[str]) -> str:
    found = ", ".join(codes)
    return (
        f"The drift acknowledged by {ack.by} ({ack.reason}) now also shows {found}, which it "
        f"did not have when it was acknowledged. The acknowledgement stays until "
        f"{utc_minutes(ack.until)}: reminders stay paused; lift it if this changes the plan."
    )


def expired_title(client_name: str) -> str:
    return f"Acknowledgement expired: {client_name} is still drifted"


def expired_summary(ack: Acknowledgement, now: datetime) -> str:
    lasted = aware(now) - aware(ack.at)
    days = lasted.days
    hours = lasted.seconds // 3600
    span = f"{days} d {hours} h" if days else f"{hours} h"
    return (
        f"The acknowledgement by {ack.by} ({ack.reason}) expired at {utc_minutes(ack.until)}, "
        f"{span} after it was given, and the drift is still open: reminders resume. "
        "Acknowledge again with a new date if the client needs longer."
    )
