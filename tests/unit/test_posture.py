"""Client outbound posture: Microsoft's interpretation table, keywords, inheritance, findings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.finding_catalog import FindingCode
from shared.domain.messages import Severity
from shared.domain.policy import (
    ReachKind,
    parse_default_policy,
    parse_partner_policy,
)
from shared.domain.posture import (
    PostureResult,
    Verdict,
    evaluate_outbound_posture,
    unknown_posture,
)

GRAPH = GRAPH_FIXTURES
VENDOR = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"  # the partner tenant of Microsoft's example
A1 = "11112222-aaaa-bbbb-cccc-333344445555"  # the vendor's sign-in app
A2 = "66667777-aaaa-bbbb-cccc-888899990000"  # some other app
G1 = "9a9a8b8b-7c7c-6d6d-5e5e-4f4f3a3a2b2b"
G2 = "4d4d3e3e-2f2f-1a1a-0b0b-9c9c8d8d7e7e"


def load(name: str) -> Any:
    return json.loads((GRAPH / name).read_text())


DEFAULT_JSON = load("policies.crossTenantAccessPolicy.default.get.response.json")
PARTNER_JSON = load("policies.crossTenantAccessPolicy.partners.id.get.response.json")


def target_config(access: str, *targets: tuple[str, str]) -> dict[str, Any]:
    return {"accessType": access, "targets": [{"target": t, "targetType": k} for t, k in targets]}


def setting(users: dict[str, Any], apps: dict[str, Any]) -> dict[str, Any]:
    return {"usersAndGroups": users, "applications": apps}


ALLOW_ALL = setting(
    target_config("allowed", ("AllUsers", "user")),
    target_config("allowed", ("AllApplications", "application")),
)
BLOCK_ALL = setting(
    target_config("blocked", ("AllUsers", "user")),
    target_config("blocked", ("AllApplications", "application")),
)


def default_with(**overrides: Any) -> dict[str, Any]:
    policy = copy.deepcopy(DEFAULT_JSON)
    policy.update(overrides)
    return policy


def partner_with(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "tenantId": VENDOR,
        "inboundTrust": None,
        "automaticUserConsentSettings": {"inboundAllowed": None, "outboundAllowed": True},
        "b2bCollaborationInbound": None,
        "b2bCollaborationOutbound": None,
        "b2bDirectConnectOutbound": None,
        "b2bDirectConnectInbound": None,
    }
    entry.update(fields)
    return entry


def evaluate(
    default: dict[str, Any] | None = None,
    partner: dict[str, Any] | None = None,
    apps: tuple[str, ...] = (A1,),
) -> PostureResult:
    return evaluate_outbound_posture(
        parse_default_policy(default if default is not None else DEFAULT_JSON),
        None if partner is None else parse_partner_policy(partner),
        VENDOR,
        apps,
        vendor_name="OSTTRA",
        vendor_domain="sso.osttra.com",
    )


def codes(result: PostureResult) -> set[str]:
    return {f.code.value for f in result.findings}


# --------------------------------------------------------------------------------------
# Microsoft's "Interpreting the API response" table (Graph cross-tenant access settings
# API overview), every row, JSON as printed there (including the " blocked" typo).
# `permits` is the documented interpretation: (user in g1?, app) -> can access.

MS_TABLE = [
    pytest.param(
        BLOCK_ALL,
        {(True, A1): False, (True, A2): False, (False, A1): False, (False, A2): False},
        id="block all users and block all applications",
    ),
    pytest.param(
        ALLOW_ALL,
        {(True, A1): True, (True, A2): True, (False, A1): True, (False, A2): True},
        id="allow all users and allow all applications",
    ),
    pytest.param(
        setting(
            target_config("allowed", (G1, "group")),
            target_config("allowed", ("AllApplications", "application")),
        ),
        # "Users in group 'g1' can access any app. All other users not in group 'g1' are blocked."
        {(True, A1): True, (True, A2): True, (False, A1): False, (False, A2): False},
        id="allow users in g1 to access any app",
    ),
    pytest.param(
        setting(
            target_config("allowed", ("AllUsers", "user")),
            target_config("allowed", (A1, "application")),
        ),
        # "All users are only allowed to access application 'a1'"
        {(True, A1): True, (True, A2): False, (False, A1): True, (False, A2): False},
        id="allow access to only application a1",
    ),
    pytest.param(
        setting(
            target_config("allowed", (G1, "group")),
            target_config("blocked", (A1, "application")),
        ),
        # "All users in group 'g1' are allowed to access any application except application 'a1'."
        {(True, A1): False, (True, A2): True, (False, A1): False, (False, A2): False},
        id="allow users in g1 and block access to application a1",
    ),
    pytest.param(
        setting(
            target_config(" blocked", (G1, "group")),
            target_config("blocked", ("AllApplications", "application")),
        ),
        # "Users in group 'g1' can't access any application. Other users not in group 'g1'
        # have access to all applications."
        {(True, A1): False, (True, A2): False, (False, A1): True, (False, A2): True},
        id="block users in g1 from accessing any application",
    ),
    pytest.param(
        setting(
            target_config("blocked", (G1, "group")),
            target_config("allowed", (A1, "application")),
        ),
        # "Users in group 'g1' can't access any application. Any user not in group 'g1' can
        # only access application 'a1'."
        {(True, A1): False, (True, A2): False, (False, A1): True, (False, A2): False},
        id="block users in g1 and allow access to application a1 only",
    ),
    pytest.param(
        setting(
            target_config("allowed", (G1, "group")),
            target_config("allowed", (A1, "application")),
        ),
        # "Users in group 'g1' are only allowed to access application 'a1'. All users,
        # including users in group 'g1', are blocked from accessing any other application."
        {(True, A1): True, (True, A2): False, (False, A1): False, (False, A2): False},
        id="allow users in g1 to access only application a1",
    ),
    pytest.param(
        setting(
            target_config("blocked", (G1, "group")),
            target_config("blocked", (A1, "application")),
        ),
        # "Users in group 'g1' are blocked from accessing application 'a1' only. All users,
        # including users in group 'g1' are able to access any other application."
        {(True, A1): False, (True, A2): True, (False, A1): True, (False, A2): True},
        id="block users in g1 from accessing application a1",
    ),
]


def permitted(kind: ReachKind, principals: tuple[str, ...], in_g1: bool) -> bool:
    member_of = {G1} if in_g1 else set()
    if kind is ReachKind.ALL:
        return True
    if kind is ReachKind.NOBODY:
        return False
    if kind is ReachKind.ONLY:
        return bool(member_of & set(principals))
    if kind is ReachKind.ALL_EXCEPT:
        return not member_of & set(principals)
    raise AssertionError(f"undetermined reach {kind}")


@pytest.mark.parametrize(("b2b_setting", "permits"), MS_TABLE)
def test_every_row_of_microsofts_interpretation_table(b2b_setting, permits):
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=b2b_setting), apps=(A1, A2))
    reach = {r.app_id: r.reach for r in result.reach}
    for (in_g1, app), expected in permits.items():
        got = permitted(reach[app].kind, reach[app].principals, in_g1)
        assert got is expected, f"user {'in' if in_g1 else 'not in'} g1 -> {app}"


@pytest.mark.parametrize(
    ("b2b_setting", "verdict", "must_have"),
    [
        (BLOCK_ALL, Verdict.BLOCKED, {"CLIENT_OUTBOUND_BLOCKED"}),
        (ALLOW_ALL, Verdict.ALLOWED, set()),
        (MS_TABLE[2].values[0], Verdict.LIMITED, {"CLIENT_OUTBOUND_USERS_SCOPED"}),
        (MS_TABLE[3].values[0], Verdict.ALLOWED, set()),  # only a1 allowed, a1 is the vendor app
        (MS_TABLE[4].values[0], Verdict.BLOCKED, {"CLIENT_OUTBOUND_BLOCKED"}),
        (MS_TABLE[5].values[0], Verdict.LIMITED, {"CLIENT_OUTBOUND_USERS_SCOPED"}),
        (MS_TABLE[6].values[0], Verdict.LIMITED, {"CLIENT_OUTBOUND_USERS_SCOPED"}),
        (MS_TABLE[7].values[0], Verdict.LIMITED, {"CLIENT_OUTBOUND_USERS_SCOPED"}),
        (MS_TABLE[8].values[0], Verdict.LIMITED, {"CLIENT_OUTBOUND_USERS_SCOPED"}),
    ],
    ids=[p.id for p in MS_TABLE],
)
def test_verdict_for_each_table_row_toward_the_vendor_app(b2b_setting, verdict, must_have):
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=b2b_setting), apps=(A1,))
    assert result.verdict is verdict
    assert must_have <= codes(result)
    if verdict is Verdict.ALLOWED:
        assert not codes(result) & {"CLIENT_OUTBOUND_BLOCKED", "CLIENT_OUTBOUND_USERS_SCOPED"}


def test_only_some_vendor_apps_allowed_is_limited_and_names_the_app():
    only_a1 = MS_TABLE[3].values[0]
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=only_a1), apps=(A1, A2))
    assert result.verdict is Verdict.LIMITED
    finding = next(
        f for f in result.findings if f.code is FindingCode.CLIENT_VENDOR_APP_NOT_ALLOWED
    )
    assert finding.severity is Severity.HIGH
    assert A2 in finding.message and A1 not in finding.message
    assert dict(finding.facts)["apps"] == A2


# ------------------------------------------------------------------------------ keywords


@pytest.mark.parametrize(
    ("apps_config", "vendor_apps", "verdict"),
    [
        (target_config("allowed", ("AllApplications", "application")), (A1,), Verdict.ALLOWED),
        (target_config("allowed", ("AllMicrosoftApps", "application")), (A1,), Verdict.BLOCKED),
        (target_config("allowed", ("Office365", "application")), (A1,), Verdict.BLOCKED),
        # without vendor app IDs the Microsoft keywords still cannot cover a vendor app
        (target_config("allowed", ("Office365", "application")), (), Verdict.BLOCKED),
        (target_config("allowed", ("AllMicrosoftApps", "application")), (), Verdict.BLOCKED),
        (target_config("blocked", ("Office365", "application")), (A1,), Verdict.ALLOWED),
        (target_config("blocked", ("AllMicrosoftApps", "application")), (), Verdict.ALLOWED),
        (
            target_config("allowed", ("Office365", "application"), (A1.upper(), "application")),
            (A1,),
            Verdict.ALLOWED,
        ),
        (target_config("blocked", ("AllApplications", "application")), (A1,), Verdict.BLOCKED),
    ],
)
def test_application_keywords(apps_config, vendor_apps, verdict):
    b2b = setting(target_config("allowed", ("AllUsers", "user")), apps_config)
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=b2b), apps=vendor_apps)
    assert result.verdict is verdict


def test_explicit_app_list_without_vendor_app_ids_is_limited_and_unverified():
    b2b = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config("allowed", (A1, "application")),
    )
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=b2b), apps=())
    assert result.verdict is Verdict.LIMITED
    assert result.reason_code is None
    assert "CLIENT_OUTBOUND_APPS_UNVERIFIED" in codes(result)
    assert [r.reach.kind for r in result.reach] == [ReachKind.UNDETERMINED]


def test_blocking_all_users_is_decisive_even_without_vendor_app_ids():
    b2b = setting(
        target_config("blocked", ("AllUsers", "user")),
        target_config("allowed", (A1, "application")),
    )
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=b2b), apps=())
    assert result.verdict is Verdict.BLOCKED


# ------------------------------------------------------------- Microsoft's documented JSON


def test_microsoft_default_and_partner_examples_are_allowed_with_hygiene_findings():
    result = evaluate(partner=PARTNER_JSON)
    assert result.verdict is Verdict.ALLOWED
    assert codes(result) == {
        "CLIENT_OUTBOUND_INHERITS_DEFAULT",  # the example entry leaves outbound null
        "CLIENT_AUTO_REDEMPTION_NOT_TICKED",
    }
    # its open direct connect is *inbound* (Office365): not the vendor's concern
    assert "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN" not in codes(result)
    body = result.to_dict()
    assert body["verdict"] == "ALLOWED"
    assert body["effective"]["b2bCollaborationOutbound"]["usersAndGroups"]["source"] == "default"
    assert all(
        {"code", "severity", "message", "remediation", "doc"} <= f.keys() for f in body["findings"]
    )
    assert any("inherited from the default" in line for line in result.explanation)


def test_missing_partner_means_default_applies():
    result = evaluate(partner=None)
    assert result.verdict is Verdict.ALLOWED
    assert codes(result) == {"CLIENT_VENDOR_ENTRY_MISSING", "CLIENT_AUTO_REDEMPTION_NOT_TICKED"}
    auto = next(
        f for f in result.findings if f.code is FindingCode.CLIENT_AUTO_REDEMPTION_NOT_TICKED
    )
    assert "needs an organizational entry" in auto.message
    assert result.to_dict()["effective"]["partnerEntry"] == "missing"


def test_default_blocked_without_vendor_exception():
    result = evaluate(default=default_with(b2bCollaborationOutbound=BLOCK_ALL), partner=None)
    assert result.verdict is Verdict.BLOCKED
    assert {"CLIENT_DEFAULT_OUTBOUND_BLOCKED", "CLIENT_VENDOR_ENTRY_MISSING"} <= codes(result)
    blocked = next(
        f for f in result.findings if f.code is FindingCode.CLIENT_DEFAULT_OUTBOUND_BLOCKED
    )
    assert blocked.severity is Severity.HIGH
    assert "sso.osttra.com" in blocked.remediation and "Allow access" in blocked.remediation
    assert "PATCH /policies/crossTenantAccessPolicy/partners/" + VENDOR in blocked.remediation


def test_default_blocked_with_an_entry_that_inherits_is_still_no_exception():
    result = evaluate(
        default=default_with(b2bCollaborationOutbound=BLOCK_ALL), partner=PARTNER_JSON
    )
    assert result.verdict is Verdict.BLOCKED
    assert "CLIENT_DEFAULT_OUTBOUND_BLOCKED" in codes(result)
    assert "CLIENT_OUTBOUND_INHERITS_DEFAULT" not in codes(result)


def test_default_blocked_with_vendor_exception_is_allowed():
    result = evaluate(
        default=default_with(b2bCollaborationOutbound=BLOCK_ALL),
        partner=partner_with(b2bCollaborationOutbound=ALLOW_ALL),
    )
    assert result.verdict is Verdict.ALLOWED
    assert codes(result) == set()
    out = result.to_dict()["effective"]["b2bCollaborationOutbound"]
    assert out["usersAndGroups"]["source"] == "partner"


def test_null_inheritance_field_by_field_decides_the_verdict():
    # The entry allows group g1 but leaves applications null; the default blocks all apps.
    partial = {"usersAndGroups": target_config("allowed", (G1, "group")), "applications": None}
    result = evaluate(
        default=default_with(b2bCollaborationOutbound=BLOCK_ALL),
        partner=partner_with(b2bCollaborationOutbound=partial),
    )
    assert result.verdict is Verdict.BLOCKED
    # part of the decisive setting came from the entry: it is the entry's block
    assert "CLIENT_OUTBOUND_BLOCKED" in codes(result)
    lines = "\n".join(result.explanation)
    assert f"allowed [{G1}] (set on the vendor's organizational entry)" in lines
    assert "blocked [AllApplications] (inherited from the default settings)" in lines


def test_entry_inheriting_one_field_gets_a_low_finding():
    partial = {
        "usersAndGroups": target_config("allowed", ("AllUsers", "user")),
        "applications": None,
    }
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=partial))
    assert result.verdict is Verdict.ALLOWED
    inherits = next(
        f for f in result.findings if f.code is FindingCode.CLIENT_OUTBOUND_INHERITS_DEFAULT
    )
    assert inherits.severity is Severity.LOW
    assert dict(inherits.facts)["inherited"] == "external applications"


def test_scoped_to_groups_lists_the_groups():
    scoped = setting(
        target_config("allowed", (G2, "group"), (G1, "group")),
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=scoped))
    assert result.verdict is Verdict.LIMITED
    finding = next(f for f in result.findings if f.code is FindingCode.CLIENT_OUTBOUND_USERS_SCOPED)
    assert dict(finding.facts) == {"principals": f"{G2}, {G1}", "mode": "only"}
    assert result.reach[0].reach.principals == tuple(sorted((G1, G2)))


def test_direct_connect_outbound_open_is_reported():
    open_dc = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config("allowed", ("Office365", "application")),
    )
    result = evaluate(
        partner=partner_with(b2bCollaborationOutbound=ALLOW_ALL, b2bDirectConnectOutbound=open_dc)
    )
    assert result.verdict is Verdict.ALLOWED  # findings never change the verdict
    finding = next(
        f for f in result.findings if f.code is FindingCode.CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN
    )
    assert finding.severity is Severity.MEDIUM
    assert "entry for the vendor" in dict(finding.facts)["source"]


@pytest.mark.parametrize(
    ("dc_setting", "open_"),
    [
        (BLOCK_ALL, False),
        (ALLOW_ALL, True),
        # blocked g1 + blocked AllApplications: everyone else may use direct connect
        (MS_TABLE[5].values[0], True),
        # users allowed but every app blocked: nothing gets through
        (
            setting(
                target_config("allowed", ("AllUsers", "user")),
                target_config("blocked", ("AllApplications", "application")),
            ),
            False,
        ),
    ],
)
def test_direct_connect_outbound_from_the_default(dc_setting, open_):
    result = evaluate(default=default_with(b2bDirectConnectOutbound=dc_setting), partner=None)
    assert ("CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN" in codes(result)) is open_


@pytest.mark.parametrize(
    ("outbound_allowed", "flagged"), [(True, False), (False, True), (None, True)]
)
def test_automatic_redemption_outbound(outbound_allowed, flagged):
    entry = partner_with(
        b2bCollaborationOutbound=ALLOW_ALL,
        automaticUserConsentSettings={"inboundAllowed": None, "outboundAllowed": outbound_allowed},
    )
    result = evaluate(partner=entry)
    assert ("CLIENT_AUTO_REDEMPTION_NOT_TICKED" in codes(result)) is flagged


def test_unknown_access_type_in_the_decisive_setting_gives_unknown():
    odd = setting(
        target_config("unknownFutureValue", ("AllUsers", "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=odd))
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason_code is FindingCode.POLICY_UNKNOWN_VALUE
    finding = next(f for f in result.findings if f.code is FindingCode.POLICY_UNKNOWN_VALUE)
    assert finding.severity is Severity.REVIEW
    assert dict(finding.facts) == {
        "path": "b2bCollaborationOutbound.usersAndGroups.accessType",
        "value": "unknownFutureValue",
    }
    assert "CLIENT_OUTBOUND_APPS_UNVERIFIED" not in codes(result)


def test_unknown_values_outside_the_outbound_path_are_ignored():
    # An inbound value is the client's own business, not its posture toward the vendor.
    inbound = setting(
        target_config("unknownFutureValue", ("AllUsers", "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate(
        partner=partner_with(b2bCollaborationOutbound=ALLOW_ALL, b2bCollaborationInbound=inbound)
    )
    assert result.verdict is Verdict.ALLOWED
    assert codes(result) == set()


def test_unknown_target_type_is_reviewed_but_does_not_stop_the_verdict():
    odd = setting(
        target_config("allowed", ("AllUsers", "unknownFutureValue")),
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=odd))
    assert result.verdict is Verdict.ALLOWED
    assert codes(result) == {"POLICY_UNKNOWN_VALUE"}


def test_an_inherited_unknown_value_is_reported_from_the_default():
    default = default_with(
        b2bCollaborationOutbound=setting(
            target_config("allowed", ("AllUsers", "user")),
            target_config("unknownFutureValue", ("AllApplications", "application")),
        )
    )
    result = evaluate(default=default, partner=PARTNER_JSON)
    assert result.verdict is Verdict.UNKNOWN
    assert "POLICY_UNKNOWN_VALUE" in codes(result)


def test_missing_outbound_setting_everywhere_is_unknown_incomplete():
    default = copy.deepcopy(DEFAULT_JSON)
    del default["b2bCollaborationOutbound"]
    result = evaluate(default=default, partner=None)
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason_code is FindingCode.POLICY_INCOMPLETE
    assert "POLICY_INCOMPLETE" in codes(result)


def test_caller_bugs_raise():
    with pytest.raises(ValueError, match="GUID"):
        evaluate_outbound_posture(parse_default_policy(DEFAULT_JSON), None, "osttra.com", ())
    other = dict(PARTNER_JSON, tenantId="123f4846-ba00-4fd7-ba43-dac1f8f63013")
    with pytest.raises(ValueError, match="not for"):
        evaluate(partner=other)


def test_unknown_posture_for_missing_consent_and_unreachable_tenant():
    consent = unknown_posture(
        "CLIENT_CONSENT_MISSING", "Graph answered 403 Authorization_RequestDenied"
    )
    assert consent.verdict is Verdict.UNKNOWN
    assert consent.reason_code is FindingCode.CLIENT_CONSENT_MISSING
    assert consent.findings[0].severity is Severity.MEDIUM
    assert "admin-consent link" in consent.findings[0].remediation
    assert consent.to_dict()["reason"] == "CLIENT_CONSENT_MISSING"

    down = unknown_posture(FindingCode.CLIENT_TENANT_UNREACHABLE, "timed out after 3 retries")
    assert down.reason_code is FindingCode.CLIENT_TENANT_UNREACHABLE
    weird = unknown_posture("SOMETHING_NEW", "odd")
    assert weird.reason_code is FindingCode.CLIENT_TENANT_UNREACHABLE
    assert dict(weird.findings[0].facts)["reason"] == "SOMETHING_NEW"


# -------------------------------------------------------------------- property tests

USER_TARGETS = ["AllUsers", G1, G2]
APP_TARGETS = ["AllApplications", A1, A2, "Office365", "AllMicrosoftApps"]


def config_strategy(candidates: list[str], kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda access, targets: target_config(access, *[(t, kind) for t in targets]),
        st.sampled_from(["allowed", "blocked"]),
        st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True),
    )


SETTINGS = st.builds(
    setting, config_strategy(USER_TARGETS, "group"), config_strategy(APP_TARGETS, "application")
)
VENDOR_APPS = st.lists(st.sampled_from([A1, A2]), max_size=2, unique=True).map(tuple)


@settings(max_examples=150, deadline=None)
@given(collab=SETTINGS, dc=SETTINGS, apps=VENDOR_APPS)
def test_a_partner_entry_identical_to_the_default_never_changes_the_verdict(collab, dc, apps):
    default = default_with(b2bCollaborationOutbound=collab, b2bDirectConnectOutbound=dc)
    copy_entry = partner_with(
        b2bCollaborationOutbound=collab,
        b2bDirectConnectOutbound=dc,
        automaticUserConsentSettings={"inboundAllowed": None, "outboundAllowed": None},
    )
    without = evaluate(default=default, partner=None, apps=apps)
    with_copy = evaluate(default=default, partner=copy_entry, apps=apps)
    assert with_copy.verdict is without.verdict
    assert with_copy.reach == without.reach
    assert ("CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN" in codes(with_copy)) == (
        "CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN" in codes(without)
    )


def brute_force(b2b: dict[str, Any], groups: set[str], app: str) -> bool:
    """The four documented rules evaluated literally for one user and one app."""
    users, apps = b2b["usersAndGroups"], b2b["applications"]
    user_targets = {t["target"] for t in users["targets"]}
    app_targets = {t["target"] for t in apps["targets"]}
    u = "AllUsers" in user_targets or bool(groups & user_targets)
    a = "AllApplications" in app_targets or app in app_targets  # MS keywords never match
    ua, aa = users["accessType"] == "allowed", apps["accessType"] == "allowed"
    if ua and aa:
        return u and a
    if ua:
        return u and not a
    if aa:
        return not u and a
    return not (u and a)


@settings(max_examples=200, deadline=None)
@given(b2b=SETTINGS)
def test_reach_matches_the_documented_rules_for_every_kind_of_user(b2b):
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=b2b), apps=(A1, A2))
    for r in result.reach:
        assert r.app_id is not None
        for groups in (set(), {G1}, {G2}, {G1, G2}):
            kind, principals = r.reach.kind, set(r.reach.principals)
            model = (
                kind is ReachKind.ALL
                or (kind is ReachKind.ONLY and bool(groups & principals))
                or (kind is ReachKind.ALL_EXCEPT and not groups & principals)
            )
            assert model is brute_force(b2b, groups, r.app_id), (groups, r.app_id)


# ------------------------------------------------------------------ finding pages


def test_every_finding_code_has_its_page_and_no_page_is_orphaned():
    import re

    from shared.domain.finding_catalog import CATALOG, doc_path

    docs = Path(__file__).resolve().parents[2] / "docs" / "findings"
    pages = {p.stem for p in docs.glob("*.md")} - {"README"}
    assert pages == {code.value for code in FindingCode}
    assert set(CATALOG) == set(FindingCode)
    index = (docs / "README.md").read_text()
    for code, spec in CATALOG.items():
        page = (docs.parent.parent / doc_path(code.value)).read_text()
        assert page.startswith(f"# {code.value}\n")
        severity = re.search(r"Severity: \*\*(\w+)\*\*", page)
        assert severity is not None and severity.group(1) == spec.severity.value, code
        assert f"[`{code.value}`]({code.value}.md)" in index
        assert "## Fix" in page or "## Outside the portal" in page


def test_a_missing_access_type_is_unknown_and_reported():
    odd = setting(
        {"targets": [{"target": "AllUsers", "targetType": "user"}]},
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate(partner=partner_with(b2bCollaborationOutbound=odd))
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason_code is FindingCode.POLICY_UNKNOWN_VALUE
    finding = next(f for f in result.findings if f.code is FindingCode.POLICY_UNKNOWN_VALUE)
    assert dict(finding.facts)["value"] == "null"
