"""The portfolio report's rows and totals, from realistic stored records.

The posture records are produced by the real evaluation (Microsoft's documented policy
examples through ``evaluate_outbound_posture`` and ``evaluate_vendor_side``), the alert
states by the real state machine — exactly what the tables hold.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES as FIXTURES
from shared.domain.client_state import next_state, observe
from shared.domain.clients import ClientRecord, ConsentStatus
from shared.domain.finding_catalog import FindingCode
from shared.domain.policy import parse_default_policy, parse_partner_policy
from shared.domain.posture import evaluate_outbound_posture, unknown_posture
from shared.domain.report import (
    NOT_CHECKED,
    build_report,
    parse_acknowledgement,
    report_row,
    state_since,
)
from shared.domain.signin_evidence import (
    EvidenceThreshold,
    build_evidence,
    combine,
    counts_from_summary,
)
from shared.domain.vendor_checks import evaluate_vendor_side
from sim.scenarios import b2b_everyone

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
VENDOR_APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BLOCK_ALL = b2b_everyone("blocked")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


DEFAULT = load("policies.crossTenantAccessPolicy.default.get.response.json")


def client(tenant: str, name: str, consent: ConsentStatus = ConsentStatus.GRANTED) -> ClientRecord:
    return ClientRecord(
        tenant_id=tenant, name=name, domains=(f"{name.split()[0].lower()}.com",), consent=consent
    )


def stored_posture(tenant: str, partner: dict[str, Any] | None, signins: int = 0) -> dict[str, Any]:
    """The posture record check_client stores for this client policy."""
    result = evaluate_outbound_posture(
        parse_default_policy(DEFAULT),
        parse_partner_policy(partner) if partner else None,
        VENDOR,
        [VENDOR_APP],
    )
    if signins:
        counts = counts_from_summary(
            {tenant: {"500212": signins}}, window_start=T0 - timedelta(hours=24), window_end=T0
        )
        result = combine(result, build_evidence(counts, tenant, EvidenceThreshold(min_failures=3)))
    vendor = evaluate_vendor_side(
        parse_default_policy(DEFAULT), None, tenant, [VENDOR_APP], None, ()
    )
    return result.to_dict() | {"vendorFindings": [f.to_dict() for f in vendor], "state": "ok"}


def stored_state(tenant: str, history: list[tuple[datetime, Any]]) -> dict[str, Any]:
    """Run the real state machine over the observations and store it as check_client does."""
    state = None
    for at, verdict_result in history:
        state, _ = next_state(state, observe(verdict_result, tenant), at, timedelta(hours=24))
    assert state is not None
    return {"client": state.to_dict(), "vendor_signature": ""}


def result_for(partner: dict[str, Any] | None) -> Any:
    return evaluate_outbound_posture(
        parse_default_policy(DEFAULT),
        parse_partner_policy(partner) if partner else None,
        VENDOR,
        [VENDOR_APP],
    )


def blocked_partner() -> dict[str, Any]:
    return {"tenantId": VENDOR, "b2bCollaborationOutbound": copy.deepcopy(BLOCK_ALL)}


def test_a_drifted_client_row_has_verdict_state_since_findings_evidence_and_runbooks():
    drift_at = T0 + timedelta(hours=3)
    record = stored_posture(CONTOSO, blocked_partner(), signins=12)
    state = stored_state(
        CONTOSO,
        [
            (T0, result_for(None)),
            (drift_at, result_for(blocked_partner())),
            (drift_at + timedelta(hours=1), result_for(blocked_partner())),
        ],
    )
    row = report_row(client(CONTOSO, "Contoso Markets"), record, state, checked_at=drift_at)

    assert row.verdict == "BLOCKED"
    assert row.state == "drifted"
    assert row.since == drift_at  # the episode start, not the latest observation
    assert row.checked_at == drift_at
    codes = [f.code for f in row.findings]
    assert FindingCode.CLIENT_OUTBOUND_BLOCKED.value in codes
    assert FindingCode.SIGNIN_CLIENT_OUTBOUND_BLOCKED.value in codes
    assert row.findings[0].severity == "high"  # worst first
    assert row.signins is not None and dict(row.signins.counts) == {"AADSTS500212": 12}
    vendor_codes = {f.code for f in row.vendor_findings}
    assert FindingCode.VENDOR_PARTNER_ENTRY_MISSING.value in vendor_codes
    assert vendor_codes == {f["code"] for f in record["vendorFindings"]}
    assert row.consent == "granted"
    assert row.acknowledgement is None

    report = build_report([row], T0 + timedelta(days=1), "OSTTRA")
    body = report.to_json(lambda code: f"https://docs.example/findings/{code}.md")
    finding = body["rows"][0]["findings"][0]
    assert finding["runbook"] == f"https://docs.example/findings/{finding['code']}.md"
    assert "acknowledgement" not in body["rows"][0]


def test_an_ok_client_is_ok_since_its_recovery_or_since_first_seen():
    recovered_at = T0 + timedelta(hours=5)
    history = [
        (T0, result_for(None)),
        (T0 + timedelta(hours=1), result_for(blocked_partner())),
        (recovered_at, result_for(None)),
        (recovered_at + timedelta(hours=2), result_for(None)),
    ]
    state = stored_state(CONTOSO, history)
    assert state_since(state["client"]) == recovered_at
    never_drifted = stored_state(
        NORTHWIND, [(T0, result_for(None)), (T0 + timedelta(hours=9), result_for(None))]
    )
    assert state_since(never_drifted["client"]) == T0


def test_never_checked_clients_are_listed_as_not_checked():
    row = report_row(client(NORTHWIND, "Northwind Securities", ConsentStatus.UNKNOWN), None, None)
    assert (row.verdict, row.state, row.since, row.checked_at) == (
        NOT_CHECKED,
        "not_checked",
        None,
        None,
    )
    assert row.findings == () and row.vendor_findings == () and row.signins is None
    assert row.consent == "unknown"


def test_unknown_verdict_keeps_its_reason():
    record = unknown_posture(
        FindingCode.CLIENT_CONSENT_MISSING, "Graph answered 401", vendor_tenant_id=VENDOR
    ).to_dict()
    row = report_row(client(FABRIKAM, "Fabrikam Clearing", ConsentStatus.MISSING), record, None)
    assert row.verdict == "UNKNOWN"
    assert row.reason == "CLIENT_CONSENT_MISSING"
    assert row.consent == "missing"


def test_totals_count_every_verdict_and_rows_come_worst_first():
    now = T0 + timedelta(days=1)
    blocked = report_row(
        client(CONTOSO, "Contoso Markets"),
        stored_posture(CONTOSO, blocked_partner()),
        stored_state(CONTOSO, [(T0, result_for(blocked_partner()))]),
    )
    allowed = report_row(
        client(FABRIKAM, "Fabrikam Clearing"),
        stored_posture(FABRIKAM, None),
        stored_state(FABRIKAM, [(T0, result_for(None))]),
    )
    unchecked = report_row(client(NORTHWIND, "Northwind Securities"), None, None)
    report = build_report([allowed, unchecked, blocked], now, "OSTTRA")
    assert [r.tenant_id for r in report.rows] == [CONTOSO, NORTHWIND, FABRIKAM]
    assert report.totals == {"BLOCKED": 1, "LIMITED": 0, "UNKNOWN": 0, "ALLOWED": 1, NOT_CHECKED: 1}
    assert sum(report.totals.values()) == len(report.rows)
    assert report.state_totals["drifted"] == 1 and report.state_totals["ok"] == 1
    assert report.finding_totals[FindingCode.CLIENT_OUTBOUND_BLOCKED.value] == 1
    assert report.finding_totals[FindingCode.VENDOR_PARTNER_ENTRY_MISSING.value] == 2


@pytest.mark.parametrize(
    "stored",
    [
        {
            "acknowledgement": {
                "by": "lead@osttra.com",
                "reason": "client migrating",
                "until": "2026-11-20T00:00:00+00:00",
            }
        },
        {
            "client": {
                "status": "drifted",
                "acknowledgement": {
                    "acknowledgedBy": "lead@osttra.com",
                    "reason": "client migrating",
                    "expiresAt": "2026-11-20T00:00:00Z",
                },
            }
        },
    ],
)
def test_an_acknowledgement_stored_with_the_state_is_shown(stored):
    ack = parse_acknowledgement(stored)
    assert ack is not None
    assert (ack.by, ack.reason) == ("lead@osttra.com", "client migrating")
    assert ack.until == datetime(2026, 11, 20, tzinfo=UTC)
    assert ack.active(datetime(2026, 11, 19, tzinfo=UTC))
    assert not ack.active(datetime(2026, 11, 21, tzinfo=UTC))
    row = report_row(client(CONTOSO, "Contoso Markets"), stored_posture(CONTOSO, None), stored)
    report = build_report([row], datetime(2026, 11, 21, tzinfo=UTC), "OSTTRA")
    assert report.has_acknowledgements
    assert report.to_json(str)["rows"][0]["acknowledgement"]["active"] is False


@pytest.mark.parametrize(
    "stored",
    [
        None,
        {},
        {"acknowledgement": "yes"},
        {"acknowledgement": {}},
        {"client": {"acknowledgement": ["x"]}},
    ],
)
def test_no_acknowledgement_means_none_not_a_guess(stored):
    assert parse_acknowledgement(stored) is None


def test_malformed_stored_values_do_not_break_a_row():
    record = {
        "verdict": "SOMETHING_NEW",
        "findings": [{"no": "code"}, "junk", {"code": "X_CODE"}],
        "evidence": {"counts": {"AADSTS500212": "many"}},
        "vendorFindings": None,
    }
    state = {"client": {"status": "weird", "first_observed_at": "not a date"}}
    row = report_row(client(CONTOSO, "Contoso Markets"), record, state)
    assert row.verdict == "UNKNOWN" and row.state == "new"
    assert [f.code for f in row.findings] == ["X_CODE"]
    assert row.signins is None and row.since is None
