"""Client registry use cases: onboard by domain, consent link, bulk import/export."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shared.domain.clients import ClientRecord
from shared.domain.odata import quote

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.config import Settings


class ClientNotFound(LookupError):
    pass


def admin_consent_link(settings: Settings, client_tenant_id: str) -> str:
    """The one link a client's admin opens to consent to the read-only app."""
    if not settings.client_reader_app_id:
        from shared.config import ConfigError

        raise ConfigError("XTAP_CLIENT_READER_APP_ID", "is required to build a consent link")
    query = urlencode(
        {
            "client_id": settings.client_reader_app_id,
            "scope": "https://graph.microsoft.com/.default",
            "redirect_uri": settings.admin_consent_redirect_uri,
        }
    )
    return f"{settings.authority_host}/{client_tenant_id}/v2.0/adminconsent?{query}"


async def find_tenant_by_domain(app: App, domain: str) -> dict[str, Any]:
    from shared.adapters.graph import GraphError

    path = f"/tenantRelationships/findTenantInformationByDomainName(domainName={quote(domain)})"
    try:
        return dict(await app.graph.vendor().get_json(path))
    except GraphError as exc:
        if exc.status in (400, 404):
            raise ClientNotFound(f"no Entra tenant found for domain {domain!r}") from exc
        raise


async def add_client_by_domain(
    app: App,
    domain: str,
    now: datetime,
    *,
    name: str | None = None,
    contacts: tuple[str, ...] = (),
    expected_groups: tuple[str, ...] = (),
) -> ClientRecord:
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import ExpectedScope

    info = await find_tenant_by_domain(app, domain)
    tenant_id = str(info["tenantId"]).lower()
    registry = ClientRegistry(app.tables)
    existing = await registry.get(tenant_id)
    domains = tuple(dict.fromkeys([*(existing.domains if existing else ()), domain.lower()]))
    default_domain = str(info.get("defaultDomainName") or "").lower()
    if default_domain:
        domains = tuple(dict.fromkeys([*domains, default_domain]))
    record = ClientRecord(
        tenant_id=tenant_id,
        name=name or (existing.name if existing else str(info.get("displayName") or domain)),
        domains=domains,
        contacts=contacts or (existing.contacts if existing else ()),
        expected_scope=ExpectedScope(user_groups=expected_groups)
        if expected_groups
        else (existing.expected_scope if existing else ExpectedScope()),
        consent=existing.consent if existing else ClientRecord.model_fields["consent"].default,
        routing=existing.routing if existing else ClientRecord.model_fields["routing"].default,
        added_at=existing.added_at if existing and existing.added_at else now,
    )
    await registry.upsert(record)
    return record


async def import_clients(app: App, records: list[dict[str, Any]]) -> int:
    from shared.adapters.repositories import ClientRegistry

    parsed = [ClientRecord.model_validate(r) for r in records]  # all or nothing
    registry = ClientRegistry(app.tables)
    for record in parsed:
        await registry.upsert(record)
    return len(parsed)


async def export_clients(app: App) -> list[dict[str, Any]]:
    from shared.adapters.repositories import ClientRegistry

    return [r.model_dump(mode="json") for r in await ClientRegistry(app.tables).list()]


async def client_instructions(
    app: App, tenant_id: str, send_to: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The client-facing e-mail (onboarding steps for their tenant + consent link).

    Built from the client's latest posture findings; sent through Graph sendMail when
    ``send_to`` is given, otherwise only returned for the operator to review.
    """
    from shared.adapters.repositories import ClientRegistry, PostureStore
    from shared.domain.clients import ConsentStatus
    from shared.domain.messages import FindingRef, Severity
    from shared.rendering.email import graph_mail_payload, render_client_email

    client = await ClientRegistry(app.tables).get(tenant_id)
    if client is None:
        raise ClientNotFound(f"client {tenant_id} is not registered")
    posture = await PostureStore(app.tables).get(tenant_id) or {}
    findings = [
        FindingRef(
            code=f["code"],
            severity=Severity(f["severity"]),
            message=f["message"],
            remediation=f.get("remediation", ""),
        )
        for f in posture.get("findings", [])
    ]
    s = app.settings
    link = (
        admin_consent_link(s, client.tenant_id)
        if s.client_reader_app_id and client.consent is not ConsentStatus.GRANTED
        else None
    )
    # A limited scope the client agreed and the registry records (the posture is "ok"
    # although LIMITED) is what was agreed, not something the client must change.
    agreed = (
        {"CLIENT_OUTBOUND_USERS_SCOPED"}
        if client.expected_scope.user_groups
        and posture.get("verdict") == "LIMITED"
        and posture.get("state") == "ok"
        else set()
    )
    email = render_client_email(
        client.name,
        client.tenant_id,
        s.vendor_name,
        s.vendor_domain,
        s.vendor_tenant_id,
        findings,
        link,
        consent_granted=client.consent is ConsentStatus.GRANTED,
        agreed_codes=agreed,
    )
    result: dict[str, Any] = {"subject": email.subject, "text": email.text, "sentTo": []}
    if send_to:
        from shared.adapters.mail import send_mail

        if not s.mail_sender:
            from shared.config import ConfigError

            raise ConfigError("XTAP_MAIL_SENDER", "is required to send client instructions")
        await send_mail(app.graph.vendor(), s.mail_sender, graph_mail_payload(email, list(send_to)))
        result["sentTo"] = list(send_to)
    return result
