""""What changed" is the effective outbound setting before → after (issue 14.1), computed
from the effective policies of two checks (Microsoft's documented default, a partner
entry that blocks the vendor)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.client_state import next_state, observe
from shared.domain.clients import ClientRecord
from shared.domain.effective_changes import describe_target_config, effective_changes
from shared.domain.policy import parse_default_policy, parse_partner_policy
from shared.domain.posture import PostureResult, evaluate_outbound_posture
from shared.domain.posture_alerts import AlertContext, alert_for_transition

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
FIXTURES = GRAPH_FIXTURES
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
CLIENT = ClientRecord(tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", name="Contoso Markets")


@pytest.fixture
def documented_default() -> dict[str, Any]:
    path = FIXTURES / "policies.crossTenantAccessPolicy.default.get.response.json"
    if not path.is_file():
        pytest.skip(f"Graph fixtures not beside the repo: {path}")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def blocking_partner() -> dict[str, Any]:
    return {"tenantId": VENDOR, "b2bCollaborationOutbound": {
        "usersAndGroups": {"accessType": "blocked",
                           "targets": [{"target": "AllUsers", "targetType": "user"}]},
        "applications": {"accessType": "blocked",
                         "targets": [{"target": "AllApplications",
                                      "targetType": "application"}]}}}


def result(default: dict[str, Any], partner: dict[str, Any] | None) -> PostureResult:
    return evaluate_outbound_posture(
        parse_default_policy(default), parse_partner_policy(partner) if partner else None,
        VENDOR, [APP], vendor_name="OSTTRA")


def test_a_blocking_entry_is_said_setting_by_setting(documented_default: dict[str, Any]) -> None:
    before = result(documented_default, None).effective
    after = result(documented_default, blocking_partner()).effective
    assert before is not None and after is not None
    changes = effective_changes(before.to_json(), after.to_json(), "OSTTRA")
    assert [(c.setting, c.before, c.after) for c in changes] == [
        ("Organizational entry for OSTTRA", "missing", "present"),
        ("Outbound B2B collaboration: users and groups",
         "allowed: all users (inherited from the default)",
         "blocked: all users (set on the OSTTRA entry)"),
        ("Outbound B2B collaboration: external applications",
         "allowed: all external applications (inherited from the default)",
         "blocked: all external applications (set on the OSTTRA entry)"),
    ]


def test_nothing_is_claimed_without_a_previous_check(documented_default: dict[str, Any]) -> None:
    after = result(documented_default, blocking_partner()).effective
    assert after is not None
    assert effective_changes(None, after.to_json(), "OSTTRA") == ()
    assert effective_changes(after.to_json(), after.to_json(), "OSTTRA") == ()


def test_listed_targets_are_counted_not_spelled_out() -> None:
    config = {"source": "partner", "accessType": "allowed", "targets": [
        {"target": "8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13", "targetType": "group"},
        {"target": "AllApplications", "targetType": "application"}]}
    assert describe_target_config(config, "OSTTRA") == (
        "allowed: all external applications, 1 listed user or group (set on the OSTTRA "
        "entry)")


def test_the_drift_alert_shows_the_effective_change_and_a_short_summary(
    documented_default: dict[str, Any],
) -> None:
    ok = result(documented_default, None)
    blocked = result(documented_default, blocking_partner())
    state, _ = next_state(None, observe(ok, CLIENT.tenant_id), T0, timedelta(hours=24))
    _, (transition,) = next_state(state, observe(blocked, CLIENT.tenant_id),
                                  T0 + timedelta(hours=1), timedelta(hours=24))
    ctx = AlertContext("OSTTRA", "https://entra.microsoft.com", "https://docs.example")
    assert ok.effective is not None
    alert = alert_for_transition(transition, CLIENT, blocked, ctx, "ALLOWED",
                                 ok.effective.to_json())
    assert alert.changes[1].setting == "Outbound B2B collaboration: users and groups"
    assert alert.summary in {f.message for f in blocked.findings}  # one finding's sentence
    assert len(alert.summary) < 300
    assert alert.details == blocked.explanation
    assert alert.facts["Previous verdict"] == "ALLOWED"
