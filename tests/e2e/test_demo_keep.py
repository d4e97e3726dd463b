"""``./scripts/demo --keep`` (issue #14.7): what the demo prints is enough to use the CLI
and the HTTP API against the stack it leaves up, and Ctrl+C/SIGTERM takes it all down.

Follows the printed steps as a new user would: source the file, run ``xtap-watch``, call the
API with the header ``xtap-watch dev principal`` prints, open a runbook.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"


def _sourced(env_file: Path, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"source {env_file} && {command}"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keep_leaves_a_stack_the_printed_steps_can_use(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XTAP_") and k != "AzureWebJobsStorage"}
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--keep", "--no-images", "--port", "0",
         "--state-dir", str(tmp_path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    printed: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            printed.append(line)
            if line.startswith("Simulator (a test double"):
                break
        text = "".join(printed)
        assert "Local operator mode" in text, text
        env_file = tmp_path / "xtap-watch.env"
        assert f"source {env_file}" in text
        assert "== Legend" in text and "consent_missing" in text
        # A first run reads as the demo's own report: no library log lines (an unconsented
        # client's refused token is a finding on its row, not a WARNING with Entra's body).
        assert "WARNING" not in text and "AADSTS700016" not in text, text

        listed = _sourced(env_file, "xtap-watch clients list --output json")
        assert listed.returncode == 0, listed.stderr
        clients = json.loads(listed.stdout)
        assert [c["name"] for c in clients][:2] == ["Contoso Markets", "Fabrikam Clearing"]
        assert {"tenantId", "verdict", "state"} <= set(clients[0])

        checked = _sourced(env_file, f"xtap-watch check {NORTHWIND} --output json")
        assert checked.returncode == 0, checked.stderr
        assert json.loads(checked.stdout)["verdict"] == "ALLOWED"

        header = _sourced(env_file, "xtap-watch dev principal --role Reinvite.Request")
        name, _, value = header.stdout.strip().partition(": ")
        assert name == "X-MS-CLIENT-PRINCIPAL" and value
        api = _sourced(env_file, 'echo "$XTAP_LOCAL_API"').stdout.strip()
        posture = httpx.get(f"{api}/api/v1/clients/{NORTHWIND}/posture", headers={name: value})
        assert posture.status_code == 200 and posture.json()["verdict"] == "ALLOWED"
        assert httpx.get(f"{api}/api/v1/clients/{NORTHWIND}/posture").status_code == 401
        runbook = httpx.get(f"{api}/api/v1/runbooks/CLIENT_OUTBOUND_BLOCKED")
        assert runbook.status_code == 200 and "text/html" in runbook.headers["content-type"]
        assert sorted(p.name for p in (tmp_path / "demo" / "delivered").glob("mail-*.html"))

        children = psutil.Process(demo.pid).children(recursive=True)
        assert children, "Azurite and the simulator run as child processes"
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.wait(timeout=60)
        finally:
            if demo.poll() is None:
                demo.kill()
    assert demo.returncode == 0
    _, alive = psutil.wait_procs(children, timeout=20)
    assert alive == [], f"left running: {alive}"
