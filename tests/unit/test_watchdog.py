"""The watchdog's pure rules (issue 18.3): what counts as stalled, one alert per episode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.messages import AlertKind, AlertRecord, Severity
from shared.domain.watchdog import (
    AUDIT_MISSED_RUNS,
    ChannelHealth,
    WatchdogState,
    WatchTransition,
    audit_scan_problem,
    channel_problem,
    next_watchdog_state,
    stale_watchdog,
    sweep_problem,
    watchdog_alert,
    working_channels,
)
from shared.services.schedule_times import due_runs, interval, last_due

NOW = datetime(2026, 11, 23, 9, 30, 45, tzinfo=UTC)
CONTOSO = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
FABRIKAM = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"
WINGTIP = "123f4846-ba00-4fd7-ba43-dac1f8f63013"
NAMES = {CONTOSO: "Contoso, Ltd", FABRIKAM: "Fabrikam Inc", WINGTIP: "Wingtip Toys"}


def _minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# ------------------------------------------------------------------------ audit scan
def test_two_missed_scans_are_not_yet_a_problem_three_are():
    cursor = NOW - _minutes(3.2)
    runs = due_runs("30 * * * * *", cursor, NOW - timedelta(seconds=30))
    assert len(runs) == 2
    assert audit_scan_problem(cursor, runs) is None
    later = NOW + _minutes(1)
    runs = due_runs("30 * * * * *", cursor, later - timedelta(seconds=30))
    problem = audit_scan_problem(cursor, runs)
    assert problem is not None and len(runs) == AUDIT_MISSED_RUNS
    assert problem.key == "audit_scan"
    assert problem.since == cursor  # dated by the data: a re-run gives the same episode
    assert "3 scheduled scans did not advance the cursor" in problem.reason


def test_a_scan_that_never_completed_is_measured_from_the_watchdogs_first_run():
    started = NOW - _minutes(10)
    problem = audit_scan_problem(started, [NOW - _minutes(m) for m in (3, 2, 1)], never_ran=True)
    assert problem is not None and "no audit scan has completed" in problem.reason


# ------------------------------------------------------------------------ sweep
def test_a_sweep_that_checked_everyone_is_fine():
    due = NOW - _minutes(25)
    checked = {t: due + _minutes(2) for t in NAMES}
    assert sweep_problem(due, _minutes(10), NAMES, {}, checked) is None


def test_clients_left_unchecked_make_the_sweep_unfinished_and_are_named():
    due = NOW - _minutes(25)
    checked = {CONTOSO: due + _minutes(1), FABRIKAM: due - _minutes(60)}  # WINGTIP: never
    problem = sweep_problem(due, _minutes(10), NAMES, {}, checked)
    assert problem is not None
    assert "2 of 3 clients not checked" in problem.reason
    assert problem.facts["Not checked"] == "Fabrikam Inc, Wingtip Toys"
    assert problem.since == due


def test_a_client_registered_after_the_sweep_was_due_is_not_held_against_it():
    due = NOW - _minutes(25)
    checked = {CONTOSO: due + _minutes(1), FABRIKAM: due + _minutes(1)}
    registered = {WINGTIP: due + _minutes(3)}
    assert sweep_problem(due, _minutes(10), NAMES, registered, checked) is None


def test_no_sweep_due_yet_is_no_problem():
    assert sweep_problem(None, _minutes(10), NAMES, {}, {}) is None


# ------------------------------------------------------------------------ channels
def test_a_channel_is_failing_only_after_an_hour_without_a_success():
    ok = ChannelHealth("teams:admins", "teams", "ok")
    failing = ok.after(False, NOW - _minutes(59), "404 flow not found")
    assert failing.failing_since == NOW - _minutes(59)
    again = failing.after(False, NOW - _minutes(30), "404 flow not found")
    assert again.failing_since == failing.failing_since  # still the first failure
    assert channel_problem(again, NOW) is None
    problem = channel_problem(again, NOW + _minutes(1))
    assert problem is not None and problem.channel == "teams"
    assert problem.key == "channel:teams:admins"
    assert problem.facts["Last error"] == "404 flow not found"
    assert again.after(True, NOW).status == "ok"
    assert ChannelHealth.from_dict(again.to_dict()) == again


# ------------------------------------------------------------------ the state machine
def _audit_problem(since: datetime):
    problem = audit_scan_problem(since, [since + _minutes(m) for m in (1, 2, 3)])
    assert problem is not None
    return problem


def test_one_degraded_alert_per_episode_then_one_recovered_note():
    problem = _audit_problem(NOW - _minutes(4))
    state, events = next_watchdog_state(WatchdogState(), [problem], NOW)
    assert [e.transition for e in events] == [WatchTransition.DEGRADED]
    assert state.degraded
    first = watchdog_alert(events[0], NOW)

    # the same problem on the next runs: nothing more, even though its words change
    worse = _audit_problem(NOW - _minutes(4))
    state2, events2 = next_watchdog_state(
        WatchdogState.from_dict(state.to_dict()), [worse], NOW + _minutes(5)
    )
    assert events2 == []
    assert state2.episodes["audit_scan"].alerted_at == NOW

    state3, events3 = next_watchdog_state(state2, [], NOW + _minutes(10))
    assert [e.transition for e in events3] == [WatchTransition.RECOVERED]
    assert not state3.degraded
    note = watchdog_alert(events3[0], NOW + _minutes(10))
    assert note.severity is Severity.INFO and "back to normal" in note.title
    assert first.severity is Severity.HIGH and first.kind is AlertKind.WATCHDOG
    assert first.dedup_key != note.dedup_key

    _, events4 = next_watchdog_state(state3, [], NOW + _minutes(15))
    assert events4 == []


def test_a_repeated_run_after_a_crash_yields_the_same_key():
    problem = _audit_problem(NOW - _minutes(4))
    _, first = next_watchdog_state(WatchdogState(), [problem], NOW)
    _, again = next_watchdog_state(WatchdogState(), [problem], NOW + timedelta(seconds=20))
    assert watchdog_alert(first[0], NOW).dedup_key == watchdog_alert(again[0], NOW).dedup_key


def test_a_failing_channel_is_told_on_the_other_one_and_recovery_everywhere():
    failing = ChannelHealth("teams:admins", "teams", "ok").after(False, NOW - _minutes(61))
    problem = channel_problem(failing, NOW)
    assert problem is not None
    state, events = next_watchdog_state(WatchdogState(), [problem], NOW)
    alert = watchdog_alert(events[0], NOW, [problem.channel])
    assert alert.only_channels == ("email",)
    _, recovered = next_watchdog_state(state, [], NOW + _minutes(5))
    assert watchdog_alert(recovered[0], NOW + _minutes(5)).only_channels == ()


def test_other_problems_avoid_a_failing_channel():
    _, events = next_watchdog_state(
        WatchdogState(), [_audit_problem(NOW - _minutes(4))], NOW
    )
    assert watchdog_alert(events[0], NOW, ["email"]).only_channels == ("teams",)
    assert working_channels(["teams", "email"]) == ()  # nowhere works: try everywhere
    assert working_channels([]) == ()


def test_alerts_fit_the_outbox_schema():
    _, events = next_watchdog_state(WatchdogState(), [_audit_problem(NOW - _minutes(4))], NOW)
    alert = watchdog_alert(events[0], NOW)
    AlertRecord.model_validate_json(alert.model_dump_json())


def test_state_round_trips_and_tolerates_garbage():
    state, _ = next_watchdog_state(WatchdogState(), [_audit_problem(NOW - _minutes(4))], NOW)
    assert WatchdogState.from_dict(state.to_dict()) == state
    assert WatchdogState.from_dict("nonsense") == WatchdogState()
    assert WatchdogState.from_dict({"episodes": {"x": {"since": "bad"}}}).episodes == {}


def test_a_watchdog_that_stopped_running_is_stale():
    state = WatchdogState(checked_at=NOW - _minutes(16))
    runs = due_runs("45 */5 * * * *", state.checked_at, NOW - _minutes(2.5))  # type: ignore[arg-type]
    problem = stale_watchdog(state, NOW, runs)
    assert problem is not None and "has not run since" in problem.reason
    assert stale_watchdog(state, NOW, runs[:2]) is None


# ------------------------------------------------------------------------ schedules
@pytest.mark.parametrize(
    ("schedule", "gap"),
    [("30 * * * * *", _minutes(1)), ("45 */5 * * * *", _minutes(5)),
     ("0 0 8 * * *", timedelta(days=1)), ("*/2 * * * * *", timedelta(seconds=2))],
)
def test_schedule_interval(schedule, gap):
    assert interval(schedule, NOW) == gap


def test_last_due_is_inclusive_and_due_runs_exclusive_of_the_start():
    assert last_due("45 */5 * * * *", NOW) == NOW
    assert last_due("45 */5 * * * *", NOW - timedelta(seconds=1)) == NOW - _minutes(5)
    assert due_runs("45 */5 * * * *", NOW, NOW + _minutes(10)) == [
        NOW + _minutes(5), NOW + _minutes(10)
    ]
    assert due_runs("* * * * * *", NOW, NOW + timedelta(hours=5)).__len__() == 100


def test_a_clients_own_webhook_failing_does_not_take_teams_from_the_admins():
    failing = ChannelHealth("teams:XTAP_TEAMS_WEBHOOK_CONTOSO", "teams", "ok").after(
        False, NOW - _minutes(61)
    )
    problem = channel_problem(failing, NOW)
    assert problem is not None and problem.channel is None
    _, events = next_watchdog_state(WatchdogState(), [problem], NOW)
    assert watchdog_alert(events[0], NOW, [problem.channel]).only_channels == ()

