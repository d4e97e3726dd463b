"""Queue message schemas: validation and the queue-size guard."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.domain.messages import (
    QUEUE_MESSAGE_LIMIT_BYTES,
    AlertKind,
    AlertRecord,
    CheckClient,
    FindingRef,
    Severity,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _alert(key: str, findings: int = 0, text: int = 10) -> AlertRecord:
    return AlertRecord(
        dedup_key=key,
        kind=AlertKind.VENDOR_SETTING_CHANGED,
        severity=Severity.MEDIUM,
        title=f"change {key}",
        summary="s" * text,
        findings=tuple(
            FindingRef(code=f"C{i}", severity=Severity.LOW, message="m" * text, remediation="r")
            for i in range(findings)
        ),
        created_at=NOW,
        source="audit",
    )


def test_check_client_refuses_a_tenant_that_is_not_a_guid():
    with pytest.raises(ValidationError) as err:
        CheckClient(tenant_id="contoso.com", sweep_id="s", requested_at=NOW)
    assert "tenant_id" in str(err.value)


def test_unknown_fields_are_refused_so_a_typo_is_not_silently_dropped():
    with pytest.raises(ValidationError):
        CheckClient.model_validate_json(
            '{"tenant_id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","sweep_id":"s",'
            '"requested_at":"2026-11-23T09:00:00Z","tenantid":"x"}'
        )


def test_small_alert_is_returned_unchanged_by_fitted():
    alert = _alert("a", findings=2)
    assert alert.fitted() is alert


def test_oversized_digest_sheds_member_details_and_fits_a_queue_message():
    members = tuple(_alert(f"k{i}", findings=5, text=400) for i in range(60))
    digest = _alert("digest").model_copy(update={"kind": AlertKind.DIGEST, "items": members})
    assert len(digest.model_dump_json()) > QUEUE_MESSAGE_LIMIT_BYTES
    fitted = digest.fitted()
    assert len(fitted.model_dump_json().encode()) <= QUEUE_MESSAGE_LIMIT_BYTES
    assert [i.dedup_key for i in fitted.items] == [m.dedup_key for m in members]
    assert all(i.findings == () for i in fitted.items)


def test_oversized_single_alert_is_cut_and_says_so():
    alert = _alert("big", findings=60, text=2000)
    fitted = alert.fitted()
    assert len(fitted.model_dump_json().encode()) <= QUEUE_MESSAGE_LIMIT_BYTES
    assert fitted.facts.get("Trimmed")
    assert len(fitted.findings) == 60


GUID = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"signin_window_hours": -1}, "signin_window_hours"),
        ({"signin_window_hours": 10**9}, "signin_window_hours"),
        ({"requested_at": "2026-11-23T09:00:00"}, "requested_at"),
        ({"sweep_id": "a/b"}, "sweep_id"),
        ({"sweep_id": "a\u0000b"}, "sweep_id"),
        ({"signin_counts": {"500212": 2**63}}, "signin_counts"),
        ({"signin_counts": {"AADSTS500212": 1}}, "signin_counts"),
    ],
)
def test_schema_valid_nonsense_in_a_check_is_refused(fields, where):
    body = {"tenant_id": GUID, "sweep_id": "s", "requested_at": "2026-11-23T09:00:00Z"} | fields
    with pytest.raises(ValidationError) as err:
        CheckClient.model_validate_json(json.dumps(body))
    assert where in str(err.value)


def test_an_alert_needs_an_aware_time_and_a_clean_key():
    with pytest.raises(ValidationError, match="created_at"):
        _alert("k").model_validate({**_alert("k").model_dump(), "created_at": datetime(2026, 1, 1)})
    with pytest.raises(ValidationError, match="dedup_key"):
        _alert("k\nforged")
    assert _alert("audit:Directory_0f1e_ABC_123:0").dedup_key.startswith("audit:")
