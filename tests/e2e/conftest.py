"""Fixtures shared by the end-to-end tests of the operator CLI."""

from __future__ import annotations

import pytest


@pytest.fixture
def seeded(app_env: dict[str, str]) -> dict[str, str]:
    """The registry holds the demo scenario's clients (what onboarding would have left)."""
    import asyncio

    from devtools.local_env import load_demo_scenario, seed_registry
    from tests.integration.app_helpers import with_app

    asyncio.run(with_app(lambda app: seed_registry(app, load_demo_scenario())))
    return app_env
