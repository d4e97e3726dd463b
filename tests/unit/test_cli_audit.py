"""``xtap-watch audit explain`` contract (DESIGN §6), run as a real subprocess.

One JSON object per line per relevant change with ``id``, ``activity``,
``partnerTenantId``, ``setting``, ``before``, ``after``, ``severity``, ``summary``;
exit 0, or exit 2 with exactly one line on stderr for unreadable or malformed input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.handbook import GRAPH_FIXTURES

ROOT = Path(__file__).resolve().parents[2]
AUDIT_FIXTURES = ROOT / "tests" / "fixtures" / "audit"
GRAPH_SAMPLE = AUDIT_FIXTURES / "directoryAudits.crossTenantAccess.json"
LA_SAMPLE = AUDIT_FIXTURES / "AuditLogs.logAnalytics.json"
CONTOSO = "3f2a5c7e-8b1d-4e6f-9a0b-1c2d3e4f5a6b"
FABRIKAM = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
CONTRACT_KEYS = {
    "id",
    "activity",
    "partnerTenantId",
    "setting",
    "before",
    "after",
    "severity",
    "summary",
}


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "shared", "audit", "explain", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    error_lines = result.stderr.splitlines()
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith("error: ")
    for word in words:
        assert word in error_lines[0]


def test_explains_every_relevant_change_in_the_graph_sample() -> None:
    out = lines(run(str(GRAPH_SAMPLE), "--client", f"{CONTOSO}=Contoso", "--client", FABRIKAM))
    assert len(out) == 12  # 12 events: 1 not relevant, one default update with 2 settings
    for line in out:
        assert CONTRACT_KEYS <= line.keys()
        assert {"reasons", "who", "time", "category"} <= line.keys()
        assert line["reasons"]
    by_setting = {(line["id"][-2:], line["setting"]): line for line in out}

    deleted = by_setting[("05", "tenantId")]
    assert deleted["activity"] == "Delete partner specific cross-tenant access setting"
    assert deleted["partnerTenantId"] == FABRIKAM
    assert (deleted["before"], deleted["after"]) == (FABRIKAM, None)
    assert deleted["severity"] == "high"
    assert deleted["client"] == FABRIKAM  # registered without a name: named by its ID
    assert deleted["who"] == "it.admin@osttra-vendor.onmicrosoft.com"
    assert deleted["time"] == "2026-11-20T11:00:00+00:00"

    scoped = by_setting[("02", "b2bCollaborationInbound")]
    assert scoped["client"] == "Contoso" and scoped["severity"] == "high"
    assert scoped["before"] == "users allowed AllUsers; applications allowed AllApplications"
    assert scoped["afterValue"]["usersAndGroups"]["accessType"] == "allowed"

    pascal = by_setting[("09", "b2bCollaborationInbound")]
    assert pascal["activity"] == "Update a partner cross-tenant access setting."
    assert (
        pascal["summary"] == "B2B collaboration inbound: users allowed AllUsers → blocked AllUsers"
    )

    assert by_setting[("06", "inboundTrust")]["severity"] == "high"
    assert by_setting[("08", "storageModel")]["severity"] == "info"
    review = [line for line in out if line["severity"] == "review"]
    assert len(review) == 1 and all(line["raw"]["id"] == line["id"] for line in review)
    sync = by_setting[("12", "userSyncInbound")]
    assert sync["activity"] == "Update a partner cross-tenant identity sync setting"
    assert (sync["partnerTenantId"], sync["severity"]) == (FABRIKAM, "high")
    assert (sync["before"], sync["after"]) == ("sync allowed off", "sync allowed on")
    assert all(line["setting"] is None and line["problems"] for line in review)


def test_without_clients_nothing_is_attributed_to_a_client() -> None:
    out = lines(run(str(GRAPH_SAMPLE), "--default-inbound-admits-clients", "no"))
    assert all(line["client"] is None for line in out)
    severities = {line["id"][-2:] + ":" + str(line["setting"]): line["severity"] for line in out}
    assert severities["05:tenantId"] == "medium"  # not a registered client any more
    assert severities["04:b2bDirectConnectOutbound"] == "high"  # direct connect opened, any tenant


def test_list_value_wrapper_and_stdin_give_the_same_lines(tmp_path: Path) -> None:
    document = json.loads(GRAPH_SAMPLE.read_text())
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(document["value"]))
    wrapped = run(str(GRAPH_SAMPLE), "--client", CONTOSO)
    assert lines(run(str(bare), "--client", CONTOSO)) == lines(wrapped)
    assert lines(run("-", "--client", CONTOSO, stdin=GRAPH_SAMPLE.read_text())) == lines(wrapped)


def test_log_analytics_export_rows_and_query_tables(tmp_path: Path) -> None:
    out = lines(run(str(LA_SAMPLE), "--client", CONTOSO))
    assert [(line["activity"], line["setting"], line["severity"]) for line in out] == [
        ("Update a partner cross-tenant access setting", "b2bCollaborationInbound", "high"),
        ("Add a partner to cross-tenant access setting", "tenantId", "medium"),
        (
            "Update the company default cross-tenant access setting.",
            "b2bDirectConnectInbound",
            "high",
        ),
    ]
    rows = json.loads(LA_SAMPLE.read_text())
    columns = list(rows[0])
    tables = {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": [{"name": c, "type": "string"} for c in columns],
                "rows": [[row.get(c) for c in columns] for row in rows],
            }
        ]
    }
    query_result = tmp_path / "query.json"
    query_result.write_text(json.dumps(tables))
    assert lines(run(str(query_result), "--client", CONTOSO)) == out


def test_stats_go_to_stderr_only() -> None:
    result = run(str(GRAPH_SAMPLE), "--stats")
    assert len(lines(result)) == 12
    assert result.stderr.strip() == "12 events: 12 changes explained (1 to review), 1 not relevant"


def test_a_file_with_no_relevant_events_prints_nothing() -> None:
    documented = GRAPH_FIXTURES / "auditLogs.directoryAudits.list.response.json"
    result = run(str(documented))
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_malformed_json_exits_2_with_one_line() -> None:
    assert_one_line_error(
        run(str(AUDIT_FIXTURES / "malformed.json")), "malformed.json", "not valid JSON"
    )


def test_missing_file_exits_2_with_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run(str(tmp_path / "nope.json")), "nope.json", "cannot read")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("42", ["expected a list of audit events"]),
        ('{"@odata.context": "x", "values": []}', ["expected a list of audit events"]),
        (
            '[{"id": "a"}, "Add a partner to cross-tenant access setting"]',
            ["item 2 is not a JSON object"],
        ),
        (
            '{"tables": [{"columns": [{"name": "Id"}], "rows": [["a", "b"]]}]}',
            ["row does not match"],
        ),
    ],
)
def test_wrong_document_shapes_exit_2(tmp_path: Path, content: str, words: list[str]) -> None:
    path = tmp_path / "input.json"
    path.write_text(content)
    assert_one_line_error(run(str(path)), *words)


def test_bad_client_id_exits_2() -> None:
    assert_one_line_error(run(str(GRAPH_SAMPLE), "--client", "contoso.com"), "--client", "GUID")


def test_missing_file_argument_exits_2() -> None:
    assert_one_line_error(run())
