"""``xtap-watch doctor`` against real Azurite, the Graph simulator and the Easy Auth double.

The healthy run uses the app's Azure identity path: the managed identity (the simulator's
App Service MSI endpoint) for the vendor tenant and the reader app with the managed identity
as its federated credential for clients. Then one injected fault per check line, each of
which must fail that line, by name, and make the command exit non-zero.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.easyauth import EasyAuthConfig, EasyAuthFront
from devtools.local_env import VENDOR_TENANT_ID, XTAP_APP_ID, load_demo_scenario, seed_registry
from shared.domain.doctor import DoctorReport, Status

pytestmark = pytest.mark.integration

CONTOSO = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
MI_CLIENT_ID = "e2d7b4a9-3c16-4a8f-b5e0-7f9c2d1a6b38"
MI_HEADER = "sim-identity-header"
READER_APP_ID = "c4a1e9d2-6b37-4f58-9e20-1d7a3c5b8f96"
API_AUDIENCE = "api://0f5e7a2c-9b14-4d3e-8a61-2c7b9e4d1a50/xtap-watch-api-test"
SUPPORT_OBJECT_ID = "7d1e4b2a-9c3f-4e58-a1b6-2f8d0c7e5a93"


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def support_token(roles: tuple[str, ...] = ("Reinvite.Request",)) -> str:
    return unsigned_jwt(
        {
            "aud": API_AUDIENCE,
            "tid": VENDOR_TENANT_ID,
            "oid": SUPPORT_OBJECT_ID,
            "name": "support.lead@osttra.com",
            "preferred_username": "support.lead@osttra.com",
            "http://schemas.microsoft.com/identity/claims/tenantid": VENDOR_TENANT_ID,
            "http://schemas.microsoft.com/identity/claims/objectidentifier": SUPPORT_OBJECT_ID,
            "roles": list(roles),
        }
    )


@pytest.fixture
def doctor_env(app_env: dict[str, str], demo_sim: Any, monkeypatch: pytest.MonkeyPatch):
    """The demo stack as it runs in Azure: managed identity, federated reader, no secrets."""
    from shared.bootstrap import build_app
    from shared.config import load_settings
    from shared.domain.clients import ConsentStatus

    monkeypatch.setenv("XTAP_VENDOR_CREDENTIAL", "managed_identity")
    monkeypatch.setenv("AZURE_CLIENT_ID", MI_CLIENT_ID)
    monkeypatch.setenv("XTAP_CLIENT_READER_CREDENTIAL", "federated_managed_identity")
    monkeypatch.delenv("XTAP_VENDOR_CLIENT_SECRET")
    monkeypatch.delenv("XTAP_CLIENT_READER_SECRET")
    monkeypatch.setenv("IDENTITY_ENDPOINT", demo_sim.msi_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", MI_HEADER)
    demo_sim.control.clear_faults()

    async def seed() -> None:
        from shared.adapters.repositories import ClientRegistry

        app = build_app(load_settings())
        await app.ensure_storage()
        try:
            await seed_registry(app, load_demo_scenario())
            registry = ClientRegistry(app.tables)
            contoso = await registry.get(CONTOSO)
            assert contoso is not None
            await registry.upsert(contoso.model_copy(update={"consent": ConsentStatus.GRANTED}))
        finally:
            await app.close()

    asyncio.run(seed())
    yield demo_sim
    demo_sim.control.clear_faults()


@pytest.fixture
def front(doctor_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[EasyAuthFront]:
    with _front(enabled=True) as served:
        monkeypatch.setenv("XTAP_PUBLIC_API_URL", served.url)
        yield served


def _front(enabled: bool) -> EasyAuthFront:
    return EasyAuthFront(
        EasyAuthConfig(
            tenant_id=VENDOR_TENANT_ID,
            allowed_audiences=(API_AUDIENCE,),
            enabled=enabled,
        )
    )


def doctor(send: bool = True, client: str | None = None) -> DoctorReport:
    import os

    from shared.services.doctor import DoctorOptions, run_doctor

    options = DoctorOptions(send_probes=send, client_tenant_id=client)
    return asyncio.run(run_doctor(dict(os.environ), options))


def failing(report: DoctorReport) -> list[str]:
    return [line.name for line in report.failed]


# ------------------------------------------------------------------------------ healthy
def test_doctor_passes_against_the_demo_stack(front, doctor_env, capsys):
    from shared.cli import main

    report = doctor()
    assert report.healthy, report.as_dict()
    statuses = {line.name: line.status for line in report.lines}
    assert statuses == {
        "settings": Status.OK,
        "key-vault-references": Status.OK,
        "storage-queues": Status.OK,
        "storage-tables": Status.OK,
        # The demo identity holds Mail.Send in Entra (the simulator has no Exchange RBAC).
        "graph-permissions": Status.WARN,
        "vendor-policy": Status.OK,
        "audit-log": Status.OK,
        "signin-source": Status.OK,
        "mail": Status.OK,
        # The confirming flow of docs/teams-workflow.md: 200 after the card was posted.
        "teams": Status.OK,
        "easy-auth": Status.OK,
        "client-reader": Status.OK,
    }
    assert "Contoso" in report.line("client-reader").detail
    # The probes really ran: a test card and a test mail arrived.
    cards = doctor_env.control.webhook_messages("admins")
    assert any("xtap-watch doctor" in json.dumps(m["body"]) for m in cards)
    assert any("doctor" in m["message"]["subject"] for m in doctor_env.control.mailbox())

    assert main(["doctor", "--no-send"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["check", "status", "detail"]
    assert "All checks passed." in out
    assert "no test card posted from here" in out


def test_no_send_posts_nothing(front, doctor_env):
    doctor_env.control.clear_mailbox()
    report = doctor(send=False)
    assert report.healthy
    assert report.line("mail").status is Status.SKIP
    assert report.line("teams").status is Status.SKIP
    assert doctor_env.control.mailbox() == []


# ------------------------------------------------------------------------------ faults
def test_fault_settings_names_the_setting(front, monkeypatch, capsys):
    from shared.cli import main

    monkeypatch.setenv("XTAP_REMINDER_HOURS", "soon")
    report = doctor()
    assert failing(report) == ["settings"]
    assert "XTAP_REMINDER_HOURS" in report.line("settings").detail
    assert report.line("storage-queues").status is Status.SKIP
    assert main(["doctor"]) == 1
    assert "1 check(s) failed." in capsys.readouterr().out


def test_fault_unresolved_key_vault_reference_does_not_blind_the_doctor(front, monkeypatch):
    reference = (
        "@Microsoft.KeyVault(SecretUri=https://kv-xtap.vault.azure.net/secrets/teams-webhook-url)"
    )
    monkeypatch.setenv("XTAP_TEAMS_WEBHOOK_URL", reference)
    report = doctor()
    assert failing(report) == ["key-vault-references", "teams"]
    assert "XTAP_TEAMS_WEBHOOK_URL" in report.line("key-vault-references").detail
    assert "Key Vault Secrets User" in report.line("key-vault-references").fix
    # Everything else was still checked.
    assert report.line("mail").status is Status.OK
    assert report.line("settings").status is Status.OK


def test_fault_missing_queue(front, azurite):
    from azure.storage.queue import QueueServiceClient

    QueueServiceClient.from_connection_string(azurite.connection_string).delete_queue(
        "xtap-alerts-poison"
    )
    report = doctor(send=False)
    assert failing(report) == ["storage-queues"]
    assert "queue xtap-alerts-poison does not exist" in report.line("storage-queues").detail


def test_fault_missing_table(front, azurite):
    from azure.data.tables import TableServiceClient

    TableServiceClient.from_connection_string(azurite.connection_string).delete_table(
        "xtapDeliveries"
    )
    report = doctor(send=False)
    assert failing(report) == ["storage-tables"]
    assert "table xtapDeliveries does not exist" in report.line("storage-tables").detail


def doctor_with_roles(doctor_env: Any, monkeypatch: pytest.MonkeyPatch, roles: list[str]):
    """The doctor run while the vendor identity holds exactly ``roles``.

    The client-secret app stands in for the identity here: the simulator lets a test change
    its granted roles (a managed identity's roles are fixed by the scenario).
    """
    from devtools.local_env import XTAP_APP_SECRET

    monkeypatch.setenv("XTAP_VENDOR_CREDENTIAL", "client_secret")
    monkeypatch.setenv("XTAP_VENDOR_CLIENT_ID", XTAP_APP_ID)
    monkeypatch.setenv("XTAP_VENDOR_CLIENT_SECRET", XTAP_APP_SECRET)
    doctor_env.control.set_consent(VENDOR_TENANT_ID, XTAP_APP_ID, "granted", roles=roles)
    try:
        return doctor(send=False)
    finally:
        doctor_env.control.set_consent(VENDOR_TENANT_ID, XTAP_APP_ID, "granted")


# What infra/graph/graph-grants.bicep grants with access reviews configured (docs/permissions.md).
GRANTED_ROLES = [
    "Policy.Read.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
    "User.Invite.All",
    "AccessReview.ReadWrite.All",
    "CrossTenantInformation.ReadBasic.All",
    "User.ReadWrite.All",
    "Group.Create",
    "GroupMember.ReadWrite.All",
    "Policy.Read.B2BManagementPolicy",
]
REVIEWER = "0c6b7a3e-2d41-4f58-9b1e-7a6c5d4e3f21"


def test_the_roles_infra_grants_satisfy_the_doctor(front, doctor_env, monkeypatch):
    monkeypatch.setenv("XTAP_ACCESS_REVIEW_REVIEWERS", REVIEWER)
    report = doctor_with_roles(doctor_env, monkeypatch, GRANTED_ROLES)
    assert report.line("graph-permissions").status is Status.OK, report.as_dict()


def test_fault_access_review_group_role_missing(front, doctor_env, monkeypatch):
    roles = [r for r in GRANTED_ROLES if r != "GroupMember.ReadWrite.All"]
    monkeypatch.setenv("XTAP_ACCESS_REVIEW_REVIEWERS", REVIEWER)
    report = doctor_with_roles(doctor_env, monkeypatch, roles)
    assert failing(report) == ["graph-permissions"]
    assert report.line("graph-permissions").detail == (
        "the token's roles lack GroupMember.ReadWrite.All"
        " (guest access reviews (keeping the guests groups' members))"
    )
    # Without reviewers access reviews are off, and so is the need for the group roles.
    monkeypatch.delenv("XTAP_ACCESS_REVIEW_REVIEWERS")
    assert doctor_with_roles(doctor_env, monkeypatch, roles).healthy


def test_missing_b2b_policy_permission_warns_naming_the_check(front, doctor_env, monkeypatch):
    roles = [r for r in GRANTED_ROLES if r != "Policy.Read.B2BManagementPolicy"]
    report = doctor_with_roles(doctor_env, monkeypatch, roles)
    assert report.healthy, report.as_dict()
    line = report.line("graph-permissions")
    assert line.status is Status.WARN
    assert "without Policy.Read.B2BManagementPolicy (vendor-side check" in line.detail


def test_fault_graph_role_missing(front, doctor_env, monkeypatch):
    roles = [
        "Policy.Read.All",
        "AuditLog.Read.All",
        "Directory.Read.All",
        "CrossTenantInformation.ReadBasic.All",
    ]
    report = doctor_with_roles(doctor_env, monkeypatch, roles)
    assert failing(report) == ["graph-permissions"]
    detail = report.line("graph-permissions").detail
    assert "User.Invite.All (re-invites)" in detail and "User.ReadWrite.All" in detail
    assert "--grant-missing" in report.line("graph-permissions").fix


def test_fault_vendor_policy_unreadable(front, doctor_env):
    doctor_env.control.add_fault(
        "/policies/crossTenantAccessPolicy/default", status=403, tenant_id=VENDOR_TENANT_ID
    )
    report = doctor(send=False)
    assert failing(report) == ["vendor-policy"]
    assert "Policy.Read.All" in report.line("vendor-policy").fix


def test_fault_audit_log_unreadable(front, doctor_env):
    doctor_env.control.add_fault("/auditLogs/directoryAudits", status=403)
    report = doctor(send=False)
    assert failing(report) == ["audit-log"]
    assert "AuditLog.Read.All" in report.line("audit-log").fix


def test_fault_audit_table_missing_in_log_analytics(front, doctor_env, monkeypatch):
    # The simulator's workspace without the table answers as Log Analytics does (SEM0100).
    monkeypatch.setenv("XTAP_AUDIT_SOURCE", "log_analytics")
    doctor_env.control.set_tenant_flags(VENDOR_TENANT_ID, logAnalyticsTables=["SigninLogs"])
    try:
        report = doctor(send=False)
    finally:
        doctor_env.control.set_tenant_flags(
            VENDOR_TENANT_ID, logAnalyticsTables=["SigninLogs", "AuditLogs"]
        )
    assert failing(report) == ["audit-log"]
    assert "no AuditLogs table" in report.line("audit-log").detail
    assert "--entra-diagnostics" in report.line("audit-log").fix


def test_fault_signin_source_without_p1(front, doctor_env):
    # The simulator's non-premium vendor tenant: Graph sign-ins answer 403
    # Authentication_RequestFromNonPremiumTenantOrB2CTenant.
    doctor_env.control.set_tenant_flags(VENDOR_TENANT_ID, premiumLicensed=False)
    try:
        report = doctor(send=False)
    finally:
        doctor_env.control.set_tenant_flags(VENDOR_TENANT_ID, premiumLicensed=True)
    assert failing(report) == ["signin-source"]
    assert "P1 or P2" in report.line("signin-source").detail


def test_fault_mailbox_not_in_exchange_scope(front, doctor_env):
    body = {
        "error": {
            "code": "ErrorAccessDenied",
            "message": "Access is denied. Check credentials and try again.",
        }
    }
    doctor_env.control.add_fault("/sendMail", status=403, body=body)
    report = doctor()
    assert failing(report) == ["mail"]
    assert "--exchange-mail-send" in report.line("mail").fix


def test_plain_workflows_trigger_is_accepted_but_unconfirmed(front, doctor_env):
    doctor_env.control.set_webhook_flow("admins", "accepting")
    try:
        report = doctor()
    finally:
        doctor_env.control.set_webhook_flow("admins", "confirming")
    assert report.healthy
    line = report.line("teams")
    assert line.status is Status.WARN and "(202)" in line.detail
    assert "docs/teams-workflow.md" in line.fix


def test_fault_teams_flow_gone(front, doctor_env):
    doctor_env.control.add_fault("/webhooks/teams/admins", status=404)
    report = doctor()
    assert failing(report) == ["teams"]
    assert "404" in report.line("teams").detail


def test_fault_easy_auth_off(doctor_env, monkeypatch):
    with _front(enabled=False) as open_front:
        monkeypatch.setenv("XTAP_PUBLIC_API_URL", open_front.url)
        report = doctor(send=False)
    assert failing(report) == ["easy-auth"]
    assert "reached the function" in report.line("easy-auth").detail


def test_fault_easy_auth_disabled_in_azure(front, monkeypatch):
    monkeypatch.setenv("WEBSITE_SITE_NAME", "func-xtap-test")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    report = doctor(send=False)
    assert failing(report) == ["easy-auth"]
    assert "WEBSITE_AUTH_ENABLED" in report.line("easy-auth").detail


def test_fault_reader_federated_credential_broken(front, doctor_env):
    body = {
        "error": "invalid_client",
        "error_description": "AADSTS700213: No matching federated identity record found for"
        " presented assertion subject 'a9f3c6e1-4d28-4b7a-8e53-2c1b9d7f0a64'.",
        "error_codes": [700213],
    }
    doctor_env.control.add_fault("/oauth2/v2.0/token", status=401, tenant_id=CONTOSO, body=body)
    report = doctor(send=False)
    assert failing(report) == ["client-reader"]
    line = report.line("client-reader")
    assert "AADSTS700213" in line.detail and "subject" in line.detail
    assert "federated credential" in line.fix


def test_fault_reader_consent_gone(front, doctor_env):
    doctor_env.control.set_consent(CONTOSO, READER_APP_ID, "none")
    try:
        report = doctor(send=False)
    finally:
        doctor_env.control.set_consent(CONTOSO, READER_APP_ID, "granted")
    assert failing(report) == ["client-reader"]
    assert "AADSTS700016" in report.line("client-reader").detail
    assert "consent-link" in report.line("client-reader").fix


# ------------------------------------------------------------------------------ HTTP + remote
def test_deep_health_runs_the_doctor_for_the_support_role(front):
    from shared.domain.principal import encode_client_principal
    from shared.entrypoints.http_api import handle

    principal = encode_client_principal(
        name="support.lead@osttra.com",
        object_id=SUPPORT_OBJECT_ID,
        roles=("Reinvite.Request",),
        tenant_id=VENDOR_TENANT_ID,
    )

    async def calls() -> tuple[Any, ...]:
        from shared.bootstrap import set_app

        try:
            anonymous = await handle("health", "GET", query={"deep": "true"})
            plain = await handle("health", "GET")
            deep = await handle(
                "health",
                "GET",
                query={"deep": "true"},
                headers={"X-MS-CLIENT-PRINCIPAL": principal},
            )
            route = await handle("doctor", "GET", headers={"X-MS-CLIENT-PRINCIPAL": principal})
            chosen = await handle(
                "doctor",
                "GET",
                query={"client": CONTOSO.upper()},
                headers={"X-MS-CLIENT-PRINCIPAL": principal},
            )
            bad = await handle(
                "doctor", "GET", query={"client": "x"}, headers={"X-MS-CLIENT-PRINCIPAL": principal}
            )
            return anonymous, plain, deep, route, chosen, bad
        finally:
            set_app(None)

    anonymous, plain, deep, route, chosen, bad = asyncio.run(calls())
    assert anonymous[0] == 401
    assert plain[0] == 200 and plain[2] == {"status": "ok"}
    assert deep[0] == 200 and deep[2]["status"] == "ok"
    names = [c["check"] for c in deep[2]["checks"]]
    assert names[0] == "settings" and "client-reader" in names
    mail = next(c for c in deep[2]["checks"] if c["check"] == "mail")
    assert mail["status"] == "skip"  # a GET never sends test messages
    assert route[0] == 200 and route[2]["status"] == "ok"
    reader = next(c for c in chosen[2]["checks"] if c["check"] == "client-reader")
    assert reader["status"] == "ok" and "Contoso" in reader["detail"]
    assert bad[0] == 400 and bad[2]["error"]["field"] == "client"


def test_remote_doctor_through_app_service_authentication(front, monkeypatch, capsys):
    from shared.cli import main

    monkeypatch.setenv("XTAP_DOCTOR_TOKEN", support_token())
    assert main(["doctor", "--remote", front.url]) == 0
    out = capsys.readouterr().out
    assert "easy-auth" in out and "All checks passed." in out

    monkeypatch.setenv("XTAP_DOCTOR_TOKEN", support_token(roles=()))
    assert main(["doctor", "--remote", front.url]) == 2
    assert "Reinvite.Request" in capsys.readouterr().err


def test_easy_auth_double_strips_forged_principals(front):
    from shared.domain.principal import encode_client_principal

    forged = encode_client_principal(
        name="mallory@example.com",
        object_id=SUPPORT_OBJECT_ID,
        roles=("Reinvite.Request",),
        tenant_id=VENDOR_TENANT_ID,
    )
    refused, _ = front.decide("/api/v1/doctor", {"X-MS-CLIENT-PRINCIPAL": forged})
    assert refused == 401
    passed, headers = front.decide("/api/v1/health", {"X-MS-CLIENT-PRINCIPAL": forged})
    assert passed is None and "X-MS-CLIENT-PRINCIPAL" not in headers
