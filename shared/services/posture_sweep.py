"""Use cases: schedule a posture sweep (fan-out) and check one client (one queue message).

Order of effects in ``check_client`` is what makes it crash-safe: alerts are enqueued
*before* the client's alert state moves, so a crash can repeat an alert (the outbox
de-duplicates by key) but never lose one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.config import QUEUE_ALERTS, QUEUE_CHECK_CLIENT
from shared.domain.clients import ClientRecord, ConsentStatus
from shared.domain.messages import CheckClient
from shared.services.source_health import read_signin_evidence

if TYPE_CHECKING:
    from shared.bootstrap import App
    from shared.domain.finding_catalog import Finding
    from shared.domain.policy import DefaultPolicy

log = logging.getLogger(__name__)

VENDOR_DEFAULT_TTL_SECONDS = 300.0  # the vendor's default policy, shared by every check


@dataclass(frozen=True)
class SweepScheduled:
    sweep_id: str
    clients: int
    evidence_tenants: int


@dataclass
class CheckOutcome:
    tenant_id: str
    verdict: str
    alerts: list[str] = field(default_factory=list)  # dedup keys enqueued
    skipped: str | None = None


async def schedule_sweep(app: App, now: datetime) -> SweepScheduled:
    """Enqueue one ``CheckClient`` per registered client, with its sign-in evidence."""
    from shared.adapters.repositories import ClientRegistry

    settings = app.settings
    clients = await ClientRegistry(app.tables).list()
    evidence = await read_signin_evidence(app, now)  # never raises: evidence is a signal
    counts = evidence.counts
    sweep_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    limiter = asyncio.Semaphore(32)

    async def enqueue(client: ClientRecord) -> None:
        message = CheckClient(
            tenant_id=client.tenant_id,
            sweep_id=sweep_id,
            requested_at=now,
            signin_counts=counts.get(client.tenant_id, {}),
            signin_window_hours=settings.signin_window_hours,
            signin_unavailable=evidence.unavailable,
        )
        async with limiter:
            await app.queues.send(QUEUE_CHECK_CLIENT, message)

    await asyncio.gather(*(enqueue(c) for c in clients))
    log.info("sweep %s scheduled %d clients", sweep_id, len(clients))
    return SweepScheduled(sweep_id, len(clients), len(counts))


async def _vendor_default(app: App) -> DefaultPolicy:
    from shared.adapters.policy_reader import DEFAULT_PATH
    from shared.domain.policy import parse_default_policy

    cached = app.extras.get("vendor_default")
    if cached and time.monotonic() - cached[0] < VENDOR_DEFAULT_TTL_SECONDS:
        return cached[1]  # type: ignore[no-any-return]
    policy = parse_default_policy(await app.graph.vendor().get_json(DEFAULT_PATH))
    app.extras["vendor_default"] = (time.monotonic(), policy)
    return policy


async def _vendor_side_findings(app: App, client: ClientRecord) -> list[Finding]:
    from shared.adapters.graph import GraphError
    from shared.adapters.policy_reader import partner_path, read_authorization_policy
    from shared.domain.policy import parse_partner_policy
    from shared.domain.vendor_checks import evaluate_vendor_side, parse_authorization_policy
    from shared.services.vendor_inputs import vendor_side_inputs

    graph = app.graph.vendor()
    default = await _vendor_default(app)
    path = partner_path(client.tenant_id)
    try:
        partner = parse_partner_policy(await graph.get_json(path))
    except GraphError as exc:
        if exc.status != 404:
            raise
        partner = None
    auth_cached = app.extras.get("vendor_authorization_policy")
    if not auth_cached or time.monotonic() - auth_cached[0] > VENDOR_DEFAULT_TTL_SECONDS:
        raw = await read_authorization_policy(graph)
        auth_cached = (time.monotonic(), parse_authorization_policy(raw) if raw else None)
        app.extras["vendor_authorization_policy"] = auth_cached
    return evaluate_vendor_side(
        default,
        partner,
        client.tenant_id,
        app.settings.vendor_app_ids,
        auth_cached[1],
        client.domains,
        client_name=client.name,
        **await vendor_side_inputs(app, client),
    )


async def check_client(
    app: App, message: CheckClient, now: datetime, *, final_attempt: bool = False
) -> CheckOutcome:
    """Evaluate one client, store the result, and enqueue alerts at state transitions.

    Transient Graph failures propagate (the host retries the message); on the final
    attempt they become an UNKNOWN "tenant unreachable" result instead of a poison message.
    """
    from shared.adapters.graph import GraphError
    from shared.adapters.policy_reader import read_policy_pair
    from shared.adapters.repositories import ClientRegistry, PostureStore, alert_state_store
    from shared.domain.client_state import (
        ClientAlertState,
        TransitionKind,
        next_state,
        observe,
    )
    from shared.domain.finding_catalog import FindingCode
    from shared.domain.policy import (
        PolicyParseError,
        parse_default_policy,
        parse_partner_policy,
    )
    from shared.domain.posture import evaluate_outbound_posture, unknown_posture
    from shared.domain.posture_alerts import (
        AlertContext,
        alert_for_transition,
        vendor_side_alert,
        vendor_side_signature,
    )
    from shared.domain.signin_evidence import (
        EvidenceThreshold,
        build_evidence,
        combine,
        counts_from_summary,
    )

    settings = app.settings
    registry = ClientRegistry(app.tables)
    client = await registry.get(message.tenant_id)
    if client is None:
        return CheckOutcome(message.tenant_id, "", skipped="client no longer registered")

    consent = ConsentStatus.GRANTED
    raw_policy: dict[str, Any] | None = None
    try:
        pair = await read_policy_pair(
            app.graph.client_tenant(client.tenant_id), settings.vendor_tenant_id
        )
        try:
            result = evaluate_outbound_posture(
                parse_default_policy(pair.default),
                parse_partner_policy(pair.partner) if pair.partner is not None else None,
                settings.vendor_tenant_id,
                settings.vendor_app_ids,
                vendor_name=settings.vendor_name,
                vendor_domain=settings.vendor_domain,
            )
        except PolicyParseError as exc:
            # A shape we do not understand is reported with the raw JSON, never guessed at.
            raw_policy = {"default": pair.default, "partner": pair.partner}
            result = unknown_posture(
                FindingCode.POLICY_INCOMPLETE,
                f"The client's policy could not be interpreted: {exc}",
                vendor_tenant_id=settings.vendor_tenant_id,
            )
    except GraphError as exc:
        if exc.consent_missing:
            consent = ConsentStatus.MISSING
            result = unknown_posture(
                FindingCode.CLIENT_CONSENT_MISSING,
                f"Graph answered {exc.status} {exc.code} when reading the client's policy",
                vendor_tenant_id=settings.vendor_tenant_id,
            )
        elif exc.transient and not final_attempt:
            raise
        else:
            consent = client.consent
            result = unknown_posture(
                FindingCode.CLIENT_TENANT_UNREACHABLE,
                f"Graph answered {exc.status} {exc.code}: {exc.message}",
                vendor_tenant_id=settings.vendor_tenant_id,
            )

    window_end = message.requested_at
    window_start = window_end - timedelta(hours=message.signin_window_hours)
    counts = counts_from_summary(
        {client.tenant_id: message.signin_counts},
        window_start=window_start,
        window_end=window_end,
    )
    evidence = build_evidence(
        counts, client.tenant_id, EvidenceThreshold(min_failures=settings.signin_threshold)
    )
    result = combine(result, evidence, unavailable=message.signin_unavailable)

    ctx = AlertContext(settings.vendor_name, settings.entra_portal_url, settings.docs_base_url)
    store = alert_state_store(app.tables)
    raw_state, etag = await store.get(client.tenant_id)
    previous = ClientAlertState.from_dict(raw_state["client"]) if raw_state else None
    observation = observe(result, client.tenant_id, client.expected_scope.user_groups)
    state, transitions = next_state(
        previous, observation, now, timedelta(hours=settings.reminder_hours)
    )
    postures = PostureStore(app.tables)
    previous_posture = await postures.get(client.tenant_id) if transitions else None
    previous_verdict = (previous_posture or {}).get("verdict")
    alerts = [
        alert_for_transition(
            t, client, result, ctx, previous_verdict, (previous_posture or {}).get("effective")
        ).model_copy(
            update={"batch_id": message.sweep_id}
        )
        for t in transitions
    ]

    vendor_findings: list[Finding] = []
    vendor_signature = (raw_state or {}).get("vendor_signature", "")
    try:
        vendor_findings = await _vendor_side_findings(app, client)
    except GraphError as exc:
        if exc.transient and not final_attempt:
            raise
        log.warning("vendor-side checks for %s skipped: %s", client.tenant_id, exc)
    except PolicyParseError as exc:
        log.error("vendor-side policy not understood for %s: %s", client.tenant_id, exc)
    else:
        new_signature = vendor_side_signature(vendor_findings)
        if new_signature and new_signature != vendor_signature:
            alerts.append(
                vendor_side_alert(vendor_findings, client, new_signature, now, ctx).model_copy(
                    update={"batch_id": message.sweep_id}
                )
            )
        vendor_signature = new_signature

    for alert in alerts:
        await app.queues.send(QUEUE_ALERTS, alert)

    for t in transitions:
        if t.kind is TransitionKind.RECOVERED:
            # Guests invited while the client was blocked never got to redeem: reset them
            # now that they can (idempotent per episode, so a retried check is harmless).
            from shared.services.guest_hygiene import resets_after_recovery

            resets = await resets_after_recovery(
                app,
                client.tenant_id,
                drift_started_at=t.episode_started_at,
                recovered_at=t.at,
                now=now,
            )
            log.info("client %s recovered; stranded guest resets: %s", client.tenant_id, resets)

    record: dict[str, Any] = result.to_dict() | {
        "clientName": client.name,
        "clientTenantId": client.tenant_id,
        "vendorFindings": [f.to_dict() for f in vendor_findings],
        "state": state.status.value,
        "sweepId": message.sweep_id,
    }
    if raw_policy is not None:
        record["rawPolicy"] = raw_policy
    await postures.save(client.tenant_id, now, record)
    await store.put(
        client.tenant_id,
        {"client": state.to_dict(), "vendor_signature": vendor_signature},
        etag,
    )
    if consent is not client.consent:
        await registry.upsert(client.model_copy(update={"consent": consent}))
    return CheckOutcome(client.tenant_id, result.verdict.value, [a.dedup_key for a in alerts])
