"""The remembered tenant cloud (``shared.domain.tenant_cloud``)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.tenant_cloud import CLOUD_TTL, KnownCloud, is_fresh, trusted_for

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)
TENANT = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def test_an_entry_round_trips_through_the_alert_state_document():
    known = KnownCloud("microsoftonline.us", NOW)
    assert KnownCloud.from_document({"client": {}, "cloud": known.to_dict()}) == known


@pytest.mark.parametrize(
    "document",
    [
        None,
        {},
        {"cloud": None},
        {"cloud": "microsoftonline.com"},
        {"cloud": {"name": "", "checked_at": NOW.isoformat()}},
        {"cloud": {"name": 7, "checked_at": NOW.isoformat()}},
        {"cloud": {"name": "microsoftonline.com"}},
        {"cloud": {"name": "microsoftonline.com", "checked_at": "yesterday"}},
        {"cloud": {"name": "microsoftonline.com", "checked_at": 1764651600}},
        # Without a zone the age is not known.
        {"cloud": {"name": "microsoftonline.com", "checked_at": "2026-12-02T05:00:00"}},
    ],
)
def test_an_absent_or_unreadable_entry_is_not_known(document):
    assert KnownCloud.from_document(document) is None


def test_the_name_is_compared_as_discovery_gives_it_trimmed_and_lower_case():
    entry = {"cloud": {"name": " MicrosoftOnline.US ", "checked_at": NOW.isoformat()}}
    assert KnownCloud.from_document(entry) == KnownCloud("microsoftonline.us", NOW)


def test_each_tenant_trusts_its_entry_between_one_and_two_days():
    for _ in range(200):
        window = trusted_for(str(uuid.uuid4()))
        assert CLOUD_TTL <= window < 2 * CLOUD_TTL
    # Fixed by the tenant ID, whatever its casing.
    assert trusted_for(TENANT) == trusted_for(TENANT.upper())


def test_clients_registered_together_fall_due_over_a_day_not_in_one_sweep():
    # 5,000 clients first looked up in the same sweep: how many fall due in each later
    # 15-minute sweep.
    due = Counter(
        int(trusted_for(str(uuid.UUID(int=i * 7919 + 1))) / timedelta(minutes=15))
        for i in range(5000)
    )
    assert len(due) >= 90  # of the 96 sweeps of the second day
    assert max(due.values()) < 5000 * 0.03


def test_an_entry_is_fresh_until_its_tenants_window_ends():
    window = trusted_for(TENANT)
    known = KnownCloud("microsoftonline.com", NOW)
    assert is_fresh(known, TENANT, NOW)
    assert is_fresh(known, TENANT, NOW + window - timedelta(seconds=1))
    assert not is_fresh(known, TENANT, NOW + window)


def test_an_entry_from_the_future_is_looked_up_again():
    assert not is_fresh(KnownCloud("microsoftonline.com", NOW + timedelta(minutes=1)), TENANT, NOW)
