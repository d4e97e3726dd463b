"""The simulator's groups, service principal roles, invitation rules, access review scopes,
B2B management policy and cloud settings (sim/directory.py) over real HTTPS.

Each behaviour here is a row of sim/FIDELITY.md ("Users and invitations", "Groups and
access reviews", "Cross-tenant access policy").
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from sim.scenarios import (
    CONTOSO_TENANT_ID,
    MANAGED_IDENTITY_CLIENT_ID,
    VENDOR_APP_ID,
    VENDOR_TENANT_ID,
)
from sim.testing import SimulatorProcess, start_simulator
from tests.integration.test_simulator import Graph, token

pytestmark = pytest.mark.integration

GUEST_INVITER = "95e79109-95c0-4d8e-aee3-d01accf2d47b"
REDIRECT = "https://sso.osttra.com"
SCOPE_DOCS = "accessreviews-scope-concept"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory):
    process = start_simulator("demo", tmp_path_factory.mktemp("directory-sim"))
    yield process
    assert process.stop() == 0


@pytest.fixture(scope="module")
def graph(sim: SimulatorProcess):
    client = Graph(sim)
    yield client
    client.client.close()


def _user_id(graph: Graph, mail: str) -> str:
    found = graph.get("/users", params={"$filter": f"mail eq '{mail}'", "$select": "id"})
    return str(found.json()["value"][0]["id"])


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "innerError"} <= set(body["error"]), body
    return dict(body["error"])


def test_group_lifecycle_and_member_references(graph: Graph) -> None:
    created = graph.post(
        "/groups",
        {
            "displayName": "xtap-watch guests: Test",
            "mailNickname": "xtap-guests-test",
            "mailEnabled": False,
            "securityEnabled": True,
        },
    )
    assert created.status_code == 201
    group = created.json()
    assert group["securityEnabled"] is True and group["groupTypes"] == []
    found = graph.get("/groups", params={"$filter": "mailNickname eq 'xtap-guests-test'"})
    assert [g["id"] for g in found.json()["value"]] == [group["id"]]

    carol = _user_id(graph, "carol.risk@fabrikam-clearing.com")
    ref = {"@odata.id": f"{graph.sim.graph_url}/directoryObjects/{carol}"}
    added = graph.post(f"/groups/{group['id']}/members/$ref", ref)
    assert added.status_code == 204 and not added.content
    again = graph.post(f"/groups/{group['id']}/members/$ref", ref)
    assert again.status_code == 400 and "already exist" in _error(again)["message"]
    missing = graph.post(
        f"/groups/{group['id']}/members/$ref",
        {"@odata.id": f"{graph.sim.graph_url}/directoryObjects/{uuid.uuid4()}"},
    )
    assert missing.status_code == 404
    members = graph.get(f"/groups/{group['id']}/members", params={"$select": "id"}).json()
    assert [m["id"] for m in members["value"]] == [carol]
    assert members["value"][0]["@odata.type"] == "#microsoft.graph.user"
    removed = graph.client.delete(f"/groups/{group['id']}/members/{carol}/$ref")
    assert removed.status_code == 204
    assert graph.client.delete(f"/groups/{group['id']}/members/{carol}/$ref").status_code == 404


def test_creating_groups_and_members_needs_the_group_permissions(sim: SimulatorProcess) -> None:
    from sim.scenarios import READER_APP_ID, READER_APP_SECRET

    sim.control.set_consent(VENDOR_TENANT_ID, READER_APP_ID, "granted")
    reader = Graph(sim, token(sim, app=READER_APP_ID, secret=READER_APP_SECRET))
    try:
        denied = reader.post(
            "/groups",
            {
                "displayName": "x",
                "mailNickname": "x",
                "mailEnabled": False,
                "securityEnabled": True,
            },
        )
    finally:
        reader.client.close()
    assert denied.status_code == 403 and _error(denied)["code"] == "Authorization_RequestDenied"


def test_service_principal_roles_are_readable(graph: Graph) -> None:
    principal = graph.get(f"/servicePrincipals(appId='{VENDOR_APP_ID}')").json()
    assert principal["appId"] == VENDOR_APP_ID and principal["servicePrincipalType"]
    roles = graph.get(
        "/roleManagement/directory/roleAssignments",
        params={"$filter": f"principalId eq '{principal['id']}'"},
    ).json()["value"]
    assert [r["roleDefinitionId"] for r in roles] == [GUEST_INVITER]
    assert graph.get(f"/servicePrincipals(appId='{uuid.uuid4()}')").status_code == 404
    identity = graph.get(f"/servicePrincipals(appId='{MANAGED_IDENTITY_CLIENT_ID}')").json()
    assert identity["servicePrincipalType"] == "ManagedIdentity"


def test_restricted_invitations_refuse_apps_without_an_inviting_role(
    sim: SimulatorProcess, graph: Graph
) -> None:
    grace = _user_id(graph, "grace.ops@northwind-securities.com")
    body = {
        "invitedUserEmailAddress": "grace.ops@northwind-securities.com",
        "inviteRedirectUrl": REDIRECT,
        "resetRedemption": True,
        "invitedUser": {"id": grace},
    }
    sim.control.set_directory(VENDOR_TENANT_ID, servicePrincipalDirectoryRoles={VENDOR_APP_ID: []})
    try:
        refused = graph.post("/invitations", body)
    finally:
        sim.control.set_directory(
            VENDOR_TENANT_ID, servicePrincipalDirectoryRoles={VENDOR_APP_ID: ["Guest Inviter"]}
        )
    assert refused.status_code == 403
    assert _error(refused)["code"] == "Authorization_RequestDenied"
    assert graph.post("/invitations", body).status_code == 201  # holds Guest Inviter again
    sim.control.set_authorization_policy(VENDOR_TENANT_ID, allowInvitesFrom="everyone")
    sim.control.set_directory(VENDOR_TENANT_ID, servicePrincipalDirectoryRoles={VENDOR_APP_ID: []})
    try:
        assert graph.post("/invitations", body).status_code == 201  # not restricted
    finally:
        sim.control.set_authorization_policy(
            VENDOR_TENANT_ID, allowInvitesFrom="adminsAndGuestInviters"
        )
        sim.control.set_directory(
            VENDOR_TENANT_ID, servicePrincipalDirectoryRoles={VENDOR_APP_ID: ["Guest Inviter"]}
        )


def test_a_fault_after_the_handler_acts_first(sim: SimulatorProcess, graph: Graph) -> None:
    frank = _user_id(graph, "frank.settle@northwind-securities.com")
    before = len(sim.control.invitations(VENDOR_TENANT_ID))
    sim.control.add_fault("/invitations", status=503, count=1, method="POST", after=True)
    try:
        answer = graph.post(
            "/invitations",
            {
                "invitedUserEmailAddress": "frank.settle@northwind-securities.com",
                "inviteRedirectUrl": REDIRECT,
                "resetRedemption": True,
                "invitedUser": {"id": frank},
            },
        )
    finally:
        sim.control.clear_faults()
    assert answer.status_code == 503
    invitations = sim.control.invitations(VENDOR_TENANT_ID)
    assert len(invitations) == before + 1 and invitations[-1]["status"] == 201
    assert sim.control.user(VENDOR_TENANT_ID, frank)["externalUserState"] == "PendingAcceptance"


def _definition(query: str, **extra: Any) -> dict[str, Any]:
    return {
        "displayName": f"scope test {uuid.uuid4()}",
        "scope": {
            "@odata.type": "#microsoft.graph.accessReviewQueryScope",
            "query": query,
            "queryType": "MicrosoftGraph",
        },
        "reviewers": [{"query": "/users/admin@osttra.com", "queryType": "MicrosoftGraph"}],
        "settings": {
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1},
                "range": {"type": "noEnd", "startDate": "2026-12-01"},
            }
        },
        **extra,
    }


def test_access_review_scopes_must_be_documented(graph: Graph) -> None:
    group = graph.get(
        "/groups",
        params={"$filter": f"mailNickname eq 'xtap-guests-{CONTOSO_TENANT_ID}'"},
    ).json()["value"][0]["id"]
    documented = [
        f"/groups/{group}/transitiveMembers/microsoft.graph.user/?$filter=(userType eq 'Guest')",
        f"/groups/{group}/transitiveMembers",
        f"/groups/{group}/members",
    ]
    for query in documented:
        created = graph.post("/identityGovernance/accessReviews/definitions", _definition(query))
        assert created.status_code == 201, (query, created.text)
    refused = [
        "/users?$filter=(userType eq 'Guest') and endswith(mail,'@contoso-markets.com')",
        "/users?$filter=(userType eq 'Guest')",
        f"/groups/{uuid.uuid4()}/transitiveMembers",  # no such group
        "./members/microsoft.graph.user",  # without an instanceEnumerationScope
    ]
    for query in refused:
        answer = graph.post("/identityGovernance/accessReviews/definitions", _definition(query))
        assert answer.status_code == 400, query
        error = _error(answer)
        assert error["code"] == "BadRequest" and SCOPE_DOCS in error["message"]
    enumerated = _definition(
        "./members/microsoft.graph.user/?$filter=(userType eq 'Guest')",
        instanceEnumerationScope={
            "query": "/groups?$filter=(groupTypes/any(c:c eq 'Unified'))",
            "queryType": "MicrosoftGraph",
        },
    )
    assert (
        graph.post("/identityGovernance/accessReviews/definitions", enumerated).status_code == 201
    )


def test_b2b_management_policy_is_beta_only_and_needs_its_own_permission(
    sim: SimulatorProcess, graph: Graph
) -> None:
    beta = graph.sim.graph_url.rsplit("/", 1)[0] + "/beta/policies/b2bManagementPolicies"
    assert graph.get("/policies/b2bManagementPolicies").status_code == 400  # not in v1.0
    assert graph.follow(beta).json()["value"] == []  # never saved: no restriction
    sim.control.set_directory(
        VENDOR_TENANT_ID, b2bManagementPolicy={"allowedDomains": ["contoso-markets.com"]}
    )
    try:
        [policy] = graph.follow(beta).json()["value"]
        assert policy["@odata.type"] == "#microsoft.graph.b2bManagementPolicy"
        assert "InvitationsAllowedAndBlockedDomainsPolicy" in policy["definition"][0]
        sim.control.set_consent(
            VENDOR_TENANT_ID, VENDOR_APP_ID, "granted", ["Policy.Read.All", "Directory.Read.All"]
        )
        narrow = Graph(sim)
        try:
            assert narrow.follow(beta).status_code == 403  # Policy.Read.All is not enough
        finally:
            narrow.client.close()
    finally:
        sim.control.set_consent(VENDOR_TENANT_ID, VENDOR_APP_ID, "granted")
        sim.control.set_directory(VENDOR_TENANT_ID, b2bManagementPolicy=None)


def test_cloud_of_a_tenant_and_the_vendors_cloud_settings(
    sim: SimulatorProcess, graph: Graph
) -> None:
    tenant_id = str(uuid.uuid4())
    sim.control.add_tenant(
        {
            "id": tenant_id,
            "displayName": "Gov client",
            "domains": ["gov-client.example"],
            "cloudInstanceName": "microsoftonline.us",
        }
    )
    config = httpx.get(
        f"{sim.authority}/{tenant_id}/v2.0/.well-known/openid-configuration",
        verify=sim.ca_file,
    ).json()
    assert config["cloud_instance_name"] == "microsoftonline.us"
    policy = graph.get("/policies/crossTenantAccessPolicy").json()
    assert policy["allowedCloudEndpoints"] == []
    sim.control.set_directory(VENDOR_TENANT_ID, allowedCloudEndpoints=["microsoftonline.us"])
    try:
        policy = graph.get("/policies/crossTenantAccessPolicy").json()
        assert policy["allowedCloudEndpoints"] == ["microsoftonline.us"]
    finally:
        sim.control.set_directory(VENDOR_TENANT_ID, allowedCloudEndpoints=[])
