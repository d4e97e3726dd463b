"""The operator CLI against Azurite and the simulator, as a subprocess (like an operator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
READER_APP = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"


def xtap(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_clients_add_resolves_the_tenant_by_domain_and_prints_the_consent_link(app_env):
    done = xtap("clients", "add", "--domain", "contoso-markets.com", env=app_env)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["tenantId"] == CONTOSO  # camelCase, like the API (#14.6)
    assert record["name"] == "Contoso Markets"
    assert "contoso-markets.com" in record["domains"]
    # Its Microsoft cloud, looked up on the way (the first sweep need not).
    assert record["cloud"]["name"] == "microsoftonline.com"
    link = record["adminConsentLink"]
    assert link.startswith(f"{app_env['XTAP_AUTHORITY_HOST']}/{CONTOSO}/v2.0/adminconsent?")
    assert f"client_id={READER_APP}" in link

    listed = json.loads(xtap("clients", "list", env=app_env).stdout)
    assert [c["tenantId"] for c in listed] == [CONTOSO]


def test_unknown_domain_and_bad_input_exit_2_with_one_line(app_env):
    unknown = xtap("clients", "add", "--domain", "no-such-client.example", env=app_env)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "no Entra tenant" in unknown.stderr
    bad = xtap("clients", "add", "--domain", "not a domain", env=app_env)
    assert bad.returncode == 2 and "--domain" in bad.stderr


def test_export_then_import_round_trips_the_registry(app_env, tmp_path):
    assert xtap("clients", "add", "--domain", "contoso-markets.com", env=app_env).returncode == 0
    exported = tmp_path / "clients.json"
    assert xtap("clients", "export", str(exported), env=app_env).returncode == 0
    data = json.loads(exported.read_text())
    data["clients"].append(
        {"tenant_id": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", "name": "Fabrikam Clearing"}
    )
    exported.write_text(json.dumps(data))
    done = xtap("clients", "import", str(exported), env=app_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"imported": 2}
    names = [c["name"] for c in json.loads(xtap("clients", "list", env=app_env).stdout)]
    assert names == ["Contoso Markets", "Fabrikam Clearing"]

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{"tenant_id": "nope", "name": "X"}]))
    refused = xtap("clients", "import", str(broken), env=app_env)
    assert refused.returncode == 2 and "tenant_id" in refused.stderr


def test_client_instructions_carry_the_onboarding_steps_and_can_be_sent(app_env, demo_sim):
    assert xtap("clients", "add", "--domain", "contoso-markets.com", env=app_env).returncode == 0
    shown = xtap("clients", "instructions", CONTOSO, env=app_env)
    assert shown.returncode == 0, shown.stderr
    assert "sso.osttra.com" in shown.stdout
    assert "Automatically redeem invitations" in shown.stdout
    before = len(demo_sim.control.mailbox())
    sent = xtap(
        "clients",
        "instructions",
        CONTOSO,
        "--send-to",
        "it-admin@contoso-markets.com",
        env=app_env,
    )
    assert sent.returncode == 0, sent.stderr
    mail = demo_sim.control.mailbox()[before:]
    assert len(mail) == 1
    to = mail[0]["message"]["toRecipients"][0]["emailAddress"]["address"]
    assert to == "it-admin@contoso-markets.com"
