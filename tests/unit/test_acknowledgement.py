"""Acknowledging a drift (issue 18.1): validation, and what it does to a check's transitions."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum

import pytest

from shared.domain.acknowledgement import (
    MAX_DURATION,
    Acknowledgement,
    AcknowledgementInvalid,
    AckRequest,
    NotDrifted,
    acknowledge,
    fold,
    parse_request,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "body"),
        ({"until": "2026-11-24T09:00:00Z"}, "reason"),
        ({"reason": "   ", "until": "2026-11-24T09:00:00Z"}, "reason"),
        ({"reason": "x" * 501, "until": "2026-11-24T09:00:00Z"}, "reason"),
        ({"reason": 5, "until": "2026-11-24T09:00:00Z"}, "reason"),
        ({"reason": "client fixing"}, "until"),
        ({"reason": "client fixing", "until": "tomorrow"}, "until"),
        ({"reason": "client fixing", "until": "2026-11-24T09:00:00"}, "until"),  # no zone
        ({"reason": "client fixing", "until": "2026-11-23T08:59:00Z"}, "until"),  # past
        ({"reason": "client fixing", "until": "2026-12-23T09:00:01Z"}, "until"),  # > 30 d
        ({"reason": "client fixing", "until": 1764000000}, "until"),
        ({"reason": "r", "until": "2026-11-24T09:00:00Z", "by": "me"}, "by"),
    ],
)
def test_bad_requests_name_their_field(raw, field):
    with pytest.raises(AcknowledgementInvalid) as err:
        parse_request(raw, NOW)
    assert err.value.field == field


def test_a_good_request_is_normalised_to_utc():
    request = parse_request(
        {"reason": "  client  fixing\n Friday ", "until": "2026-11-25T18:00:00+01:00"}, NOW
    )
    assert request.until == datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    assert request.reason == "client fixing Friday"  # one line on a card
    assert parse_request({"reason": "r", "until": (NOW + MAX_DURATION).isoformat()}, NOW)


def test_only_an_open_drift_can_be_acknowledged():
    request = AckRequest("client fixing", NOW + timedelta(hours=2))
    for status in (None, "ok", "consent_missing", "new"):
        with pytest.raises(NotDrifted):
            acknowledge(status, 3, None, request, "alice@osttra.com", NOW)
    ack = acknowledge("drifted", 3, None, request, "alice@osttra.com", NOW)
    assert (ack.episode, ack.number, ack.by) == (3, 1, "alice@osttra.com")
    again = acknowledge("drifted", 3, ack, request, "bob@osttra.com", NOW)
    assert again.number == 2 and again.by == "bob@osttra.com"
    later = acknowledge("drifted", 4, again, request, "bob@osttra.com", NOW)
    assert later.number == 1  # a new episode starts counting again


def test_stored_form_round_trips_and_tolerates_garbage():
    ack = acknowledge("drifted", 3, None, AckRequest("r", NOW + timedelta(hours=2)), "a", NOW)
    assert Acknowledgement.from_dict(ack.to_dict()) == ack
    assert Acknowledgement.from_dict({"until": "bad", "at": NOW.isoformat()}) is None
    assert Acknowledgement.from_dict("x") is None
    view = ack.view(NOW)
    assert view == {"by": "a", "reason": "r", "until": "2026-11-23T11:00:00+00:00",
                    "at": "2026-11-23T09:00:00+00:00", "active": True}


# ------------------------------------------------------------------------ fold
class Kind(Enum):  # the state machine's TransitionKind values, as fold sees them
    DRIFTED = "drifted"
    DRIFT_CHANGED = "drift_changed"
    REMINDER = "reminder"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class T:
    kind: Kind


ACK = Acknowledgement("alice@osttra.com", "client fixing Friday", NOW + timedelta(hours=2),
                      NOW, episode=3)


def test_while_acknowledged_reminders_stop_and_nothing_else_does():
    result = fold(ACK, "drifted", 3, [T(Kind.REMINDER)], NOW + timedelta(hours=1))
    assert result.transitions == () and result.suppressed == 1 and result.stored == ACK
    changed = fold(ACK, "drifted", 3, [T(Kind.DRIFT_CHANGED)], NOW + timedelta(hours=1))
    assert [t.kind for t in changed.transitions] == [Kind.DRIFT_CHANGED]
    assert changed.stored == ACK  # a change inside the episode keeps it (the card says so)


def test_recovery_ends_it_and_says_so():
    result = fold(ACK, "ok", 3, [T(Kind.RECOVERED)], NOW + timedelta(hours=1))
    assert [t.kind for t in result.transitions] == [Kind.RECOVERED]
    assert result.stored is None and result.ended == ACK


def test_a_new_episode_does_not_inherit_it():
    result = fold(ACK, "drifted", 4, [T(Kind.DRIFTED)], NOW + timedelta(hours=1))
    assert result.stored is None and result.ended == ACK
    assert [t.kind for t in result.transitions] == [Kind.DRIFTED]


def test_expiry_reminds_once_then_reminders_resume():
    after = NOW + timedelta(hours=2, minutes=5)
    first = fold(ACK, "drifted", 3, [T(Kind.REMINDER)], after)
    assert first.expired == ACK and first.transitions == ()  # the expiry reminder instead
    assert first.stored is not None and first.stored.expired_notified_at == after
    second = fold(first.stored, "drifted", 3, [], after + timedelta(minutes=30))
    assert second.expired is None and second.transitions == ()
    third = fold(first.stored, "drifted", 3, [T(Kind.REMINDER)], after + timedelta(hours=1))
    assert [t.kind for t in third.transitions] == [Kind.REMINDER]


def test_without_an_acknowledgement_nothing_changes():
    transitions = [T(Kind.REMINDER)]
    result = fold(None, "drifted", 3, transitions, NOW)
    assert list(result.transitions) == transitions and result.stored is None


def test_a_new_finding_while_acknowledged_alerts_once_and_keeps_it():
    acked = replace(ACK, codes=("CLIENT_OUTBOUND_USERS_SCOPED",))
    later = NOW + timedelta(hours=1)
    same = fold(acked, "drifted", 3, [T(Kind.REMINDER)], later, codes=acked.codes)
    assert same.new_findings == () and same.transitions == () and same.suppressed == 1
    codes = ("CLIENT_OUTBOUND_USERS_SCOPED", "SIGNIN_TENANT_RESTRICTIONS_BLOCKED")
    new = fold(acked, "drifted", 3, [], later, codes=codes)
    assert new.new_findings == ("SIGNIN_TENANT_RESTRICTIONS_BLOCKED",)
    assert new.stored is not None and new.stored.codes == tuple(sorted(codes))
    assert new.stored.new_finding_alerts == 1 and new.current == new.stored
    # Said once: the same findings again (or one of them gone and back) alert nothing.
    again = fold(new.stored, "drifted", 3, [T(Kind.REMINDER)], later, codes=codes)
    assert again.new_findings == () and again.transitions == ()
    gone = fold(new.stored, "drifted", 3, [], later, codes=acked.codes)
    back = fold(gone.stored, "drifted", 3, [], later, codes=codes)
    assert back.new_findings == ()


def test_a_new_finding_that_comes_with_a_change_is_on_the_change_card_only():
    acked = replace(ACK, codes=("CLIENT_OUTBOUND_USERS_SCOPED",))
    codes = ("CLIENT_OUTBOUND_BLOCKED",)
    changed = fold(acked, "drifted", 3, [T(Kind.DRIFT_CHANGED)], NOW, codes=codes)
    assert [t.kind for t in changed.transitions] == [Kind.DRIFT_CHANGED]
    assert changed.new_findings == ()  # the drift-changed card lists the findings
    assert changed.stored is not None and "CLIENT_OUTBOUND_BLOCKED" in changed.stored.codes


def test_findings_unknown_when_acknowledged_are_learnt_from_the_next_conclusive_check():
    assert ACK.codes is None
    first = fold(ACK, "drifted", 3, [], NOW, codes=("CLIENT_OUTBOUND_BLOCKED",))
    assert first.new_findings == () and first.stored is not None
    assert first.stored.codes == ("CLIENT_OUTBOUND_BLOCKED",)
    # An inconclusive check (codes None) neither alerts nor forgets what was learnt.
    unknown = fold(first.stored, "drifted", 3, [], NOW, codes=None)
    assert unknown.new_findings == () and unknown.stored == first.stored


def test_the_findings_acknowledged_round_trip():
    acked = replace(ACK, codes=("A", "B"), new_finding_alerts=2)
    assert Acknowledgement.from_dict(acked.to_dict()) == acked
    assert Acknowledgement.from_dict(ACK.to_dict()) == ACK  # none known: None, not ()
    legacy = {k: v for k, v in ACK.to_dict().items() if k not in ("codes", "newFindingAlerts")}
    assert Acknowledgement.from_dict(legacy) == ACK
    assert "codes" not in acked.view(NOW)


# ------------------------------------------------------------- the card's link
def test_the_acknowledge_link_opens_a_page_that_exists_where_the_docs_are():
    from pathlib import Path

    from shared.domain.runbooks import app_runbook_base
    from shared.rendering.runbooks import runbook_page
    from shared.services.acknowledgements import acknowledge_link

    # The default: the app serves the runbooks itself; the index carries the instructions.
    own = acknowledge_link(app_runbook_base("https://xtap.example.net"))
    assert own.url == "https://xtap.example.net/api/v1/runbooks#acknowledge-a-drift"
    index = runbook_page(None).html
    assert 'id="acknowledge-a-drift"' in index
    assert "xtap-watch clients ack" in index and "/acknowledgement" in index
    # A published copy of docs/ (XTAP_DOCS_BASE_URL): the API reference's section.
    published = acknowledge_link("https://wiki.example/xtap/docs/")
    assert published.url == "https://wiki.example/xtap/docs/api.md#acknowledge-a-drift"
    api_md = Path(__file__).resolve().parents[2] / "docs" / "api.md"
    assert "\n## Acknowledge a drift\n" in api_md.read_text()
