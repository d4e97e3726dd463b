"""The per-client alert state machine: OK -> DRIFTED -> reminders -> RECOVERED -> OK."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.client_state import (
    ClientAlertState,
    ClientStatus,
    DriftBasis,
    Observation,
    ObservationKind,
    TransitionKind,
    next_state,
    observe,
    state_document_changed,
)
from shared.domain.messages import AlertKind, Severity
from shared.domain.policy import parse_default_policy, parse_partner_policy
from shared.domain.posture import PostureResult, Verdict, evaluate_outbound_posture, unknown_posture
from shared.domain.signin_evidence import build_evidence, combine, counts_from_summary

GRAPH = GRAPH_FIXTURES
VENDOR = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CLIENT = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
VENDOR_APP = "11112222-aaaa-bbbb-cccc-333344445555"
GROUP_X = "9a9a8b8b-7c7c-6d6d-5e5e-4f4f3a3a2b2b"
GROUP_Y = "4d4d3e3e-2f2f-1a1a-0b0b-9c9c8d8d7e7e"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
EVERY = timedelta(hours=4)

DEFAULT_JSON = json.loads(
    (GRAPH / "policies.crossTenantAccessPolicy.default.get.response.json").read_text()
)


def posture(users: tuple[str, str] | None = ("allowed", "AllUsers")) -> PostureResult:
    """A client posture whose vendor entry sets outbound users as given (None: no entry)."""
    partner = None
    if users is not None:
        access, *targets = users
        partner = {
            "tenantId": VENDOR,
            "automaticUserConsentSettings": {"outboundAllowed": True},
            "b2bCollaborationOutbound": {
                "usersAndGroups": {
                    "accessType": access,
                    "targets": [{"target": t, "targetType": "group"} for t in targets],
                },
                "applications": {
                    "accessType": "allowed",
                    "targets": [{"target": "AllApplications", "targetType": "application"}],
                },
            },
        }
    return evaluate_outbound_posture(
        parse_default_policy(DEFAULT_JSON),
        None if partner is None else parse_partner_policy(partner),
        VENDOR,
        (VENDOR_APP,),
    )


ALLOWED = posture()
BLOCKED = posture(("blocked", "AllUsers"))
ONLY_X = posture(("allowed", GROUP_X))
ONLY_Y = posture(("allowed", GROUP_Y))
CONSENT = unknown_posture("CLIENT_CONSENT_MISSING", "403 Authorization_RequestDenied")
UNREACHABLE = unknown_posture("CLIENT_TENANT_UNREACHABLE", "timed out")


def obs(result: PostureResult, expected: tuple[str, ...] = ()) -> Observation:
    return observe(result, CLIENT, expected)


def run(
    steps: list[tuple[PostureResult, timedelta]],
    state: ClientAlertState | None = None,
    expected: tuple[str, ...] = (),
) -> tuple[ClientAlertState | None, list[list[Any]]]:
    emitted = []
    for result, offset in steps:
        state, transitions = next_state(state, obs(result, expected), T0 + offset, EVERY)
        emitted.append([(t.kind, t.number, t.dedup_key) for t in transitions])
    return state, emitted


def key(episode: int, kind: str, number: int = 0) -> str:
    return f"client:{CLIENT}:ep{episode}:{kind}:{number}"


def test_fixture_postures_have_the_expected_verdicts():
    assert (ALLOWED.verdict, BLOCKED.verdict, ONLY_X.verdict) == (
        Verdict.ALLOWED,
        Verdict.BLOCKED,
        Verdict.LIMITED,
    )


@pytest.mark.parametrize(
    ("result", "expected", "kind"),
    [
        (ALLOWED, (), ObservationKind.OK),
        (BLOCKED, (), ObservationKind.DRIFTED),
        (BLOCKED, (GROUP_X,), ObservationKind.DRIFTED),
        (ONLY_X, (), ObservationKind.DRIFTED),  # limited and nobody said so
        (ONLY_X, (GROUP_X.upper(),), ObservationKind.OK),  # limited exactly as registered
        (ONLY_Y, (GROUP_X,), ObservationKind.DRIFTED),  # limited, but to the wrong group
        (CONSENT, (), ObservationKind.CONSENT_MISSING),
        (UNREACHABLE, (), ObservationKind.INCONCLUSIVE),
    ],
)
def test_what_counts_as_drifted(result, expected, kind):
    assert obs(result, expected).kind is kind


def test_first_ever_observation_ok_alerts_nothing():
    state, emitted = run([(ALLOWED, timedelta(0))])
    assert emitted == [[]]
    assert state is not None and state.status is ClientStatus.OK and state.episode == 0


def test_first_ever_observation_drifted_alerts():
    state, emitted = run([(BLOCKED, timedelta(0))])
    assert emitted == [[(TransitionKind.DRIFTED, 0, key(1, "drifted"))]]
    assert state is not None and state.status is ClientStatus.DRIFTED


def test_full_cycle_with_reminders_and_recovery():
    state, emitted = run(
        [
            (ALLOWED, timedelta(0)),
            (BLOCKED, timedelta(hours=1)),  # drift
            (BLOCKED, timedelta(hours=2)),  # nothing: reminder not due
            (BLOCKED, timedelta(hours=5)),  # 4 h since the alert: reminder 1
            (BLOCKED, timedelta(hours=8)),  # 3 h since reminder 1: nothing
            (BLOCKED, timedelta(hours=9)),  # reminder 2
            (ALLOWED, timedelta(hours=10)),  # recovered
            (ALLOWED, timedelta(hours=11)),  # nothing
            (BLOCKED, timedelta(hours=12)),  # a new episode
        ]
    )
    assert emitted == [
        [],
        [(TransitionKind.DRIFTED, 0, key(1, "drifted"))],
        [],
        [(TransitionKind.REMINDER, 1, key(1, "reminder", 1))],
        [],
        [(TransitionKind.REMINDER, 2, key(1, "reminder", 2))],
        [(TransitionKind.RECOVERED, 0, key(1, "recovered"))],
        [],
        [(TransitionKind.DRIFTED, 0, key(2, "drifted"))],
    ]
    assert state is not None and state.episode == 2 and state.reminders == 0


def test_drift_getting_worse_inside_an_episode_is_its_own_alert():
    _, emitted = run(
        [(ONLY_X, timedelta(0)), (BLOCKED, timedelta(hours=1)), (BLOCKED, timedelta(hours=2))]
    )
    assert emitted == [
        [(TransitionKind.DRIFTED, 0, key(1, "drifted"))],
        [(TransitionKind.DRIFT_CHANGED, 1, key(1, "drift_changed", 1))],
        [],
    ]


def test_limited_as_registered_is_ok_and_drifts_when_the_group_changes():
    _, emitted = run(
        [(ONLY_X, timedelta(0)), (ONLY_Y, timedelta(hours=1)), (ONLY_X, timedelta(hours=2))],
        expected=(GROUP_X,),
    )
    assert emitted == [
        [],
        [(TransitionKind.DRIFTED, 0, key(1, "drifted"))],
        [(TransitionKind.RECOVERED, 0, key(1, "recovered"))],
    ]


def test_missing_consent_alerts_once_and_is_not_a_drift():
    state, emitted = run(
        [
            (ALLOWED, timedelta(0)),
            (CONSENT, timedelta(hours=1)),
            (CONSENT, timedelta(hours=9)),  # no reminders for consent
            (ALLOWED, timedelta(hours=10)),
        ]
    )
    assert emitted == [
        [],
        [(TransitionKind.CONSENT_MISSING, 0, key(1, "consent_missing"))],
        [],
        [(TransitionKind.CONSENT_RESTORED, 0, key(1, "consent_restored"))],
    ]
    assert state is not None and state.status is ClientStatus.OK
    _, (missing,) = next_state(None, obs(CONSENT), T0, EVERY)
    assert missing.alert_kind is AlertKind.CLIENT_CONSENT_MISSING
    assert missing.severity is Severity.MEDIUM


def test_signin_evidence_while_consent_is_missing_is_a_suspected_drift():
    counts = counts_from_summary(
        {CLIENT: {"500212": 25}}, window_start=T0 - timedelta(hours=1), window_end=T0
    )
    suspected = combine(CONSENT, build_evidence(counts, CLIENT))
    observation = obs(suspected)
    assert observation.kind is ObservationKind.DRIFTED
    assert observation.basis is DriftBasis.SIGNIN_EVIDENCE

    state, transitions = next_state(None, obs(CONSENT), T0, EVERY)
    assert [t.kind for t in transitions] == [TransitionKind.CONSENT_MISSING]
    state, transitions = next_state(state, observation, T0 + timedelta(hours=1), EVERY)
    assert [t.dedup_key for t in transitions] == [key(2, "drifted")]
    assert transitions[0].alert_kind is AlertKind.SIGNIN_EVIDENCE
    assert transitions[0].observation.result is suspected
    # consent granted and the policy confirms the block: same episode, a changed drift
    state, transitions = next_state(state, obs(BLOCKED), T0 + timedelta(hours=2), EVERY)
    assert [(t.kind, t.dedup_key) for t in transitions] == [
        (TransitionKind.DRIFT_CHANGED, key(2, "drift_changed", 1))
    ]
    assert transitions[0].alert_kind is AlertKind.CLIENT_DRIFTED


def test_inconclusive_observations_keep_the_state_and_hold_reminders():
    state, _ = run([(BLOCKED, timedelta(0))])
    assert state is not None
    later, transitions = next_state(state, obs(UNREACHABLE), T0 + timedelta(hours=6), EVERY)
    assert transitions == []
    assert later.status is ClientStatus.DRIFTED and later.reminders == 0
    assert later.last_observed_at == T0 + timedelta(hours=6)
    # the next conclusive observation sends the overdue reminder
    _, transitions = next_state(later, obs(BLOCKED), T0 + timedelta(hours=7), EVERY)
    assert [t.kind for t in transitions] == [TransitionKind.REMINDER]


def test_unreachable_on_first_sight_creates_a_new_state_without_alerts():
    state, transitions = next_state(None, obs(UNREACHABLE), T0, EVERY)
    assert transitions == [] and state.status is ClientStatus.NEW
    state, transitions = next_state(state, obs(ALLOWED), T0 + timedelta(hours=1), EVERY)
    assert transitions == [] and state.status is ClientStatus.OK


def test_replaying_a_step_after_a_crash_gives_the_same_keys():
    state, _ = run([(ALLOWED, timedelta(0)), (BLOCKED, timedelta(hours=1))])
    assert state is not None
    first = next_state(state, obs(BLOCKED), T0 + timedelta(hours=6), EVERY)
    again = next_state(state, obs(BLOCKED), T0 + timedelta(hours=6, minutes=3), EVERY)
    assert (
        [t.dedup_key for t in first[1]]
        == [t.dedup_key for t in again[1]]
        == [key(1, "reminder", 1)]
    )


def test_reminders_can_be_disabled():
    state, _ = run([(BLOCKED, timedelta(0))])
    _, transitions = next_state(state, obs(BLOCKED), T0 + timedelta(days=3), timedelta(0))
    assert transitions == []


def test_transition_carries_what_an_alert_needs():
    _, transitions = next_state(None, obs(ONLY_X), T0, EVERY)
    (t,) = transitions
    assert t.alert_kind is AlertKind.CLIENT_DRIFTED
    assert t.severity is Severity.MEDIUM  # LIMITED
    assert t.observation.verdict is Verdict.LIMITED
    assert t.observation.result is ONLY_X
    assert t.episode_started_at == T0
    _, (blocked,) = next_state(None, obs(BLOCKED), T0, EVERY)
    assert blocked.severity is Severity.HIGH
    assert len(blocked.dedup_key) <= 256


def test_state_round_trips_through_a_table_entity():
    state, _ = run(
        [(ALLOWED, timedelta(0)), (ONLY_X, timedelta(hours=1)), (BLOCKED, timedelta(hours=2))]
    )
    assert state is not None
    data = state.to_dict()
    assert all(isinstance(v, (str, int, type(None))) for v in data.values())
    assert ClientAlertState.from_dict(copy.deepcopy(data)) == state


def test_bad_calls_raise():
    with pytest.raises(ValueError, match="timezone"):
        next_state(None, obs(ALLOWED), datetime(2026, 11, 20, 8, 0), EVERY)
    other = observe(ALLOWED, "123f4846-ba00-4fd7-ba43-dac1f8f63013")
    state, _ = next_state(None, obs(ALLOWED), T0, EVERY)
    with pytest.raises(ValueError, match="state is for"):
        next_state(state, other, T0, EVERY)


# ------------------------------------------------ steady checks skip the write (16.3)


def _document(state: ClientAlertState, signature: str = "") -> dict[str, Any]:
    # The shape the check stores, read back as JSON (what the next check compares with).
    return json.loads(json.dumps({"client": state.to_dict(), "vendor_signature": signature}))


def test_a_steady_check_changes_only_the_observed_time_and_needs_no_write():
    state, _ = run([(ALLOWED, timedelta(0))])
    assert state is not None
    stored = _document(state)
    later, transitions = next_state(state, obs(ALLOWED), T0 + timedelta(minutes=15), EVERY)
    assert transitions == [] and later.last_observed_at != state.last_observed_at
    assert not state_document_changed(stored, _document(later))


def test_any_change_besides_the_observed_time_is_written():
    state, _ = run([(ALLOWED, timedelta(0))])
    assert state is not None
    stored = _document(state)
    drifted, _ = next_state(state, obs(BLOCKED), T0 + timedelta(minutes=15), EVERY)
    assert state_document_changed(stored, _document(drifted))  # status, episode
    assert state_document_changed(stored, _document(state, signature="vendor-sig"))
    assert state_document_changed(stored, _document(state) | {"acknowledgement": {"by": "x"}})
    assert state_document_changed(None, _document(state))  # nothing stored yet
