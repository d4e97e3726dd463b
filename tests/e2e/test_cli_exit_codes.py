"""``xtap-watch check`` exits with the verdict's status, so scripts can gate on it
(issue #14.6; README "Exit status"): 0 ALLOWED, 3 LIMITED, 4 BLOCKED, 5 UNKNOWN.

The demo scenario holds one client of each verdict once Contoso blocks the vendor; each is
checked through the real CLI process against Azurite and the simulator."""

from __future__ import annotations

import json

import pytest

from devtools.local_env import ALLOW_OUTBOUND, BLOCK_OUTBOUND, VENDOR_TENANT_ID
from tests.e2e.test_cli_failures import CONTOSO, xtap

pytestmark = pytest.mark.e2e

FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"  # LIMITED to one group
NORTHWIND = "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"  # blocked default, correct exception
WOODGROVE = "5e6f7a8b-9c0d-4e1f-8a3b-4c5d6e7f8091"  # consent revoked: Graph answers 403


def _check(env: dict[str, str], tenant: str) -> tuple[int, str]:
    done = xtap(env, "check", tenant, "--output", "json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)["verdict"]


def test_check_exits_with_the_verdicts_documented_status(seeded, demo_sim):
    assert _check(seeded, NORTHWIND) == (0, "ALLOWED")
    assert _check(seeded, FABRIKAM) == (3, "LIMITED")
    assert _check(seeded, WOODGROVE) == (5, "UNKNOWN")
    demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, BLOCK_OUTBOUND)
    try:
        assert _check(seeded, CONTOSO) == (4, "BLOCKED")
    finally:
        demo_sim.control.set_partner_policy(CONTOSO, VENDOR_TENANT_ID, ALLOW_OUTBOUND)
