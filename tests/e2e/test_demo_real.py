"""``./scripts/demo --real`` (issue #14.8), with the Graph simulator standing in for the
tenant: the settings a user exports for their tenant point at it instead.

* storage persists between runs (Azurite with a data folder): the registry survives and a
  drift is alerted once, not on every run;
* ``--no-deliver`` prints the alerts in full and sends nothing;
* a managed identity configured off Azure is a setting error, before anything starts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devtools.local_env import (
    ALLOW_OUTBOUND,
    BLOCK_OUTBOUND,
    VENDOR_TENANT_ID,
    WEBHOOK_NAME,
    load_demo_scenario,
)

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def _register_clients(location: Path) -> None:
    """What `xtap-watch clients add` against that storage would have left there."""
    from devtools.azurite import start_azurite
    from devtools.local_env import seed_registry
    from shared.bootstrap import build_app
    from shared.config import load_settings

    async def seed(connection: str) -> None:
        env = dict(__import__("os").environ) | {"AzureWebJobsStorage": connection}
        app = build_app(load_settings(env))
        try:
            await app.ensure_storage()
            await seed_registry(app, load_demo_scenario())
        finally:
            await app.close()

    with start_azurite(location=location) as azurite:
        asyncio.run(seed(azurite.connection_string))


@pytest.fixture
def real_env(
    app_env: dict[str, str], demo_sim: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    import devtools.demo as demo

    # The module's simulator outlives a test: every test starts with Contoso healthy.
    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, ALLOW_OUTBOUND)

    monkeypatch.delenv("AzureWebJobsStorage")  # --real brings its own, persistent storage
    location = tmp_path / "azurite-real"
    monkeypatch.setattr(demo, "REAL_STORAGE", location)
    monkeypatch.setattr(demo, "ROOT", tmp_path)
    return location


def _cards_for(sim: Any, name: str) -> list[Any]:
    return [m for m in sim.control.webhook_messages(WEBHOOK_NAME) if name in str(m["body"])]


def test_real_mode_keeps_its_storage_and_alerts_a_drift_once(real_env, demo_sim, capsys):
    import devtools.demo as demo

    _register_clients(real_env)
    assert demo.main_real(deliver=True) == 0
    first = capsys.readouterr().out
    assert "Contoso Markets" in first and "ALLOWED" in first
    assert "azurite-real (registry and alert state survive" in first

    before = len(_cards_for(demo_sim, "Contoso Markets"))
    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
    assert demo.main_real(deliver=True) == 0
    second = capsys.readouterr().out
    assert "BLOCKED" in second and "client_drifted" in second
    after_drift = len(_cards_for(demo_sim, "Contoso Markets"))
    assert after_drift == before + 1

    assert demo.main_real(deliver=True) == 0  # nothing changed: nothing is sent again
    third = capsys.readouterr().out
    assert "client_drifted" not in third
    assert len(_cards_for(demo_sim, "Contoso Markets")) == after_drift


def test_no_deliver_prints_the_alerts_in_full_and_sends_none(real_env, demo_sim, capsys):
    import devtools.demo as demo

    _register_clients(real_env)
    assert demo.main_real(deliver=False) == 0
    capsys.readouterr()
    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
    posted = len(demo_sim.control.webhook_messages(WEBHOOK_NAME))
    mailed = len(demo_sim.control.mailbox())
    assert demo.main_real(deliver=False) == 0
    out = capsys.readouterr().out
    assert "--no-deliver: printed, not sent" in out
    assert "client_drifted" in out and "→ " in out  # the steps, in full
    assert "/api/v1/runbooks/CLIENT_OUTBOUND_BLOCKED" in out
    assert len(demo_sim.control.webhook_messages(WEBHOOK_NAME)) == posted
    assert len(demo_sim.control.mailbox()) == mailed


def test_a_managed_identity_off_azure_is_a_setting_error_before_anything_starts(
    real_env, monkeypatch, capsys
):
    import devtools.demo as demo

    for name in ("XTAP_VENDOR_CREDENTIAL", "XTAP_CLIENT_READER_CREDENTIAL", "IDENTITY_ENDPOINT",
                 "MSI_ENDPOINT", "XTAP_USE_IMDS"):
        monkeypatch.delenv(name, raising=False)
    assert demo.main_real(deliver=True) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: XTAP_VENDOR_CREDENTIAL: is managed_identity, but this "
                             "machine has no managed identity")
    assert "XTAP_VENDOR_CREDENTIAL=client_secret" in err[0]
    assert err[1].startswith("error: XTAP_CLIENT_READER_CREDENTIAL: is federated_managed_identity")
    assert not real_env.exists(), "storage was started before the settings were checked"


def test_every_missing_setting_is_named_at_once(real_env, monkeypatch, capsys):
    import devtools.demo as demo

    for name in ("XTAP_VENDOR_TENANT_ID", "XTAP_VENDOR_APP_IDS", "XTAP_VENDOR_CLIENT_SECRET"):
        monkeypatch.delenv(name)
    assert demo.main_real(deliver=True) == 2
    err = capsys.readouterr().err
    for name in ("XTAP_VENDOR_TENANT_ID", "XTAP_VENDOR_APP_IDS"):
        assert f"error: {name}: " in err


def test_real_keep_leaves_storage_and_runner_up_for_the_cli(app_env, demo_sim, tmp_path):
    """--real --keep: register a client from another shell against the kept storage; the
    file to source holds the storage and API address only, never the user's secrets."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    env |= {k: v for k, v in app_env.items() if k != "AzureWebJobsStorage"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--real", "--keep", "--state-dir", str(tmp_path)],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert demo.stdout is not None
        seen = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "xtap-watch sweep" in line:
                break
        assert "Local operator mode (your tenant)" in "".join(seen), "".join(seen)
        env_file = tmp_path / "xtap-watch.env"
        text = env_file.read_text()
        assert "AzureWebJobsStorage" in text and "XTAP_VENDOR_CLIENT_SECRET" not in text
        shell = {k: v for k, v in env.items() if k.startswith("XTAP_")}
        shell |= {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        added = subprocess.run(
            ["bash", "-c", f"source {env_file} && xtap-watch clients add --domain "
             "contoso-markets.com -o json && xtap-watch clients list -o json"],
            cwd=root, env=shell, capture_output=True, text=True, timeout=120,
        )
        assert added.returncode == 0, added.stderr
        assert '"tenantId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"' in added.stdout
        assert json.loads(added.stdout[added.stdout.rindex("["):])[0]["name"] == "Contoso Markets"
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
    assert demo.returncode == 0
    assert (tmp_path / "azurite-real").is_dir()  # the registry outlives the run
