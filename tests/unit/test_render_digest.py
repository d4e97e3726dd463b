"""Digest: more than N alerts from one run collapse into one DIGEST record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity
from shared.rendering.digest import NEVER_COLLAPSED, collapse, digest_key

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def drifted(i: int, severity: Severity = Severity.HIGH, source: str = "posture") -> AlertRecord:
    return AlertRecord(
        dedup_key=f"posture:client-{i}:drifted",
        kind=AlertKind.CLIENT_DRIFTED,
        severity=severity,
        title=f"Client {i} can no longer sign in to OSTTRA",
        client=ClientRef(name=f"Client {i}", tenant_id=f"{i:08d}-0000-4000-8000-000000000000"),
        created_at=NOW - timedelta(minutes=i),
        source=source,  # type: ignore[arg-type]
    )


def delivery_failing() -> AlertRecord:
    return AlertRecord(
        dedup_key="delivery:teams:failing",
        kind=AlertKind.DELIVERY_FAILING,
        severity=Severity.HIGH,
        title="Alerts are not reaching the Teams channel",
        created_at=NOW,
        source="delivery",
    )


def test_up_to_the_threshold_alerts_pass_unchanged() -> None:
    alerts = [drifted(i) for i in range(5)]
    assert collapse(alerts, threshold=5, now=NOW) == alerts


def test_more_than_the_threshold_become_one_digest_listing_them() -> None:
    alerts = [drifted(0, Severity.LOW), drifted(1, Severity.HIGH), drifted(2, Severity.MEDIUM),
              drifted(3, Severity.INFO), drifted(4, Severity.REVIEW), drifted(5, Severity.LOW)]
    (digest,) = collapse(alerts, threshold=5, now=NOW)

    assert digest.kind is AlertKind.DIGEST
    assert digest.severity is Severity.HIGH  # the highest member severity
    assert digest.created_at == NOW
    assert digest.source == "posture"
    assert {a.dedup_key for a in digest.items} == {a.dedup_key for a in alerts}
    # most severe first; REVIEW (unknown shape, a person must look) ranks above LOW
    assert [a.severity for a in digest.items] == [
        Severity.HIGH, Severity.MEDIUM, Severity.REVIEW, Severity.LOW, Severity.LOW,
        Severity.INFO,
    ]
    assert digest.title == "6 alerts from one posture run: 6 client drifted"
    assert digest.facts["alerts"] == "6" and digest.facts["clients"] == "6"
    assert digest.facts["high"] == "1" and digest.facts["low"] == "2"
    # a digest is an ordinary outbox record: it survives the queue's JSON round trip
    assert AlertRecord.model_validate_json(digest.model_dump_json()) == digest


def test_digest_severity_is_the_max_even_when_only_low_and_review() -> None:
    alerts = [drifted(i, Severity.LOW) for i in range(6)] + [drifted(9, Severity.REVIEW)]
    (digest,) = collapse(alerts, threshold=5, now=NOW)
    assert digest.severity is Severity.REVIEW


def test_digest_key_comes_from_the_member_keys_in_any_order() -> None:
    alerts = [drifted(i) for i in range(8)]
    (first,) = collapse(alerts, threshold=5, now=NOW)
    (again,) = collapse(list(reversed(alerts)), threshold=5, now=NOW + timedelta(hours=1))
    (other,) = collapse(alerts[:-1], threshold=5, now=NOW)
    assert first.dedup_key == again.dedup_key == digest_key(a.dedup_key for a in alerts)
    assert first.dedup_key.startswith("digest:") and len(first.dedup_key) <= 256
    assert other.dedup_key != first.dedup_key


def test_duplicate_records_count_once() -> None:
    alerts = [drifted(i) for i in range(5)] * 3
    assert collapse(alerts, threshold=5, now=NOW) == alerts[:5]


def test_alerts_about_alerting_are_never_folded_into_a_digest() -> None:
    failing = delivery_failing()
    alerts = [drifted(i) for i in range(7)] + [failing]
    result = collapse(alerts, threshold=5, now=NOW)
    assert result[0] == failing
    assert result[1].kind is AlertKind.DIGEST
    assert failing not in result[1].items
    assert AlertKind.DIGEST in NEVER_COLLAPSED  # digests are not nested


def test_mixed_sources_take_the_most_common_one() -> None:
    alerts = [drifted(i, source="audit") for i in range(2)] + [drifted(i) for i in range(2, 6)]
    (digest,) = collapse(alerts, threshold=5, now=NOW)
    assert digest.source == "posture"


def test_digest_title_stays_within_the_schema_limit() -> None:
    kinds = [k for k in AlertKind if k not in NEVER_COLLAPSED]
    alerts = [
        drifted(i).model_copy(update={"kind": kind, "dedup_key": f"k{i}"})
        for i, kind in enumerate(kinds * 2)
    ]
    (digest,) = collapse(alerts, threshold=1, now=NOW)
    assert len(digest.title) <= 300
    AlertRecord.model_validate(digest.model_dump())


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        collapse([drifted(0)], threshold=0, now=NOW)


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(list(Severity))), max_size=40),
    with_failing=st.booleans(),
    threshold=st.integers(1, 10),
)
def test_no_alert_is_lost(picks: list[tuple[int, Severity]], with_failing: bool,
                          threshold: int) -> None:
    alerts = [drifted(i, s) for i, s in picks] + ([delivery_failing()] if with_failing else [])
    result = collapse(alerts, threshold=threshold, now=NOW)
    out_keys = {a.dedup_key for a in result if a.kind is not AlertKind.DIGEST}
    out_keys |= {m.dedup_key for a in result if a.kind is AlertKind.DIGEST for m in a.items}
    assert out_keys == {a.dedup_key for a in alerts}
    assert sum(a.kind is AlertKind.DIGEST for a in result) <= 1
    assert len(result) <= max(threshold, 1) + 1


def audit_change(i: int) -> AlertRecord:
    """An audit alert as ``to_alert_record`` shapes it (event ID and category in facts)."""
    event_id = f"Directory_{i:08d}-ca87-4b5d-a7f2-d9e4858c316d_635DD_{718182295 + i}"
    return AlertRecord(
        dedup_key=f"audit:{event_id}:0",
        kind=AlertKind.VENDOR_SETTING_CHANGED,
        severity=Severity.MEDIUM,
        title=f"Partner cross-tenant access changed: inbound B2B collaboration ({i})",
        summary="Inbound B2B collaboration for a partner was changed in a bulk import.",
        who="admin@osttra.com",
        when=NOW - timedelta(seconds=i),
        remediation_steps=("Confirm with admin@osttra.com that the change was intended.",),
        facts={"Event ID": event_id, "Activity": "Update a partner cross-tenant access setting",
               "Category": "CrossTenantAccessSettings"},
        created_at=NOW,
        source="audit",
    )


def test_a_400_change_audit_digest_says_and_n_more_with_event_ids_or_the_query() -> None:
    """Issue 13.20: the digest used to list what fitted one queue message (32 changes)
    and say nothing of the rest, though every event was marked seen."""
    from shared.rendering.email import render_admin_email
    from shared.rendering.presentation import RenderSettings

    changes = [audit_change(i) for i in range(400)]
    (digest,) = collapse(changes, threshold=5, now=NOW)
    digest = digest.fitted()  # what audit_scan enqueues
    assert len(digest.model_dump_json().encode()) <= 46_000
    listed = {m.facts["Event ID"] for m in digest.items}
    assert 0 < len(listed) < 400
    assert digest.omitted == 400 - len(listed)
    everything = {c.facts["Event ID"] for c in changes}
    assert listed | set(digest.omitted_refs) == everything or any(
        "/auditLogs/directoryAudits?$filter=activityDateTime ge" in d for d in digest.details)
    query = next(d for d in digest.details if "directoryAudits" in d)
    assert "category eq 'CrossTenantAccessSettings'" in query
    assert (NOW - timedelta(seconds=399)).strftime("%Y-%m-%dT%H:%M:%SZ") in query

    email = render_admin_email(digest, RenderSettings())
    assert "400 alerts, most severe first" in email.text
    assert f"… and {digest.omitted} more" in email.text
    for ref in digest.omitted_refs[:3]:
        assert ref in email.text


def test_a_digest_that_fits_omits_nothing() -> None:
    (digest,) = collapse([audit_change(i) for i in range(12)], threshold=5, now=NOW)
    assert len(digest.items) == 12 and digest.omitted == 0 and digest.omitted_refs == ()
