"""Each CLI failure of issue #14.6 is one line naming the cause and the fix, never a
traceback: the real ``xtap-watch`` command against Azurite and the Graph simulator, with one
setting broken at a time."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def xtap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_no_storage_reachable(app_env):
    port = _closed_port()
    env = app_env | {
        "AzureWebJobsStorage": app_env["AzureWebJobsStorage"].replace(
            app_env["AzureWebJobsStorage"].split("QueueEndpoint=")[1].split(";")[0],
            f"http://127.0.0.1:{port}/devstoreaccount1",
        )
    }
    done = xtap(env, "clients", "list")
    assert done.returncode == 1
    line = one_line(done)
    assert f"storage is not reachable at http://127.0.0.1:{port}/devstoreaccount1" in line
    assert "(AzureWebJobsStorage)" in line and "./scripts/demo --keep" in line


def test_wrong_vendor_secret_is_named_not_consent(app_env):
    done = xtap(app_env | {"XTAP_VENDOR_CLIENT_SECRET": "not-the-secret"},
                "clients", "add", "--domain", "contoso-markets.com")
    assert done.returncode == 2
    line = one_line(done)
    assert "wrong client secret (AADSTS7000215)" in line
    assert "XTAP_VENDOR_CLIENT_SECRET" in line and "consent" not in line.lower()


def test_wrong_reader_secret_is_named_not_consent(seeded):
    done = xtap(seeded | {"XTAP_CLIENT_READER_SECRET": "not-the-secret"}, "check", CONTOSO)
    assert done.returncode == 2
    line = one_line(done)
    assert "client reader app" in line and "AADSTS7000215" in line
    assert "XTAP_CLIENT_READER_SECRET" in line and "consent" not in line.lower()


def test_graph_unreachable(app_env):
    port = _closed_port()
    done = xtap(app_env | {"XTAP_GRAPH_BASE_URL": f"https://127.0.0.1:{port}/v1.0"},
                "clients", "add", "--domain", "contoso-markets.com")
    assert done.returncode == 1
    line = one_line(done)
    assert f"cannot reach Microsoft Graph (127.0.0.1:{port}): connection refused" in line
    assert "XTAP_GRAPH_BASE_URL" in line


def test_token_endpoint_unreachable(app_env):
    port = _closed_port()
    done = xtap(app_env | {"XTAP_AUTHORITY_HOST": f"https://127.0.0.1:{port}"},
                "clients", "add", "--domain", "contoso-markets.com")
    assert done.returncode == 1
    line = one_line(done)
    assert f"cannot reach the Entra token endpoint (127.0.0.1:{port})" in line
    assert "XTAP_AUTHORITY_HOST" in line


def test_missing_ca_file(app_env):
    done = xtap(app_env | {"XTAP_TLS_CA_FILE": "/nonexistent/sim-ca.pem"}, "clients", "list")
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("error: XTAP_TLS_CA_FILE: no such file: /nonexistent/sim-ca.pem")


def test_untrusted_certificate(app_env):
    env = {k: v for k, v in app_env.items() if k != "XTAP_TLS_CA_FILE"}
    done = xtap(env, "clients", "add", "--domain", "contoso-markets.com")
    assert done.returncode == 2
    line = one_line(done)
    assert "is not trusted" in line and "XTAP_TLS_CA_FILE" in line


def test_unwritable_export_path(seeded, tmp_path):
    target = tmp_path / "no-such-dir" / "clients.json"
    done = xtap(seeded, "clients", "export", str(target))
    assert done.returncode == 2
    line = one_line(done)
    assert f"cannot write {target}: no such directory" in line


def test_every_missing_setting_at_once_and_only_those_the_command_needs(app_env):
    storage_only = {"AzureWebJobsStorage": app_env["AzureWebJobsStorage"]}
    listed = xtap(storage_only, "clients", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr  # the registry needs storage and nothing else

    done = xtap(storage_only, "clients", "add", "--domain", "contoso-markets.com")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    named = [line.split(":")[1].strip() for line in lines]
    assert named == ["XTAP_VENDOR_TENANT_ID", "XTAP_VENDOR_CREDENTIAL"], done.stderr
    assert "XTAP_VENDOR_APP_IDS" not in done.stderr  # adding a client does not need them
    assert all(line.startswith("error: ") for line in lines)


