"""The Graph simulator over real HTTPS with the real SDK clients.

Proves that azure-identity, msgraph-sdk (typed), kiota's retry handler and
azure-monitor-query talk to the simulator exactly as they would to Microsoft, and that
the simulator behaves like Graph where the product depends on it: permissions and
consent, paging, ``$filter`` refusals, audit events for policy changes, ``$batch``,
invitations, access reviews, mail, faults, throttles and the Teams webhook limits.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.handbook import GRAPH_FIXTURES
from sim.scenarios import (
    CONTOSO_TENANT_ID,
    FABRIKAM_TENANT_ID,
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_HEADER,
    READER_APP_ID,
    READER_APP_SECRET,
    TAILSPIN_TENANT_ID,
    VENDOR_APP_ID,
    VENDOR_APP_SECRET,
    VENDOR_TENANT_ID,
    VENDOR_WORKSPACE_ID,
    WOODGROVE_TENANT_ID,
    b2b_everyone,
)
from sim.testing import SimulatorProcess, SimulatorStartError, start_simulator

pytestmark = pytest.mark.integration

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
BLOCKED_ALL = b2b_everyone("blocked")
ALLOWED_ALL = b2b_everyone("allowed")
FIXTURES = GRAPH_FIXTURES


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"Microsoft example {name} not available beside the checkout")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory):
    process = start_simulator("demo", tmp_path_factory.mktemp("graph-sim"))
    yield process
    assert process.stop() == 0  # SIGTERM → clean exit


def token(
    sim: SimulatorProcess,
    tenant: str = VENDOR_TENANT_ID,
    app: str = VENDOR_APP_ID,
    secret: str = VENDOR_APP_SECRET,
    scope: str = GRAPH_SCOPE,
) -> str:
    response = httpx.post(
        f"{sim.authority}/{tenant}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app,
            "client_secret": secret,
            "scope": scope,
        },
        verify=sim.ca_file,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def claims_of(access_token: str) -> dict[str, Any]:
    import base64

    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Graph:
    """A raw Graph client (vendor app by default) for shape assertions."""

    def __init__(self, sim: SimulatorProcess, access_token: str | None = None) -> None:
        self.sim = sim
        self.client = httpx.Client(
            base_url=sim.graph_url,
            verify=sim.ca_file,
            headers={"Authorization": f"Bearer {access_token or token(sim)}"},
            timeout=30,
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post(path, json=body, **kwargs)

    def follow(self, url: str) -> httpx.Response:
        return self.client.get(url)


@pytest.fixture(scope="module")
def graph(sim):
    client = Graph(sim)
    yield client
    client.client.close()


def new_client_tenant(sim: SimulatorProcess, **extra: Any) -> str:
    tenant_id = str(uuid.uuid4())
    sim.control.add_tenant(
        {
            "id": tenant_id,
            "displayName": f"Test client {tenant_id[:8]}",
            "domains": [f"c{tenant_id[:8]}.example.com"],
            "consents": {READER_APP_ID: "granted"},
            **extra,
        }
    )
    return tenant_id


def credential(
    sim: SimulatorProcess,
    tenant: str = VENDOR_TENANT_ID,
    app: str = VENDOR_APP_ID,
    secret: str = VENDOR_APP_SECRET,
):
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        tenant,
        app,
        secret,
        authority=sim.authority,
        disable_instance_discovery=True,
        connection_verify=sim.ca_file,
    )


def graph_service_client(sim: SimulatorProcess, cred: Any) -> Any:
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    auth = AzureIdentityAuthenticationProvider(cred, scopes=[GRAPH_SCOPE])
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(verify=sim.ca_file)
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = sim.graph_url  # explicit: see DESIGN §7
    return GraphServiceClient(request_adapter=adapter)


# ---------------------------------------------------------------------------------------
# Launch contract and tokens
# ---------------------------------------------------------------------------------------


def test_launch_contract(sim):
    assert sim.base_url == f"https://127.0.0.1:{sim.port}"
    assert sim.graph_url == sim.base_url + "/v1.0"
    assert sim.authority == sim.base_url
    assert sim.log_analytics_url == sim.base_url + "/loganalytics"
    assert sim.webhook_url("admins") == sim.base_url + "/webhooks/teams/admins"
    assert Path(sim.ca_file).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert sim.control.health()["status"] == "ok"
    # Plain verification with the throwaway CA works; the system trust store does not know it.
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.base_url + "/_sim/health")


def test_start_failure_reports_the_child_stderr(tmp_path):
    with pytest.raises(SimulatorStartError, match="scenario file not found"):
        start_simulator(tmp_path / "missing.json", tmp_path)


def test_azure_identity_client_secret_credential_gets_a_token(sim):
    access = credential(sim).get_token(GRAPH_SCOPE)
    claims = claims_of(access.token)
    assert claims["tid"] == VENDOR_TENANT_ID
    assert claims["appid"] == VENDOR_APP_ID
    assert claims["aud"] == "https://graph.microsoft.com"
    assert {"Policy.Read.All", "AuditLog.Read.All", "User.Invite.All", "Mail.Send"} <= set(
        claims["roles"]
    )
    assert access.expires_on > time.time() + 3000


def test_wrong_secret_and_unknown_tenant_are_aadsts_errors(sim):
    from azure.core.exceptions import ClientAuthenticationError

    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential(sim, secret="not-the-secret").get_token(GRAPH_SCOPE)
    response = httpx.post(
        f"{sim.authority}/{uuid.uuid4()}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": VENDOR_APP_ID,
            "client_secret": VENDOR_APP_SECRET,
            "scope": GRAPH_SCOPE,
        },
        verify=sim.ca_file,
    )
    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_consent_none_is_aadsts700016(sim):
    from azure.core.exceptions import ClientAuthenticationError

    with pytest.raises(ClientAuthenticationError, match="AADSTS700016"):
        credential(sim, TAILSPIN_TENANT_ID, READER_APP_ID, READER_APP_SECRET).get_token(GRAPH_SCOPE)


def test_revoked_consent_gives_a_token_without_roles_and_graph_403(sim):
    access = token(sim, WOODGROVE_TENANT_ID, READER_APP_ID, READER_APP_SECRET)
    assert "roles" not in claims_of(access)
    response = Graph(sim, access).get(
        f"/policies/crossTenantAccessPolicy/partners/{VENDOR_TENANT_ID}"
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_revoking_consent_takes_effect_for_issued_tokens(sim):
    tenant = new_client_tenant(sim)
    reader = Graph(sim, token(sim, tenant, READER_APP_ID, READER_APP_SECRET))
    assert reader.get("/policies/crossTenantAccessPolicy/default").status_code == 200
    sim.control.set_consent(tenant, READER_APP_ID, "revoked")
    assert reader.get("/policies/crossTenantAccessPolicy/default").status_code == 403


def test_each_endpoint_checks_its_application_permission(sim):
    # The reader app holds Policy.Read.All only.
    reader = Graph(sim, token(sim, CONTOSO_TENANT_ID, READER_APP_ID, READER_APP_SECRET))
    assert reader.get("/policies/crossTenantAccessPolicy/default").status_code == 200
    for path in ("/auditLogs/directoryAudits", "/auditLogs/signIns", "/users"):
        assert reader.get(path).status_code == 403, path
    assert (
        reader.post(
            "/invitations", {"invitedUserEmailAddress": "a@b.com", "inviteRedirectUrl": "https://x"}
        ).status_code
        == 403
    )


def test_graph_refuses_missing_and_wrong_audience_tokens(sim):
    anonymous = httpx.get(sim.graph_url + "/users", verify=sim.ca_file)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "InvalidAuthenticationToken"
    # The scope a kiota provider derives from the host when none is configured.
    wrong = token(sim, scope=f"{sim.base_url}/.default")
    response = Graph(sim, wrong).get("/users")
    assert response.status_code == 401
    assert "audience" in response.json()["error"]["message"]


def test_managed_identity_endpoint_issues_a_vendor_token(sim, monkeypatch):
    from azure.identity import ManagedIdentityCredential

    monkeypatch.setenv("IDENTITY_ENDPOINT", sim.base_url + "/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", MANAGED_IDENTITY_HEADER)
    cred = ManagedIdentityCredential(
        client_id=MANAGED_IDENTITY_CLIENT_ID, connection_verify=sim.ca_file
    )
    claims = claims_of(cred.get_token(GRAPH_SCOPE).token)
    assert claims["tid"] == VENDOR_TENANT_ID
    assert claims["appid"] == MANAGED_IDENTITY_CLIENT_ID
    assert "Policy.Read.All" in claims["roles"]
    wrong = httpx.get(
        sim.base_url + "/msi/token",
        params={"resource": "https://graph.microsoft.com", "api-version": "2019-08-01"},
        headers={"X-IDENTITY-HEADER": "wrong"},
        verify=sim.ca_file,
    )
    assert wrong.status_code == 401


def test_federated_credential_assertion_from_the_managed_identity(sim):
    mi = httpx.get(
        sim.base_url + "/msi/token",
        params={
            "resource": "api://AzureADTokenExchange",
            "api-version": "2019-08-01",
            "client_id": MANAGED_IDENTITY_CLIENT_ID,
        },
        headers={"X-IDENTITY-HEADER": MANAGED_IDENTITY_HEADER},
        verify=sim.ca_file,
    ).json()["access_token"]
    response = httpx.post(
        f"{sim.authority}/{CONTOSO_TENANT_ID}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": READER_APP_ID,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": mi,
            "scope": GRAPH_SCOPE,
        },
        verify=sim.ca_file,
    )
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["tid"] == CONTOSO_TENANT_ID


# ---------------------------------------------------------------------------------------
# Typed msgraph-sdk calls, retries
# ---------------------------------------------------------------------------------------


def test_typed_msgraph_sdk_calls_deserialise(sim):
    from msgraph.generated.models.cross_tenant_access_policy_configuration_default import (
        CrossTenantAccessPolicyConfigurationDefault,
    )
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    async def scenario() -> None:
        client = graph_service_client(
            sim, credential(sim, FABRIKAM_TENANT_ID, READER_APP_ID, READER_APP_SECRET)
        )
        default = await client.policies.cross_tenant_access_policy.default.get()
        assert isinstance(default, CrossTenantAccessPolicyConfigurationDefault)
        assert default.b2b_collaboration_outbound.users_and_groups.access_type.value == "allowed"
        partners = client.policies.cross_tenant_access_policy.partners
        partner = await partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(
            VENDOR_TENANT_ID
        ).get()
        assert partner.tenant_id == VENDOR_TENANT_ID
        targets = partner.b2b_collaboration_outbound.users_and_groups.targets
        assert [t.target for t in targets] == ["8d4f2a6c-1e3b-4c5d-9a7f-0b2c4e6d8f13"]
        with pytest.raises(ODataError) as missing:
            await partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(
                str(uuid.uuid4())
            ).get()
        assert missing.value.response_status_code == 404
        assert missing.value.error.code == "Request_ResourceNotFound"

    asyncio.run(scenario())


def test_sdk_retry_handler_honours_429_retry_after(sim):
    sim.control.add_fault("/v1.0/auditLogs/directoryAudits", status=429, retry_after=1, count=2)
    sim.control.reset_counters()

    async def scenario() -> Any:
        client = graph_service_client(sim, credential(sim))
        return await client.audit_logs.directory_audits.get()

    page = asyncio.run(scenario())
    assert page.value  # the SDK retried through both 429s
    statuses = [r["status"] for r in sim.control.requests("/auditLogs/directoryAudits")]
    assert statuses == [429, 429, 200]


def test_dropped_connection_then_recovery(sim, graph):
    sim.control.add_fault(r"/v1\.0/users$", drop=True, count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        graph.get("/users")
    assert graph.get("/users").status_code == 200
    dropped = [r for r in sim.control.requests("/v1.0/users") if r.get("note") == "dropped"]
    assert dropped


def test_injected_5xx_latency_and_probability_are_reproducible(sim, graph):
    sim.control.set_seed(42)
    rule = sim.control.add_fault("/v1.0/policies/authorizationPolicy", status=503, probability=0.5)
    first = [graph.get("/policies/authorizationPolicy").status_code for _ in range(12)]
    sim.control.clear_faults()
    sim.control.set_seed(42)
    sim.control.add_fault("/v1.0/policies/authorizationPolicy", status=503, probability=0.5)
    second = [graph.get("/policies/authorizationPolicy").status_code for _ in range(12)]
    sim.control.clear_faults()
    assert first == second
    assert set(first) == {200, 503}
    assert rule["probability"] == 0.5


def test_throttle_answers_429_with_retry_after(sim):
    tenant = new_client_tenant(sim)
    sim.control.add_users(tenant, [{"userPrincipalName": "admin@example.com"}])
    sim.control.set_consent(tenant, VENDOR_APP_ID, "granted")
    client = Graph(sim, token(sim, tenant))
    sim.control.set_throttle(
        r"/auditLogs/directoryAudits", limit=5, per_seconds=10, tenant_id=tenant
    )
    try:
        responses = [client.get("/auditLogs/directoryAudits") for _ in range(6)]
    finally:
        sim.control.clear_throttles()
    assert [r.status_code for r in responses[:5]] == [200] * 5
    assert responses[5].status_code == 429
    assert 1 <= int(responses[5].headers["Retry-After"]) <= 10
    assert responses[5].json()["error"]["code"] == "TooManyRequests"


# ---------------------------------------------------------------------------------------
# Policies and audit events
# ---------------------------------------------------------------------------------------


def test_policy_shapes_follow_microsoft_examples(sim, graph):
    default = graph.get("/policies/crossTenantAccessPolicy/default").json()
    example = fixture("policies.crossTenantAccessPolicy.default.get.response.json")
    assert set(example) <= set(default)
    assert default["@odata.context"].endswith(
        "$metadata#policies/crossTenantAccessPolicy/default/$entity"
    )
    partner = graph.get(f"/policies/crossTenantAccessPolicy/partners/{CONTOSO_TENANT_ID}").json()
    assert set(fixture("policies.crossTenantAccessPolicy.partners.id.get.response.json")) <= set(
        partner
    )
    partners = graph.get("/policies/crossTenantAccessPolicy/partners").json()
    assert CONTOSO_TENANT_ID in {p["tenantId"] for p in partners["value"]}
    missing = graph.get(f"/policies/crossTenantAccessPolicy/partners/{TAILSPIN_TENANT_ID}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"
    auth = graph.get("/policies/authorizationPolicy").json()
    assert auth["allowInvitesFrom"] == "adminsAndGuestInviters"
    assert set(fixture("policies.authorizationPolicy.get.response.json")) <= set(auth)


def _audits(client: Graph, filter_text: str) -> list[dict[str, Any]]:
    response = client.get("/auditLogs/directoryAudits", params={"$filter": filter_text})
    assert response.status_code == 200, response.text
    return response.json()["value"]


def test_partner_policy_changes_write_entra_style_audit_events(sim):
    client_tenant = new_client_tenant(sim)
    sim.control.set_consent(client_tenant, VENDOR_APP_ID, "granted")
    admin = f"admin@c{client_tenant[:8]}.example.com"
    client = Graph(sim, token(sim, client_tenant))
    added = sim.control.set_partner_policy(
        client_tenant, VENDOR_TENANT_ID, {"b2bCollaborationOutbound": ALLOWED_ALL}, actor=admin
    )
    updated = sim.control.set_partner_policy(
        client_tenant,
        VENDOR_TENANT_ID,
        {"b2bCollaborationOutbound": BLOCKED_ALL},
        actor=admin,
        value_style="pascal",
    )
    # Graph now serves the new policy.
    partner = client.get(f"/policies/crossTenantAccessPolicy/partners/{VENDOR_TENANT_ID}").json()
    assert partner["b2bCollaborationOutbound"] == BLOCKED_ALL
    deleted = sim.control.delete_partner_policy(
        client_tenant, VENDOR_TENANT_ID, actor={"appId": VENDOR_APP_ID, "displayName": "xtap-watch"}
    )
    events = _audits(client, "category eq 'CrossTenantAccessSettings'")
    assert [e["id"] for e in events] == [deleted["id"], updated["id"], added["id"]]  # newest first
    assert [e["activityDisplayName"] for e in events] == [
        "Delete partner specific cross-tenant access setting",
        "Update a partner cross-tenant access setting",
        "Add a partner to cross-tenant access setting",
    ]
    assert len({e["correlationId"] for e in events}) == 3

    def props(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {p["displayName"]: p for p in event["targetResources"][0]["modifiedProperties"]}

    assert props(added)["tenantId"]["newValue"] == json.dumps(VENDOR_TENANT_ID)
    assert props(added)["tenantId"]["oldValue"] is None
    new_value = json.loads(props(updated)["b2bCollaborationOutbound"]["newValue"])
    old_value = json.loads(props(updated)["b2bCollaborationOutbound"]["oldValue"])
    assert new_value["UsersAndGroups"]["AccessType"] == 2  # PascalCase, numeric
    assert old_value["Applications"]["AccessType"] == 1
    assert (
        json.loads(props(added)["b2bCollaborationOutbound"]["newValue"])["usersAndGroups"][
            "accessType"
        ]
        == 1
    )
    assert props(deleted)["tenantId"]["oldValue"] == json.dumps(VENDOR_TENANT_ID)
    assert props(deleted)["tenantId"]["newValue"] is None
    assert added["initiatedBy"]["user"]["userPrincipalName"] == admin
    assert deleted["initiatedBy"]["app"]["appId"] == VENDOR_APP_ID
    assert VENDOR_TENANT_ID in added["targetResources"][0]["displayName"]
    assert (
        client.get(f"/policies/crossTenantAccessPolicy/partners/{VENDOR_TENANT_ID}").status_code
        == 404
    )


def test_default_policy_change_is_a_company_default_event(sim, graph):
    event = sim.control.set_default_policy(
        VENDOR_TENANT_ID,
        {
            "inboundTrust": {
                "isMfaAccepted": True,
                "isCompliantDeviceAccepted": False,
                "isHybridAzureADJoinedDeviceAccepted": False,
            }
        },
        actor="admin@osttra.com",
        at="now-1m",
    )
    try:
        assert event["category"] == "CrossTenantIdentitySyncSettings"
        assert (
            event["activityDisplayName"] == "Update the company default cross-tenant access setting"
        )
        (changed,) = event["targetResources"][0]["modifiedProperties"]
        assert changed["displayName"] == "inboundTrust"
        assert json.loads(changed["newValue"])["isMfaAccepted"] is True
        found = _audits(
            graph, "activityDisplayName eq 'Update the company default cross-tenant access setting'"
        )
        assert event["id"] in {e["id"] for e in found}
        assert (
            graph.get("/policies/crossTenantAccessPolicy/default").json()["inboundTrust"][
                "isMfaAccepted"
            ]
            is True
        )
    finally:
        sim.control.set_default_policy(
            VENDOR_TENANT_ID,
            {
                "inboundTrust": {
                    "isMfaAccepted": False,
                    "isCompliantDeviceAccepted": False,
                    "isHybridAzureADJoinedDeviceAccepted": False,
                }
            },
        )


# ---------------------------------------------------------------------------------------
# Collections: filters and paging
# ---------------------------------------------------------------------------------------


def test_directory_audits_filter_and_keyset_paging(sim):
    tenant = new_client_tenant(sim)
    sim.control.set_consent(tenant, VENDOR_APP_ID, "granted")
    client = Graph(sim, token(sim, tenant))
    events = [
        {
            "category": "CrossTenantAccessSettings" if i % 2 else "UserManagement",
            "activityDisplayName": "Update a partner cross-tenant access setting"
            if i % 2
            else "Update user",
            "activityDateTime": f"now-{i}h",
        }
        for i in range(1, 26)
    ]
    sim.control.add_audit_events(tenant, events)
    since = "2000-01-01T00:00:00Z"
    query = {
        "$filter": f"activityDateTime ge {since} and (category eq 'CrossTenantAccessSettings'"
        " or startswith(activityDisplayName,'Update u'))",
        "$top": "10",
    }
    first = client.get("/auditLogs/directoryAudits", params=query).json()
    assert len(first["value"]) == 10
    next_link = first["@odata.nextLink"]
    assert next_link.startswith(sim.graph_url + "/auditLogs/directoryAudits?")
    assert "$skiptoken=" in next_link
    # An event arriving between pages is newer than the cursor: not repeated, not shifting.
    sim.control.add_audit_events(
        tenant, [{"category": "UserManagement", "activityDisplayName": "Update user"}]
    )
    seen = list(first["value"])
    while next_link:
        page = client.follow(next_link).json()
        seen += page["value"]
        next_link = page.get("@odata.nextLink")
    times = [e["activityDateTime"] for e in seen]
    assert len(seen) == 25 and len({e["id"] for e in seen}) == 25
    assert times == sorted(times, reverse=True)
    narrow = client.get(
        "/auditLogs/directoryAudits",
        params={
            "$filter": "activityDisplayName eq 'Update user'"
            " and activityDateTime le 2000-01-01T00:00:00Z"
        },
    ).json()
    assert narrow["value"] == []


def test_sign_ins_filter_on_error_code_and_tenants(sim, graph):
    failures = graph.get(
        "/auditLogs/signIns",
        params={
            "$filter": f"status/errorCode eq 500212 and homeTenantId eq '{TAILSPIN_TENANT_ID}'"
            f" and resourceTenantId eq '{VENDOR_TENANT_ID}'"
        },
    ).json()["value"]
    assert len(failures) >= 6
    assert {f["crossTenantAccessType"] for f in failures} == {"b2bCollaboration"}
    assert "NotAllowedByOutboundPolicyTenant" in failures[0]["status"]["failureReason"]
    example = fixture("auditLogs.signIns.list.response.json")["value"][0]
    assert set(example) <= set(failures[0])
    created = sim.control.add_signins(
        VENDOR_TENANT_ID,
        [
            {
                "userPrincipalName": "z@fabrikam-clearing.com",
                "homeTenantId": FABRIKAM_TENANT_ID,
                "errorCode": 500213,
            }
        ],
    )
    again = graph.get(
        "/auditLogs/signIns", params={"$filter": "status/errorCode eq 500213", "$top": "5"}
    ).json()["value"]
    assert created[0]["id"] in {s["id"] for s in again}


def test_user_queries_select_count_and_paging(sim, graph):
    guests = graph.get(
        "/users",
        params={
            "$filter": "userType eq 'Guest' and externalUserState eq 'PendingAcceptance'",
            "$select": "id,mail,userType,externalUserState",
        },
    ).json()
    assert guests["@odata.context"].endswith("$metadata#users(id,mail,userType,externalUserState)")
    assert guests["value"] and all(
        set(u) == {"id", "mail", "userType", "externalUserState"} for u in guests["value"]
    )
    # Advanced queries need $count=true and ConsistencyLevel: eventual, as in Graph.
    plain = graph.get("/users", params={"$filter": "endswith(mail,'@contoso-markets.com')"})
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "Request_UnsupportedQuery"
    advanced = graph.get(
        "/users",
        params={
            "$filter": "endswith(mail,'@contoso-markets.com') and userType eq 'Guest'",
            "$count": "true",
        },
        headers={"ConsistencyLevel": "eventual"},
    ).json()
    assert advanced["@odata.count"] == len(advanced["value"]) == 2
    default_view = graph.get("/users", params={"$top": "3"}).json()
    assert set(default_view["value"][0]) == set(fixture("users.list.response.json")["value"][0])
    collected = list(default_view["value"])
    link = default_view.get("@odata.nextLink")
    while link:
        page = graph.follow(link).json()
        collected += page["value"]
        link = page.get("@odata.nextLink")
    assert len({u["id"] for u in collected}) == len(collected) > 10


def test_user_by_id_or_upn(sim, graph):
    guest = graph.get(
        "/users",
        params={
            "$filter": "mail eq 'bob.ops@contoso-markets.com'",
            "$select": "id,userPrincipalName",
        },
    ).json()["value"][0]
    by_id = graph.get(
        f"/users/{guest['id']}", params={"$select": "externalUserState,userType"}
    ).json()
    assert by_id["externalUserState"] == "PendingAcceptance" and by_id["userType"] == "Guest"
    upn = guest["userPrincipalName"]
    assert "#EXT#" in upn
    by_upn = graph.get("/users/" + upn.replace("#", "%23"))
    assert by_upn.status_code == 200 and by_upn.json()["id"] == guest["id"]
    assert graph.get(f"/users/{uuid.uuid4()}").status_code == 404


def test_injection_attempts_are_errors_or_literal_matches(sim, graph):
    hostile = "x' or '1' eq '1"
    naive = graph.get("/users", params={"$filter": f"mail eq '{hostile}'"})
    assert naive.status_code == 400
    assert naive.json()["error"]["code"] == "Request_BadRequest"
    escaped = hostile.replace("'", "''")
    quoted = graph.get("/users", params={"$filter": f"mail eq '{escaped}'"})
    assert quoted.status_code == 200
    assert quoted.json()["value"] == []
    bad_audit = graph.get(
        "/auditLogs/directoryAudits",
        params={"$filter": "activityDateTime ge 'yesterday' or 1 eq 1"},
    )
    assert bad_audit.status_code == 400
    assert "Invalid filter clause" in bad_audit.json()["error"]["message"]


# ---------------------------------------------------------------------------------------
# Writes: invitations, access reviews, mail
# ---------------------------------------------------------------------------------------


def _guest_id(graph: Graph, mail: str) -> str:
    return graph.get("/users", params={"$filter": f"mail eq '{mail}'"}).json()["value"][0]["id"]


def test_invitation_reset_redemption(sim, graph):
    guest_id = _guest_id(graph, "carol.risk@fabrikam-clearing.com")
    request = fixture("invitations.post.resetRedemption.beta.request.json")
    request.update(
        invitedUserEmailAddress="carol.risk@fabrikam-clearing.com", invitedUser={"id": guest_id}
    )
    response = graph.post("/invitations", request)
    assert response.status_code == 201, response.text
    body = response.json()
    example = fixture("invitations.post.resetRedemption.beta.response.json")
    assert set(example) - {"@odata.context"} <= set(body)
    assert body["resetRedemption"] is True and body["status"] == "PendingAcceptance"
    assert body["invitedUser"]["id"] == guest_id
    assert sim.control.user(VENDOR_TENANT_ID, guest_id)["externalUserState"] == "PendingAcceptance"
    recorded = [
        i for i in sim.control.invitations(VENDOR_TENANT_ID) if i.get("invitedUserId") == guest_id
    ]
    assert recorded and recorded[-1]["status"] == 201 and recorded[-1]["resetRedemption"] is True


def test_invitation_refusals(sim, graph):
    redirect = "https://sso.osttra.com"
    privileged = _guest_id(graph, "dan.admin@fabrikam-clearing.com")
    denied = graph.post(
        "/invitations",
        {
            "invitedUserEmailAddress": "dan.admin@fabrikam-clearing.com",
            "inviteRedirectUrl": redirect,
            "resetRedemption": True,
            "invitedUser": {"id": privileged},
        },
    )
    assert (
        denied.status_code == 403
        and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    )
    # "Invite internal users to B2B collaboration": an internal account named by
    # invitedUser.id is converted to B2B (one way), not refused — the product must refuse.
    member = graph.get("/users/j.doe.contractor@osttra.com").json()["id"]
    converted = graph.post(
        "/invitations",
        {
            "invitedUserEmailAddress": "j.doe@contoso-markets.com",
            "inviteRedirectUrl": redirect,
            "resetRedemption": True,
            "invitedUser": {"id": member},
        },
    )
    assert converted.status_code == 201
    assert sim.control.user(VENDOR_TENANT_ID, member)["externalUserState"] == "PendingAcceptance"
    record = sim.control.invitations(VENDOR_TENANT_ID)[-1]
    assert record["invitedUserId"] == member and record["convertedInternalUser"] is True
    unknown = graph.post(
        "/invitations",
        {
            "invitedUserEmailAddress": "x@contoso-markets.com",
            "inviteRedirectUrl": redirect,
            "resetRedemption": True,
            "invitedUser": {"id": str(uuid.uuid4())},
        },
    )
    assert unknown.status_code == 400
    no_redirect = graph.post("/invitations", {"invitedUserEmailAddress": "x@contoso-markets.com"})
    assert (
        no_redirect.status_code == 400
        and "inviteRedirectUrl" in no_redirect.json()["error"]["message"]
    )
    refused = [i for i in sim.control.invitations(VENDOR_TENANT_ID) if i["status"] >= 400]
    assert len(refused) >= 3


def test_new_invitation_creates_a_pending_guest(sim, graph):
    body = fixture("invitations.post.request.json")
    body["invitedUserEmailAddress"] = "new.person@northwind-securities.com"
    response = graph.post("/invitations", body)
    assert response.status_code == 201
    created = response.json()
    assert set(fixture("invitations.post.response.json")) <= set(created)
    user = sim.control.user(VENDOR_TENANT_ID, created["invitedUser"]["id"])
    assert user["userType"] == "Guest" and user["externalUserState"] == "PendingAcceptance"
    assert user["userPrincipalName"] == "new.person_northwind-securities.com#EXT#@osttra.com"


def test_access_review_definitions(sim, graph):
    existing = graph.get(
        "/identityGovernance/accessReviews/definitions",
        params={
            "$filter": "displayName eq 'xtap-watch guest review: Contoso Markets'",
            "$top": "10",
        },
    ).json()
    assert len(existing["value"]) == 1
    # Microsoft's list example pages with $top/$skip.
    first, second = (
        graph.get(
            "/identityGovernance/accessReviews/definitions", params={"$top": "1", "$skip": str(n)}
        ).json()["value"]
        for n in (0, 1)
    )
    assert len(first) == len(second) == 1 and first[0]["id"] != second[0]["id"]
    request = fixture(
        "identityGovernance.accessReviews.definitions.post.inactiveGuests-teams.request.json"
    )
    request["displayName"] = "xtap-watch guest review: Northwind Securities"
    created = graph.post("/identityGovernance/accessReviews/definitions", request)
    assert created.status_code == 201, created.text
    example = fixture("identityGovernance.accessReviews.definitions.post.group.response.json")
    assert set(example) <= set(created.json())
    assert created.json()["settings"]["recurrence"]["range"]["startDate"] == "2020-05-04"
    assert any(
        d["id"] == created.json()["id"]
        for d in sim.control.access_review_definitions(VENDOR_TENANT_ID)
    )
    incomplete = graph.post(
        "/identityGovernance/accessReviews/definitions", {"displayName": "no scope"}
    )
    assert incomplete.status_code == 400
    sim.control.set_tenant_flags(VENDOR_TENANT_ID, accessReviewsLicensed=False)
    try:
        unlicensed = graph.post("/identityGovernance/accessReviews/definitions", request)
    finally:
        sim.control.set_tenant_flags(VENDOR_TENANT_ID, accessReviewsLicensed=True)
    assert unlicensed.status_code == 403
    assert "license" in unlicensed.json()["error"]["message"]


def test_send_mail_is_recorded(sim, graph):
    message = fixture("users.sendMail.post.request.json")
    before = len(sim.control.mailbox())
    response = graph.post("/users/xtap-watch@osttra.com/sendMail", message)
    assert response.status_code == 202 and response.content == b""
    mail = sim.control.mailbox()[before:]
    assert len(mail) == 1 and mail[0]["sender"] == "xtap-watch@osttra.com"
    assert mail[0]["message"]["toRecipients"][0]["emailAddress"]["address"] == "frannis@contoso.com"
    assert graph.post("/users/nobody@osttra.com/sendMail", message).status_code == 404
    assert (
        graph.post(
            "/users/xtap-watch@osttra.com/sendMail", {"message": {"subject": "x"}}
        ).status_code
        == 400
    )


def test_find_tenant_information(sim, graph):
    by_domain = graph.get(
        "/tenantRelationships/findTenantInformationByDomainName(domainName='sso.osttra.com')"
    ).json()
    assert by_domain["tenantId"] == VENDOR_TENANT_ID
    assert set(
        fixture("tenantRelationships.findTenantInformationByDomainName.get.response.json")
    ) == set(by_domain)
    by_id = graph.get(
        f"/tenantRelationships/findTenantInformationByTenantId(tenantId='{CONTOSO_TENANT_ID}')"
    ).json()
    assert by_id["defaultDomainName"] == "contoso-markets.com"
    assert (
        graph.get(
            "/tenantRelationships/findTenantInformationByDomainName(domainName='nowhere.example')"
        ).status_code
        == 404
    )


# ---------------------------------------------------------------------------------------
# $batch
# ---------------------------------------------------------------------------------------


def test_batch_items_dependson_errors_and_429(sim):
    reader = Graph(sim, token(sim, CONTOSO_TENANT_ID, READER_APP_ID, READER_APP_SECRET))
    sim.control.add_fault("authorizationPolicy", status=429, retry_after=7, count=1)
    body = {
        "requests": [
            {"id": "default", "method": "GET", "url": "/policies/crossTenantAccessPolicy/default"},
            {
                "id": "partner",
                "method": "GET",
                "url": f"policies/crossTenantAccessPolicy/partners/{VENDOR_TENANT_ID}",
                "dependsOn": ["default"],
            },
            {
                "id": "missing",
                "method": "GET",
                "url": f"/policies/crossTenantAccessPolicy/partners/{uuid.uuid4()}",
            },
            {
                "id": "after-missing",
                "method": "GET",
                "url": "/policies/crossTenantAccessPolicy/default",
                "dependsOn": ["missing"],
            },
            {"id": "throttled", "method": "GET", "url": "/policies/authorizationPolicy"},
            {
                "id": "absolute",
                "method": "GET",
                "url": f"{sim.graph_url}/policies/crossTenantAccessPolicy/default",
            },
            {"id": "forbidden", "method": "GET", "url": "/users"},
        ]
    }
    response = reader.post("/$batch", body)
    assert response.status_code == 200
    items = {r["id"]: r for r in response.json()["responses"]}
    # Responses may come in another order than the requests (JSON batching): here reversed.
    asked = [r["id"] for r in body["requests"]]
    assert [r["id"] for r in response.json()["responses"]] == asked[::-1]
    assert items["default"]["status"] == 200
    assert (
        items["default"]["body"]["b2bCollaborationOutbound"]["usersAndGroups"]["accessType"]
        == "allowed"
    )
    assert (
        items["partner"]["status"] == 200
        and items["partner"]["body"]["tenantId"] == VENDOR_TENANT_ID
    )
    assert items["missing"]["status"] == 404
    assert items["after-missing"]["status"] == 424
    assert (
        items["throttled"]["status"] == 429 and items["throttled"]["headers"]["Retry-After"] == "7"
    )
    assert items["absolute"]["status"] == 400
    assert items["forbidden"]["status"] == 403
    too_many = {
        "requests": [
            {"id": str(i), "method": "GET", "url": "/policies/crossTenantAccessPolicy/default"}
            for i in range(21)
        ]
    }
    assert reader.post("/$batch", too_many).status_code == 400
    dangling = {"requests": [{"id": "1", "method": "GET", "url": "/users", "dependsOn": ["9"]}]}
    assert reader.post("/$batch", dangling).status_code == 400


# ---------------------------------------------------------------------------------------
# Log Analytics through azure-monitor-query
# ---------------------------------------------------------------------------------------


def test_logs_query_client_reads_signin_and_audit_tables(sim):
    from azure.core.exceptions import HttpResponseError
    from azure.monitor.query import LogsQueryClient, LogsQueryStatus

    client = LogsQueryClient(
        credential(sim), endpoint=sim.log_analytics_url, connection_verify=sim.ca_file
    )
    result = client.query_workspace(
        VENDOR_WORKSPACE_ID,
        'SigninLogs | where ResultType in ("500212", "500213", "5000211")'
        " | summarize Failures = count() by HomeTenantId, ResultType | order by Failures desc",
        timespan=timedelta(days=1),
    )
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert table.columns == ["HomeTenantId", "ResultType", "Failures"]
    assert [TAILSPIN_TENANT_ID, "500212", 6] in [list(row) for row in table.rows]

    new_partner = str(uuid.uuid4())
    sim.control.set_partner_policy(
        VENDOR_TENANT_ID,
        new_partner,
        {"automaticUserConsentSettings": {"inboundAllowed": True, "outboundAllowed": False}},
    )
    audits = client.query_workspace(
        VENDOR_WORKSPACE_ID,
        "AuditLogs | where Category == 'CrossTenantAccessSettings' | where TimeGenerated > ago(1h)"
        f' | where TargetResources contains "{new_partner}"'
        " | project TimeGenerated, OperationName, TargetResources, InitiatedBy, Id"
        " | order by TimeGenerated desc | take 5",
        timespan=timedelta(hours=1),
    )
    rows = [dict(zip(audits.tables[0].columns, row, strict=True)) for row in audits.tables[0].rows]
    added = [
        r for r in rows if r["OperationName"] == "Add a partner to cross-tenant access setting"
    ]
    assert added
    targets = json.loads(added[0]["TargetResources"])  # dynamic columns arrive as JSON text
    assert targets[0]["modifiedProperties"][0] == {
        "displayName": "tenantId",
        "oldValue": None,
        "newValue": json.dumps(new_partner),
    }
    assert added[0]["TimeGenerated"].tzinfo is not None

    with pytest.raises(HttpResponseError) as refused:
        client.query_workspace(
            VENDOR_WORKSPACE_ID, "SigninLogs | extend Hour = 1", timespan=timedelta(days=1)
        )
    assert refused.value.status_code == 400
    assert "extend" in str(refused.value)
    with pytest.raises(HttpResponseError) as unknown:
        client.query_workspace(str(uuid.uuid4()), "SigninLogs | take 1", timespan=None)
    assert unknown.value.status_code == 404


# Teams Workflows webhook: tests/integration/test_sim_workflows.py


# ---------------------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------------------


def test_request_log_and_counters(sim, graph):
    sim.control.reset_counters()
    graph.get("/policies/crossTenantAccessPolicy/default")
    graph.get(f"/policies/crossTenantAccessPolicy/partners/{uuid.uuid4()}")
    stats = sim.control.stats()
    assert stats["requests"] == 2
    assert stats["byStatus"] == {"200": 1, "404": 1}
    assert stats["byRoute"]["GET /v1.0/policies/crossTenantAccessPolicy/partners/{id}"] == 1
    assert stats["byTenant"] == {VENDOR_TENANT_ID: 2}
    log = sim.control.requests("crossTenantAccessPolicy")
    assert [(r["status"], r["tenantId"], r["appId"]) for r in log] == [
        (200, VENDOR_TENANT_ID, VENDOR_APP_ID),
        (404, VENDOR_TENANT_ID, VENDOR_APP_ID),
    ]
