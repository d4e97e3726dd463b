"""Vendor-side invitation checks through the real sweep (issue 11 items 4 and 7).

sweep timer → check-client queue → vendor-side findings in the posture table, with the
vendor's B2B management policy read from Graph **beta**, xtap-watch's own directory roles
from ``roleManagement``, and each tenant's Microsoft cloud from its OpenID configuration.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devtools.local_env import VENDOR_TENANT_ID
from tests.e2e.demo_sweep import add_government_client, sweep_demo_registry

pytestmark = pytest.mark.e2e

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
FABRIKAM = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
XTAP_APP_ID = "3b8f2d6a-7c41-4e95-a0d2-8f1b6c3e9a74"


async def _sweep(extra_clients: tuple[Any, ...] = ()) -> dict[str, dict[str, Any]]:
    postures, _ = await sweep_demo_registry(extra_clients)
    return postures


def _codes(posture: dict[str, Any]) -> set[str]:
    return {f["code"] for f in posture["vendorFindings"]}


def test_a_client_domain_outside_the_b2b_allowlist_is_a_vendor_finding(app_env, demo_sim):
    demo_sim.control.set_directory(
        VENDOR_TENANT_ID,
        b2bManagementPolicy={"allowedDomains": ["contoso-markets.com", "*.onmicrosoft.com"]},
    )
    try:
        postures = asyncio.run(_sweep())
    finally:
        demo_sim.control.set_directory(VENDOR_TENANT_ID, b2bManagementPolicy=None)
    fabrikam = next(
        f
        for f in postures[FABRIKAM]["vendorFindings"]
        if f["code"] == "VENDOR_CLIENT_DOMAIN_NOT_ALLOWED"
    )
    assert "fabrikam-clearing.com" in fabrikam["message"]
    assert "VENDOR_CLIENT_DOMAIN_NOT_ALLOWED" not in _codes(postures[CONTOSO])
    beta = demo_sim.control.requests(path_contains="/beta/policies/b2bManagementPolicies")
    assert beta and all(r["status"] == 200 for r in beta)


def test_without_the_b2b_policy_permission_the_domain_check_is_skipped(app_env, demo_sim):
    """Beta, optional: a 403 means "not known", never "no restriction" nor a crash."""
    demo_sim.control.set_directory(
        VENDOR_TENANT_ID, b2bManagementPolicy={"blockedDomains": ["fabrikam-clearing.com"]}
    )
    roles = [
        "Policy.Read.All",
        "AuditLog.Read.All",
        "Directory.Read.All",
        "User.Invite.All",
        "AccessReview.ReadWrite.All",
        "Mail.Send",
        "CrossTenantInformation.ReadBasic.All",
    ]
    demo_sim.control.set_consent(VENDOR_TENANT_ID, XTAP_APP_ID, "granted", roles)
    demo_sim.control.reset_counters()
    try:
        postures = asyncio.run(_sweep())
    finally:
        demo_sim.control.set_consent(VENDOR_TENANT_ID, XTAP_APP_ID, "granted")
        demo_sim.control.set_directory(VENDOR_TENANT_ID, b2bManagementPolicy=None)
    assert postures[FABRIKAM]["verdict"] == "LIMITED"  # the check itself still ran
    assert "VENDOR_CLIENT_DOMAIN_NOT_ALLOWED" not in _codes(postures[FABRIKAM])
    beta = demo_sim.control.requests(path_contains="/beta/policies/b2bManagementPolicies")
    # Asked once for the whole sweep: "not available to us" is kept, not asked per client.
    assert [r["status"] for r in beta] == [403]


def test_a_client_in_another_cloud_without_cross_cloud_settings(app_env, demo_sim):
    client = add_government_client(demo_sim)
    gov = client.tenant_id
    before = asyncio.run(_sweep((client,)))
    demo_sim.control.set_directory(VENDOR_TENANT_ID, allowedCloudEndpoints=["microsoftonline.us"])
    demo_sim.control.set_partner_policy(VENDOR_TENANT_ID, gov, {})
    try:
        after = asyncio.run(_sweep((client,)))
    finally:
        demo_sim.control.set_directory(VENDOR_TENANT_ID, allowedCloudEndpoints=[])
        demo_sim.control.delete_partner_policy(VENDOR_TENANT_ID, gov)
    finding = next(
        f for f in before[gov]["vendorFindings"] if f["code"] == "VENDOR_CROSS_CLOUD_NOT_ENABLED"
    )
    assert "Azure Government" in finding["message"]
    assert "VENDOR_CROSS_CLOUD_NOT_ENABLED" not in _codes(after[gov])
    # Same-cloud clients never get it.
    assert "VENDOR_CROSS_CLOUD_NOT_ENABLED" not in _codes(before[CONTOSO])
