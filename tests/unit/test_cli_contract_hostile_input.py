"""The CLI contract under hostile input (issue 13, item 19): exit 2 with one line on stderr,
never a traceback; a closed pipe ends quietly; output is always JSON.

Every command runs as a real subprocess, as an operator would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRAPH_SAMPLE = ROOT / "tests" / "fixtures" / "audit" / "directoryAudits.crossTenantAccess.json"
VENDOR = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"

DEEP = "[" * 100_000 + "]" * 100_000
BIG_INT = "9" * 5_000


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XTAP_", "AzureWebJobs"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def xtap(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *map(str, args)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 2, (result.returncode, result.stderr[-500:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------- posture evaluate


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (DEEP, ("--default", "nested")),
        ('{"b2bCollaborationOutbound": null, "isServiceDefault": ' + BIG_INT + "}", ("digits",)),
        ('{"b2bCollaborationOutbound": null, "inboundTrust": null, "inboundTrust": {}}',
         ("duplicate key 'inboundTrust'",)),
        ('{"b2bCollaborationOutbound": NaN}', ("NaN",)),
    ],
    ids=["deeply-nested", "huge-integer", "duplicate-key", "nan"],
)
def test_posture_evaluate_refuses_hostile_json_in_one_line(tmp_path, text, words):
    default = write(tmp_path, "default.json", text)
    result = xtap(
        "posture", "evaluate", "--default", default, "--partner", "none", "--vendor-tenant", VENDOR
    )
    assert_one_line_error(result, *words)


def test_posture_evaluate_refuses_a_partner_list_naming_the_vendor_twice(tmp_path):
    default = write(tmp_path, "default.json", '{"b2bCollaborationOutbound": null}')
    entry = {"tenantId": VENDOR, "b2bCollaborationOutbound": None}
    partners = write(tmp_path, "partners.json", json.dumps({"value": [entry, entry]}))
    result = xtap(
        "posture", "evaluate", "--default", default, "--partner", partners,
        "--vendor-tenant", VENDOR,
    )
    assert_one_line_error(result, "listed twice")


# ------------------------------------------------------------------- clients import


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"clients": ' + DEEP + "}", ("nested",)),
        ('{"clients": [{"tenant_id": ' + BIG_INT + "}]}", ("digits",)),
        ('{"clients": [], "clients": [{"tenant_id": "x"}]}', ("duplicate key 'clients'",)),
    ],
    ids=["deeply-nested", "huge-integer", "duplicate-key"],
)
def test_clients_import_refuses_hostile_json_in_one_line(tmp_path, text, words):
    # Read and checked before any setting or storage is touched.
    result = xtap("clients", "import", write(tmp_path, "clients.json", text))
    assert_one_line_error(result, *words)


# ------------------------------------------------------------------- audit explain


def test_audit_explain_never_prints_nan_or_infinity(tmp_path):
    events = json.loads(GRAPH_SAMPLE.read_text())
    records = events["value"] if isinstance(events, dict) else events
    text = json.dumps(records).replace('"success"', "NaN", 1)
    assert "NaN" in text
    result = xtap("audit", "explain", write(tmp_path, "audit.json", text))
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    for line in result.stdout.splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in output"))
    assert_one_line_error(result, "NaN")


@pytest.mark.parametrize("text", [DEEP, '[{"id": ' + BIG_INT + "}]"], ids=["deep", "huge-int"])
def test_audit_explain_refuses_hostile_json_in_one_line(tmp_path, text):
    assert_one_line_error(xtap("audit", "explain", write(tmp_path, "audit.json", text)))


def test_audit_explain_into_a_closed_pipe_ends_quietly(tmp_path):
    events = json.loads(GRAPH_SAMPLE.read_text())
    records = events["value"] if isinstance(events, dict) else events
    many = [dict(r, id=f"{r.get('id')}-{i}") for i in range(400) for r in records]
    source = write(tmp_path, "audit.json", json.dumps(many))
    # `xtap-watch audit explain FILE | head -1`: the reader goes away after one line.
    process = subprocess.Popen(
        [sys.executable, "-m", "shared", "audit", "explain", str(source)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    code = process.wait(timeout=120)
    assert json.loads(first)["id"]
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr[-2000:]
    assert stderr == ""
    assert code == 0


def test_an_event_whose_category_is_a_list_is_reported_raw_not_dropped(tmp_path):
    event = {
        "id": "b7c1e0f2-0000-4000-8000-000000000001",
        "category": ["CrossTenantAccessSettings"],
        "activityDisplayName": "Rotate a partner cross-tenant access setting",  # not known
        "activityDateTime": "2026-11-23T09:00:00Z",
        "result": "success",
        "initiatedBy": {"user": {"userPrincipalName": "admin@osttra.com"}},
        "targetResources": [],
    }
    result = xtap("audit", "explain", write(tmp_path, "audit.json", json.dumps([event])))
    assert result.returncode == 0, result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    assert line["id"] == event["id"]
    assert line["severity"] == "review"
    assert line["raw"]["category"] == ["CrossTenantAccessSettings"]
