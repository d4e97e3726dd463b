"""The DESIGN §6 contract: ``xtap-watch posture evaluate`` as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES

ROOT = Path(__file__).resolve().parents[2]
GRAPH = GRAPH_FIXTURES
DEFAULT = GRAPH / "policies.crossTenantAccessPolicy.default.get.response.json"
PARTNER = GRAPH / "policies.crossTenantAccessPolicy.partners.id.get.response.json"
PARTNER_LIST = GRAPH / "policies.crossTenantAccessPolicy.partners.list.response.json"
VENDOR = "9c5d131d-b1c3-4fc4-9e3f-c6557947d551"  # the tenant of Microsoft's partner example
VENDOR_APP = "11112222-aaaa-bbbb-cccc-333344445555"


def xtap(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", "posture", "evaluate", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok_json(proc: subprocess.CompletedProcess[str], status: int = 0) -> dict[str, Any]:
    # The verdict's exit status (issue #14.6): 0 ALLOWED, 3 LIMITED, 4 BLOCKED, 5 UNKNOWN.
    assert proc.returncode == status, proc.stderr
    body = json.loads(proc.stdout)
    assert isinstance(body, dict)
    return body


def test_microsoft_examples_give_allowed_with_findings():
    body = ok_json(
        xtap(
            "--default",
            DEFAULT,
            "--partner",
            PARTNER,
            "--vendor-tenant",
            VENDOR,
            "--vendor-app",
            VENDOR_APP,
        )
    )
    assert body["verdict"] == "ALLOWED"
    assert {f["code"] for f in body["findings"]} == {
        "CLIENT_OUTBOUND_INHERITS_DEFAULT",
        "CLIENT_AUTO_REDEMPTION_NOT_TICKED",
    }
    for finding in body["findings"]:
        assert {"code", "severity", "message", "remediation"} <= finding.keys()
        assert finding["severity"] in {"high", "medium", "low", "info", "review"}
    assert body["reach"] == [{"appId": VENDOR_APP, "reach": "all"}]
    assert body["effective"]["partnerEntry"] == "present"


def test_partner_none_means_the_default_applies():
    body = ok_json(xtap("--default", DEFAULT, "--partner", "none", "--vendor-tenant", VENDOR))
    assert body["verdict"] == "ALLOWED"
    assert "CLIENT_VENDOR_ENTRY_MISSING" in {f["code"] for f in body["findings"]}


def test_a_partner_list_without_the_vendor_is_a_missing_entry():
    body = ok_json(xtap("--default", DEFAULT, "--partner", PARTNER_LIST, "--vendor-tenant", VENDOR))
    assert body["effective"]["partnerEntry"] == "missing"


def test_blocked_default_is_reported_blocked(tmp_path):
    default = json.loads(DEFAULT.read_text())
    for part in ("usersAndGroups", "applications"):
        default["b2bCollaborationOutbound"][part]["accessType"] = "blocked"
    blocked = tmp_path / "default.json"
    blocked.write_text(json.dumps(default))
    body = ok_json(
        xtap("--default", blocked, "--partner", "none", "--vendor-tenant", VENDOR.upper()), 4
    )
    assert body["verdict"] == "BLOCKED"
    codes = {f["code"]: f["severity"] for f in body["findings"]}
    assert codes["CLIENT_DEFAULT_OUTBOUND_BLOCKED"] == "high"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-file", "file not found"),
        ("bad-json", "is not valid JSON"),
        ("array-default", "must hold a JSON object"),
        ("not-a-policy", "is not a crossTenantAccessPolicy default"),
        ("bad-tenant", "--vendor-tenant: not a GUID"),
        ("bad-app", "--vendor-app: not a GUID"),
        ("wrong-partner", "not for the vendor tenant"),
        ("bad-shape", "b2bCollaborationOutbound: expected an object"),
        ("string-partner", "must hold a JSON object"),
        ("missing-option", "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, case, expected):
    default, partner, tenant, extra = str(DEFAULT), "none", VENDOR, []
    if case == "missing-file":
        default = str(tmp_path / "nope.json")
    elif case == "bad-json":
        default = str(write(tmp_path, "d.json", '{"b2bCollaborationOutbound": '))
    elif case == "array-default":
        default = str(write(tmp_path, "d.json", "[]"))
    elif case == "not-a-policy":
        default = str(GRAPH / "policies.crossTenantAccessPolicy.get.response.json")
    elif case == "bad-tenant":
        tenant = "sso.osttra.com"
    elif case == "bad-app":
        extra = ["--vendor-app", "My Apps"]
    elif case == "wrong-partner":
        partner = str(PARTNER)
        tenant = "123f4846-ba00-4fd7-ba43-dac1f8f63013"
    elif case == "bad-shape":
        default = str(write(tmp_path, "d.json", '{"b2bCollaborationOutbound": ["allowed"]}'))
    elif case == "string-partner":
        partner = str(write(tmp_path, "p.json", '"partner"'))
    args = ["--default", default, "--partner", partner, "--vendor-tenant", tenant, *extra]
    if case == "missing-option":
        args = ["--default", default]

    proc = xtap(*args)

    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
