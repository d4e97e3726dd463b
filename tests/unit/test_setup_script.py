"""scripts/setup: the demo never needs a browser; without apt it says what to do (#14.9).

Runs the real script in a scratch copy of the repository whose venv looks up to date (a
stand-in with a matching stamp), on a PATH holding only the basic tools it calls, so
nothing is installed and the branch under test is the browser step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("bash", "env", "cat", "cut", "sha256sum", "id", "dirname", "printf")


def _scratch(tmp_path: Path, *, with_apt: bool) -> tuple[Path, dict[str, str], Path]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    for name in ("requirements.txt", "requirements-dev.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    # A stand-in venv whose stamp matches these requirements: the script installs nothing
    # (and never touches this checkout's real .venv).
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").write_text("#!/bin/sh\nexit 1\n")
    (repo / ".venv" / "bin" / "python").chmod(0o755)
    digest = hashlib.sha256(
        b"".join((repo / n).read_bytes() for n in ("requirements.txt", "requirements-dev.txt",
                                                    "pyproject.toml"))
    ).hexdigest()[:16]
    (repo / ".venv" / ".xtap-installed").write_text(digest + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    calls = tmp_path / "apt-calls"
    if with_apt:  # a stand-in apt-get that records what it was asked to do
        fake = bin_dir / "apt-get"
        fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
        fake.chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return repo, env, calls


def _run(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(repo / "scripts" / "setup"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_setup_installs_no_browser_even_where_apt_exists(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the apt branch runs as root only here (no sudo in the scratch PATH)")
    repo, env, calls = _scratch(tmp_path, with_apt=True)
    done = _run(repo, env, "demo")
    assert done.returncode == 0, done.stderr
    assert not calls.exists(), "the demo asked apt-get for something"
    assert "ready for the demo" in done.stderr
    test = _run(repo, env)
    assert test.returncode == 0, test.stderr
    assert "install -y -qq chromium" in calls.read_text()


def test_without_apt_the_test_setup_says_what_to_install_and_carries_on(tmp_path):
    repo, env, _ = _scratch(tmp_path, with_apt=False)
    done = _run(repo, env)
    assert done.returncode == 0, done.stderr
    assert "no Chromium found, and no apt-get" in done.stderr
    assert "XTAP_CHROMIUM" in done.stderr
    assert "the demo and every other test run without a browser" in done.stderr
    assert "ready for the test" in done.stderr


def test_unknown_purpose_is_refused():
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup"), "everything"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "usage: scripts/setup [demo|test]" in done.stderr
