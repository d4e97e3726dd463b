"""Severity, reasons and alert records for cross-tenant access changes (issue 4 item 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.domain.audit import (
    CrossTenantChange,
    UnknownAuditShape,
    b2b_setting,
    decode_audit_records,
    decode_directory_audit,
)
from shared.domain.audit_severity import classify, dedup_key, restricts, to_alert_record
from shared.domain.messages import AlertKind, AlertRecord, ClientRef, Severity

ROOT = Path(__file__).resolve().parents[2]
AUDIT_FIXTURES = ROOT / "tests" / "fixtures" / "audit"
VENDOR = "0c6a3f1e-5d2b-4c8a-9e7f-1a2b3c4d5e6f"
CONTOSO = "3f2a5c7e-8b1d-4e6f-9a0b-1c2d3e4f5a6b"
FABRIKAM = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
GROUP = "8f3c2a1b-4d5e-4f60-9a7b-0c1d2e3f4a5b"
SIGNIN_APP = "a1b2c3d4-0000-4000-8000-0000000000a1"


def enc(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def prop(name: str, old: object, new: object) -> dict:
    return {
        "displayName": name,
        "oldValue": None if old is None else enc(old),
        "newValue": None if new is None else enc(new),
    }


def graph_event(activity: str, properties: list[dict], **overrides: object) -> dict:
    """A directoryAudit record shaped like a real CrossTenantAccessSettings event."""
    record = {
        "id": "Directory_c41a7e90-2b3d-4f5e-8a6b-7c8d9e0f1a2b_JVC98_224853777",
        "category": "CrossTenantAccessSettings",
        "correlationId": "c41a7e90-2b3d-4f5e-8a6b-7c8d9e0f1a2b",
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": "2026-11-20T08:37:42.6299007Z",
        "loggedByService": "Core Directory",
        "initiatedBy": {
            "user": {
                "id": "30a6c29d-de7c-4830-815f-9b3bb366e975",
                "displayName": None,
                "userPrincipalName": "it.admin@osttra-vendor.onmicrosoft.com",
                "ipAddress": "40.126.32.99",
            }
        },
        "targetResources": [
            {
                "id": "5cd43692-51e1-4168-9757-ec4f686ebbcb",
                "displayName": f"CrossTenantAccessPolicy for {VENDOR}",
                "type": "Policy",
                "modifiedProperties": properties,
            }
        ],
        "additionalDetails": [],
    }
    record.update(overrides)
    return record


NORTHWIND = "ee07d55e-928e-4049-89e2-c36739e30514"
CLIENTS = {
    CONTOSO: ClientRef(name="Contoso", tenant_id=CONTOSO, domains=("contoso.com",)),
    FABRIKAM: ClientRef(name="Fabrikam", tenant_id=FABRIKAM),
}
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def b2b(users: tuple[str, list[str]], apps: tuple[str, list[str]]) -> dict:
    return {
        "usersAndGroups": {"accessType": users[0], "targets": [{"target": t} for t in users[1]]},
        "applications": {"accessType": apps[0], "targets": [{"target": t} for t in apps[1]]},
    }


ALL_OPEN = b2b(("allowed", ["AllUsers"]), ("allowed", ["AllApplications"]))
BLOCKED = b2b(("blocked", ["AllUsers"]), ("blocked", ["AllApplications"]))
SCOPED = b2b(("allowed", [GROUP]), ("allowed", [SIGNIN_APP]))


def one(activity: str, properties: list[dict], **overrides: object) -> CrossTenantChange:
    changes = decode_directory_audit(graph_event(activity, properties, **overrides))
    assert isinstance(changes, list) and changes, changes
    return changes[-1]


def partner_update(tenant: str, setting: str, before: object, after: object) -> CrossTenantChange:
    return one(
        "Update a partner cross-tenant access setting",
        [prop("tenantId", None, tenant), prop(setting, before, after)],
    )


def default_update(setting: str, before: object, after: object) -> CrossTenantChange:
    return one(
        "Update the company default cross-tenant access setting", [prop(setting, before, after)]
    )


# ------------------------------------------------------------------ partners


@pytest.mark.parametrize("default_admits", [True, False, None])
def test_deleting_a_registered_clients_partner_entry_is_high(default_admits) -> None:
    change = one(
        "Delete partner specific cross-tenant access setting", [prop("tenantId", FABRIKAM, None)]
    )
    severity, reasons = classify(change, CLIENTS, default_admits)
    assert severity is Severity.HIGH
    assert "Fabrikam" in reasons[0] and "deleted" in reasons[0]
    if default_admits is False:
        assert "can no longer sign in" in reasons[1]
    elif default_admits is None:
        assert "is not known" in reasons[1]
    else:
        assert "consent prompt" in reasons[1]


def test_deleting_another_tenants_partner_entry_is_medium() -> None:
    change = one(
        "Delete partner specific cross-tenant access setting", [prop("tenantId", NORTHWIND, None)]
    )
    severity, reasons = classify(change, CLIENTS, False)
    assert severity is Severity.MEDIUM
    assert "not a registered client" in reasons[0]


def test_settings_removed_with_a_deleted_entry_are_medium_beside_the_high_entry() -> None:
    record = graph_event(
        "Delete partner specific cross-tenant access setting",
        [prop("tenantId", CONTOSO, None), prop("b2bCollaborationInbound", ALL_OPEN, None)],
    )
    entry, inbound = decode_directory_audit(record)
    assert classify(entry, CLIENTS, None)[0] is Severity.HIGH
    severity, reasons = classify(inbound, CLIENTS, None)
    assert severity is Severity.MEDIUM and "removed together with the partner entry" in reasons[0]
    assert inbound.summary == (
        "B2B collaboration inbound: users allowed AllUsers; applications allowed "
        "AllApplications → removed with the partner entry"
    )


@pytest.mark.parametrize(("after", "word"), [(BLOCKED, "blocked"), (SCOPED, "scoped")])
def test_inbound_collaboration_blocked_or_scoped_for_a_client_is_high(after, word) -> None:
    change = partner_update(CONTOSO, "b2bCollaborationInbound", ALL_OPEN, after)
    severity, reasons = classify(change, CLIENTS, True)
    assert severity is Severity.HIGH
    assert reasons[0].startswith(
        f"Inbound B2B collaboration for registered client Contoso ({CONTOSO}) was {word}"
    )
    assert "before: users allowed AllUsers; applications allowed AllApplications" in reasons[0]


def test_inbound_collaboration_for_a_client_opened_up_is_medium() -> None:
    wider = b2b(
        ("allowed", [GROUP, "11111111-2222-4333-8444-555555555555"]), ("allowed", [SIGNIN_APP])
    )
    change = partner_update(CONTOSO, "b2bCollaborationInbound", SCOPED, wider)
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM
    assert "without blocking anyone" in reasons[0] and "Contoso" in reasons[0]


def test_inbound_collaboration_for_a_non_client_is_medium() -> None:
    change = partner_update(NORTHWIND, "b2bCollaborationInbound", ALL_OPEN, BLOCKED)
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM and NORTHWIND in reasons[0]


@pytest.mark.parametrize(
    ("default_admits", "severity"),
    [(True, Severity.MEDIUM), (False, Severity.HIGH), (None, Severity.HIGH)],
)
def test_client_inbound_cleared_back_to_the_default(default_admits, severity) -> None:
    change = partner_update(FABRIKAM, "b2bCollaborationInbound", SCOPED, None)
    got, reasons = classify(change, CLIENTS, default_admits)
    assert got is severity and "Fabrikam" in reasons[0]


def test_partner_added_for_a_client_is_medium_and_names_it() -> None:
    change = one("Add a partner to cross-tenant access setting", [prop("tenantId", None, CONTOSO)])
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM
    assert reasons == [
        f"A partner entry was added for registered client Contoso ({CONTOSO}); until its "
        "settings are configured it inherits the default settings."
    ]


def test_auto_redemption_unticked_for_a_client_is_medium_with_the_consequence() -> None:
    change = partner_update(
        CONTOSO,
        "automaticUserConsentSettings",
        {"inboundAllowed": True, "outboundAllowed": False},
        {"inboundAllowed": False, "outboundAllowed": False},
    )
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM
    assert "Contoso" in reasons[0] and "consent prompt" in reasons[1]


def test_vendor_outbound_collaboration_change_is_medium() -> None:
    change = partner_update(CONTOSO, "b2bCollaborationOutbound", ALL_OPEN, BLOCKED)
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM and "vendor's own users" in reasons[0]


def test_partner_mfa_trust_turned_off_for_a_client_is_medium() -> None:
    change = partner_update(
        CONTOSO, "inboundTrust", {"isMfaAccepted": True}, {"isMfaAccepted": False}
    )
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM and "register MFA" in reasons[1]


# ------------------------------------------------------------------- default


@pytest.mark.parametrize(("after", "word"), [(BLOCKED, "blocked"), (SCOPED, "scoped")])
def test_default_inbound_restricted_while_clients_rely_on_it_is_high(after, word) -> None:
    change = default_update("b2bCollaborationInbound", ALL_OPEN, after)
    severity, reasons = classify(change, CLIENTS, True)
    assert severity is Severity.HIGH
    assert f"was {word}" in reasons[0]
    assert "Registered clients rely on it: Contoso, Fabrikam." in reasons[1]
    # Unknown whether they rely on it: still high, said so.
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.HIGH and "may rely on it" in reasons[1]


def test_default_inbound_restricted_when_no_client_relies_on_it_is_medium() -> None:
    change = default_update("b2bCollaborationInbound", ALL_OPEN, BLOCKED)
    assert classify(change, CLIENTS, False)[0] is Severity.MEDIUM
    assert classify(change, {}, None)[0] is Severity.MEDIUM


def test_mfa_trust_turned_on_in_the_default_is_high() -> None:
    off = {"isMfaAccepted": False, "isCompliantDeviceAccepted": False}
    change = default_update("inboundTrust", off, {**off, "isMfaAccepted": True})
    severity, reasons = classify(change, CLIENTS, None)
    assert (
        severity is Severity.HIGH and "MFA trust was turned on in the default policy" in reasons[0]
    )
    # Turning it off again, or trusting a device claim, is not the high case.
    assert (
        classify(
            default_update("inboundTrust", {**off, "isMfaAccepted": True}, off), CLIENTS, None
        )[0]
        is Severity.MEDIUM
    )
    assert (
        classify(
            default_update("inboundTrust", off, {**off, "isCompliantDeviceAccepted": True}),
            CLIENTS,
            None,
        )[0]
        is Severity.MEDIUM
    )
    # MFA trust per partner is how it should be done.
    assert (
        classify(
            partner_update(CONTOSO, "inboundTrust", off, {**off, "isMfaAccepted": True}),
            CLIENTS,
            None,
        )[0]
        is Severity.MEDIUM
    )


def test_reset_default_is_medium() -> None:
    change = one("Reset the cross-tenant access default setting", [])
    severity, reasons = classify(change, CLIENTS, None)
    assert severity is Severity.MEDIUM and "service defaults" in reasons[0]


# ------------------------------------------------------------ direct connect


@pytest.mark.parametrize("setting", ["b2bDirectConnectInbound", "b2bDirectConnectOutbound"])
def test_direct_connect_opened_is_high_on_partner_or_default(setting) -> None:
    partner = partner_update(NORTHWIND, setting, None, ALL_OPEN)
    severity, reasons = classify(partner, CLIENTS, None)
    assert severity is Severity.HIGH and "was opened" in reasons[0] and NORTHWIND in reasons[0]
    default = default_update(
        setting, BLOCKED, b2b(("allowed", [GROUP]), ("allowed", ["AllApplications"]))
    )
    severity, reasons = classify(default, CLIENTS, None)
    assert severity is Severity.HIGH and "every external tenant" in reasons[0]


def test_direct_connect_closed_is_medium() -> None:
    change = partner_update(CONTOSO, "b2bDirectConnectInbound", ALL_OPEN, BLOCKED)
    assert classify(change, CLIENTS, None)[0] is Severity.MEDIUM


# ------------------------------------------------------------- info / review


def test_migration_is_info() -> None:
    change = one("Migrated partner cross-tenant access settings to the scalable model", [])
    assert classify(change, CLIENTS, None) == (
        Severity.INFO,
        [
            "Microsoft moved the cross-tenant access settings to its scalable storage model; "
            "the settings themselves did not change."
        ],
    )


def test_a_failed_attempt_is_info_even_when_it_would_be_high() -> None:
    change = one(
        "Delete partner specific cross-tenant access setting",
        [prop("tenantId", CONTOSO, None)],
        result="failure",
    )
    severity, reasons = classify(change, CLIENTS, False)
    assert severity is Severity.INFO and "failed" in reasons[0]


def test_unknown_shape_is_review_and_names_the_client() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", None, CONTOSO),
            {"displayName": "b2bCollaborationInbound", "oldValue": None, "newValue": "{"},
        ],
    )
    unknown = decode_directory_audit(record)
    assert isinstance(unknown, UnknownAuditShape)
    severity, reasons = classify(unknown, CLIENTS, None)
    assert severity is Severity.REVIEW
    assert "b2bCollaborationInbound is not valid JSON" in reasons[0]
    assert reasons[1] == f"It concerns registered client Contoso ({CONTOSO})."


def test_client_lookup_ignores_the_case_of_the_logged_tenant_id() -> None:
    change = one(
        "Delete partner specific cross-tenant access setting",
        [prop("tenantId", CONTOSO.upper(), None)],
    )
    assert classify(change, CLIENTS, None)[0] is Severity.HIGH


# ------------------------------------------------------------- restricts()


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (ALL_OPEN, BLOCKED, True),
        (ALL_OPEN, SCOPED, True),
        (None, SCOPED, True),  # inherited -> scoped: cannot prove nobody lost access
        (SCOPED, ALL_OPEN, False),
        (BLOCKED, SCOPED, False),
        (SCOPED, b2b(("allowed", []), ("allowed", [SIGNIN_APP])), True),  # g1 left the allowlist
        (
            b2b(("blocked", [GROUP]), ("allowed", ["AllApplications"])),
            b2b(("blocked", []), ("allowed", ["AllApplications"])),
            False,
        ),
        (
            b2b(("blocked", []), ("allowed", ["AllApplications"])),
            b2b(("blocked", [GROUP]), ("allowed", ["AllApplications"])),
            True,
        ),
        (
            SCOPED,
            b2b(("blocked", [GROUP]), ("allowed", [SIGNIN_APP])),
            True,
        ),  # allow-list flipped to block-list
        (ALL_OPEN, None, False),  # cleared: handled as "inherits the default"
    ],
)
def test_restricts(before, after, expected) -> None:
    assert restricts(b2b_setting(before), b2b_setting(after)) is expected


# ------------------------------------------------------------- alert record


def test_alert_record_for_a_deleted_client_entry() -> None:
    change = one(
        "Delete partner specific cross-tenant access setting", [prop("tenantId", FABRIKAM, None)]
    )
    severity, reasons = classify(change, CLIENTS, False)
    record = to_alert_record(change, severity, reasons, CLIENTS[FABRIKAM], NOW)
    assert record.kind is AlertKind.VENDOR_SETTING_CHANGED
    assert record.severity is Severity.HIGH
    assert record.dedup_key == f"audit:{change.event_id}:0"
    assert record.title == "Partner entry deleted for Fabrikam"
    assert record.client == CLIENTS[FABRIKAM]
    assert record.who == "it.admin@osttra-vendor.onmicrosoft.com"
    assert record.when == change.event.time
    assert record.created_at == NOW and record.source == "audit"
    assert [(c.setting, c.before, c.after) for c in record.changes] == [
        ("Partner entry", FABRIKAM, None)
    ]
    assert record.summary.startswith(change.summary) and reasons[0] in record.summary
    assert record.facts["Partner tenant"] == FABRIKAM and record.facts["Scope"] == "partner"
    assert any("Add organization" in step and FABRIKAM in step for step in record.remediation_steps)
    assert "Confirm with it.admin@osttra-vendor.onmicrosoft.com" in record.remediation_steps[0]
    assert AlertRecord.model_validate_json(record.model_dump_json()) == record


def test_alert_record_for_inbound_scoped_says_how_to_revert() -> None:
    change = partner_update(CONTOSO, "b2bCollaborationInbound", ALL_OPEN, SCOPED)
    severity, reasons = classify(change, CLIENTS, None)
    record = to_alert_record(change, severity, reasons, CLIENTS[CONTOSO], NOW)
    assert record.title == "Cross-tenant access for Contoso changed: B2B collaboration inbound"
    assert (
        record.changes[0].before == "users allowed AllUsers; applications allowed AllApplications"
    )
    assert record.changes[0].after == f"users allowed {GROUP}; applications allowed {SIGNIN_APP}"
    steps = " ".join(record.remediation_steps)
    assert (
        f"Organizational settings > Contoso ({CONTOSO}) > Inbound access > B2B collaboration"
        in steps
    )
    assert "My Sign-ins" in steps
    assert record.remediation_steps[-1] == (
        "To revert, set it back to: users allowed AllUsers; applications allowed AllApplications."
    )


def test_alert_record_for_default_mfa_trust() -> None:
    change = default_update("inboundTrust", {"isMfaAccepted": False}, {"isMfaAccepted": True})
    severity, reasons = classify(change, CLIENTS, None)
    record = to_alert_record(change, severity, reasons, None, NOW)
    assert record.title == "Default cross-tenant access changed: Inbound trust settings"
    assert record.client is None
    assert any(
        "Default settings > Inbound access > Trust settings" in s and "untick" in s
        for s in record.remediation_steps
    )


def test_alert_record_for_an_unknown_shape_without_an_id_has_a_stable_key() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting", [prop("tenantId", None, CONTOSO)]
    )
    del record["id"]
    unknown = decode_directory_audit(record)
    assert isinstance(unknown, UnknownAuditShape)
    severity, reasons = classify(unknown, CLIENTS, None)
    first = to_alert_record(unknown, severity, reasons, CLIENTS[CONTOSO], NOW)
    again = to_alert_record(
        decode_directory_audit(json.loads(json.dumps(record))), severity, reasons, None, NOW
    )
    assert first.dedup_key == again.dedup_key and first.dedup_key.startswith("audit:sha256-")
    assert (
        first.severity is Severity.REVIEW
        and first.title == "Cross-tenant access audit event needs review"
    )
    assert first.facts["Activity"] == "Update a partner cross-tenant access setting"


def test_dedup_key_stays_within_the_schema_limit_for_huge_ids() -> None:
    change = one(
        "Add a partner to cross-tenant access setting",
        [prop("tenantId", None, CONTOSO)],
        id="x" * 5000,
    )
    key = dedup_key(change)
    assert len(key) <= 256 and key.startswith("audit:sha256-") and key.endswith(":0")
    assert key == dedup_key(change)


def test_every_sample_change_becomes_a_valid_alert_record() -> None:
    keys = set()
    for name in (
        "directoryAudits.crossTenantAccess.json",
        "AuditLogs.logAnalytics.json",
        "managementActivity.azureActiveDirectory.json",
    ):
        document = json.loads((AUDIT_FIXTURES / name).read_text())
        records = document["value"] if isinstance(document, dict) else document
        for item in decode_audit_records(records).items:
            severity, reasons = classify(item, CLIENTS, None)
            assert reasons and all(reason.strip() for reason in reasons)
            client = CLIENTS.get(item.partner_tenant_id or "")
            alert = to_alert_record(item, severity, reasons, client, NOW)
            assert alert.remediation_steps
            keys.add(alert.dedup_key)
            assert AlertRecord.model_validate_json(alert.model_dump_json()) == alert
    assert len(keys) == 12 + 3 + 1  # one alert per change, no collisions


def test_sample_file_severities() -> None:
    document = json.loads((AUDIT_FIXTURES / "directoryAudits.crossTenantAccess.json").read_text())
    got = [
        (
            item.event_id[-2:],
            (item.setting if isinstance(item, CrossTenantChange) else None),
            classify(item, CLIENTS, None)[0],
        )
        for item in decode_audit_records(document["value"]).items
    ]
    assert got == [
        ("01", "tenantId", Severity.MEDIUM),  # Contoso entry added
        ("02", "b2bCollaborationInbound", Severity.HIGH),  # Contoso inbound scoped
        ("03", "automaticUserConsentSettings", Severity.MEDIUM),
        ("04", "b2bDirectConnectOutbound", Severity.HIGH),  # direct connect opened
        ("05", "tenantId", Severity.HIGH),  # Fabrikam entry deleted
        ("06", "b2bCollaborationInbound", Severity.HIGH),  # default inbound blocked
        ("06", "inboundTrust", Severity.HIGH),  # default MFA trust on
        ("07", "default", Severity.MEDIUM),  # reset
        ("08", "storageModel", Severity.INFO),  # migration
        ("09", "b2bCollaborationInbound", Severity.HIGH),  # PascalCase, numeric, trailing period
        ("11", None, Severity.REVIEW),  # unparseable value
        ("12", "userSyncInbound", Severity.HIGH),  # Fabrikam may now sync users in
    ]


def test_encoding_helper_matches_the_sample_files() -> None:
    # The sample files are built with the same compact JSON encoding the tests use.
    document = json.loads((AUDIT_FIXTURES / "directoryAudits.crossTenantAccess.json").read_text())
    first = document["value"][0]["targetResources"][0]["modifiedProperties"][0]
    assert first == {"displayName": "tenantId", "oldValue": None, "newValue": enc(CONTOSO)}


def test_the_client_registry_record_serves_as_client_info() -> None:
    from shared.domain.clients import ClientRecord

    contoso = ClientRecord(tenant_id=CONTOSO.upper(), name="Contoso", domains=("Contoso.com",))
    registry = {contoso.tenant_id: contoso}
    change = partner_update(CONTOSO, "b2bCollaborationInbound", ALL_OPEN, BLOCKED)
    severity, reasons = classify(change, registry, None)
    assert severity is Severity.HIGH and "Contoso" in reasons[0]
    record = to_alert_record(change, severity, reasons, contoso, NOW)
    assert record.client == ClientRef(name="Contoso", tenant_id=CONTOSO, domains=("contoso.com",))
