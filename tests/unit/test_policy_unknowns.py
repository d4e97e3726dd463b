"""Unknown target keywords and ambiguous policy input (issue 13, item 5).

The verdict is checked against an oracle written straight from DESIGN §3.1's table and
nothing else: for every user (in g1, in g2, in both, in neither) and every vendor app it
applies the four documented users x applications rules. A keyword this version does not
know (a future ``AllThirdPartyApplications``, ``AllGuestUsers``) may mean anything, so the
oracle tries every reading of it - covering any subset of the users, any subset of the
vendor's apps - and the answer is UNKNOWN exactly when two readings disagree.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.finding_catalog import FindingCode
from shared.domain.policy import (
    PolicyParseError,
    parse_default_policy,
    parse_partner_list,
    parse_partner_policy,
)
from shared.domain.posture import Verdict, evaluate_outbound_posture
from shared.domain.strict_json import StrictJsonError, loads_strict
from tests.unit.test_posture import (
    A1,
    A2,
    DEFAULT_JSON,
    G1,
    G2,
    VENDOR,
    config_strategy,
    partner_with,
    setting,
    target_config,
)

FUTURE_APPS = "AllThirdPartyApplications"
FUTURE_USERS = "AllGuestUsers"
USER_CLASSES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset({G1}),
    frozenset({G2}),
    frozenset({G1, G2}),
)


def evaluate(b2b: dict[str, Any], apps: tuple[str, ...] = (A1,)):
    return evaluate_outbound_posture(
        parse_default_policy(DEFAULT_JSON),
        parse_partner_policy(partner_with(b2bCollaborationOutbound=b2b)),
        VENDOR,
        apps,
    )


# ------------------------------------------------------------------------------ oracle


def _subsets(items: tuple[Any, ...]) -> list[frozenset[Any]]:
    return [
        frozenset(c) for r in range(len(items) + 1) for c in itertools.combinations(items, r)
    ]


def oracle_verdict(b2b: dict[str, Any], vendor_apps: tuple[str, ...]) -> Verdict:
    """DESIGN §3.1 applied literally, under every reading of the unknown keywords."""
    users, apps = b2b["usersAndGroups"], b2b["applications"]
    user_targets = {t["target"] for t in users["targets"]}
    app_targets = {t["target"] for t in apps["targets"]}
    unknown_user_kw = sorted(t for t in user_targets if t not in {"AllUsers", G1, G2})
    unknown_app_kw = sorted(
        t
        for t in app_targets
        if t not in {"AllApplications", "AllMicrosoftApps", "Office365", A1, A2}
    )
    users_allowed = users["accessType"] == "allowed"
    apps_allowed = apps["accessType"] == "allowed"
    verdicts: set[Verdict] = set()
    # A reading: which user classes each unknown user keyword covers, which vendor apps
    # each unknown app keyword covers.
    for user_reading in itertools.product(_subsets(USER_CLASSES), repeat=len(unknown_user_kw)):
        for app_reading in itertools.product(_subsets(vendor_apps), repeat=len(unknown_app_kw)):
            grid = []
            for groups in USER_CLASSES:
                u = (
                    "AllUsers" in user_targets
                    or bool(groups & user_targets)
                    or any(groups in covered for covered in user_reading)
                )
                for app in vendor_apps:
                    # Office365 / AllMicrosoftApps never name a vendor (third-party) app.
                    a = (
                        "AllApplications" in app_targets
                        or app in app_targets
                        or any(app in covered for covered in app_reading)
                    )
                    if users_allowed and apps_allowed:
                        grid.append(u and a)
                    elif users_allowed:
                        grid.append(u and not a)
                    elif apps_allowed:
                        grid.append(not u and a)
                    else:
                        grid.append(not (u and a))
            if all(grid):
                verdicts.add(Verdict.ALLOWED)
            elif not any(grid):
                verdicts.add(Verdict.BLOCKED)
            else:
                verdicts.add(Verdict.LIMITED)
    return verdicts.pop() if len(verdicts) == 1 else Verdict.UNKNOWN


SETTINGS_WITH_UNKNOWNS = st.builds(
    setting,
    config_strategy(["AllUsers", G1, G2, FUTURE_USERS], "group"),
    config_strategy(
        ["AllApplications", A1, A2, "Office365", "AllMicrosoftApps", FUTURE_APPS], "application"
    ),
)
VENDOR_APPS = st.sampled_from([(A1,), (A2,), (A1, A2)])


@settings(max_examples=400, deadline=None)
@given(b2b=SETTINGS_WITH_UNKNOWNS, vendor_apps=VENDOR_APPS)
def test_the_verdict_matches_the_oracle_under_every_reading_of_unknown_keywords(b2b, vendor_apps):
    result = evaluate(b2b, vendor_apps)
    expected = oracle_verdict(b2b, vendor_apps)
    assert result.verdict is expected, (b2b, vendor_apps)
    if expected is Verdict.UNKNOWN:
        assert result.reason_code is FindingCode.POLICY_UNKNOWN_VALUE
    keywords = {t["target"] for c in b2b.values() for t in c["targets"]}
    if keywords & {FUTURE_APPS, FUTURE_USERS}:
        assert FindingCode.POLICY_UNKNOWN_VALUE in result.codes  # always said, even if harmless


def test_the_oracle_agrees_with_microsofts_table():
    # Sanity of the oracle itself: two documented rows, no unknown keyword.
    only_g1 = setting(
        target_config("allowed", (G1, "group")),
        target_config("allowed", ("AllApplications", "application")),
    )
    assert oracle_verdict(only_g1, (A1,)) is Verdict.LIMITED
    everyone = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    assert oracle_verdict(everyone, (A1, A2)) is Verdict.ALLOWED


# --------------------------------------------------------------- the reported cases


@pytest.mark.parametrize("access", ["blocked", "allowed"])
def test_a_future_application_keyword_in_the_decisive_list_is_unknown(access):
    # Blocked: it may block the vendor's app (was ALLOWED, no alert). Allowed: it may allow
    # it (was BLOCKED, a false "drifted" card).
    b2b = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config(access, (FUTURE_APPS, "application")),
    )
    result = evaluate(b2b)
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason_code is FindingCode.POLICY_UNKNOWN_VALUE
    finding = next(f for f in result.findings if f.code is FindingCode.POLICY_UNKNOWN_VALUE)
    assert dict(finding.facts) == {
        "path": "b2bCollaborationOutbound.applications.targets[0].target",
        "value": FUTURE_APPS,
    }


@pytest.mark.parametrize("access", ["blocked", "allowed"])
def test_a_future_user_keyword_in_the_decisive_list_is_unknown(access):
    b2b = setting(
        target_config(access, (FUTURE_USERS, "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate(b2b)
    assert result.verdict is Verdict.UNKNOWN
    assert result.reason_code is FindingCode.POLICY_UNKNOWN_VALUE


@pytest.mark.parametrize(
    ("b2b", "verdict"),
    [
        # AllApplications already covers every app: the unknown keyword changes nothing.
        (
            setting(
                target_config("allowed", ("AllUsers", "user")),
                target_config(
                    "allowed", ("AllApplications", "application"), (FUTURE_APPS, "application")
                ),
            ),
            Verdict.ALLOWED,
        ),
        # Every user is blocked whatever the app list says.
        (
            setting(
                target_config("blocked", ("AllUsers", "user")),
                target_config("allowed", (FUTURE_APPS, "application")),
            ),
            Verdict.BLOCKED,
        ),
    ],
)
def test_an_unknown_keyword_that_cannot_change_the_answer_keeps_the_verdict(b2b, verdict):
    result = evaluate(b2b)
    assert result.verdict is verdict
    assert result.reason_code is None
    assert FindingCode.POLICY_UNKNOWN_VALUE in result.codes


def test_an_unknown_keyword_in_direct_connect_does_not_claim_it_is_open():
    # Users blocked for all, apps blocked for a future keyword: whether anything is open
    # depends on what the keyword covers, so no "open" finding is asserted.
    dc = setting(
        target_config("blocked", ("AllUsers", "user")),
        target_config("blocked", (FUTURE_APPS, "application")),
    )
    b2b = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    result = evaluate_outbound_posture(
        parse_default_policy(DEFAULT_JSON),
        parse_partner_policy(
            partner_with(b2bCollaborationOutbound=b2b, b2bDirectConnectOutbound=dc)
        ),
        VENDOR,
        (A1,),
    )
    assert result.verdict is Verdict.ALLOWED
    assert FindingCode.CLIENT_DIRECT_CONNECT_OUTBOUND_OPEN not in result.codes


# ------------------------------------------------------------------ ambiguous input


def test_the_same_property_in_two_casings_is_refused():
    b2b = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    entry = partner_with(b2bCollaborationOutbound=b2b)
    entry["B2BCollaborationOutbound"] = setting(
        target_config("blocked", ("AllUsers", "user")),
        target_config("blocked", ("AllApplications", "application")),
    )
    with pytest.raises(PolicyParseError, match="two spellings"):
        parse_partner_policy(entry)
    nested = partner_with(
        b2bCollaborationOutbound={
            **b2b,
            "usersAndGroups": {**b2b["usersAndGroups"], "AccessType": "blocked"},
        }
    )
    with pytest.raises(PolicyParseError, match="accessType"):
        parse_partner_policy(nested)


def test_a_target_spelt_twice_names_its_place_and_casing_alone_is_accepted():
    b2b = setting(
        target_config("allowed", ("AllUsers", "user")),
        target_config("allowed", ("AllApplications", "application")),
    )
    twice = {"target": "AllUsers", "Target": "AllUsers", "targetType": "user"}
    entry = partner_with(
        b2bCollaborationOutbound={
            **b2b,
            "usersAndGroups": {"accessType": "allowed", "targets": [twice]},
        }
    )
    with pytest.raises(
        PolicyParseError, match=r"b2bCollaborationOutbound\.usersAndGroups\.targets\[0\]: "
    ):
        parse_partner_policy(entry)

    # One spelling in another casing is the same property (re-serialised by other tools).
    recased = partner_with()
    recased.pop("b2bCollaborationOutbound", None)
    recased["B2BCOLLABORATIONOUTBOUND"] = {
        "USERSANDGROUPS": {"ACCESSTYPE": "blocked", "TARGETS": [{"TARGET": "AllUsers"}]},
        "applications": b2b["applications"],
    }
    outbound = parse_partner_policy(recased).b2b_collaboration_outbound
    assert outbound is not None and outbound.users_and_groups is not None
    assert outbound.users_and_groups.access_type == "blocked"
    assert [t.target for t in outbound.users_and_groups.targets] == ["AllUsers"]


def test_a_property_the_parser_does_not_read_may_be_spelt_twice():
    entry = partner_with()
    entry["displayName"] = "a"
    entry["DisplayName"] = "b"  # not part of the policy: nothing is ambiguous
    assert parse_partner_policy(entry).tenant_id == VENDOR.lower()


def test_a_partner_listed_twice_is_refused():
    entry = partner_with()
    other_casing = dict(entry, tenantId=VENDOR.upper())
    with pytest.raises(PolicyParseError, match="listed twice"):
        parse_partner_list({"value": [entry, other_casing]})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"accessType": "allowed", "accessType": "blocked"}', "duplicate key 'accessType'"),
        ('{"a": {"b": 1, "b": 2}}', "duplicate key 'b'"),
        ('{"a": NaN}', "NaN"),
        ('{"a": -Infinity}', "Infinity"),
        ('{"a": ' + "9" * 5000 + "}", "digits"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ("[" * 200 + "]" * 200, "nested"),
    ],
)
def test_strict_json_refuses_ambiguous_or_hostile_documents(text, words):
    with pytest.raises(StrictJsonError, match=words):
        loads_strict(text)


def test_strict_json_reads_microsofts_examples_unchanged():
    text = json.dumps(DEFAULT_JSON)
    assert loads_strict(text) == DEFAULT_JSON
