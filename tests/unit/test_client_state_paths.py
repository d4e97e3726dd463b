"""Every transition of the client alert state machine, and every path back to healthy.

Issue 13, item 15: drifted -> consent revoked -> healthy again emitted no RECOVERED, so
the stranded-guest resets never ran. Here the state machine is driven over *all*
observation sequences up to five long and checked against a model that knows nothing of
its internals: a problem opens at the first drifted observation and closes at the next OK
one; at that OK exactly one RECOVERED is emitted, dated from the problem's first drifted
observation (the window the resets look at), and at no other step.

Item 7 (client part): a client that stays UNKNOWN is no longer silent.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta

import pytest

from shared.domain.client_state import (
    ClientAlertState,
    ClientStatus,
    TransitionKind,
    next_state,
)
from shared.domain.finding_catalog import FindingCode
from shared.domain.messages import AlertKind, Severity
from shared.domain.posture import PostureResult, unknown_posture
from shared.domain.signin_evidence import build_evidence, combine, counts_from_summary
from tests.unit.test_client_state import (
    ALLOWED,
    BLOCKED,
    CLIENT,
    CONSENT,
    EVERY,
    GROUP_X,
    ONLY_X,
    T0,
    UNREACHABLE,
    obs,
    posture,
)

SUSPECTED = combine(
    CONSENT,
    build_evidence(
        counts_from_summary(
            {CLIENT: {"500212": 25}}, window_start=T0 - timedelta(hours=1), window_end=T0
        ),
        CLIENT,
    ),
)
UNKNOWN_VALUE = posture(("allowed", "AllGuestUsers"))  # a keyword this version does not know
INCOMPLETE = unknown_posture(FindingCode.POLICY_INCOMPLETE, "policy could not be interpreted")
STEP = timedelta(hours=1)
AFTER = timedelta(hours=6)  # XTAP_UNKNOWN_ALERT_HOURS in these tests

ALPHABET: dict[str, PostureResult] = {
    "ok": ALLOWED,
    "blocked": BLOCKED,
    "limited": ONLY_X,
    "suspected": SUSPECTED,
    "consent": CONSENT,
    "unknown": UNREACHABLE,
}
DRIFTED = {"blocked", "limited", "suspected"}


def drive(
    names: Sequence[str], *, step: timedelta = STEP, after: timedelta | None = AFTER
) -> tuple[ClientAlertState | None, list[list]]:
    state: ClientAlertState | None = None
    emitted = []
    for i, name in enumerate(names):
        state, transitions = next_state(
            state, obs(ALPHABET[name]), T0 + i * step, EVERY, unknown_alert_after=after
        )
        emitted.append(transitions)
    return state, emitted


def test_the_unknown_posture_fixtures_are_what_they_say():
    assert UNKNOWN_VALUE.reason_code is FindingCode.POLICY_UNKNOWN_VALUE
    assert obs(SUSPECTED).kind.value == "drifted"


# ---------------------------------------------------------------- every path (item 15)

SEQUENCES = [
    seq for n in range(1, 6) for seq in itertools.product(sorted(ALPHABET), repeat=n)
]


def test_every_path_back_to_healthy_emits_exactly_one_recovered():
    checked = 0
    for seq in SEQUENCES:
        _, emitted = drive(seq)
        problem_since = None  # step index of the first drifted observation of the problem
        for i, (name, transitions) in enumerate(zip(seq, emitted, strict=True)):
            recovered = [t for t in transitions if t.kind is TransitionKind.RECOVERED]
            if name in DRIFTED and problem_since is None:
                problem_since = i
            if name == "ok" and problem_since is not None:
                assert len(recovered) == 1, (seq, i, emitted)
                assert recovered[0].episode_started_at == T0 + problem_since * STEP, (seq, i)
                assert recovered[0].alert_kind is AlertKind.CLIENT_RECOVERED
                problem_since = None
                checked += 1
            else:
                assert recovered == [], (seq, i, [t.kind for t in transitions])
    assert checked > 1000  # the enumeration really goes through recoveries


def test_dedup_keys_never_repeat_along_any_path():
    # The outbox drops a repeated key: a reused key would silently lose a real alert.
    for seq in SEQUENCES:
        _, emitted = drive(seq)
        keys = [t.dedup_key for transitions in emitted for t in transitions]
        assert len(keys) == len(set(keys)), (seq, keys)


def test_drifted_then_consent_revoked_then_healthy_announces_both():
    _, emitted = drive(["ok", "blocked", "consent", "consent", "ok"])
    assert [[t.kind for t in ts] for ts in emitted] == [
        [],
        [TransitionKind.DRIFTED],
        [TransitionKind.CONSENT_MISSING],
        [],
        [TransitionKind.CONSENT_RESTORED, TransitionKind.RECOVERED],
    ]
    recovered = emitted[-1][1]
    assert recovered.dedup_key == f"client:{CLIENT}:ep1:recovered:0"  # the drift's episode
    assert recovered.episode_started_at == T0 + STEP


def test_drift_seen_again_after_a_consent_gap_keeps_the_original_start():
    _, emitted = drive(["blocked", "consent", "blocked", "ok"])
    redrift = emitted[2]
    assert [t.kind for t in redrift] == [TransitionKind.DRIFTED]
    assert redrift[0].episode_started_at == T0
    (recovered,) = emitted[3]
    assert recovered.kind is TransitionKind.RECOVERED and recovered.episode_started_at == T0


# ------------------------------------------------------------- the transition table

# (status reached by the prefix, observation) -> transitions emitted by the observation.
TABLE = [
    # from NEW
    ([], "ok", []),
    ([], "blocked", [TransitionKind.DRIFTED]),
    ([], "suspected", [TransitionKind.DRIFTED]),
    ([], "consent", [TransitionKind.CONSENT_MISSING]),
    ([], "unknown", []),  # never seen conclusively: only the long-UNKNOWN alert (below)
    # from OK
    (["ok"], "ok", []),
    (["ok"], "blocked", [TransitionKind.DRIFTED]),
    (["ok"], "limited", [TransitionKind.DRIFTED]),
    (["ok"], "consent", [TransitionKind.CONSENT_MISSING]),
    (["ok"], "unknown", [TransitionKind.POSTURE_UNKNOWN]),
    # from DRIFTED
    (["blocked"], "ok", [TransitionKind.RECOVERED]),
    (["blocked"], "blocked", []),
    (["blocked"], "limited", [TransitionKind.DRIFT_CHANGED]),
    (["blocked"], "consent", [TransitionKind.CONSENT_MISSING]),
    (["blocked"], "unknown", []),  # the drift alert is open; reminders wait
    # from CONSENT_MISSING
    (["consent"], "ok", [TransitionKind.CONSENT_RESTORED]),
    (["consent"], "consent", []),
    (["consent"], "blocked", [TransitionKind.DRIFTED]),
    (["consent"], "suspected", [TransitionKind.DRIFTED]),
    (["consent"], "unknown", []),
    # from CONSENT_MISSING with a drift still open
    (["blocked", "consent"], "ok", [TransitionKind.CONSENT_RESTORED, TransitionKind.RECOVERED]),
    (["blocked", "consent"], "blocked", [TransitionKind.DRIFTED]),
    (["blocked", "consent"], "consent", []),
    (["blocked", "consent"], "unknown", []),
    # from OK while UNKNOWN (alerted)
    (["ok", "unknown"], "unknown", []),
    (["ok", "unknown"], "ok", [TransitionKind.POSTURE_KNOWN]),
    (["ok", "unknown"], "blocked", [TransitionKind.DRIFTED]),
    (["ok", "unknown"], "consent", [TransitionKind.CONSENT_MISSING]),
    # from DRIFTED while UNKNOWN
    (["blocked", "unknown"], "ok", [TransitionKind.RECOVERED]),
    (["blocked", "unknown"], "blocked", []),
]


@pytest.mark.parametrize(("prefix", "observation", "expected"), TABLE)
def test_transition_table(prefix, observation, expected):
    _, emitted = drive([*prefix, observation])
    assert [t.kind for t in emitted[-1]] == expected


def test_the_table_covers_every_status_and_observation():
    statuses = set()
    for prefix, _, _ in TABLE:
        state, _ = drive(prefix)
        statuses.add(state.status if state else ClientStatus.NEW)
    assert statuses == set(ClientStatus)
    assert {o for _, o, _ in TABLE} == set(ALPHABET)


# ------------------------------------------------------------- long UNKNOWN (item 7)


def test_allowed_to_unknown_is_signalled_once_with_its_cause():
    _, emitted = drive(["ok", "unknown", "unknown"])
    (signal,) = emitted[1]
    assert signal.kind is TransitionKind.POSTURE_UNKNOWN
    assert signal.alert_kind is AlertKind.CLIENT_POSTURE_UNKNOWN
    assert signal.severity is Severity.REVIEW
    assert signal.observation.result is UNREACHABLE
    assert signal.dedup_key == f"client:{CLIENT}:unknown1:posture_unknown:0"
    assert emitted[2] == []


def test_unknown_for_longer_than_the_setting_is_an_alert_of_its_own_and_rate_limited():
    names = ["ok"] + ["unknown"] * 20  # hourly, 20 hours unknown; reminders every 4 h
    state, emitted = drive(names)
    kinds = [(i, t.kind, t.number) for i, ts in enumerate(emitted) for t in ts]
    assert kinds == [
        (1, TransitionKind.POSTURE_UNKNOWN, 0),
        (7, TransitionKind.UNKNOWN_PROLONGED, 1),  # 6 h after the spell began
        (11, TransitionKind.UNKNOWN_PROLONGED, 2),  # then no more often than reminders
        (15, TransitionKind.UNKNOWN_PROLONGED, 3),
        (19, TransitionKind.UNKNOWN_PROLONGED, 4),
    ]
    prolonged = emitted[7][0]
    assert prolonged.severity is Severity.MEDIUM
    assert prolonged.alert_kind is AlertKind.CLIENT_POSTURE_UNKNOWN
    assert prolonged.episode_started_at == T0 + STEP  # unknown since
    assert state is not None and state.status is ClientStatus.OK  # not a drift


def test_a_client_never_seen_conclusively_alerts_only_when_unknown_too_long():
    _, emitted = drive(["unknown"] * 8)
    kinds = [(i, t.kind) for i, ts in enumerate(emitted) for t in ts]
    assert kinds == [(6, TransitionKind.UNKNOWN_PROLONGED)]


def test_a_drifted_client_that_goes_dark_is_alerted_too():
    _, emitted = drive(["blocked"] + ["unknown"] * 7 + ["blocked"])
    kinds = [(i, t.kind) for i, ts in enumerate(emitted) for t in ts]
    assert kinds == [
        (0, TransitionKind.DRIFTED),
        (7, TransitionKind.UNKNOWN_PROLONGED),
        (8, TransitionKind.REMINDER),  # the held reminder, once the policy is seen again
    ]


def test_flapping_unknown_is_rate_limited_and_each_alerted_spell_is_closed():
    _, emitted = drive(["ok", "unknown", "ok", "unknown", "ok"])
    assert [[t.kind for t in ts] for ts in emitted] == [
        [],
        [TransitionKind.POSTURE_UNKNOWN],
        [TransitionKind.POSTURE_KNOWN],
        [],  # a second signal within XTAP_UNKNOWN_ALERT_HOURS is held back
        [],  # nothing was said about this spell, so nothing to close
    ]
    _, later = drive(["ok", "unknown", "ok", "unknown"], step=timedelta(hours=7))
    assert [t.kind for t in later[3]] == [TransitionKind.POSTURE_UNKNOWN]
    assert later[3][0].dedup_key == f"client:{CLIENT}:unknown2:posture_unknown:0"


@pytest.mark.parametrize("result", [UNKNOWN_VALUE, INCOMPLETE, UNREACHABLE])
def test_every_inconclusive_cause_is_signalled(result):
    state, _ = next_state(None, obs(ALLOWED), T0, EVERY, unknown_alert_after=AFTER)
    _, (signal,) = next_state(state, obs(result), T0 + STEP, EVERY, unknown_alert_after=AFTER)
    assert signal.kind is TransitionKind.POSTURE_UNKNOWN
    assert signal.observation.result is result


def test_without_the_setting_only_the_entry_signal_is_sent():
    _, emitted = drive(["ok"] + ["unknown"] * 30, after=None)
    assert [t.kind for ts in emitted for t in ts] == [TransitionKind.POSTURE_UNKNOWN]


def test_unknown_spell_state_round_trips_and_old_rows_still_load():
    state, _ = drive(["blocked", "consent", "unknown", "unknown"])
    assert state is not None
    data = state.to_dict()
    assert all(isinstance(v, (str, int, type(None))) for v in data.values())
    assert ClientAlertState.from_dict(data) == state
    legacy = {
        k: v
        for k, v in data.items()
        if k
        not in {
            "open_drift_episode",
            "open_drift_started_at",
            "unknown_since",
            "unknown_spells",
            "unknown_signalled",
            "unknown_reminders",
            "last_unknown_alert_at",
        }
    }
    restored = ClientAlertState.from_dict(legacy)
    assert restored.status is state.status and restored.unknown_since is None


def test_expected_scope_is_still_ok_through_the_new_rules():
    state, transitions = next_state(
        None, obs(ONLY_X, (GROUP_X,)), T0, EVERY, unknown_alert_after=AFTER
    )
    assert transitions == [] and state.status is ClientStatus.OK
