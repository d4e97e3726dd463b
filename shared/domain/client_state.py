"""Per-client alert state machine: ``OK -> DRIFTED -> (reminders) -> RECOVERED -> OK``.

What counts as *drifted* (decided here, documented in docs/findings/README.md):

* ``BLOCKED`` - always drift.
* ``LIMITED`` - drift, unless it matches the client's registered expected scope: the
  registry says "only groups X, Y are meant to reach the vendor" and every vendor app is
  reachable by exactly (or at least) those principals. A LIMITED posture for any other
  reason (a vendor app not allowed, users excluded, an app list that cannot be checked)
  is drift.
* ``ALLOWED`` - OK.
* ``UNKNOWN`` because consent is missing - its own state, ``CONSENT_MISSING``: alerted
  once when entered, never reminded, and not a drift. A burst of AADSTS500212 in the
  vendor's sign-in log while consent is missing (``CLIENT_SUSPECTED_DRIFT``) *is* drift,
  on the basis of sign-in evidence.
* ``UNKNOWN`` for any other reason (tenant unreachable, unknown enum value, incomplete
  policy) - inconclusive: the status is kept as it was and the next conclusive
  observation decides; reminders wait for it. It is not silent, though (issue 13, item
  7): a client that was OK and becomes UNKNOWN gets one ``POSTURE_UNKNOWN`` signal (at
  most one per ``unknown_alert_after``, so a flapping tenant does not page anyone twice),
  a client UNKNOWN for longer than ``unknown_alert_after`` (``XTAP_UNKNOWN_ALERT_HOURS``)
  gets an ``UNKNOWN_PROLONGED`` alert, repeated no more often than reminders, whatever
  its status; and a spell that was alerted is closed with ``POSTURE_KNOWN`` when the
  posture is seen to be OK again.

Every path back to healthy emits exactly one ``RECOVERED`` (item 15): a drift that is
still open when consent goes missing is remembered through the consent gap, and the
OK observation that ends the gap recovers it too, dated from the drift's start so the
stranded-guest resets cover the whole window.

Alerts are emitted exactly at transitions. The first-ever observation being OK alerts
nothing. Every transition carries a de-duplication key built only from the stored state
(client tenant, episode or unknown-spell number, transition kind, reminder/change
number): re-running the same step after a crash (state not yet saved) yields the same
keys, so the outbox can drop the repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.finding_catalog import FindingCode
from shared.domain.messages import AlertKind, Severity
from shared.domain.policy import ReachKind, is_guid
from shared.domain.posture import PostureResult, Verdict


class ClientStatus(StrEnum):
    NEW = "new"  # never observed conclusively
    OK = "ok"
    DRIFTED = "drifted"
    CONSENT_MISSING = "consent_missing"


class ObservationKind(StrEnum):
    OK = "ok"
    DRIFTED = "drifted"
    CONSENT_MISSING = "consent_missing"
    INCONCLUSIVE = "inconclusive"


class DriftBasis(StrEnum):
    POLICY = "policy"  # read from the client's policy
    SIGNIN_EVIDENCE = "signin_evidence"  # inferred from AADSTS500212 in the vendor's log


class TransitionKind(StrEnum):
    DRIFTED = "drifted"
    DRIFT_CHANGED = "drift_changed"  # still drifted, but differently (e.g. LIMITED -> BLOCKED)
    REMINDER = "reminder"
    RECOVERED = "recovered"
    CONSENT_MISSING = "consent_missing"
    CONSENT_RESTORED = "consent_restored"
    POSTURE_UNKNOWN = "posture_unknown"  # was OK, now cannot be told
    UNKNOWN_PROLONGED = "unknown_prolonged"  # UNKNOWN for longer than the setting
    POSTURE_KNOWN = "posture_known"  # an alerted UNKNOWN spell ended in OK


_UNKNOWN_KINDS = frozenset(
    {TransitionKind.POSTURE_UNKNOWN, TransitionKind.UNKNOWN_PROLONGED, TransitionKind.POSTURE_KNOWN}
)


@dataclass(frozen=True, slots=True)
class Observation:
    """One posture result, classified for the state machine."""

    client_tenant_id: str
    kind: ObservationKind
    verdict: Verdict
    basis: DriftBasis | None  # for DRIFTED
    signature: str  # what exactly is wrong; a change inside an episode is a DRIFT_CHANGED
    reason: str  # why it was classified so, for humans
    result: PostureResult | None = None


def _reach_signature(result: PostureResult) -> str:
    parts = [
        f"{r.app_id or '*'}={r.reach.kind.value}"
        + (":" + ",".join(r.reach.principals) if r.reach.principals else "")
        for r in sorted(result.reach, key=lambda r: r.app_id or "")
    ]
    return f"{result.verdict.value}|" + "|".join(parts)


def _matches_expected(result: PostureResult, expected: frozenset[str]) -> bool:
    if not expected or not result.reach:
        return False
    return all(
        r.reach.kind is ReachKind.ONLY and expected <= set(r.reach.principals) for r in result.reach
    )


def observe(
    result: PostureResult, client_tenant_id: str, expected_principals: Iterable[str] = ()
) -> Observation:
    """Classify a (possibly evidence-combined) posture result for the state machine.

    ``expected_principals`` is the client's registered expected scope (the registry's
    ``ExpectedScope.user_groups``): the user/group object IDs meant to reach the vendor.
    Empty means "everyone", so any LIMITED posture is drift.
    """
    tenant = client_tenant_id.strip().lower()
    expected = frozenset(p.strip().lower() for p in expected_principals if p.strip())
    verdict = result.verdict
    if verdict is Verdict.BLOCKED:
        return Observation(
            tenant,
            ObservationKind.DRIFTED,
            verdict,
            DriftBasis.POLICY,
            _reach_signature(result),
            "nobody can reach the vendor's apps",
            result,
        )
    if verdict is Verdict.LIMITED:
        if _matches_expected(result, expected):
            return Observation(
                tenant,
                ObservationKind.OK,
                verdict,
                None,
                _reach_signature(result),
                "limited exactly as registered (expected scope)",
                result,
            )
        return Observation(
            tenant,
            ObservationKind.DRIFTED,
            verdict,
            DriftBasis.POLICY,
            _reach_signature(result),
            "limited, and not as registered" if expected else "limited, no expected scope",
            result,
        )
    if verdict is Verdict.ALLOWED:
        return Observation(
            tenant,
            ObservationKind.OK,
            verdict,
            None,
            _reach_signature(result),
            "everyone can reach the vendor's apps",
            result,
        )
    if FindingCode.CLIENT_SUSPECTED_DRIFT in result.codes:
        return Observation(
            tenant,
            ObservationKind.DRIFTED,
            verdict,
            DriftBasis.SIGNIN_EVIDENCE,
            "SUSPECTED|500212",
            "policy unreadable; AADSTS500212 burst in the sign-in log",
            result,
        )
    if result.reason_code is FindingCode.CLIENT_CONSENT_MISSING:
        return Observation(
            tenant,
            ObservationKind.CONSENT_MISSING,
            verdict,
            None,
            "CONSENT_MISSING",
            "the client has not consented to the read-only app",
            result,
        )
    reason = result.reason_code.value if result.reason_code else "unknown"
    return Observation(
        tenant,
        ObservationKind.INCONCLUSIVE,
        verdict,
        None,
        f"UNKNOWN|{reason}",
        f"no conclusion this time ({reason})",
        result,
    )


@dataclass(frozen=True, slots=True)
class ClientAlertState:
    client_tenant_id: str
    status: ClientStatus
    episode: int  # 0 before the first episode; +1 at each DRIFTED or CONSENT_MISSING entry
    first_observed_at: datetime
    # The last check, as stored: a check that changes nothing else does not rewrite the
    # state (``state_document_changed``), so this is the last check that changed it or
    # the first one after it; the posture row's CheckedAt is every check.
    last_observed_at: datetime
    episode_started_at: datetime | None = None
    signature: str | None = None  # drift signature of the current episode
    basis: DriftBasis | None = None
    reminders: int = 0  # reminders sent in this episode
    changes: int = 0  # DRIFT_CHANGED alerts sent in this episode
    last_alert_at: datetime | None = None
    # A drift episode still open while consent is missing (0: none), and when it began.
    open_drift_episode: int = 0
    open_drift_started_at: datetime | None = None
    # The current run of inconclusive observations (None: the last one was conclusive).
    unknown_since: datetime | None = None
    unknown_spells: int = 0  # +1 at the start of each run; numbers its alerts' keys
    unknown_signalled: int = 0  # 1 when the run began with the OK -> UNKNOWN signal
    unknown_reminders: int = 0  # UNKNOWN_PROLONGED alerts sent in the current run
    last_unknown_alert_at: datetime | None = None

    @classmethod
    def initial(cls, client_tenant_id: str, now: datetime) -> ClientAlertState:
        return cls(client_tenant_id.strip().lower(), ClientStatus.NEW, 0, now, now)

    def to_dict(self) -> dict[str, Any]:
        """Flat, string/int values only: fits an Azure Tables entity."""

        def ts(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "client_tenant_id": self.client_tenant_id,
            "status": self.status.value,
            "episode": self.episode,
            "first_observed_at": ts(self.first_observed_at),
            "last_observed_at": ts(self.last_observed_at),
            "episode_started_at": ts(self.episode_started_at),
            "signature": self.signature,
            "basis": None if self.basis is None else self.basis.value,
            "reminders": self.reminders,
            "changes": self.changes,
            "last_alert_at": ts(self.last_alert_at),
            "open_drift_episode": self.open_drift_episode,
            "open_drift_started_at": ts(self.open_drift_started_at),
            "unknown_since": ts(self.unknown_since),
            "unknown_spells": self.unknown_spells,
            "unknown_signalled": self.unknown_signalled,
            "unknown_reminders": self.unknown_reminders,
            "last_unknown_alert_at": ts(self.last_unknown_alert_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClientAlertState:
        def ts(value: Any) -> datetime | None:
            if value is None or value == "":
                return None
            if isinstance(value, datetime):
                return value
            return datetime.fromisoformat(str(value))

        first = ts(data["first_observed_at"])
        last = ts(data["last_observed_at"])
        if first is None or last is None:
            raise ValueError("client state without observation timestamps")
        basis = data.get("basis")
        return cls(
            client_tenant_id=str(data["client_tenant_id"]),
            status=ClientStatus(str(data["status"])),
            episode=int(data["episode"]),
            first_observed_at=first,
            last_observed_at=last,
            episode_started_at=ts(data.get("episode_started_at")),
            signature=data.get("signature") or None,
            basis=DriftBasis(str(basis)) if basis else None,
            reminders=int(data.get("reminders") or 0),
            changes=int(data.get("changes") or 0),
            last_alert_at=ts(data.get("last_alert_at")),
            # Rows written before these fields existed load as "nothing open".
            open_drift_episode=int(data.get("open_drift_episode") or 0),
            open_drift_started_at=ts(data.get("open_drift_started_at")),
            unknown_since=ts(data.get("unknown_since")),
            unknown_spells=int(data.get("unknown_spells") or 0),
            unknown_signalled=int(data.get("unknown_signalled") or 0),
            unknown_reminders=int(data.get("unknown_reminders") or 0),
            last_unknown_alert_at=ts(data.get("last_unknown_alert_at")),
        )


_ALERT_KINDS: Mapping[TransitionKind, AlertKind] = {
    TransitionKind.DRIFTED: AlertKind.CLIENT_DRIFTED,
    TransitionKind.DRIFT_CHANGED: AlertKind.CLIENT_DRIFTED,
    TransitionKind.REMINDER: AlertKind.CLIENT_REMINDER,
    TransitionKind.RECOVERED: AlertKind.CLIENT_RECOVERED,
    TransitionKind.CONSENT_MISSING: AlertKind.CLIENT_CONSENT_MISSING,
    TransitionKind.CONSENT_RESTORED: AlertKind.CLIENT_CONSENT_RESTORED,
    TransitionKind.POSTURE_UNKNOWN: AlertKind.CLIENT_POSTURE_UNKNOWN,
    TransitionKind.UNKNOWN_PROLONGED: AlertKind.CLIENT_POSTURE_UNKNOWN,
    TransitionKind.POSTURE_KNOWN: AlertKind.CLIENT_POSTURE_KNOWN,
}


@dataclass(frozen=True, slots=True)
class Transition:
    kind: TransitionKind
    client_tenant_id: str
    episode: int  # the drift/consent episode, or for UNKNOWN kinds the unknown spell
    number: int  # reminder, change or prolonged-alert number; 0 otherwise
    at: datetime
    observation: Observation
    episode_started_at: datetime | None = None  # for UNKNOWN kinds: unknown since

    @property
    def dedup_key(self) -> str:
        scope = f"unknown{self.episode}" if self.kind in _UNKNOWN_KINDS else f"ep{self.episode}"
        return f"client:{self.client_tenant_id}:{scope}:{self.kind.value}:{self.number}"

    @property
    def alert_kind(self) -> AlertKind:
        """The outbox alert kind; drift seen only through sign-in evidence is SIGNIN_EVIDENCE."""
        if (
            self.kind is TransitionKind.DRIFTED
            and self.observation.basis is DriftBasis.SIGNIN_EVIDENCE
        ):
            return AlertKind.SIGNIN_EVIDENCE
        return _ALERT_KINDS[self.kind]

    @property
    def severity(self) -> Severity:
        if self.kind in (
            TransitionKind.RECOVERED,
            TransitionKind.CONSENT_RESTORED,
            TransitionKind.POSTURE_KNOWN,
        ):
            return Severity.INFO
        if self.kind is TransitionKind.POSTURE_UNKNOWN:
            return Severity.REVIEW  # a person should look; nothing is known to be broken
        if self.kind is TransitionKind.UNKNOWN_PROLONGED:
            return Severity.MEDIUM
        if self.kind is TransitionKind.CONSENT_MISSING:
            return Severity.MEDIUM
        if self.observation.verdict is Verdict.LIMITED:
            return Severity.MEDIUM
        return Severity.HIGH


def next_state(
    previous: ClientAlertState | None,
    observation: Observation,
    now: datetime,
    reminder_every: timedelta,
    *,
    unknown_alert_after: timedelta | None = None,
) -> tuple[ClientAlertState, list[Transition]]:
    """Fold one observation into the client's alert state; return the transitions to alert.

    ``reminder_every`` <= 0 disables reminders. ``unknown_alert_after`` is how long a client
    may stay UNKNOWN before that is an alert of its own (``None`` or <= 0: never); it also
    spaces the OK -> UNKNOWN signals. ``now`` must be timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tenant = observation.client_tenant_id
    if not is_guid(tenant):
        raise ValueError(f"client tenant ID is not a GUID: {tenant!r}")
    state = previous if previous is not None else ClientAlertState.initial(tenant, now)
    if state.client_tenant_id != tenant:
        raise ValueError(f"state is for {state.client_tenant_id}, observation for {tenant}")
    state = replace(state, last_observed_at=now)
    if observation.kind is ObservationKind.INCONCLUSIVE:
        return _inconclusive(state, observation, now, reminder_every, unknown_alert_after)
    # A conclusive observation ends any UNKNOWN spell; an alerted one that ends in OK
    # (and not in an alert of its own: recovered, consent restored) is closed.
    closing: list[Transition] = []
    if (
        state.unknown_since is not None
        and (state.unknown_signalled or state.unknown_reminders)
        and observation.kind is ObservationKind.OK
        and state.status in (ClientStatus.OK, ClientStatus.NEW)
    ):
        closing.append(
            Transition(
                TransitionKind.POSTURE_KNOWN,
                tenant,
                state.unknown_spells,
                0,
                now,
                observation,
                state.unknown_since,
            )
        )
    state = replace(state, unknown_since=None, unknown_signalled=0, unknown_reminders=0)
    new, transitions = _conclusive(state, observation, now, reminder_every)
    return new, closing + transitions


def _inconclusive(
    state: ClientAlertState,
    observation: Observation,
    now: datetime,
    reminder_every: timedelta,
    unknown_alert_after: timedelta | None,
) -> tuple[ClientAlertState, list[Transition]]:
    """Keep the status; say so when an OK client goes dark, or any client stays dark."""
    limit = unknown_alert_after
    if limit is not None and limit <= timedelta(0):
        limit = None
    tenant = state.client_tenant_id

    def transition(kind: TransitionKind, s: ClientAlertState, number: int = 0) -> Transition:
        return Transition(kind, tenant, s.unknown_spells, number, now, observation, s.unknown_since)

    if state.unknown_since is None:
        state = replace(
            state,
            unknown_since=now,
            unknown_spells=state.unknown_spells + 1,
            unknown_signalled=0,
            unknown_reminders=0,
        )
        held_back = (
            limit is not None
            and state.last_unknown_alert_at is not None
            and now - state.last_unknown_alert_at < limit
        )
        if state.status is ClientStatus.OK and not held_back:
            state = replace(state, unknown_signalled=1, last_unknown_alert_at=now)
            return state, [transition(TransitionKind.POSTURE_UNKNOWN, state)]
        return state, []
    if limit is None or state.status is ClientStatus.CONSENT_MISSING:
        return state, []  # consent missing is its own, already alerted, state
    if now - state.unknown_since < limit:
        return state, []
    every = reminder_every if reminder_every > timedelta(0) else limit
    due = state.unknown_reminders == 0 or (
        state.last_unknown_alert_at is not None and now - state.last_unknown_alert_at >= every
    )
    if not due:
        return state, []
    state = replace(
        state, unknown_reminders=state.unknown_reminders + 1, last_unknown_alert_at=now
    )
    return state, [transition(TransitionKind.UNKNOWN_PROLONGED, state, state.unknown_reminders)]


def _conclusive(
    state: ClientAlertState, observation: Observation, now: datetime, reminder_every: timedelta
) -> tuple[ClientAlertState, list[Transition]]:
    tenant = state.client_tenant_id
    kind = observation.kind

    def transition(t: TransitionKind, s: ClientAlertState, number: int = 0) -> Transition:
        return Transition(t, tenant, s.episode, number, now, observation, s.episode_started_at)

    if kind is ObservationKind.OK:
        new = replace(
            state,
            status=ClientStatus.OK,
            signature=None,
            basis=None,
            reminders=0,
            changes=0,
            open_drift_episode=0,
            open_drift_started_at=None,
        )
        if state.status is ClientStatus.DRIFTED:
            new = replace(new, last_alert_at=now)
            return new, [transition(TransitionKind.RECOVERED, state)]
        if state.status is ClientStatus.CONSENT_MISSING:
            new = replace(new, last_alert_at=now)
            out = [transition(TransitionKind.CONSENT_RESTORED, state)]
            if state.open_drift_episode:
                # The drift announced before consent went missing is over too.
                out.append(
                    Transition(
                        TransitionKind.RECOVERED,
                        tenant,
                        state.open_drift_episode,
                        0,
                        now,
                        observation,
                        state.open_drift_started_at,
                    )
                )
            return new, out
        return new, []

    if kind is ObservationKind.CONSENT_MISSING:
        if state.status is ClientStatus.CONSENT_MISSING:
            return state, []  # alerts once per episode
        drifting = state.status is ClientStatus.DRIFTED
        new = replace(
            state,
            status=ClientStatus.CONSENT_MISSING,
            episode=state.episode + 1,
            episode_started_at=now,
            signature=observation.signature,
            basis=None,
            reminders=0,
            changes=0,
            last_alert_at=now,
            open_drift_episode=state.episode if drifting else state.open_drift_episode,
            open_drift_started_at=(
                state.episode_started_at if drifting else state.open_drift_started_at
            ),
        )
        return new, [transition(TransitionKind.CONSENT_MISSING, new)]

    # DRIFTED
    if state.status is not ClientStatus.DRIFTED:
        # After a consent gap the drift is announced again (now confirmed), dated from its
        # real start; its one RECOVERED will come from this episode.
        started = state.open_drift_started_at if state.open_drift_episode else now
        new = replace(
            state,
            status=ClientStatus.DRIFTED,
            episode=state.episode + 1,
            episode_started_at=started,
            signature=observation.signature,
            basis=observation.basis,
            reminders=0,
            changes=0,
            last_alert_at=now,
            open_drift_episode=0,
            open_drift_started_at=None,
        )
        return new, [transition(TransitionKind.DRIFTED, new)]
    if observation.signature != state.signature:
        new = replace(
            state,
            signature=observation.signature,
            basis=observation.basis,
            changes=state.changes + 1,
            last_alert_at=now,
        )
        return new, [transition(TransitionKind.DRIFT_CHANGED, new, new.changes)]
    due = (
        reminder_every > timedelta(0)
        and state.last_alert_at is not None
        and now - state.last_alert_at >= reminder_every
    )
    if due:
        new = replace(state, reminders=state.reminders + 1, last_alert_at=now)
        return new, [transition(TransitionKind.REMINDER, new, new.reminders)]
    return state, []


def state_document_changed(stored: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether a check must write its alert-state document back (issue 16.3).

    A steady client's check changes nothing but ``last_observed_at``, which no decision
    reads: skipping that write saves one storage round trip per client per sweep.
    Anything else that differs (status, counters, the vendor-side signature, the
    acknowledgement) is a change.
    """
    if stored is None:
        return True

    def without_observed_at(document: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(document)
        client = out.get("client")
        if isinstance(client, Mapping):
            out["client"] = {k: v for k, v in client.items() if k != "last_observed_at"}
        return out

    return without_observed_at(stored) != without_observed_at(new)
