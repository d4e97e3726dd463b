"""``xtap-watch doctor``: every dependency of a deployment, checked in the app's identity.

One line per dependency, in the order an admin fixes things: settings first (nothing else
can run without them), then storage, Graph, the log sources, the alert channels, the front
door and the client reader. Every line says ok / warn / fail / skip and, when it is not ok,
the fix. A probe that crashes becomes a failing line of its own; it never hides the others.

Run in-process (``xtap-watch doctor`` where the app's identity is available, and by the
``GET /api/v1/health?deep=true`` route inside the deployed app). ``send_probes`` posts one
test card and sends one test mail; the HTTP route never does (a GET must stay harmless).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.adapters.graph import GRAPH_SCOPE, GraphError
from shared.config import (
    QUEUE_CHECK_CLIENT,
    QUEUES,
    SETTINGS,
    TABLE_CURSORS,
    TABLES,
    ConfigError,
    Settings,
    load_settings,
)
from shared.domain.doctor import (
    CheckLine,
    DoctorReport,
    Features,
    aadsts_code,
    easy_auth_environment_line,
    easy_auth_line,
    explain_token_error,
    fail,
    graph_roles_line,
    key_vault_line,
    ok,
    optional_graph_roles,
    required_graph_roles,
    skip,
    teams_line,
    token_claims,
    unresolved_key_vault_references,
    warn,
)

if TYPE_CHECKING:
    from shared.bootstrap import App

log = logging.getLogger("xtap.doctor")

PROBE_TIMEOUT_SECONDS = 45.0
DEFAULT_POLICY = "/policies/crossTenantAccessPolicy/default"
DOCTOR_PARTITION = "xtap-doctor"
# A route App Service Authentication protects; the job ID is a well-formed GUID nobody uses.
PROTECTED_PROBE_PATH = "/api/v1/reinvites/00000000-0000-0000-0000-000000000000"
NON_PREMIUM = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
CHECK_NAMES = (
    "settings",
    "key-vault-references",
    "storage-queues",
    "storage-tables",
    "graph-permissions",
    "vendor-policy",
    "audit-log",
    "signin-source",
    "mail",
    "teams",
    "easy-auth",
    "client-reader",
)


@dataclass(frozen=True)
class DoctorOptions:
    send_probes: bool = True  # post a test card and send a test mail
    client_tenant_id: str | None = None  # which consenting client to sign in to


async def run_doctor(
    env: Mapping[str, str],
    options: DoctorOptions = DoctorOptions(),
    *,
    build_app: Callable[[Settings], App] | None = None,
    now: datetime | None = None,
) -> DoctorReport:
    """Check everything; never raises for a broken dependency (that is a failing line)."""
    now = now or datetime.now(UTC)
    secret_names = [spec.name for spec in SETTINGS if spec.secret and spec.infra]
    kv_line = key_vault_line(env, secret_names)
    # An unresolved reference must not blind the doctor: check the rest without it.
    unresolved = set(unresolved_key_vault_references(env))
    usable_env = {k: v for k, v in env.items() if k not in unresolved}
    try:
        settings = load_settings(usable_env)
    except ConfigError as exc:
        lines = [
            fail("settings", str(exc), f"set {exc.setting} (docs/deploy.md, Parameters)"),
            kv_line,
        ]
        lines += [skip(n, "needs valid settings (see the settings line)") for n in CHECK_NAMES[2:]]
        return DoctorReport(tuple(lines))

    if build_app is None:
        from shared.bootstrap import build_app as default_build_app

        build_app = default_build_app
    app = build_app(settings)
    try:
        probes: list[tuple[str, Callable[[], Awaitable[CheckLine]]]] = [
            ("storage-queues", lambda: _storage_queues(app)),
            ("storage-tables", lambda: _storage_tables(app)),
            ("graph-permissions", lambda: _graph_permissions(app)),
            ("vendor-policy", lambda: _vendor_policy(app)),
            ("audit-log", lambda: _audit_log(app, now)),
            ("signin-source", lambda: _signin_source(app)),
            ("mail", lambda: _mail(app, options.send_probes)),
            ("teams", lambda: _teams(app, env, options.send_probes)),
            ("easy-auth", lambda: _easy_auth(app, env)),
            ("client-reader", lambda: _client_reader(app, options.client_tenant_id)),
        ]
        lines = [_settings_line(settings, usable_env), kv_line]
        for name, probe in probes:
            lines.append(await _guarded(name, probe))
    finally:
        await app.close()
    return DoctorReport(tuple(lines))


async def _guarded(name: str, probe: Callable[[], Awaitable[CheckLine]]) -> CheckLine:
    try:
        return await asyncio.wait_for(probe(), PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return fail(name, f"no answer within {PROBE_TIMEOUT_SECONDS:.0f} s", "see the app's logs")
    except Exception as exc:
        log.exception("doctor probe %s crashed", name)
        return fail(
            name, f"unexpected {type(exc).__name__}: {str(exc)[:200]}", "see the app's logs"
        )


# ------------------------------------------------------------------------------ settings
def _settings_line(settings: Settings, env: Mapping[str, str]) -> CheckLine:
    known = {spec.name for spec in SETTINGS}
    unknown = sorted(k for k in env if k.startswith("XTAP_") and k not in known)
    detail = f"valid for vendor tenant {settings.vendor_tenant_id}"
    if unknown:
        return warn(
            "settings",
            f"{detail}; unknown setting(s) ignored: {', '.join(unknown)}",
            "remove or correct them (shared/config.py lists every setting)",
        )
    return ok("settings", detail)


# ------------------------------------------------------------------------------ storage
def _storage_failure(name: str, exc: Exception, what: str) -> CheckLine:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    role = "Storage Queue Data Contributor" if "queue" in name else "Storage Table Data Contributor"
    if isinstance(exc, ResourceNotFoundError):
        return fail(name, f"{what} does not exist", "azd provision creates it (storage.bicep)")
    if isinstance(exc, ClientAuthenticationError) or (
        isinstance(exc, HttpResponseError) and exc.status_code in (401, 403)
    ):
        return fail(
            name,
            f"{what}: the identity was refused ({getattr(exc, 'status_code', '')})",
            f"give the app's identity {role} on the storage account (roles.bicep)",
        )
    if isinstance(exc, ServiceRequestError):
        return fail(
            name,
            f"{what}: storage unreachable ({str(exc).splitlines()[0][:120]})",
            "check AzureWebJobsStorage__queueServiceUri / __tableServiceUri",
        )
    if type(exc).__name__ == "CredentialUnavailableError":
        return fail(
            name,
            f"{what}: no managed identity available",
            "AzureWebJobsStorage__clientId and AZURE_CLIENT_ID must be the identity's client ID",
        )
    raise exc


async def _storage_queues(app: App) -> CheckLine:
    from shared.adapters.doctor_probes import queue_round_trip
    from shared.adapters.storage import poison_queue_name

    name = "storage-queues"
    names = [*QUEUES, *(poison_queue_name(q) for q in QUEUES)]
    for queue in names:
        try:
            await app.queues.approximate_count(queue)
        except Exception as exc:
            return _storage_failure(name, exc, f"queue {queue}")
    probe_queue = poison_queue_name(QUEUE_CHECK_CLIENT)
    credential = _storage_credential(app.settings)
    try:
        await queue_round_trip(app.settings.storage, credential, probe_queue)
    except Exception as exc:
        return _storage_failure(name, exc, f"writing to queue {probe_queue}")
    finally:
        if credential is not None:
            await credential.close()
    return ok(
        name, f"{len(names)} queues readable; a message written to and deleted from {probe_queue}"
    )


def _storage_credential(settings: Settings) -> Any:
    """The same identity the app's storage clients use (bootstrap.build_app)."""
    if settings.storage.connection_string:
        return None
    from azure.identity.aio import DefaultAzureCredential

    return DefaultAzureCredential(
        managed_identity_client_id=settings.storage.client_id
        or settings.managed_identity_client_id,
        exclude_interactive_browser_credential=True,
    )


async def _storage_tables(app: App) -> CheckLine:
    name = "storage-tables"
    for table in TABLES:
        try:
            # A partition nobody else uses: proves the table exists without reading its rows.
            await app.tables.query(
                table, filter="PartitionKey eq @pk", parameters={"pk": DOCTOR_PARTITION}
            )
        except Exception as exc:
            return _storage_failure(name, exc, f"table {table}")
    row = {"PartitionKey": DOCTOR_PARTITION, "RowKey": uuid.uuid4().hex, "probe": "doctor"}
    try:
        await app.tables.upsert(TABLE_CURSORS, row)
        stored = await app.tables.get(TABLE_CURSORS, row["PartitionKey"], row["RowKey"])
        await app.tables.delete(TABLE_CURSORS, row["PartitionKey"], row["RowKey"])
    except Exception as exc:
        return _storage_failure(name, exc, f"writing to table {TABLE_CURSORS}")
    if stored is None:
        return fail(name, f"a row written to {TABLE_CURSORS} could not be read back", "")
    return ok(
        name, f"{len(TABLES)} tables readable; a row written to and deleted from {TABLE_CURSORS}"
    )


# ------------------------------------------------------------------------------ Graph
def _features(settings: Settings) -> Features:
    return Features(
        audit_source=settings.audit_source,
        signin_source=settings.signin_source,
        reinvites=True,
        access_reviews=bool(settings.access_review_reviewers),
        mail=bool(settings.mail_sender),
    )


async def _graph_permissions(app: App) -> CheckLine:
    name = "graph-permissions"
    try:
        token = await app.graph.vendor_credential.get_token(GRAPH_SCOPE)
    except Exception as exc:
        return fail(
            name,
            f"no Microsoft Graph token for the app's identity: {explain_token_error(str(exc))}",
            "AZURE_CLIENT_ID must be the user-assigned identity's client ID and the identity"
            " must be attached to the Function App (function-app.bicep)",
        )
    try:
        claims = token_claims(token.token)
    except ValueError as exc:
        return fail(name, f"the Graph token is not a JWT ({exc})", "")
    features = _features(app.settings)
    return graph_roles_line(claims, required_graph_roles(features), optional_graph_roles(features))


def _graph_failure(name: str, exc: GraphError, permission: str, what: str) -> CheckLine:
    if exc.status == 403:
        return fail(
            name,
            f"{what}: refused ({exc.code})",
            f"grant {permission} (grant script --grant-missing); tokens issued before the grant"
            " keep the old roles for up to an hour",
        )
    if exc.status == 429:
        return warn(name, f"{what}: throttled (429)", "run the doctor again in a minute")
    return fail(name, f"{what}: {exc.status} {exc.code}: {exc.message[:160]}", "see the app's logs")


async def _vendor_policy(app: App) -> CheckLine:
    name = "vendor-policy"
    graph = app.graph.vendor()
    try:
        default = await graph.get_json(DEFAULT_POLICY)
        partners = await graph.get_json("/policies/crossTenantAccessPolicy/partners")
    except GraphError as exc:
        return _graph_failure(name, exc, "Policy.Read.All", "reading the vendor's policy")
    count = len(partners.get("value", [])) if isinstance(partners, dict) else 0
    if not isinstance(default, dict) or "b2bCollaborationInbound" not in default:
        return fail(name, "the default policy came back without b2bCollaborationInbound", "")
    return ok(name, f"default cross-tenant policy and {count} partner entr(y/ies) readable")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _audit_log(app: App, now: datetime) -> CheckLine:
    name = "audit-log"
    if app.settings.audit_source == "log_analytics":
        return await _log_analytics_table(app, name, "AuditLogs")
    try:
        await app.graph.vendor().get_json(
            "/auditLogs/directoryAudits",
            {"$filter": f"activityDateTime ge {_iso(now - timedelta(days=1))}", "$top": 1},
        )
    except GraphError as exc:
        return _graph_failure(name, exc, "AuditLog.Read.All", "reading the audit log")
    return ok(name, "Graph directoryAudits readable")


async def _signin_source(app: App) -> CheckLine:
    name = "signin-source"
    source = app.settings.signin_source
    if source == "none":
        return skip(name, "XTAP_SIGNIN_SOURCE=none: no sign-in evidence is read")
    if source == "log_analytics":
        return await _log_analytics_table(app, name, "SigninLogs")
    try:
        await app.graph.vendor().get_json("/auditLogs/signIns", {"$top": 1})
    except GraphError as exc:
        if exc.code == NON_PREMIUM:
            return fail(
                name,
                "Graph sign-in logs need Microsoft Entra ID P1 or P2 in the vendor tenant",
                "license P1/P2, or set XTAP_SIGNIN_SOURCE=log_analytics (after the diagnostic"
                " setting) or none; posture checks run either way",
            )
        return _graph_failure(name, exc, "AuditLog.Read.All", "reading sign-in logs")
    return ok(name, "Graph signIns readable (the tenant has Entra ID P1/P2)")


async def _log_analytics_table(app: App, name: str, table: str) -> CheckLine:
    from azure.core.exceptions import HttpResponseError

    workspace = app.settings.log_analytics_workspace_id or ""
    try:
        response = await app.logs_client().query_workspace(
            workspace, f"{table} | take 1", timespan=timedelta(days=1)
        )
    except HttpResponseError as exc:
        message = str(exc.message or exc)
        if "Failed to resolve table" in message:
            return fail(
                name,
                f"the workspace has no {table} table yet",
                "stream Entra logs to it (grant script --entra-diagnostics, categories AuditLogs"
                " and SignInLogs); a new diagnostic setting can take a while to deliver rows",
            )
        if exc.status_code == 403:
            return fail(
                name,
                f"{table}: the identity may not query the workspace (403)",
                "Log Analytics Reader on the workspace (roles.bicep grants it when a source is"
                " log_analytics: azd provision)",
            )
        if exc.status_code == 404:
            return fail(
                name,
                f"workspace {workspace} not found",
                "XTAP_LOG_ANALYTICS_WORKSPACE_ID must be the workspace (customer) ID",
            )
        return fail(name, f"{table}: {exc.status_code} {message.splitlines()[0][:160]}", "")
    tables = getattr(response, "tables", None)
    if tables is None:  # LogsQueryPartialResult
        tables = getattr(response, "partial_data", None) or []
    rows = sum(len(t.rows) for t in tables)
    if rows == 0:
        return warn(
            name,
            f"{table} exists but had no rows in the last 24 h",
            "check the Entra diagnostic setting's categories (grant script --check)",
        )
    return ok(name, f"Log Analytics {table} readable, rows in the last 24 h")


# ------------------------------------------------------------------------------ channels
async def _mail(app: App, send: bool) -> CheckLine:
    from shared.adapters.mail import send_mail
    from shared.adapters.webhooks import DeliveryError

    name = "mail"
    settings = app.settings
    if not settings.mail_sender:
        return skip(name, "alert mail is off (XTAP_MAIL_SENDER is empty)")
    if not send:
        sender = settings.mail_sender
        return skip(
            name, f"no test message sent from here; `xtap-watch doctor` sends one as {sender}"
        )
    payload = {
        "message": {
            "subject": "xtap-watch doctor: test message",
            "body": {
                "contentType": "Text",
                "content": "xtap-watch doctor checked that this mailbox can send its alerts.",
            },
            "toRecipients": [{"emailAddress": {"address": a}} for a in settings.alert_emails],
        },
        "saveToSentItems": False,
    }
    try:
        await send_mail(app.graph.vendor(), settings.mail_sender, payload)
    except DeliveryError as exc:
        if exc.status == 403:
            return fail(
                name,
                f"Exchange refused to send as {settings.mail_sender} (403)",
                "scope Mail.Send to that mailbox with Exchange RBAC for Applications (grant"
                " script --exchange-mail-send); Test-ServicePrincipalAuthorization must say"
                " InScope True",
            )
        if exc.status == 404:
            return fail(
                name, f"no mailbox {settings.mail_sender}", "set XTAP_MAIL_SENDER to a mailbox"
            )
        return fail(name, str(exc)[:200], "see the app's logs")
    return ok(
        name,
        f"sent a test message as {settings.mail_sender} to"
        f" {len(settings.alert_emails)} recipient(s)",
    )


TEST_CARD = {
    "type": "message",
    "attachments": [
        {
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "type": "AdaptiveCard",
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "text": "xtap-watch doctor", "weight": "Bolder"},
                    {
                        "type": "TextBlock",
                        "text": "Test card: this channel receives xtap-watch alerts.",
                        "wrap": True,
                    },
                ],
            },
        }
    ],
}


async def _teams(app: App, env: Mapping[str, str], send: bool) -> CheckLine:
    import json

    from shared.adapters.webhooks import DeliveryError, TeamsWebhookClient

    name = "teams"
    if "XTAP_TEAMS_WEBHOOK_URL" in unresolved_key_vault_references(env):
        return fail(
            name,
            "XTAP_TEAMS_WEBHOOK_URL is an unresolved Key Vault reference",
            "see the key-vault-references line",
        )
    url = app.settings.teams_webhook_url
    if not url:
        return warn(
            name,
            "no Teams webhook: alerts go by mail only",
            "store the Workflows URL in Key Vault and set TEAMS_WEBHOOK_IN_KEY_VAULT=true"
            " (docs/deploy.md step 4)",
        )
    if not send:
        return skip(name, "no test card posted from here; `xtap-watch doctor` posts one")
    client = TeamsWebhookClient(app.settings.tls_ca_file, attempts=1)
    try:
        receipt = await client.post(url, json.dumps(TEST_CARD).encode())
    except DeliveryError as exc:
        return teams_line(exc.status, str(exc))
    finally:
        await client.close()
    return teams_line(receipt.status, None)


# ------------------------------------------------------------------------------ front door
async def _easy_auth(app: App, env: Mapping[str, str]) -> CheckLine:
    from shared.adapters.doctor_probes import anonymous_get

    name = "easy-auth"
    platform = easy_auth_environment_line(env)
    if platform is not None:
        return platform
    base = app.settings.public_api_url
    if not base:
        return skip(name, "XTAP_PUBLIC_API_URL is not set: no public URL to call")
    url = base.rstrip("/") + PROTECTED_PROBE_PATH
    try:
        answer = await anonymous_get(url, app.settings.tls_ca_file)
    except Exception as exc:
        return fail(name, f"{url} unreachable: {type(exc).__name__}", "check XTAP_PUBLIC_API_URL")
    return easy_auth_line(answer.status, answer.headers, answer.body, url)


# ------------------------------------------------------------------------------ clients
READER_FIXES = {
    "700016": "re-send the consent link (xtap-watch clients consent-link <tenant>)",
    "7000229": "re-send the consent link (xtap-watch clients consent-link <tenant>)",
    "700211": "azd provision re-creates the reader app's federated credential",
    "700212": "azd provision re-creates the reader app's federated credential",
    "700213": "azd provision re-creates the reader app's federated credential",
    "70021": "azd provision re-creates the reader app's federated credential",
}


async def _client_reader(app: App, tenant_id: str | None) -> CheckLine:
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import ConsentStatus

    name = "client-reader"
    if not app.settings.client_reader_app_id:
        return skip(name, "XTAP_CLIENT_READER_APP_ID is not set: clients' policies are not read")
    registry = ClientRegistry(app.tables)
    if tenant_id:
        record = await registry.get(tenant_id.lower())
        label = record.name if record else tenant_id
        target = tenant_id.lower()
    else:
        consenting = [c for c in await registry.list() if c.consent is ConsentStatus.GRANTED]
        if not consenting:
            return skip(name, "no registered client has consented yet (docs/onboard-client.md)")
        record = sorted(consenting, key=lambda c: c.tenant_id)[0]
        label, target = record.name, record.tenant_id
    try:
        await app.graph.client_tenant(target).get_json(DEFAULT_POLICY)
    except GraphError as exc:
        if exc.status == 403:
            return fail(
                name,
                f"{label} ({target}): signed in, but Policy.Read.All is no longer granted",
                "the client admin consents again (xtap-watch clients consent-link)",
            )
        code = aadsts_code(exc.message) or ""
        return fail(
            name,
            f"{label} ({target}): no token for the reader app: {explain_token_error(exc.message)}",
            READER_FIXES.get(code, "see docs/onboard-client.md"),
        )
    return ok(name, f"the reader app signed in to {label} ({target}) and read its policy")
