"""The daily heartbeat's content (issue 18.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.heartbeat import (
    AckLine,
    HeartbeatFacts,
    count_verdicts,
    heartbeat_alert,
    sweep_covering,
)
from shared.domain.messages import AlertKind, AlertRecord, Severity

NOW = datetime(2026, 11, 23, 8, 0, 0, 300000, tzinfo=UTC)
DUE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _facts(**overrides: object) -> HeartbeatFacts:
    values: dict[str, object] = {
        "clients": 5,
        "verdicts": {"BLOCKED": 1, "LIMITED": 1, "ALLOWED": 3},
        "drifted_now": ["Contoso, Ltd"],
        "opened": ["Contoso, Ltd"],
        "closed": ["Wingtip Toys"],
        "acknowledged": [
            AckLine("Fabrikam Inc", "alice@osttra.com", "client fixing Friday",
                    NOW + timedelta(days=2))
        ],
        "last_audit_scan": NOW - timedelta(seconds=30),
        "last_complete_sweep": NOW - timedelta(minutes=60),
        "deliveries_failed": 2,
    }
    values.update(overrides)
    return HeartbeatFacts(**values)  # type: ignore[arg-type]


def test_the_heartbeat_says_what_the_issue_asks_for():
    alert = heartbeat_alert(_facts(), NOW, DUE, "OSTTRA", operations_url="https://docs/ops.md")
    assert alert.kind is AlertKind.HEARTBEAT and alert.severity is Severity.INFO
    assert alert.only_channels == ()  # every channel
    assert alert.title == "xtap-watch heartbeat: 5 clients, 1 drifted, all checks ok"
    facts = alert.facts
    assert facts["Clients"] == "5 (1 BLOCKED, 1 LIMITED, 3 ALLOWED)"
    assert facts["Drifts opened (24 h)"] == "1: Contoso, Ltd"
    assert facts["Drifts closed (24 h)"] == "1: Wingtip Toys"
    assert facts["Acknowledged"] == (
        "1: Fabrikam Inc by alice@osttra.com until 2026-11-25 08:00 UTC (client fixing Friday)"
    )
    assert facts["Last audit scan"] == "2026-11-23 07:59 UTC"
    assert facts["Last complete sweep"] == "2026-11-23 07:00 UTC"
    assert facts["Deliveries failed (24 h)"] == "2"
    assert facts["Watchdog"] == "ok"
    assert any("owner's account" in step for step in alert.remediation_steps)
    assert alert.links[0].url == "https://docs/ops.md"
    AlertRecord.model_validate_json(alert.model_dump_json())


def test_one_heartbeat_per_scheduled_time():
    first = heartbeat_alert(_facts(), NOW, DUE, "OSTTRA")
    again = heartbeat_alert(_facts(), NOW + timedelta(seconds=40), DUE, "OSTTRA")
    assert first.dedup_key == again.dedup_key == "heartbeat:20261123T080000"


def test_a_degraded_watch_is_said_first():
    alert = heartbeat_alert(
        _facts(degraded=["the audit scan has not completed since 07:40"]), NOW, DUE, "OSTTRA"
    )
    assert alert.severity is Severity.MEDIUM
    assert alert.facts["Watchdog"].startswith("degraded: the audit scan")
    assert alert.remediation_steps[0].startswith("xtap-watch is degraded")
    assert "1 problem(s)" in alert.title


def test_empty_portfolio_and_long_lists():
    names = [f"Client {i}" for i in range(8)]
    alert = heartbeat_alert(
        _facts(clients=0, verdicts={}, drifted_now=[], opened=names, closed=[], acknowledged=[],
               last_audit_scan=None, last_complete_sweep=None),
        NOW, DUE, "OSTTRA",
    )
    assert alert.facts["Clients"] == "0 (none registered)"
    assert alert.facts["Drifts opened (24 h)"].endswith("Client 4 and 3 more")
    assert alert.facts["Drifts closed (24 h)"] == "none"
    assert alert.facts["Last audit scan"] == "never"


def test_clients_are_counted_by_verdict_worst_first_including_the_unchecked():
    counts = count_verdicts(["a", "b", "c", "d"], {"a": "ALLOWED", "b": "BLOCKED", "c": "ALLOWED"})
    assert counts == {"BLOCKED": 1, "ALLOWED": 2, "NOT CHECKED": 1}
    assert list(counts) == ["BLOCKED", "ALLOWED", "NOT CHECKED"]


def test_a_sweep_covers_every_client_only_once_each_was_checked():
    t = NOW - timedelta(minutes=50)
    assert sweep_covering({"a": t, "b": t + timedelta(minutes=1)}) == t
    assert sweep_covering({"a": t, "b": None}) is None
    assert sweep_covering({}) is None
