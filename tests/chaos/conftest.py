"""Fixtures for the chaos, crash and poison tests: Azurite (shared with the suite) and a
Graph simulator holding the demo vendor plus N generated clients (``GENERATED_CLIENTS`` in
the test module), with the app settings pointing at both."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="module")
def generated_sim(tmp_path_factory: pytest.TempPathFactory, request: Any) -> Iterator[Any]:
    from sim.testing import start_simulator

    count = int(getattr(request.module, "GENERATED_CLIENTS", 40))
    process = start_simulator(f"generated:{count}", tmp_path_factory.mktemp("chaos-sim"))
    yield process
    process.stop()


@pytest.fixture
def chaos_env(
    azurite: Any, generated_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """App settings for this test (inherited by worker processes it starts)."""
    from devtools.azurite import reset_storage
    from devtools.local_env import WEBHOOK_NAME, settings_env

    reset_storage(azurite.connection_string)
    env = settings_env(
        graph_base=generated_sim.base_url,
        ca_file=generated_sim.ca_file,
        storage_connection_string=azurite.connection_string,
        webhook_url=generated_sim.webhook_url(WEBHOOK_NAME),
    )
    for key in list(os.environ):
        if key.startswith("XTAP_"):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    generated_sim.control.clear_faults()
    generated_sim.control.clear_throttles()
    generated_sim.control.set_latency(0)
