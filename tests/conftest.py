"""Shared fixtures: real Azurite and the Graph simulator on loopback, started per worker."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.handbook import GRAPH_FIXTURES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def graph_fixtures() -> Path:
    return GRAPH_FIXTURES


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    from devtools.azurite import start_azurite

    process = start_azurite()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def demo_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sim.testing import start_simulator

    process = start_simulator("demo", tmp_path_factory.mktemp("sim"))
    yield process
    process.stop()


@pytest.fixture
def app_env(azurite: Any, demo_sim: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """App settings pointing at this worker's Azurite and the module's simulator."""
    from devtools.azurite import reset_storage
    from devtools.local_env import WEBHOOK_NAME, settings_env

    reset_storage(azurite.connection_string)
    env = settings_env(
        graph_base=demo_sim.base_url,
        ca_file=demo_sim.ca_file,
        storage_connection_string=azurite.connection_string,
        webhook_url=demo_sim.webhook_url(WEBHOOK_NAME),
    )
    for key in list(os.environ):
        if key.startswith("XTAP_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The Teams flow docs/teams-workflow.md tells the vendor to build: it answers after the
    # post, so a throttled or refused post is an error the product sees and retries. (A
    # plain Workflows webhook answers 202 first; tests that need that say so.)
    demo_sim.control.set_webhook_flow(WEBHOOK_NAME, "confirming")
    return env


def run(coro: Any) -> Any:
    return asyncio.run(coro)
