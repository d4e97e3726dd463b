"""Decoding cross-tenant access audit events (DESIGN §3.4, issue 4 item 1).

Events follow the documented directoryAudit shape (../shared/fixtures/graph/) and the
shape of real CrossTenantAccessSettings events: a target resource of type ``Policy``
named "CrossTenantAccessPolicy for <own tenant>", modified property values as
JSON-encoded strings, the partner's ``tenantId`` in ``newValue`` on add and ``oldValue``
on delete. tests/fixtures/audit/ holds whole sample files built the same way.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.audit import (
    ACTIVITY_KINDS,
    B2BSetting,
    ChangeKind,
    CrossTenantChange,
    Scope,
    TargetSet,
    UnknownAuditShape,
    b2b_setting,
    decode_audit_logs_row,
    decode_audit_record,
    decode_audit_records,
    decode_directory_audit,
    decode_management_activity_record,
    normalise_activity,
)

ROOT = Path(__file__).resolve().parents[2]
AUDIT_FIXTURES = ROOT / "tests" / "fixtures" / "audit"

VENDOR = "0c6a3f1e-5d2b-4c8a-9e7f-1a2b3c4d5e6f"
CONTOSO = "3f2a5c7e-8b1d-4e6f-9a0b-1c2d3e4f5a6b"
FABRIKAM = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
GROUP = "8f3c2a1b-4d5e-4f60-9a7b-0c1d2e3f4a5b"
SIGNIN_APP = "a1b2c3d4-0000-4000-8000-0000000000a1"

ALL_OPEN = {
    "usersAndGroups": {
        "accessType": "allowed",
        "targets": [{"target": "AllUsers", "targetType": "user"}],
    },
    "applications": {
        "accessType": "allowed",
        "targets": [{"target": "AllApplications", "targetType": "application"}],
    },
}


def enc(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def graph_event(activity: str, properties: list[dict], **overrides: object) -> dict:
    """A directoryAudit record shaped like a real CrossTenantAccessSettings event."""
    record = {
        "id": "Directory_b092d5bd-efe6-49bb-9a80-2c3321552faa_JVC98_224853536",
        "category": "CrossTenantAccessSettings",
        "correlationId": "b092d5bd-efe6-49bb-9a80-2c3321552faa",
        "result": "success",
        "resultReason": "",
        "activityDisplayName": activity,
        "activityDateTime": "2022-06-24T08:37:42.6299007+00:00",
        "loggedByService": "Core Directory",
        "initiatedBy": {
            "user": {
                "id": "30a6c29d-de7c-4830-815f-9b3bb366e975",
                "displayName": None,
                "userPrincipalName": "it.admin@osttra-vendor.onmicrosoft.com",
                "ipAddress": "40.126.32.99",
                "homeTenantId": None,
                "homeTenantName": None,
            }
        },
        "userAgent": None,
        "targetResources": [
            {
                "id": "5cd43692-51e1-4168-9757-ec4f686ebbcb",
                "displayName": f"CrossTenantAccessPolicy for {VENDOR}",
                "type": "Policy",
                "userPrincipalName": None,
                "groupType": None,
                "modifiedProperties": properties,
            }
        ],
        "additionalDetails": [],
    }
    record.update(overrides)
    return record


def prop(name: str, old: object, new: object) -> dict:
    return {
        "displayName": name,
        "oldValue": None if old is None else enc(old),
        "newValue": None if new is None else enc(new),
    }


def decoded_changes(record: dict) -> list[CrossTenantChange]:
    result = decode_directory_audit(record)
    assert isinstance(result, list), getattr(result, "problems", result)
    return result


def load(name: str) -> object:
    return json.loads((AUDIT_FIXTURES / name).read_text())


# ----------------------------------------------------------------- relevance


@pytest.mark.parametrize(
    "fixture",
    [
        "auditLogs.directoryAudits.list.response.json",
        "auditLogs.directoryAudits.list.filter-initiatedBy.response.json",
        "auditLogs.directoryAudits.id.get.response.json",
    ],
)
def test_documented_events_of_other_categories_are_not_relevant(fixture: str) -> None:
    records = json.loads((GRAPH_FIXTURES / fixture).read_text())["value"]
    for record in records:
        assert decode_directory_audit(record) == []
    batch = decode_audit_records(records)
    assert batch.items == [] and batch.not_relevant == len(records) == batch.events


def test_a_known_activity_is_relevant_even_without_a_category() -> None:
    record = graph_event(
        "Add a partner to cross-tenant access setting", [prop("tenantId", None, CONTOSO)]
    )
    del record["category"]
    assert decoded_changes(record)[0].partner_tenant_id == CONTOSO


# ---------------------------------------------------------------- activities


@pytest.mark.parametrize(
    ("activity", "kind", "scope"),
    [
        ("Add a partner to cross-tenant access setting", ChangeKind.PARTNER_ADDED, Scope.PARTNER),
        ("Update a partner cross-tenant access setting", ChangeKind.PARTNER_UPDATED, Scope.PARTNER),
        (
            "Delete partner specific cross-tenant access setting",
            ChangeKind.PARTNER_DELETED,
            Scope.PARTNER,
        ),
        ("Reset the cross-tenant access default setting", ChangeKind.DEFAULT_RESET, Scope.DEFAULT),
        (
            "Update the company default cross-tenant access setting",
            ChangeKind.DEFAULT_UPDATED,
            Scope.DEFAULT,
        ),
        (
            "Migrated partner cross-tenant access settings to the scalable model",
            ChangeKind.MIGRATED,
            Scope.ALL_PARTNERS,
        ),
    ],
)
@pytest.mark.parametrize(
    "spelling",
    [
        lambda name: name,
        lambda name: name + ".",  # Office 365 Management API
        lambda name: "  " + name.upper() + ". ",
        lambda name: name.replace("cross-tenant", "cross tenant"),
    ],
)
def test_every_documented_activity_is_recognised_loosely(activity, kind, scope, spelling) -> None:
    assert ACTIVITY_KINDS[normalise_activity(spelling(activity))] == (kind, scope)


# ------------------------------------------------------------------- partners


def test_add_partner_reads_the_tenant_id_from_new_value() -> None:
    # The real event carries only the JSON-encoded tenantId; the target resource is the
    # vendor's own policy object and must not be mistaken for the partner.
    record = graph_event(
        "Add a partner to cross-tenant access setting", [prop("tenantId", None, CONTOSO)]
    )
    (change,) = decoded_changes(record)
    assert change.kind is ChangeKind.PARTNER_ADDED
    assert change.scope is Scope.PARTNER
    assert change.partner_tenant_id == CONTOSO
    assert (change.setting, change.before, change.after) == ("tenantId", None, CONTOSO)
    assert change.event.who.display() == "it.admin@osttra-vendor.onmicrosoft.com"
    assert change.event.who.ip_address == "40.126.32.99"
    assert change.event.time == datetime(2022, 6, 24, 8, 37, 42, 629900, tzinfo=UTC)
    assert change.event.correlation_id == "b092d5bd-efe6-49bb-9a80-2c3321552faa"
    assert change.event_id == "Directory_b092d5bd-efe6-49bb-9a80-2c3321552faa_JVC98_224853536"
    assert change.summary == (
        f"Partner entry added for tenant {CONTOSO}: it inherits the default settings until "
        "its own are set"
    )


def test_delete_partner_reads_the_tenant_id_from_old_value() -> None:
    record = graph_event(
        "Delete partner specific cross-tenant access setting", [prop("tenantId", FABRIKAM, None)]
    )
    (change,) = decoded_changes(record)
    assert change.kind is ChangeKind.PARTNER_DELETED
    assert change.partner_tenant_id == FABRIKAM
    assert (change.before, change.after) == (FABRIKAM, None)
    assert "deleted" in change.summary and FABRIKAM in change.summary


@pytest.mark.parametrize(
    "encoded",
    [
        enc(CONTOSO),  # "\"<guid>\""
        CONTOSO,  # bare
        enc([CONTOSO]),  # one-element JSON array, as Entra logs many values
        enc(CONTOSO.upper()),
        enc(enc(CONTOSO)),  # encoded twice
    ],
)
def test_tenant_id_values_in_every_encoding(encoded: str) -> None:
    record = graph_event(
        "Add a partner to cross-tenant access setting",
        [{"displayName": "tenantId", "oldValue": None, "newValue": encoded}],
    )
    assert decoded_changes(record)[0].partner_tenant_id == CONTOSO


def test_update_partner_decodes_inbound_b2b_before_and_after() -> None:
    scoped = {
        "usersAndGroups": {
            "accessType": "allowed",
            "targets": [{"target": GROUP, "targetType": "group"}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": SIGNIN_APP, "targetType": "application"}],
        },
    }
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", None, CONTOSO),
            prop("b2bCollaborationInbound", ALL_OPEN, scoped),
            # bookkeeping Entra adds to many events; not a setting
            {
                "displayName": "Included Updated Properties",
                "oldValue": None,
                "newValue": '"b2bCollaborationInbound"',
            },
        ],
    )
    # On an update the tenantId only identifies the partner: one change, not two.
    (change,) = decoded_changes(record)
    assert change.index == 0
    assert change.setting == "b2bCollaborationInbound"
    assert change.label == "B2B collaboration inbound"
    assert change.partner_tenant_id == CONTOSO
    assert change.before == ALL_OPEN and change.after == scoped
    assert change.before_text == "users allowed AllUsers; applications allowed AllApplications"
    assert change.after_text == f"users allowed {GROUP}; applications allowed {SIGNIN_APP}"
    assert change.summary == (
        f"B2B collaboration inbound: users allowed AllUsers → allowed {GROUP}; "
        f"applications allowed AllApplications → allowed {SIGNIN_APP}"
    )
    assert b2b_setting(change.after) == B2BSetting(
        users=TargetSet("allowed", (GROUP,)), applications=TargetSet("allowed", (SIGNIN_APP,))
    )


def test_pascal_case_keys_and_numeric_access_types_normalise_to_the_graph_shape() -> None:
    before = {
        "UsersAndGroups": {"AccessType": 1, "Targets": [{"Target": "AllUsers", "TargetType": 1}]},
        "Applications": {
            "AccessType": 1,
            "Targets": [{"Target": "AllApplications", "TargetType": 2}],
        },
    }
    after = copy.deepcopy(before)
    after["UsersAndGroups"]["AccessType"] = 2
    record = graph_event(
        "Update a partner cross-tenant access setting.",  # Management API spelling
        [prop("TenantId", None, FABRIKAM), prop("B2bCollaborationInbound", before, after)],
    )
    (change,) = decoded_changes(record)
    assert change.kind is ChangeKind.PARTNER_UPDATED
    assert change.setting == "b2bCollaborationInbound"
    assert change.partner_tenant_id == FABRIKAM
    assert change.after == {
        "usersAndGroups": {
            "accessType": "blocked",
            "targets": [{"target": "AllUsers", "targetType": 1}],
        },
        "applications": {
            "accessType": "allowed",
            "targets": [{"target": "AllApplications", "targetType": 2}],
        },
    }
    assert change.summary == "B2B collaboration inbound: users allowed AllUsers → blocked AllUsers"


def test_string_access_types_in_any_case() -> None:
    after = {"usersAndGroups": {"accessType": "Blocked", "targets": [{"target": "AllUsers"}]}}
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [prop("tenantId", None, CONTOSO), prop("b2bCollaborationOutbound", None, after)],
    )
    (change,) = decoded_changes(record)
    assert change.after == {
        "usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers"}]}
    }
    assert (
        change.summary
        == "B2B collaboration outbound: inherited from default → users blocked AllUsers"
    )


def test_auto_redemption_change() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", CONTOSO, CONTOSO),
            prop(
                "automaticUserConsentSettings",
                {"inboundAllowed": True, "outboundAllowed": False},
                {"inboundAllowed": False, "outboundAllowed": False},
            ),
        ],
    )
    (change,) = decoded_changes(record)
    assert change.setting == "automaticUserConsentSettings"
    assert change.label == "Automatic redemption"
    assert change.before == {"inboundAllowed": True, "outboundAllowed": False}
    assert change.after_text == "inbound off, outbound off"
    assert change.summary == "Automatic redemption: inbound on → off"


def test_direct_connect_opened_from_inherited() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [prop("tenantId", None, CONTOSO), prop("b2bDirectConnectOutbound", None, ALL_OPEN)],
    )
    (change,) = decoded_changes(record)
    assert change.before is None and change.before_text is None
    assert change.summary == (
        "B2B direct connect outbound: inherited from default → users allowed AllUsers; "
        "applications allowed AllApplications"
    )


def test_values_double_encoded_or_already_decoded() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", None, CONTOSO),
            {
                "displayName": "b2bCollaborationInbound",
                "oldValue": enc(enc(ALL_OPEN)),
                "newValue": ALL_OPEN,
            },
        ],
    )
    (change,) = decoded_changes(record)
    assert change.before == change.after == ALL_OPEN
    assert change.summary.endswith(
        "unchanged (users allowed AllUsers; applications allowed AllApplications)"
    )


def test_a_partner_named_only_by_a_non_policy_target_resource() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting", [prop("isServiceProvider", False, True)]
    )
    record["targetResources"].append(
        {"id": CONTOSO, "displayName": None, "type": "Other", "modifiedProperties": []}
    )
    (change,) = decoded_changes(record)
    assert change.partner_tenant_id == CONTOSO
    assert change.summary == "Service provider flag: off → on"


# -------------------------------------------------------------------- default


def test_default_update_yields_one_change_per_setting() -> None:
    blocked = {
        "usersAndGroups": {
            "accessType": 2,
            "targets": [{"target": "AllUsers", "targetType": "user"}],
        },
        "applications": {
            "accessType": 2,
            "targets": [{"target": "AllApplications", "targetType": "application"}],
        },
    }
    trust_off = {
        "isMfaAccepted": False,
        "isCompliantDeviceAccepted": False,
        "isHybridAzureADJoinedDeviceAccepted": False,
    }
    trust_mfa = {**trust_off, "isMfaAccepted": True}
    record = graph_event(
        "Update the company default cross-tenant access setting",
        [
            prop("b2bCollaborationInbound", ALL_OPEN, blocked),
            prop("inboundTrust", trust_off, trust_mfa),
        ],
        category="CrossTenantIdentitySyncSettings",
    )
    inbound, trust = decoded_changes(record)
    assert [inbound.index, trust.index] == [0, 1]
    assert inbound.scope is trust.scope is Scope.DEFAULT
    assert inbound.partner_tenant_id is None
    assert inbound.event.category == "CrossTenantIdentitySyncSettings"
    assert inbound.summary == (
        "B2B collaboration inbound: users allowed AllUsers → blocked AllUsers; "
        "applications allowed AllApplications → blocked AllApplications"
    )
    assert trust.summary == "Inbound trust settings: trust MFA off → on"
    assert (
        trust.after_text
        == "trust MFA on, trust compliant devices off, trust hybrid joined devices off"
    )


def test_reset_default_without_properties_is_one_explained_change() -> None:
    (change,) = decoded_changes(graph_event("Reset the cross-tenant access default setting", []))
    assert change.kind is ChangeKind.DEFAULT_RESET and change.scope is Scope.DEFAULT
    assert "service defaults" in change.summary


def test_migration_initiated_by_a_microsoft_app() -> None:
    record = graph_event(
        "Migrated partner cross-tenant access settings to the scalable model",
        [],
        initiatedBy={
            "app": {
                "appId": None,
                "displayName": "Microsoft Azure AD Internal - Jit Provisioning",
                "servicePrincipalId": "b8f3c6a1-7d2e-4f50-8a9b-0c1d2e3f4a5c",
                "servicePrincipalName": None,
            }
        },
    )
    (change,) = decoded_changes(record)
    assert change.kind is ChangeKind.MIGRATED and change.scope is Scope.ALL_PARTNERS
    assert change.event.who.display() == "app Microsoft Azure AD Internal - Jit Provisioning"


def test_a_failed_attempt_is_decoded_and_marked_failed() -> None:
    record = graph_event(
        "Add a partner to cross-tenant access setting",
        [prop("tenantId", None, CONTOSO)],
        result="failure",
    )
    (change,) = decoded_changes(record)
    assert change.event.succeeded is False


# ------------------------------------------------------------- other sources


def test_log_analytics_row_decodes_like_the_graph_record() -> None:
    row, added, default_dc, unrelated = load("AuditLogs.logAnalytics.json")
    (change,) = decode_audit_logs_row(row)
    assert change.event.source == "log_analytics"
    assert change.partner_tenant_id == CONTOSO
    assert change.setting == "b2bCollaborationInbound"
    assert change.summary == (
        "B2B collaboration inbound: users allowed AllUsers → blocked AllUsers; "
        "applications allowed AllApplications → blocked AllApplications"
    )
    assert change.event.who.display() == "it.admin@osttra-vendor.onmicrosoft.com"
    assert change.event.time == datetime(2026, 11, 22, 6, 10, 0, 123000, tzinfo=UTC)
    (add,) = decode_audit_logs_row(added)  # bare GUID in NewValue
    assert add.kind is ChangeKind.PARTNER_ADDED and add.partner_tenant_id == CONTOSO
    (dc,) = decode_audit_logs_row(default_dc)  # name with a trailing period
    assert dc.kind is ChangeKind.DEFAULT_UPDATED and dc.setting == "b2bDirectConnectInbound"
    assert decode_audit_logs_row(unrelated) == []


def test_log_analytics_row_with_decoded_columns_and_a_datetime() -> None:
    # azure-monitor-query hands datetime columns over as datetime and may give dynamic
    # columns as lists/objects; camelCase inner keys as Graph writes them.
    when = datetime(2026, 11, 22, 6, 10, tzinfo=UTC)
    row = {
        "Id": "Directory_7d1e2f3a_K4Q2M_1201",
        "OperationName": "Delete partner specific cross-tenant access setting",
        "Category": "CrossTenantAccessSettings",
        "Result": "success",
        "CorrelationId": "7d1e2f3a-4b5c-4d6e-8f70-819293040001",
        "ActivityDateTime": when,
        "InitiatedBy": {
            "app": {
                "displayName": "Provisioning Automation",
                "appId": SIGNIN_APP,
                "servicePrincipalId": None,
            }
        },
        "TargetResources": [
            {
                "type": "Policy",
                "id": "5cd43692-51e1-4168-9757-ec4f686ebbcb",
                "modifiedProperties": [
                    {"displayName": "tenantId", "oldValue": enc(FABRIKAM), "newValue": None}
                ],
            }
        ],
    }
    (change,) = decode_audit_logs_row(row)
    assert change.kind is ChangeKind.PARTNER_DELETED and change.partner_tenant_id == FABRIKAM
    assert change.event.time == when
    assert change.event.who.display() == "app Provisioning Automation"


def test_office_365_management_activity_record() -> None:
    (record,) = load("managementActivity.azureActiveDirectory.json")
    (change,) = decode_management_activity_record(record)
    assert change.kind is ChangeKind.PARTNER_DELETED
    assert change.partner_tenant_id == CONTOSO
    assert change.event.who.display() == "it.admin@osttra-vendor.onmicrosoft.com"
    assert change.event.time == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert decode_audit_record(record) == [change]


def test_sample_file_every_activity_in_order() -> None:
    batch = decode_audit_records(load("directoryAudits.crossTenantAccess.json")["value"])
    assert batch.events == 12 and batch.not_relevant == 1
    kinds = [item.kind for item in batch.changes]
    assert kinds == [
        ChangeKind.PARTNER_ADDED,
        ChangeKind.PARTNER_UPDATED,
        ChangeKind.PARTNER_UPDATED,
        ChangeKind.PARTNER_UPDATED,
        ChangeKind.PARTNER_DELETED,
        ChangeKind.DEFAULT_UPDATED,
        ChangeKind.DEFAULT_UPDATED,
        ChangeKind.DEFAULT_RESET,
        ChangeKind.MIGRATED,
        ChangeKind.PARTNER_UPDATED,
        ChangeKind.PARTNER_SYNC_UPDATED,
    ]
    assert len(batch.unknown) == 1


# -------------------------------------------------------------- unknown shapes


def _unknown(record: object) -> UnknownAuditShape:
    result = decode_audit_record(record)
    assert isinstance(result, UnknownAuditShape), result
    return result


def test_unparseable_value_is_kept_raw_for_review() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", None, CONTOSO),
            prop("inboundTrust", None, {"isMfaAccepted": True}),
            {
                "displayName": "b2bCollaborationInbound",
                "oldValue": None,
                "newValue": '{"usersAndGroups":{"accessType":1,',
            },
        ],
    )
    unknown = _unknown(record)
    assert unknown.raw is record
    assert unknown.problems == ("b2bCollaborationInbound is not valid JSON",)
    assert unknown.event_id == record["id"] and unknown.partner_tenant_id == CONTOSO
    assert [c.setting for c in unknown.partial] == ["inboundTrust", "b2bCollaborationInbound"]
    assert unknown.summary.startswith("Unrecognised Update a partner cross-tenant access setting:")


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda r: r.update(
                activityDisplayName="Update a partner cross-tenant hologram setting"
            ),
            "unknown activity",
        ),
        (
            lambda r: r["targetResources"][0].update(modifiedProperties=[]),
            "partner tenant ID not found",
        ),
        (lambda r: r["targetResources"][0]["modifiedProperties"].pop(1), "no modified settings"),
        (lambda r: r.pop("id"), "event id missing"),
        (lambda r: r.update(activityDateTime="yesterday"), "activity time"),
        (
            lambda r: r.update(targetResources={"modifiedProperties": []}),
            "targetResources is not a list",
        ),
        (
            lambda r: r["targetResources"][0].update(modifiedProperties="b2bCollaborationInbound"),
            "modifiedProperties is not a list",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"].append({"oldValue": "1"}),
            "has no name",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"][1].update(
                newValue=enc({"usersAndGroups": {"accessType": 3}})
            ),
            "unrecognised access type 3",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"][1].update(
                newValue=enc({"isMfaAccepted": True})
            ),
            "neither usersAndGroups nor applications",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"][1].update(newValue='"blocked"'),
            "not a JSON object",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"].pop(0),
            "partner tenant ID not found",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"][0].update(
                newValue='"contoso.com"'
            ),
            "not a tenant ID",
        ),
        (
            lambda r: r["targetResources"][0]["modifiedProperties"][1].update(
                newValue=enc(json.loads("[" * 40 + "]" * 40))
            ),
            "nested too deeply",
        ),
    ],
)
def test_unknown_shapes_of_a_relevant_event_are_never_dropped(mutate, problem) -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [prop("tenantId", None, CONTOSO), prop("b2bCollaborationInbound", None, ALL_OPEN)],
    )
    mutate(record)
    unknown = _unknown(record)
    assert any(problem in text for text in unknown.problems), unknown.problems
    assert unknown.raw is record


def test_a_default_update_without_properties_is_unknown() -> None:
    record = graph_event("Update the company default cross-tenant access setting", [])
    assert _unknown(record).problems == ("no modified settings in the event",)


def test_records_that_are_not_objects_are_unknown() -> None:
    assert _unknown(["not", "an", "event"]).problems == ("record is not a JSON object",)
    assert _unknown("Add a partner to cross-tenant access setting").raw == (
        "Add a partner to cross-tenant access setting"
    )


def test_log_analytics_row_with_broken_target_resources_json() -> None:
    row = copy.deepcopy(load("AuditLogs.logAnalytics.json")[0])
    row["TargetResources"] = row["TargetResources"][:-5]
    unknown = _unknown(row)
    assert "TargetResources is not valid JSON" in unknown.problems
    assert unknown.event_id == row["Id"]


def test_json_nested_beyond_the_parser_limit_does_not_raise() -> None:
    record = graph_event(
        "Update a partner cross-tenant access setting",
        [
            prop("tenantId", None, CONTOSO),
            {"displayName": "inboundTrust", "oldValue": None, "newValue": "[" * 100_000},
        ],
    )
    assert "inboundTrust is not valid JSON" in _unknown(record).problems


# ------------------------------------------------------------ never raises


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SETTING_NAMES = st.sampled_from(
    [
        "tenantId",
        "TenantId",
        "b2bCollaborationInbound",
        "B2bDirectConnectOutbound",
        "inboundTrust",
        "automaticUserConsentSettings",
        "Included Updated Properties",
        "tenantRestrictions",
    ]
)
ACCESS = st.sampled_from([1, 2, "allowed", "Blocked", 3, None, True, "1"])
B2B_VALUES = st.fixed_dictionaries(
    {
        "usersAndGroups": st.fixed_dictionaries(
            {
                "accessType": ACCESS,
                "targets": st.lists(
                    st.fixed_dictionaries(
                        {"target": st.sampled_from(["AllUsers", GROUP]) | JSON_VALUES}
                    ),
                    max_size=3,
                ),
            }
        )
    },
    optional={
        "applications": st.fixed_dictionaries({"AccessType": ACCESS, "Targets": JSON_VALUES})
    },
)
PROPERTY_VALUES = (
    (JSON_VALUES | B2B_VALUES | st.sampled_from([CONTOSO, FABRIKAM])).map(enc)
    | st.text(max_size=30)
    | JSON_VALUES
)
PROPERTIES = st.fixed_dictionaries(
    {
        "displayName": SETTING_NAMES | JSON_VALUES,
        "oldValue": PROPERTY_VALUES,
        "newValue": PROPERTY_VALUES,
    }
)
ACTIVITIES = st.sampled_from(
    [name for name, *_ in __import__("shared.domain.audit", fromlist=["_ACTIVITIES"])._ACTIVITIES]
    + ["Update a partner cross-tenant hologram setting", "Add member to group"]
)
CATEGORIES = st.sampled_from(
    ["CrossTenantAccessSettings", "CrossTenantIdentitySyncSettings", "UserManagement"]
)
TARGETS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Policy", "Other"]) | JSON_VALUES,
            "id": st.sampled_from([CONTOSO, "5cd43692-51e1-4168-9757-ec4f686ebbcb"]) | JSON_VALUES,
            "modifiedProperties": st.lists(PROPERTIES, max_size=4) | JSON_VALUES,
        }
    ),
    max_size=3,
)
GRAPH_EVENTS = st.fixed_dictionaries(
    {
        "id": st.text(max_size=20) | JSON_VALUES,
        "category": CATEGORIES | JSON_VALUES,
        "activityDisplayName": ACTIVITIES | JSON_VALUES,
        "activityDateTime": st.sampled_from(["2026-11-20T08:37:42.6299007Z", "2026-11-20"])
        | JSON_VALUES,
        "result": st.sampled_from(["success", "failure"]) | JSON_VALUES,
        "initiatedBy": st.fixed_dictionaries({"user": JSON_VALUES, "app": JSON_VALUES})
        | JSON_VALUES,
        "targetResources": TARGETS | JSON_VALUES,
    }
)
LA_ROWS = GRAPH_EVENTS.map(
    lambda e: {
        "Id": e["id"],
        "Category": e["category"],
        "OperationName": e["activityDisplayName"],
        "ActivityDateTime": e["activityDateTime"],
        "InitiatedBy": e["initiatedBy"],
        "TargetResources": enc(e["targetResources"])
        if isinstance(e["targetResources"], list)
        else e["targetResources"],
    }
)


def _check_invariants(record: object, result: object) -> None:
    assert isinstance(result, list | UnknownAuditShape)
    if isinstance(result, list):
        assert all(isinstance(change, CrossTenantChange) for change in result)
        assert [change.index for change in result] == list(range(len(result)))
    if isinstance(record, dict):
        category = record.get("category", record.get("Category"))
        activity = record.get("activityDisplayName", record.get("OperationName"))
        relevant = (
            isinstance(category, str)
            and category.strip().lower()
            in {"crosstenantaccesssettings", "crosstenantidentitysyncsettings"}
        ) or (isinstance(activity, str) and normalise_activity(activity) in ACTIVITY_KINDS)
        if relevant:
            assert result != [], "a relevant event must never be dropped"


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(GRAPH_EVENTS)
def test_decoding_near_valid_graph_events_never_raises(record: dict) -> None:
    _check_invariants(record, decode_directory_audit(record))


@FAST
@given(LA_ROWS)
def test_decoding_near_valid_log_analytics_rows_never_raises(row: dict) -> None:
    _check_invariants(row, decode_audit_logs_row(row))


@FAST
@given(JSON_VALUES)
def test_decoding_any_json_value_never_raises(value: object) -> None:
    for decoder in (
        decode_directory_audit,
        decode_audit_logs_row,
        decode_management_activity_record,
        decode_audit_record,
    ):
        _check_invariants(value, decoder(value))  # type: ignore[arg-type]
    decode_audit_records([value, value])
