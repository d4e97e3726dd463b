"""A client's cloud as looked up at registration, kept in its registry record (issue 16.3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.domain.clients import ClientRecord, RegisteredCloud
from shared.domain.tenant_cloud import KnownCloud, newest

TENANT = "6f1b2a3c-4d5e-4f60-8a7b-9c0d1e2f3a4b"
CHECKED = datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


def _record(**fields: object) -> ClientRecord:
    return ClientRecord.model_validate({"tenantId": TENANT, "name": "Contoso", **fields})


def test_a_record_keeps_its_cloud_through_the_registry_json_and_the_export() -> None:
    record = _record(cloud={"name": "MicrosoftOnline.US", "checkedAt": CHECKED.isoformat()})
    assert record.cloud is not None
    assert record.cloud.known() == KnownCloud("microsoftonline.us", CHECKED)
    # Stored rows (snake_case) and exports (camelCase) both read back the same record.
    assert ClientRecord.model_validate_json(record.model_dump_json()) == record
    exported = record.model_dump(mode="json", by_alias=True)
    assert exported["cloud"] == {"name": "microsoftonline.us", "checkedAt": "2026-12-02T07:00:00Z"}
    assert ClientRecord.model_validate(exported) == record


def test_a_record_registered_before_clouds_were_kept_has_none() -> None:
    assert _record().cloud is None
    assert RegisteredCloud.of(KnownCloud("microsoftonline.com", CHECKED)).known() == KnownCloud(
        "microsoftonline.com", CHECKED
    )


@pytest.mark.parametrize(
    "cloud",
    [
        {"name": "microsoftonline.com", "checkedAt": "2026-12-02T07:00:00"},  # no zone
        {"name": "microsoftonline.com", "checkedAt": "yesterday"},
        {"name": "", "checkedAt": "2026-12-02T07:00:00Z"},
        {"name": " microsoftonline.com", "checkedAt": "2026-12-02T07:00:00Z"},
        {"name": "microsoftonline.com/../x", "checkedAt": "2026-12-02T07:00:00Z"},
        {"name": "microsoftonline.com"},
        {"name": "microsoftonline.com", "checkedAt": "2026-12-02T07:00:00Z", "extra": 1},
        "microsoftonline.com",
    ],
)
def test_an_unreadable_cloud_in_an_import_is_refused_naming_the_field(cloud: object) -> None:
    with pytest.raises(ValidationError) as caught:
        _record(cloud=cloud)
    assert caught.value.errors()[0]["loc"][0] == "cloud"


def test_newest_takes_the_most_recently_checked_entry() -> None:
    older = KnownCloud("microsoftonline.com", CHECKED - timedelta(hours=30))
    newer = KnownCloud("microsoftonline.us", CHECKED)
    assert newest(older, newer) == newer
    assert newest(newer, older) == newer
    assert newest(None, older) == older
    assert newest(older, None) == older
    assert newest(None, None) is None
    assert newest() is None


def test_a_record_without_a_cloud_is_stored_without_the_key() -> None:
    """So the version before this one can still read the row (a rollback)."""
    from shared.adapters.repositories import registry_row

    row = registry_row(_record())
    assert "cloud" not in json.loads(row["Record"])
    with_cloud = _record(cloud={"name": "microsoftonline.com", "checkedAt": CHECKED.isoformat()})
    assert json.loads(registry_row(with_cloud)["Record"])["cloud"]["name"] == "microsoftonline.com"
