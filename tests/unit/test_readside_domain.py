"""Read-side domain rules: identity-sync audit events, the default inbound's reach, the
audit alert's own category, what sign-in evidence says, and the health of a log source."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.domain.audit import ChangeKind, CrossTenantChange, Scope, decode_directory_audit
from shared.domain.audit_severity import (
    classify,
    default_inbound_admits_clients,
    remediation_steps,
    to_alert_record,
)
from shared.domain.messages import ClientRef, Severity
from shared.domain.signin_evidence import (
    EvidenceThreshold,
    build_evidence,
    combine,
    counts_from_summary,
)
from shared.domain.source_health import (
    SourceKind,
    SourceProblem,
    SourceTransition,
    next_source_state,
    source_alert,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "fixtures" / "audit" / "directoryAudits.crossTenantAccess.json"
VENDOR = "0c6a3f1e-5d2b-4c8a-9e7f-1a2b3c4d5e6f"
CONTOSO = "3f2a5c7e-8b1d-4e6f-9a0b-1c2d3e4f5a6b"
FABRIKAM = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
SIGNIN_APP = "a1b2c3d4-0000-4000-8000-0000000000a1"
GROUP = "8f3c2a1b-4d5e-4f60-9a7b-0c1d2e3f4a5b"
CLIENTS = {
    CONTOSO: ClientRef(name="Contoso", tenant_id=CONTOSO),
    FABRIKAM: ClientRef(name="Fabrikam", tenant_id=FABRIKAM),
}
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def enc(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def sync_event(activity: str, properties: list[dict[str, object]]) -> dict[str, object]:
    return {
        "id": "Directory_5e0e1d2c-3b4a-4958-8776-655443322110_SYNC1_1",
        "category": "CrossTenantIdentitySyncSettings",
        "correlationId": "5e0e1d2c-3b4a-4958-8776-655443322110",
        "result": "success",
        "activityDisplayName": activity,
        "activityDateTime": "2026-11-22T10:00:00.0000000Z",
        "loggedByService": "Core Directory",
        "initiatedBy": {"user": {"userPrincipalName": "it.admin@osttra-vendor.onmicrosoft.com"}},
        "targetResources": [
            {
                "id": "5cd43692-51e1-4168-9757-ec4f686ebbcb",
                "displayName": f"CrossTenantAccessPolicy for {VENDOR}",
                "type": "Policy",
                "modifiedProperties": properties,
            }
        ],
    }


def prop(name: str, old: object, new: object) -> dict[str, object]:
    return {
        "displayName": name,
        "oldValue": None if old is None else enc(old),
        "newValue": None if new is None else enc(new),
    }


def only_change(record: dict[str, object]) -> CrossTenantChange:
    decoded = decode_directory_audit(record)
    assert isinstance(decoded, list) and len(decoded) == 1, decoded
    return decoded[0]


# ------------------------------------------------------------ identity sync events


def test_sample_identity_sync_update_is_a_partner_change_with_before_and_after() -> None:
    record = json.loads(SAMPLE.read_text())["value"][-1]
    change = only_change(record)
    assert change.kind is ChangeKind.PARTNER_SYNC_UPDATED
    assert change.scope is Scope.PARTNER
    assert change.partner_tenant_id == FABRIKAM
    assert change.setting == "userSyncInbound"
    assert (change.before_text, change.after_text) == ("sync allowed off", "sync allowed on")
    assert change.summary == "Cross-tenant synchronization inbound: sync allowed off → on"
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.HIGH
    assert "Fabrikam" in reasons[0] and "create" in reasons[0]


@pytest.mark.parametrize(
    ("activity", "properties", "kind", "severity"),
    [
        (
            "Create a partner cross-tenant identity sync setting",
            [
                prop("tenantId", None, CONTOSO),
                prop("userSyncInbound", None, {"isSyncAllowed": True}),
            ],
            ChangeKind.PARTNER_SYNC_CREATED,
            Severity.HIGH,
        ),
        (
            "Create a partner cross-tenant identity sync setting",
            [
                prop("tenantId", None, CONTOSO),
                prop("userSyncInbound", None, {"isSyncAllowed": False}),
            ],
            ChangeKind.PARTNER_SYNC_CREATED,
            Severity.MEDIUM,
        ),
        (
            "Update a partner cross-tenant identity sync setting",
            [
                prop("tenantId", None, CONTOSO),
                prop("userSyncInbound", {"isSyncAllowed": True}, {"isSyncAllowed": False}),
            ],
            ChangeKind.PARTNER_SYNC_UPDATED,
            Severity.MEDIUM,
        ),
        (
            "Delete a partner cross-tenant identity sync setting",
            [
                prop("tenantId", CONTOSO, None),
                prop("userSyncInbound", {"isSyncAllowed": True}, None),
            ],
            ChangeKind.PARTNER_SYNC_DELETED,
            Severity.MEDIUM,
        ),
    ],
    ids=["create-allowed", "create-not-allowed", "update-disabled", "delete"],
)
def test_identity_sync_activities_decode_and_classify(activity, properties, kind, severity) -> None:
    change = only_change(sync_event(activity, properties))
    assert change.kind is kind
    assert change.partner_tenant_id == CONTOSO
    assert change.setting == "userSyncInbound"
    got, reasons = classify(change, CLIENTS, None)
    assert got is severity, reasons
    assert all("Contoso" in reason for reason in reasons[:1])


def test_identity_sync_delete_with_only_the_tenant_id_still_names_the_partner() -> None:
    change = only_change(
        sync_event(
            "Delete a partner cross-tenant identity sync setting", [prop("tenantId", CONTOSO, None)]
        )
    )
    assert change.kind is ChangeKind.PARTNER_SYNC_DELETED
    assert change.partner_tenant_id == CONTOSO
    assert "deleted" in change.summary


def test_identity_sync_alert_points_at_the_sync_page_and_its_own_audit_category() -> None:
    change = only_change(
        sync_event(
            "Update a partner cross-tenant identity sync setting",
            [
                prop("tenantId", None, CONTOSO),
                prop("userSyncInbound", {"isSyncAllowed": False}, {"isSyncAllowed": True}),
            ],
        )
    )
    severity, reasons = classify(change, CLIENTS, None)
    steps = remediation_steps(change, severity, CLIENTS[CONTOSO])
    text = " ".join(steps)
    assert "Category: CrossTenantIdentitySyncSettings" in text
    assert "Category: CrossTenantAccessSettings" not in text
    assert "Cross-tenant sync" in text
    alert = to_alert_record(change, severity, reasons, CLIENTS[CONTOSO], NOW)
    assert alert.facts["Category"] == "CrossTenantIdentitySyncSettings"


def test_access_settings_alert_filters_by_its_own_category() -> None:
    record = json.loads(SAMPLE.read_text())["value"][1]  # Contoso inbound scoped
    change = only_change(record)
    steps = remediation_steps(change, Severity.HIGH, CLIENTS[CONTOSO])
    assert "Category: CrossTenantAccessSettings" in " ".join(steps)


# ------------------------------------------------------------ default inbound reach


def b2b(users: tuple[str, list[str]], apps: tuple[str, list[str]]) -> dict[str, object]:
    return {
        "usersAndGroups": {
            "accessType": users[0],
            "targets": [{"target": t, "targetType": "user"} for t in users[1]],
        },
        "applications": {
            "accessType": apps[0],
            "targets": [{"target": t, "targetType": "application"} for t in apps[1]],
        },
    }


def default_policy(inbound: dict[str, object]) -> dict[str, object]:
    return {
        "id": "default",
        "isServiceDefault": False,
        "b2bCollaborationInbound": inbound,
        "b2bCollaborationOutbound": b2b(
            ("allowed", ["AllUsers"]), ("allowed", ["AllApplications"])
        ),
        "b2bDirectConnectInbound": b2b(("blocked", ["AllUsers"]), ("blocked", ["AllApplications"])),
        "b2bDirectConnectOutbound": b2b(
            ("blocked", ["AllUsers"]), ("blocked", ["AllApplications"])
        ),
        "inboundTrust": {"isMfaAccepted": False, "isCompliantDeviceAccepted": False},
        "automaticUserConsentSettings": {"inboundAllowed": False, "outboundAllowed": False},
    }


@pytest.mark.parametrize(
    ("inbound", "admits"),
    [
        (b2b(("allowed", ["AllUsers"]), ("blocked", ["AllApplications"])), False),
        (b2b(("allowed", ["AllUsers"]), ("allowed", ["AllApplications"])), True),
        (b2b(("allowed", ["AllUsers"]), ("allowed", [GROUP])), False),  # other app only
        (b2b(("allowed", [GROUP]), ("allowed", ["AllApplications"])), None),  # some users
        (b2b(("blocked", [GROUP]), ("blocked", [SIGNIN_APP])), None),  # all but one pair
    ],
    ids=["apps-blocked", "open", "other-app", "one-group", "pair-blocked"],
)
def test_default_inbound_reach_follows_the_domain_rules(inbound, admits) -> None:
    assert default_inbound_admits_clients(default_policy(inbound), [SIGNIN_APP]) is admits


def test_default_inbound_reach_unknown_without_a_policy() -> None:
    assert default_inbound_admits_clients(None, [SIGNIN_APP]) is None
    assert default_inbound_admits_clients({"b2bCollaborationInbound": "?"}, [SIGNIN_APP]) is None


def test_clearing_a_client_inbound_to_a_default_that_blocks_all_apps_is_high() -> None:
    """AllUsers allowed + AllApplications blocked admits nobody (issue 13 item 14)."""
    record = sync_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", None, CONTOSO),
            prop(
                "b2bCollaborationInbound",
                b2b(("allowed", ["AllUsers"]), ("allowed", ["AllApplications"])),
                None,
            ),
        ],
    )
    record["category"] = "CrossTenantAccessSettings"
    change = only_change(record)
    admits = default_inbound_admits_clients(
        default_policy(b2b(("allowed", ["AllUsers"]), ("blocked", ["AllApplications"]))),
        [SIGNIN_APP],
    )
    severity, reasons = classify(change, CLIENTS, admits)
    assert severity is Severity.HIGH, reasons


# ------------------------------------------------------------ sign-in evidence words


def _evidence(code: int, failures: int = 6):
    start, end = NOW - timedelta(hours=24), NOW
    counts = counts_from_summary(
        {CONTOSO: {str(code): failures}}, window_start=start, window_end=end
    )
    return build_evidence(counts, CONTOSO, EvidenceThreshold(min_failures=5))


def test_tenant_restrictions_finding_says_what_5000211_shows() -> None:
    finding = _evidence(5000211).findings[0]
    text = finding.message + " " + finding.remediation
    assert "tenant restrictions v2" in text.lower()
    assert "device or network" in finding.message
    assert "not evidence that the client's cross-tenant access settings changed" in finding.message
    assert "allow the vendor tenant" in finding.remediation


def test_outbound_block_evidence_is_worded_as_suspected() -> None:
    finding = _evidence(500212).findings[0]
    assert "suspected" in finding.message.lower()


def test_unavailable_evidence_is_said_on_the_posture_record() -> None:
    from shared.domain.finding_catalog import FindingCode
    from shared.domain.posture import unknown_posture

    result = unknown_posture(
        FindingCode.CLIENT_CONSENT_MISSING, "no consent", vendor_tenant_id=VENDOR
    )
    evidence = _evidence(500212, failures=0)
    combined = combine(result, evidence, unavailable="Entra ID P1/P2 licence missing")
    record = combined.to_dict()
    assert record["evidence"]["unavailable"] == "Entra ID P1/P2 licence missing"
    assert "Sign-in evidence unavailable: Entra ID P1/P2 licence missing" in record["explanation"]


# ------------------------------------------------------------ source health


def problem(cause: str = "non_premium_tenant", *, persistent: bool = True) -> SourceProblem:
    return SourceProblem(
        source=SourceKind.SIGNIN_EVIDENCE,
        cause=cause,
        reason="Entra ID P1/P2 licence missing",
        fix="Switch XTAP_SIGNIN_SOURCE to log_analytics",
        detail="403 Authentication_RequestFromNonPremiumTenantOrB2CTenant",
        persistent=persistent,
    )


def test_a_persistent_problem_alerts_once_then_stays_quiet_until_it_clears() -> None:
    reminder = timedelta(hours=24)
    state, first = next_source_state(None, problem(), NOW, reminder)
    assert first is SourceTransition.FAILING
    state, second = next_source_state(state, problem(), NOW + timedelta(hours=1), reminder)
    assert second is None
    state, third = next_source_state(state, problem(), NOW + timedelta(hours=2), reminder)
    assert third is None
    state, cleared = next_source_state(state, None, NOW + timedelta(hours=3), reminder)
    assert cleared is SourceTransition.RECOVERED
    _, quiet = next_source_state(state, None, NOW + timedelta(hours=4), reminder)
    assert quiet is None


def test_a_transient_problem_alerts_only_when_it_persists() -> None:
    reminder = timedelta(hours=24)
    state, transitions = None, []
    for i in range(4):
        state, t = next_source_state(
            state, problem("throttled", persistent=False), NOW + timedelta(minutes=i), reminder
        )
        transitions.append(t)
    assert transitions == [None, None, SourceTransition.FAILING, None]


def test_a_transient_blip_that_clears_before_alerting_says_nothing() -> None:
    reminder = timedelta(hours=24)
    state, t1 = next_source_state(None, problem("throttled", persistent=False), NOW, reminder)
    state, t2 = next_source_state(state, None, NOW + timedelta(minutes=1), reminder)
    assert (t1, t2) == (None, None)


def test_a_new_cause_is_a_new_alert_and_a_long_outage_is_reminded() -> None:
    reminder = timedelta(hours=24)
    state, _ = next_source_state(None, problem(), NOW, reminder)
    state, changed = next_source_state(state, problem("access_denied"), NOW, reminder)
    assert changed is SourceTransition.FAILING
    _, later = next_source_state(
        state, problem("access_denied"), NOW + timedelta(hours=25), reminder
    )
    assert later is SourceTransition.REMINDER


def test_source_alert_names_cause_fix_and_is_keyed_per_episode() -> None:
    state, transition = next_source_state(None, problem(), NOW, timedelta(hours=24))
    assert transition is not None
    alert = source_alert(transition, state, problem(), "OSTTRA", NOW)
    assert alert.dedup_key.startswith("source:signin_evidence:non_premium_tenant:")
    assert alert.severity is Severity.MEDIUM
    assert "Switch XTAP_SIGNIN_SOURCE" in " ".join(alert.remediation_steps)
    assert "Authentication_RequestFromNonPremiumTenantOrB2CTenant" in alert.facts["Error"]
    again = source_alert(transition, state, problem(), "OSTTRA", NOW + timedelta(minutes=5))
    assert again.dedup_key == alert.dedup_key


# ------------------------------------------------------------ schedules and budget


def _default(name: str) -> str:
    from shared.config import SETTINGS

    value = next(spec.default for spec in SETTINGS if spec.name == name)
    assert value is not None
    return value


def test_default_audit_cadence_is_every_minute_half_a_minute_from_the_sweep() -> None:
    """Both read the Graph reports budget; they never fire in the same second (item 12.8)."""
    from croniter import croniter

    audit = _default("XTAP_AUDIT_SCHEDULE")
    sweep = _default("XTAP_SWEEP_SCHEDULE")
    start = datetime(2026, 11, 23, 9, 0, 0)
    audit_ticks = croniter(audit, start, second_at_beginning=True)
    first, second = audit_ticks.get_next(datetime), audit_ticks.get_next(datetime)
    assert second - first == timedelta(minutes=1)
    sweep_tick = croniter(sweep, start, second_at_beginning=True).get_next(datetime)
    assert abs(sweep_tick.second - first.second) == 30


def test_reports_budget_never_grants_more_than_five_in_ten_seconds() -> None:
    import asyncio
    import time

    from shared.adapters.reports_budget import ReportsBudget

    budget = ReportsBudget(limit=5, window=0.5)
    granted: list[float] = []

    async def take() -> None:
        async with budget:
            granted.append(time.monotonic())

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(take() for _ in range(12))), 5)

    asyncio.run(main())
    granted.sort()
    assert len(granted) == 12
    for i in range(len(granted) - 5):
        assert granted[i + 5] - granted[i] >= 0.5  # any six span more than one window
