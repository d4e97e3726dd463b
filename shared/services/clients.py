"""Client registry use cases: onboard by domain, consent link, bulk import/export."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from shared.domain.clients import ClientRecord, RegisteredCloud
from shared.domain.odata import quote
from shared.domain.tenant_cloud import KnownCloud, is_fresh

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.config import Settings


log = logging.getLogger(__name__)

# Records an import registers at once. Each looks its tenant's cloud up first, through the
# registration resolver's connections (REGISTRATION_LOOKUP_CONNECTIONS): more at once would
# only wait in front of them, and a lookup that waits past its timeout there counts as failed.
IMPORT_CONCURRENCY = 12
# Consecutive failed lookups after which a registration stops asking: with the login host
# unreachable every lookup waits out its timeout, which would hold an import of thousands
# of clients for hours. Their checks look the cloud up instead.
CLOUD_LOOKUP_FAILURES_BEFORE_STOP = 3


class ClientNotFound(LookupError):
    pass


class ClientRefused(ValueError):
    """A registration that must not happen (the vendor's own tenant)."""


def refuse_vendor_tenant(settings: Settings, tenant_id: str, what: str) -> None:
    if tenant_id.lower() == settings.vendor_tenant_id.lower():
        raise ClientRefused(
            f"{what} is the vendor's own tenant ({tenant_id}, XTAP_VENDOR_TENANT_ID): the "
            "vendor's side is checked for every client already; register client tenants only"
        )


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


@dataclass
class _RegistrationClouds:
    """Each registered client's cloud, looked up now unless the record carries a fresh one
    (an export re-imported); a failed lookup leaves what the record had, and the client's
    first check looks it up."""

    app: App
    now: datetime
    failures_in_a_row: int = 0

    @property
    def stopped(self) -> bool:
        return self.failures_in_a_row >= CLOUD_LOOKUP_FAILURES_BEFORE_STOP

    async def cloud_of(
        self, tenant_id: str, carried: RegisteredCloud | None
    ) -> RegisteredCloud | None:
        from shared.services.vendor_inputs import registration_resolver

        if carried is not None and is_fresh(carried.known(), tenant_id, self.now):
            return carried
        if self.stopped:
            return carried
        name = await registration_resolver(self.app).cloud_of(tenant_id)
        if name is None:
            self.failures_in_a_row += 1
            if self.stopped:
                log.warning(
                    "%d cloud lookups in a row failed; the rest of this registration's "
                    "clients are looked up by their first check",
                    self.failures_in_a_row,
                )
            return carried
        self.failures_in_a_row = 0
        return RegisteredCloud.of(KnownCloud(name, self.now))


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
    refuse_vendor_tenant(app.settings, tenant_id, f"domain {domain}")
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
        cloud=await _RegistrationClouds(app, now).cloud_of(
            tenant_id, existing.cloud if existing else None
        ),
    )
    await registry.upsert(record)
    return record


async def import_clients(
    app: App,
    records: list[dict[str, Any]],
    progress: Callable[[int, int], None] | None = None,
    *,
    now: datetime,
) -> int:
    """Register every record, all or nothing: each is validated (and the vendor's own
    tenant refused) before the first is written. Each client's cloud is looked up on the
    way (``_RegistrationClouds``), a few clients at a time."""
    from shared.adapters.repositories import ClientRegistry

    parsed = [ClientRecord.model_validate(r) for r in records]
    for position, record in enumerate(parsed):
        refuse_vendor_tenant(app.settings, record.tenant_id, f"clients[{position}]")
    registry = ClientRegistry(app.tables)
    clouds = _RegistrationClouds(app, now)
    pending = iter(parsed)  # shared by the workers: each record is taken once
    done = 0

    async def register() -> None:
        nonlocal done
        for record in pending:
            cloud = await clouds.cloud_of(record.tenant_id, record.cloud)
            await registry.upsert(record.model_copy(update={"cloud": cloud}))
            done += 1
            if progress is not None:
                progress(done, len(parsed))

    workers = [asyncio.create_task(register()) for _ in range(IMPORT_CONCURRENCY)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        # A failed write stops the import (as one at a time did), with its own error.
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return len(parsed)


async def export_clients(app: App) -> list[dict[str, Any]]:
    """The registry in the same camelCase keys as every other JSON of the product (and
    what ``import_clients`` reads back)."""
    from shared.adapters.repositories import ClientRegistry

    return [
        r.model_dump(mode="json", by_alias=True) for r in await ClientRegistry(app.tables).list()
    ]


async def get_client(app: App, tenant_id: str) -> tuple[ClientRecord, dict[str, Any] | None]:
    """The record and its latest posture (None before the first check)."""
    from shared.adapters.repositories import ClientRegistry, PostureStore

    record = await ClientRegistry(app.tables).get(tenant_id)
    if record is None:
        raise ClientNotFound(f"client {tenant_id} is not registered")
    return record, await PostureStore(app.tables).get(tenant_id)


@dataclass(frozen=True)
class ClientChanges:
    """What ``clients update`` changes; None / empty means "leave as it is"."""

    name: str | None = None
    add_contacts: tuple[str, ...] = ()
    remove_contacts: tuple[str, ...] = ()
    expected_groups: tuple[str, ...] | None = None  # () clears: everyone is expected
    scope_note: str | None = None
    alert_emails: tuple[str, ...] | None = None
    teams_webhook_setting: str | None = None  # "" clears


async def update_client(app: App, tenant_id: str, changes: ClientChanges) -> ClientRecord:
    from shared.adapters.repositories import ClientRegistry
    from shared.domain.clients import email_addresses

    registry = ClientRegistry(app.tables)
    record = await registry.get(tenant_id)
    if record is None:
        raise ClientNotFound(f"client {tenant_id} is not registered")
    # Addresses compare without case: mail systems (Exchange, Entra) treat them so.
    removed = {c.casefold() for c in email_addresses(changes.remove_contacts)}
    kept: dict[str, str] = {}
    for contact in [*record.contacts, *email_addresses(changes.add_contacts)]:
        if contact.casefold() not in removed:
            kept.setdefault(contact.casefold(), contact)
    contacts = tuple(kept.values())
    scope: dict[str, Any] = {}
    if changes.expected_groups is not None:
        scope["user_groups"] = changes.expected_groups
    if changes.scope_note is not None:
        scope["note"] = changes.scope_note
    routing: dict[str, Any] = {}
    if changes.alert_emails is not None:
        routing["emails"] = changes.alert_emails
    if changes.teams_webhook_setting is not None:
        routing["teams_webhook_setting"] = changes.teams_webhook_setting or None
    data = record.model_dump() | {
        "name": changes.name or record.name,
        "contacts": contacts,
        "expected_scope": record.expected_scope.model_dump() | scope,
        "routing": record.routing.model_dump() | routing,
    }
    updated = ClientRecord.model_validate(data)  # validates every field again
    await registry.upsert(updated)
    return updated


async def remove_client(app: App, tenant_id: str) -> ClientRecord:
    """Stop watching a client: its registry record, latest posture and alert state go
    (registering it again starts afresh). Jobs and delivery ledgers age out as usual."""
    from azure.core.exceptions import ResourceNotFoundError

    from shared.adapters.repositories import ClientRegistry, PostureStore
    from shared.config import TABLE_ALERT_STATE

    registry = ClientRegistry(app.tables)
    record = await registry.get(tenant_id)
    if record is None:
        raise ClientNotFound(f"client {tenant_id} is not registered")
    with suppress(ResourceNotFoundError):
        await PostureStore(app.tables).delete(record.tenant_id)
    with suppress(ResourceNotFoundError):
        await app.tables.delete(TABLE_ALERT_STATE, "client", record.tenant_id)
    await registry.delete(record.tenant_id)
    return record


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
