"""Stuck and drift-stranded guests (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.clients import ClientRecord
from shared.domain.guests import (
    parse_graph_datetime,
    pending_guests_alert,
    stranded_guests,
    stuck_guests,
)

NOW = datetime(2026, 11, 3, 6, 30, tzinfo=UTC)
CONTOSO = ClientRecord(
    tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    name="Contoso Markets",
    domains=("contoso-markets.com",),
)
FABRIKAM = ClientRecord(
    tenant_id="2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
    name="Fabrikam Clearing",
    domains=("fabrikam-clearing.com",),
)


def guest(mail: str, state: str, changed: str | None, name: str) -> dict:
    return {
        "id": f"{abs(hash(mail)) % 10**8:08d}-0000-4000-8000-000000000000",
        "displayName": name,
        "mail": mail,
        "userPrincipalName": mail.replace("@", "_") + "#EXT#@osttra.com",
        "userType": "Guest",
        "externalUserState": state,
        "externalUserStateChangeDateTime": changed,
    }


USERS = [
    guest("bob.ops@contoso-markets.com", "PendingAcceptance", "2026-10-13T06:30:00Z", "Bob Ops"),
    guest("ann.new@contoso-markets.com", "PendingAcceptance", "2026-11-01T10:00:00Z", "Ann New"),
    guest("al.ok@contoso-markets.com", "Accepted", "2026-01-01T00:00:00Z", "Al Accepted"),
    guest(
        "erin.back@fabrikam-clearing.com",
        "PendingAcceptance",
        "2026-09-19T08:00:00.1234567Z",
        "Erin Back",
    ),
    guest("zed@unregistered.example", "PendingAcceptance", "2026-01-01T00:00:00Z", "Zed"),
    {
        "id": "99999999-0000-4000-8000-000000000000",
        "displayName": "Member with client mail",
        "mail": "m@contoso-markets.com",
        "userType": "Member",
        "externalUserState": None,
    },
]


def test_graph_datetimes_with_seven_fraction_digits_parse():
    assert parse_graph_datetime("2026-09-19T08:00:00.1234567Z") == datetime(
        2026, 9, 19, 8, 0, 0, 123456, tzinfo=UTC
    )
    assert parse_graph_datetime("2026-09-19T08:00:00Z") == datetime(2026, 9, 19, 8, tzinfo=UTC)
    assert parse_graph_datetime(None) is None and parse_graph_datetime("yesterday") is None
    assert parse_graph_datetime("2026-09-19T08:00:00") is None  # no zone: not Graph's


def test_stuck_guests_are_grouped_by_client_past_the_threshold():
    stuck = stuck_guests(USERS, [CONTOSO, FABRIKAM], NOW, days=14)
    assert set(stuck) == {CONTOSO.tenant_id, FABRIKAM.tenant_id}
    assert [g.display_name for g in stuck[CONTOSO.tenant_id][1]] == ["Bob Ops"]
    assert [g.display_name for g in stuck[FABRIKAM.tenant_id][1]] == ["Erin Back"]
    assert stuck_guests(USERS, [CONTOSO, FABRIKAM], NOW, days=30).keys() == {FABRIKAM.tenant_id}


def test_unknown_change_time_counts_as_stuck():
    users = [guest("c@contoso-markets.com", "PendingAcceptance", None, "No Date")]
    assert (
        stuck_guests(users, [CONTOSO], NOW, days=14)[CONTOSO.tenant_id][1][0].pending_since is None
    )


def test_stranded_guests_are_those_pending_since_inside_the_drift():
    start, end = NOW - timedelta(days=3), NOW - timedelta(hours=1)
    assert [g.display_name for g in stranded_guests(USERS, CONTOSO, start, end)] == ["Ann New"]
    assert stranded_guests(USERS, FABRIKAM, start, end) == []


def test_pending_guests_alert_names_guests_and_is_keyed_per_client_per_day():
    client, guests = stuck_guests(USERS, [CONTOSO], NOW, days=14)[CONTOSO.tenant_id]
    alert = pending_guests_alert(client, guests, NOW, 14)
    assert alert.dedup_key == f"pending-guests:{CONTOSO.tenant_id}:20261103"
    assert alert.kind == "pending_guests" and alert.source == "hygiene"
    assert "Bob Ops <bob.ops@contoso-markets.com> — pending since 2026-10-13" in alert.summary
    assert alert.facts["Oldest pending since"] == "2026-10-13"
    many = guests * 30
    assert "… and 5 more" in pending_guests_alert(client, many, NOW, 14).summary
