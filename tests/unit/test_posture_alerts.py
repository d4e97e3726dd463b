"""From state transitions to outbox alert records (pure)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import pytest

from devtools.handbook import GRAPH_FIXTURES
from shared.domain.client_state import next_state, observe
from shared.domain.clients import ClientRecord
from shared.domain.finding_catalog import FindingCode
from shared.domain.messages import AlertKind, Severity
from shared.domain.policy import parse_default_policy, parse_partner_policy
from shared.domain.posture import evaluate_outbound_posture, unknown_posture
from shared.domain.posture_alerts import (
    AlertContext,
    alert_for_transition,
    vendor_side_alert,
    vendor_side_signature,
)
from shared.domain.vendor_checks import evaluate_vendor_side
from sim.scenarios import b2b_everyone

VENDOR = "0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50"
APP = "5a3d1c7e-2f48-4b9a-8c61-0e7d3b2a9f14"
CLIENT = ClientRecord(
    tenant_id="1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
    name="Contoso Markets",
    domains=("contoso-markets.com",),
)
CTX = AlertContext("OSTTRA", "https://entra.microsoft.com", "https://docs.example/xtap")
T0 = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
FIXTURES = GRAPH_FIXTURES


@pytest.fixture
def documented_default() -> dict:
    return json.loads(
        (FIXTURES / "policies.crossTenantAccessPolicy.default.get.response.json").read_text()
    )


def _blocking_partner() -> dict:
    return {"tenantId": VENDOR, "b2bCollaborationOutbound": b2b_everyone("blocked")}


def _result(default: dict, partner: dict | None):
    return evaluate_outbound_posture(
        parse_default_policy(default),
        parse_partner_policy(partner) if partner else None,
        VENDOR,
        [APP],
        vendor_name="OSTTRA",
    )


def test_drift_from_microsofts_documented_default_to_a_blocking_partner_entry(documented_default):
    ok = _result(documented_default, None)
    state, none = next_state(None, observe(ok, CLIENT.tenant_id), T0, timedelta(hours=24))
    assert none == []
    blocked = _result(documented_default, _blocking_partner())
    _, [drift] = next_state(
        state, observe(blocked, CLIENT.tenant_id), T0 + timedelta(hours=1), timedelta(hours=24)
    )
    alert = alert_for_transition(drift, CLIENT, blocked, CTX, previous_verdict="ALLOWED")
    assert alert.kind is AlertKind.CLIENT_DRIFTED
    assert alert.severity is Severity.HIGH
    assert alert.title == "Contoso Markets: users can no longer reach OSTTRA"
    assert alert.dedup_key == f"client:{CLIENT.tenant_id}:ep1:drifted:0"
    assert alert.facts["Verdict"] == "BLOCKED"
    assert alert.facts["Previous verdict"] == "ALLOWED"
    assert [(c.before, c.after) for c in alert.changes] == [("ALLOWED", "BLOCKED")]
    assert alert.findings and alert.remediation_steps
    runbooks = [link.url for link in alert.links if link.title.startswith("Runbook")]
    assert runbooks and all(u.startswith("https://docs.example/xtap/findings/") for u in runbooks)
    assert alert.client is not None and alert.client.domains == ("contoso-markets.com",)


def test_reminder_and_recovery_titles_and_keys(documented_default):
    blocked = _result(documented_default, _blocking_partner())
    ok = _result(documented_default, None)
    every = timedelta(hours=4)
    state, _ = next_state(None, observe(ok, CLIENT.tenant_id), T0, every)
    state, _ = next_state(state, observe(blocked, CLIENT.tenant_id), T0 + timedelta(hours=1), every)
    state, [reminder] = next_state(
        state, observe(blocked, CLIENT.tenant_id), T0 + timedelta(hours=5), every
    )
    alert = alert_for_transition(reminder, CLIENT, blocked, CTX)
    assert alert.kind is AlertKind.CLIENT_REMINDER
    assert alert.title.startswith("Reminder 1: Contoso Markets still drifted")
    assert alert.facts["Drifted since"] == (T0 + timedelta(hours=1)).isoformat()
    _, [recovered] = next_state(
        state, observe(ok, CLIENT.tenant_id), T0 + timedelta(hours=6), every
    )
    back = alert_for_transition(recovered, CLIENT, ok, CTX, previous_verdict="BLOCKED")
    assert back.kind is AlertKind.CLIENT_RECOVERED
    assert back.severity is Severity.INFO
    assert back.findings == () and back.remediation_steps == ()
    assert back.dedup_key == f"client:{CLIENT.tenant_id}:ep1:recovered:0"


def _blocking_inbound(default: dict) -> dict:
    """The vendor's default inbound B2B collaboration blocked for every user and app."""
    return {**default, "b2bCollaborationInbound": b2b_everyone("blocked")}


def test_vendor_side_alert_for_a_vendor_default_that_shuts_the_client_out(documented_default):
    vendor_default = parse_default_policy(_blocking_inbound(documented_default))
    findings = evaluate_vendor_side(
        vendor_default, None, CLIENT.tenant_id, [APP], None, CLIENT.domains
    )
    alerting = [f for f in findings if f.severity in (Severity.HIGH, Severity.MEDIUM)]
    assert alerting, [f.code for f in findings]  # no early way out: the alert is built
    signature = vendor_side_signature(findings)
    assert signature and signature == vendor_side_signature(list(reversed(findings)))
    alert = vendor_side_alert(findings, CLIENT, signature, T0, CTX)
    assert alert.kind is AlertKind.VENDOR_POSTURE
    assert alert.severity is Severity.HIGH
    assert alert.dedup_key == f"vendorside:{CLIENT.tenant_id}:{signature}"
    assert {f.code for f in alert.findings} == {f.code.value for f in alerting}
    assert alert.remediation_steps and alert.title.startswith("OSTTRA's own settings")
    assert alert.facts == {"Client tenant": CLIENT.tenant_id, "Findings": str(len(alerting))}


def test_vendor_side_signature_ignores_wording_and_low_findings(documented_default):
    vendor_default = parse_default_policy(_blocking_inbound(documented_default))
    findings = evaluate_vendor_side(
        vendor_default, None, CLIENT.tenant_id, [APP], None, CLIENT.domains
    )
    reworded = [
        dataclasses.replace(f, message=f.message + " (reworded)", remediation="other words")
        for f in findings
    ]
    assert vendor_side_signature(reworded) == vendor_side_signature(findings)
    low_only = [f for f in findings if f.severity not in (Severity.HIGH, Severity.MEDIUM)]
    assert vendor_side_signature(low_only) == ""
    assert vendor_side_signature([]) == ""


# ------------------------------------------------------- UNKNOWN for too long (#13.7)


def test_unknown_alerts_carry_the_cause_and_the_fix(documented_default):
    ok = _result(documented_default, None)
    dark = unknown_posture(
        FindingCode.CLIENT_TENANT_UNREACHABLE,
        "Graph answered 503 ServiceUnavailable",
        vendor_tenant_id=VENDOR,
    )
    hours = timedelta(hours=6)
    state, _ = next_state(None, observe(ok, CLIENT.tenant_id), T0, timedelta(hours=24),
                          unknown_alert_after=hours)
    state, [signal] = next_state(state, observe(dark, CLIENT.tenant_id), T0 + timedelta(hours=1),
                                 timedelta(hours=24), unknown_alert_after=hours)
    first = alert_for_transition(signal, CLIENT, dark, CTX, previous_verdict="ALLOWED")
    assert first.kind is AlertKind.CLIENT_POSTURE_UNKNOWN
    assert first.severity is Severity.REVIEW
    assert first.title == "Contoso Markets: the posture toward OSTTRA cannot be determined"
    assert first.facts["Cause"] == "The client's policy could not be read"
    assert first.facts["Reason code"] == "CLIENT_TENANT_UNREACHABLE"
    assert "A drift would go unnoticed" in first.summary
    assert any("next sweep retries" in step for step in first.remediation_steps)  # the fix
    assert any(link.url.endswith("/findings/CLIENT_TENANT_UNREACHABLE.md") for link in first.links)
    assert first.dedup_key == f"client:{CLIENT.tenant_id}:unknown1:posture_unknown:0"

    state, [long] = next_state(state, observe(dark, CLIENT.tenant_id), T0 + timedelta(hours=8),
                               timedelta(hours=24), unknown_alert_after=hours)
    prolonged = alert_for_transition(long, CLIENT, dark, CTX)
    assert prolonged.kind is AlertKind.CLIENT_POSTURE_UNKNOWN
    assert prolonged.severity is Severity.MEDIUM
    assert prolonged.title == "Contoso Markets: the posture toward OSTTRA has been unknown for 7 h"
    assert prolonged.facts["Unknown since"] == (T0 + timedelta(hours=1)).isoformat()
    assert "Drifted since" not in prolonged.facts

    _, [known] = next_state(state, observe(ok, CLIENT.tenant_id), T0 + timedelta(hours=9),
                            timedelta(hours=24), unknown_alert_after=hours)
    back = alert_for_transition(known, CLIENT, ok, CTX, previous_verdict="UNKNOWN")
    assert back.kind is AlertKind.CLIENT_POSTURE_KNOWN
    assert back.severity is Severity.INFO
    assert back.findings == () and back.remediation_steps == ()
    assert "known again: ALLOWED" in back.summary
