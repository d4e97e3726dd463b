"""``clients show | update | remove``, the vendor's own tenant refused, contacts checked as
e-mail addresses, one key style, tables on request (issue #14.6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.local_env import VENDOR_TENANT_ID

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
GROUP = "8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13"


def xtap(env: dict[str, str], *args: str, stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def _snake_keys(value: object) -> list[str]:
    if isinstance(value, dict):
        own = [k for k in value if "_" in k and k.lower() == k]
        return own + [k for v in value.values() for k in _snake_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _snake_keys(v)]
    return []


def test_show_update_remove(app_env):
    added = xtap(app_env, "clients", "add", "--domain", "contoso-markets.com",
                 "--contact", "IT-Admin@Contoso-Markets.com")
    assert added.returncode == 0, added.stderr
    record = json.loads(added.stdout)
    assert record["contacts"] == ["IT-Admin@contoso-markets.com"]  # domain part normalised
    assert _snake_keys(record) == []

    shown = xtap(app_env, "clients", "show", CONTOSO, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["tenantId"] == CONTOSO

    table = xtap(app_env, "clients", "show", CONTOSO, "--output", "table")
    assert table.returncode == 0
    assert "Tenant ID" in table.stdout and "not checked yet" in table.stdout
    assert "{" not in table.stdout

    updated = xtap(app_env, "clients", "update", CONTOSO, "--add-contact",
                   "secops@contoso-markets.com", "--remove-contact",
                   "it-admin@contoso-markets.com", "--expected-group", GROUP,
                   "--name", "Contoso Markets Ltd")
    assert updated.returncode == 0, updated.stderr
    after = json.loads(updated.stdout)
    assert after["name"] == "Contoso Markets Ltd"
    assert after["contacts"] == ["secops@contoso-markets.com"]
    assert after["expectedScope"]["userGroups"] == [GROUP]

    bad = xtap(app_env, "clients", "update", CONTOSO, "--add-contact", "secops at contoso")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: --add-contact: not an e-mail address: 'secops at")
    assert bad.stderr.count("\n") == 1

    refused = xtap(app_env, "clients", "remove", CONTOSO, stdin="")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    removed = xtap(app_env, "clients", "remove", CONTOSO, "--yes")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(xtap(app_env, "clients", "list").stdout) == []
    gone = xtap(app_env, "clients", "show", CONTOSO)
    assert gone.returncode == 2 and "not registered" in gone.stderr


def test_bad_contact_on_add_is_refused_before_any_call(app_env):
    done = xtap(app_env, "clients", "add", "--domain", "contoso-markets.com",
                "--contact", "it-admin")
    assert done.returncode == 2
    assert done.stderr.startswith("error: --contact: not an e-mail address: 'it-admin'")
    assert json.loads(xtap(app_env, "clients", "list").stdout) == []


def test_the_vendors_own_tenant_is_refused(app_env, tmp_path):
    done = xtap(app_env, "clients", "add", "--domain", "osttra.com")
    assert done.returncode == 2, done.stdout
    assert "is the vendor's own tenant" in done.stderr and done.stderr.count("\n") == 1
    rows = tmp_path / "clients.json"
    rows.write_text(json.dumps({"clients": [
        {"tenantId": CONTOSO, "name": "Contoso Markets"},
        {"tenantId": VENDOR_TENANT_ID, "name": "OSTTRA"},
    ]}))
    imported = xtap(app_env, "clients", "import", str(rows))
    assert imported.returncode == 2
    assert "clients[1] is the vendor's own tenant" in imported.stderr
    assert json.loads(xtap(app_env, "clients", "list").stdout) == []  # all or nothing


def test_import_reads_camel_case_exports_and_checks_contacts(app_env, tmp_path):
    rows = tmp_path / "clients.json"
    rows.write_text(json.dumps({"clients": [
        {"tenantId": CONTOSO, "name": "Contoso Markets", "contacts": ["not-an-address"]},
    ]}))
    refused = xtap(app_env, "clients", "import", str(rows))
    assert refused.returncode == 2
    assert "not an e-mail address: 'not-an-address'" in refused.stderr
    rows.write_text(json.dumps({"clients": [
        {"tenantId": CONTOSO, "name": "Contoso Markets",
         "expectedScope": {"userGroups": [GROUP]}},
    ]}))
    assert xtap(app_env, "clients", "import", str(rows)).returncode == 0
    exported = json.loads(xtap(app_env, "clients", "export").stdout)["clients"][0]
    assert exported["expectedScope"]["userGroups"] == [GROUP]
    assert _snake_keys(exported) == []
